"""Response shapes of purchases, earnings, payouts and analytics.

Like every response schema (`handlers.schemas_out`), each lists every field of its answer
and renders it (`handlers.rendering`). Amounts are decimals (`from_cents`), times ISO 8601 strings.

- purchases: `TransactionOut`, `PurchaseOut`, `PurchaseDetailOut`, `DownloadLinkOut`;
- earnings: `BalanceOut`, `TransactionPageOut`, `RevenueOut`, `SalesChartOut`,
  `DashboardStatsOut`, `CreatorDashboardOut`, `ActivityListOut`, `PayoutOut`,
  `PayoutPageOut`, `PayoutRequestedOut`, `PayoutMethodOut`;
- analytics: `PeriodOut`, `CreatorAnalyticsOut`, `ModelAnalyticsOut`, `LeaderboardOut`,
  `TopCreatorsOut`, `SalesFiguresOut`, `AdminStatsOut`, `AdminRevenueOut`,
  `AdminRevenueStatsOut`, `AdminAnalyticsOut`, `AdminUsersAnalyticsOut`,
  `AdminModelsAnalyticsOut`, `AlertListOut`.
"""
from __future__ import annotations

from marshmallow import fields

from handlers.schemas_out import OpenOut, UserBriefOut


def _text() -> fields.String:
    return fields.String(allow_none=True)


def _number() -> fields.Float:
    return fields.Float(allow_none=True)


# --------------------------------------------------------------------------- purchases

class TransactionOut(OpenOut):
    """A transaction (seed 000 `Transaction`): amounts as decimals, ids as strings; in a
    user's lists also `direction`, `model_title` and `model_thumbnail`."""

    id = fields.String(required=True)
    transaction_id = fields.String()
    order_id = _text()
    model_id = _text()
    buyer_id = _text()
    seller_id = _text()
    amount = _number()
    discount = _number()
    platform_fee = _number()
    seller_amount = _number()
    coupon_code = _text()
    payment_method = _text()
    payment_status = _text()
    created_at = _text()
    completed_at = _text()
    refunded_at = _text()
    direction = _text()
    model_title = _text()
    model_thumbnail = _text()
    buyer = fields.Nested(UserBriefOut, allow_none=True)
    refund_id = fields.String(allow_none=True)
    refunded_by = fields.String(allow_none=True)
    seller = fields.Nested(UserBriefOut, allow_none=True)


class PurchaseOut(OpenOut):
    """``{id, model_id, transaction_id, order_id, download_count, download_limit,
    remaining_downloads, status, created_at, model, download_url}``."""

    id = fields.String(required=True)
    model_id = fields.String()
    transaction_id = _text()
    order_id = _text()
    download_count = fields.Integer()
    download_limit = fields.Integer()
    remaining_downloads = fields.Integer()
    status = _text()
    created_at = _text()
    model = fields.Dict(allow_none=True)
    download_url = _text()
    user_id = fields.String(allow_none=True)


class PurchaseDetailOut(TransactionOut):
    """A transaction with `order_number`, its `purchase` and the `model` card."""

    order_number = _text()
    purchase = fields.Nested(PurchaseOut, allow_none=True)
    model = fields.Dict(allow_none=True)
    refund_id = fields.String(allow_none=True)


class DownloadLinkOut(OpenOut):
    """``{download_url, expires_at, expires_in, model_id, download_count, download_limit,
    remaining_downloads, filename, ...}``."""

    download_url = fields.String(required=True)
    expires_at = fields.String()
    expires_in = fields.Integer()
    model_id = fields.String()
    download_count = fields.Integer()
    download_limit = fields.Integer()
    remaining_downloads = fields.Integer()
    filename = _text()
    file_format = _text()
    file_size = fields.Integer(allow_none=True)


# --------------------------------------------------------------------------- earnings

class PendingLineOut(OpenOut):
    transaction_id = fields.String()
    amount = fields.Float()
    available_at = fields.String()
    created_at = fields.String()


class BalanceOut(OpenOut):
    """A seller's balance: ``{pending, available, paid_out, in_payout, lifetime_earnings,
    hold_days, next_available_at, pending_lines, currency}``."""

    pending = fields.Float()
    available = fields.Float()
    paid_out = fields.Float()
    in_payout = fields.Float()
    lifetime_earnings = fields.Float()
    hold_days = fields.Integer()
    next_available_at = _text()
    pending_lines = fields.List(fields.Nested(PendingLineOut))
    currency = fields.String()


class SalesTotalsOut(OpenOut):
    """``{sales_count, refunds_count, gross, fees, net, refunded}``."""

    sales_count = fields.Integer()
    refunds_count = fields.Integer()
    gross = fields.Float()
    fees = fields.Float()
    net = fields.Float()
    refunded = fields.Float()


class PageOut(OpenOut):
    """The page envelope's counts: ``{total, page, limit, pages}``."""

    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    pages = fields.Integer(required=True)


class TransactionPageOut(PageOut):
    """A page of transactions; the sales list adds lifetime `totals`."""

    items = fields.List(fields.Nested(TransactionOut), required=True)
    totals = fields.Nested(SalesTotalsOut)


class PeriodOut(OpenOut):
    """``{days, start, end}`` (dates)."""

    days = fields.Integer()
    start = fields.String()
    end = fields.String()


class ChartPointOut(OpenOut):
    date = fields.String()
    sales = fields.Integer()
    revenue = fields.Float()
    earnings = fields.Float()


class SalesChartOut(OpenOut):
    """``{period, points: [{date, sales, revenue, earnings}], total_sales, total_revenue,
    total_earnings}``, every day present."""

    period = fields.Nested(PeriodOut)
    points = fields.List(fields.Nested(ChartPointOut), required=True)
    total_sales = fields.Integer()
    total_revenue = fields.Float()
    total_earnings = fields.Float()


class RevenueOut(OpenOut):
    """``{balance, totals, this_month, last_month, chart}``."""

    balance = fields.Nested(BalanceOut)
    totals = fields.Nested(SalesTotalsOut)
    this_month = fields.Float()
    last_month = fields.Float()
    chart = fields.Nested(SalesChartOut)


class DashboardStatsOut(OpenOut):
    """The dashboard cards: models, views, likes, downloads, sales, revenue, earnings,
    followers, rating and the balance."""

    total_models = fields.Integer()
    published_models = fields.Integer()
    pending_models = fields.Integer()
    total_views = fields.Integer()
    total_likes = fields.Integer()
    total_downloads = fields.Integer()
    total_sales = fields.Integer()
    total_revenue = fields.Float()
    total_earnings = fields.Float()
    followers_count = fields.Integer()
    following_count = fields.Integer()
    rating = _number()
    balance = fields.Nested(BalanceOut)


class ActivityOut(OpenOut):
    """``{type, message, created_at, data}``."""

    type = fields.String(required=True)
    message = _text()
    created_at = _text()
    data = fields.Dict(allow_none=True)


class ActivityListOut(OpenOut):
    """``{items: [{type, message, created_at, data}]}``, newest first."""

    items = fields.List(fields.Nested(ActivityOut), required=True)


class CreatorDashboardOut(OpenOut):
    """``{stats, recent_sales, recent_activity, sales_chart}``."""

    stats = fields.Nested(DashboardStatsOut)
    recent_sales = fields.List(fields.Nested(TransactionOut))
    recent_activity = fields.List(fields.Nested(ActivityOut))
    sales_chart = fields.Nested(SalesChartOut)


class PayoutMethodOut(OpenOut):
    """A payout method with masked `details`: ``{id, type, label, details, is_default,
    created_at}``."""

    id = fields.String()
    type = fields.String()
    label = _text()
    details = fields.Dict()
    is_default = fields.Boolean()
    created_at = _text()


class PayoutMethodListOut(OpenOut):
    """``{items: [payout method]}``."""

    items = fields.List(fields.Nested(PayoutMethodOut), required=True)


class PayoutOut(OpenOut):
    """A payout request with its masked `method` (and the `seller` card for staff)."""

    id = fields.String(required=True)
    seller_id = fields.String()
    amount = fields.Float()
    status = fields.String()
    method_id = _text()
    method = fields.Dict(allow_none=True)
    note = _text()
    created_at = _text()
    decided_at = _text()
    decided_by = _text()
    paid_at = _text()
    seller = fields.Nested(UserBriefOut, allow_none=True)


class PayoutPageOut(PageOut):
    """A page of payout requests; the seller's own list adds `balance`."""

    items = fields.List(fields.Nested(PayoutOut), required=True)
    balance = fields.Nested(BalanceOut)


class PayoutRequestedOut(OpenOut):
    """``{payout, balance}``."""

    payout = fields.Nested(PayoutOut, required=True)
    balance = fields.Nested(BalanceOut)


# --------------------------------------------------------------------------- analytics

class CreatorAnalyticsOut(OpenOut):
    """``{period, totals, models_by_status, daily, top_models}``."""

    period = fields.Nested(PeriodOut)
    totals = fields.Dict()
    models_by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    daily = fields.List(fields.Dict())
    top_models = fields.List(fields.Dict())
    revenue_chart = fields.List(fields.Raw(), allow_none=True)
    total_downloads = fields.Integer(allow_none=True)
    total_likes = fields.Integer(allow_none=True)
    total_revenue = fields.Float(allow_none=True)
    total_views = fields.Integer(allow_none=True)


class ModelAnalyticsOut(OpenOut):
    """``{model_id, title, status, period, totals, daily}``."""

    model_id = fields.String(required=True)
    title = _text()
    status = _text()
    period = fields.Nested(PeriodOut)
    totals = fields.Dict()
    daily = fields.List(fields.Dict())


class RankedCreatorOut(OpenOut):
    """``{creator, rank?, value?, total_sales?, revenue, followers_count, ...}``."""

    creator = fields.Nested(UserBriefOut, allow_none=True)
    rank = fields.Integer()
    value = fields.Float()
    total_sales = fields.Integer()
    revenue = _number()
    followers_count = fields.Integer()
    total_models = fields.Integer()
    rating_count = fields.Integer(allow_none=True)


class LeaderboardOut(OpenOut):
    """``{period, metric, items: [{rank, creator, value, ...}]}``."""

    period = fields.String()
    metric = fields.String()
    items = fields.List(fields.Nested(RankedCreatorOut), required=True)


class TopCreatorsOut(OpenOut):
    """``{items: [{creator, total_sales, revenue, followers_count, total_models}]}``."""

    items = fields.List(fields.Nested(RankedCreatorOut), required=True)


class SalesFiguresOut(OpenOut):
    """``{gmv, platform_fees, seller_earnings, net_revenue, refunded, sales_count,
    refunds_count}``."""

    gmv = fields.Float()
    platform_fees = fields.Float()
    seller_earnings = fields.Float()
    net_revenue = fields.Float()
    refunded = fields.Float()
    sales_count = fields.Integer()
    refunds_count = fields.Integer()


class AdminStatsOut(OpenOut):
    """``{total_users, total_models, total_revenue, active_users_today, new_users_today,
    pending_models, pending_tickets}``."""

    total_users = fields.Integer()
    total_models = fields.Integer()
    total_revenue = fields.Float()
    active_users_today = fields.Integer()
    new_users_today = fields.Integer()
    pending_models = fields.Integer()
    pending_tickets = fields.Integer()


class AdminRevenueOut(OpenOut):
    """``{period, totals, all_time, payouts, daily}``."""

    period = fields.Nested(PeriodOut)
    totals = fields.Nested(SalesFiguresOut)
    all_time = fields.Nested(SalesFiguresOut)
    payouts = fields.Dict()
    daily = fields.List(fields.Dict())


class AdminRevenueStatsOut(OpenOut):
    """``{all_time, this_month, today, payouts}``."""

    all_time = fields.Nested(SalesFiguresOut)
    this_month = fields.Nested(SalesFiguresOut)
    today = fields.Nested(SalesFiguresOut)
    payouts = fields.Dict()


class AdminAnalyticsOut(AdminRevenueOut):
    """One analytics report: overview ``{period, stats, revenue, daily}``, users, models or
    revenue (`metric_type` names it on `GET /api/admin/analytics`)."""

    metric_type = fields.String()
    stats = fields.Nested(AdminStatsOut)
    revenue = fields.Nested(SalesFiguresOut)


class AdminUsersAnalyticsOut(OpenOut):
    """``{period, total, new_today, new_in_period, active_today, verified, banned, staff,
    by_type, daily}``."""

    period = fields.Nested(PeriodOut)
    total = fields.Integer()
    new_today = fields.Integer()
    new_in_period = fields.Integer()
    active_today = fields.Integer()
    verified = fields.Integer()
    banned = fields.Integer()
    staff = fields.Integer()
    by_type = fields.Dict(keys=fields.String(), values=fields.Integer())
    daily = fields.List(fields.Dict())


class AdminModelsAnalyticsOut(OpenOut):
    """``{period, total, by_status, by_category, totals, top_models, daily}``."""

    period = fields.Nested(PeriodOut)
    total = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_category = fields.List(fields.Dict())
    totals = fields.Dict()
    top_models = fields.List(fields.Dict())
    daily = fields.List(fields.Dict())


class AlertOut(OpenOut):
    """``{type, severity, title, count, action_url, data}``."""

    type = fields.String(required=True)
    severity = _text()
    title = _text()
    count = fields.Integer()
    action_url = _text()
    data = fields.Dict(allow_none=True)


class AlertListOut(OpenOut):
    """``{items: [alert]}``."""

    items = fields.List(fields.Nested(AlertOut), required=True)
