"""Staff revenue management, analytics and the admin overview (seed 000 §7;
seed 001 §13 "Admin Overview", "Revenue Management", "Analytics"; seed 004 "Admin Pages").

Permissions: revenue and payouts need `revenue.manage`; analytics need `analytics.view`
(admins and superadmins; a moderator gets 403); the overview cards (`/api/admin/stats`,
`/recent-activity`, `/alerts`) are for any staff account.

- `GET /api/admin/revenue` — revenue analytics over a window (`days` or `start_date`/`end_date`).
- `GET /api/admin/revenue/stats` — totals all time, this month, today; payouts waiting/paid.
- `GET /api/admin/revenue/transactions`, `GET /api/admin/transactions` — every transaction.
- `GET /api/admin/revenue/payouts` — payout requests (`status`, `seller_id`); the payout
  routes are also served under `/api/admin/payouts`.
- `POST /api/admin/revenue/payouts/{id}/approve` ``{paid?: true, note?}`` — requested →
  paid (default) or requested → approved (`paid: false`), approved → paid.
- `POST /api/admin/revenue/payouts/{id}/mark-paid` ``{note?}`` — approved (or requested) →
  paid, once the money was sent.
- `POST /api/admin/revenue/payouts/{id}/reject` ``{reason}`` — the amount returns to the
  seller's available balance.
- `GET /api/admin/analytics` (`metric_type=overview|users|models|revenue`),
  `GET /api/admin/analytics/overview|users|models|revenue`.
- `GET /api/admin/stats`, `GET /api/admin/recent-activity`, `GET /api/admin/alerts`.
"""
from __future__ import annotations

from datetime import UTC, datetime, time

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from documents import admin_analytics, analytics, earnings, payouts
from documents.common import object_id
from documents.errors import NotFound
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff
from handlers.schemas import BlankDropping
from handlers.schemas_money import (
    ActivityListOut,
    AdminAnalyticsOut,
    AdminModelsAnalyticsOut,
    AdminRevenueOut,
    AdminRevenueStatsOut,
    AdminStatsOut,
    AdminUsersAnalyticsOut,
    AlertListOut,
    PayoutOut,
    TransactionOut,
)

PAYOUT_ID = r"([^/]+)"
METRIC_TYPES = ("overview", "users", "models", "revenue")
REPORTS = {"overview": admin_analytics.admin_overview, "users": admin_analytics.admin_users,
           "models": admin_analytics.admin_models, "revenue": admin_analytics.admin_revenue}
REPORT_SCHEMAS = {"overview": AdminAnalyticsOut, "users": AdminUsersAnalyticsOut,
                  "models": AdminModelsAnalyticsOut, "revenue": AdminRevenueOut}


class WindowQuery(BlankDropping):
    """`days` (1–366, default 30) or `start_date`/`end_date` (YYYY-MM-DD, at most 366 days)."""

    days = fields.Integer(validate=validate.Range(min=1, max=analytics.MAX_DAYS))
    start_date = fields.Date()
    end_date = fields.Date()

    @validates_schema
    def _order(self, data, **kwargs):
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and start > end:
            raise ValidationError({"end_date": ["Must not be before start_date"]})
        if start and end and (end - start).days >= analytics.MAX_DAYS:
            raise ValidationError({"end_date": [f"At most {analytics.MAX_DAYS} days"]})


class AnalyticsQuery(WindowQuery):
    metric_type = fields.String(load_default="overview", validate=validate.OneOf(METRIC_TYPES))


class TransactionsQuery(PageQuery, BlankDropping):
    status = fields.String(validate=validate.OneOf(("completed", "refunded")))
    seller_id = fields.String(validate=validate.Length(max=64))
    buyer_id = fields.String(validate=validate.Length(max=64))
    model_id = fields.String(validate=validate.Length(max=64))
    search = fields.String(validate=validate.Length(min=1, max=40))


class PayoutsQuery(PageQuery, BlankDropping):
    status = fields.String(validate=validate.OneOf(payouts.STATUSES))
    seller_id = fields.String(validate=validate.Length(max=64))


class ApproveBody(ApiSchema):
    """`paid` (default true): the money was sent, the payout becomes `paid`; false only
    marks it `approved`. `note` up to 500 characters."""

    paid = fields.Boolean(load_default=True)
    note = fields.String(validate=validate.Length(max=500))


class MarkPaidBody(ApiSchema):
    note = fields.String(validate=validate.Length(max=500))


class RejectBody(ApiSchema):
    """`reason`, 3–500 characters after trimming."""

    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("reason"), str):
            data = {**data, "reason": data["reason"].strip()}
        return data


class ListQuery(ApiSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def _day(value, end: bool = False) -> datetime | None:
    if value is None:
        return None
    return datetime.combine(value, time.max if end else time.min, tzinfo=UTC)


def window_of(q: dict) -> analytics.Window:
    """The analytics window of a validated WindowQuery."""
    if q.get("start_date") or q.get("end_date"):
        return analytics.Window(q.get("days") or analytics.DEFAULT_DAYS,
                                first=_day(q.get("start_date")), last=_day(q.get("end_date")))
    return analytics.Window(q.get("days") or analytics.DEFAULT_DAYS)


def _filter_id(value: str | None, name: str):
    """An id filter from the query: None when absent; a bad id matches nothing (404)."""
    if value is None:
        return None
    oid = object_id(value)
    if oid is None:
        raise NotFound(f"No such {name}")
    return oid


class RevenueHandler(ApiHandler):
    @staff("revenue.manage")
    @query(WindowQuery)
    @responds(AdminRevenueOut)
    async def get(self) -> None:
        """Revenue analytics (seed 004 `GET /api/admin/revenue`): totals in the window and all
        time, payouts, daily GMV, platform fees and refunds (every day present)."""
        self.write_json(await admin_analytics.admin_revenue(self.db, window_of(self.query)))


class RevenueStatsHandler(ApiHandler):
    @staff("revenue.manage")
    @responds(AdminRevenueStatsOut)
    async def get(self) -> None:
        """Revenue cards (seed 001 §13): ``{all_time, this_month, today, payouts}``."""
        self.write_json(await admin_analytics.admin_revenue_stats(self.db))


class TransactionsHandler(ApiHandler):
    @staff("revenue.manage")
    @query(TransactionsQuery)
    @responds(TransactionOut, paginated=True)
    async def get(self) -> None:
        """Every transaction, newest first (seed 000 §7): filters `status`, `seller_id`,
        `buyer_id`, `model_id`, `search` (transaction id prefix)."""
        q = self.query
        items, meta = await earnings.all_transactions_page(
            self.db, page=q["page"], limit=q["limit"], status=q.get("status"),
            seller_id=_filter_id(q.get("seller_id"), "seller"),
            buyer_id=_filter_id(q.get("buyer_id"), "buyer"),
            model_id=_filter_id(q.get("model_id"), "model"), search=q.get("search"))
        self.write_page(items, meta)


class PayoutsHandler(ApiHandler):
    @staff("revenue.manage")
    @query(PayoutsQuery)
    @responds(PayoutOut, paginated=True)
    async def get(self) -> None:
        """Payout requests (seed 001 §13), filter `status` (open ones oldest first) and
        `seller_id`; each with the seller's card and the masked payout method."""
        q = self.query
        items, meta = await payouts.list_all(
            self.db, page=q["page"], limit=q["limit"], status=q.get("status"),
            seller_id=_filter_id(q.get("seller_id"), "seller"))
        self.write_page(items, meta)


class ApproveHandler(ApiHandler):
    @staff("revenue.manage")
    @body(ApproveBody)
    @responds(PayoutOut)
    async def post(self, payout_id: str) -> None:
        """Approve a payout (seed 001 §13): to `paid` by default, or `approved` with
        `paid: false`. 404 unknown payout; 409 INVALID_STATE when already decided."""
        payout = await payouts.approve(self.db, self.services.mailer, payout_id,
                                       self.current_user, paid=self.body["paid"],
                                       note=self.body.get("note"))
        self.write_json(payouts.render_payout(payout))


class MarkPaidHandler(ApiHandler):
    @staff("revenue.manage")
    @body(MarkPaidBody)
    @responds(PayoutOut)
    async def post(self, payout_id: str) -> None:
        """Mark an approved (or requested) payout `paid` once the money was sent (seed 001
        §13): `paid_out` grows by its amount. 404 unknown payout; 409 INVALID_STATE."""
        payout = await payouts.approve(self.db, self.services.mailer, payout_id,
                                       self.current_user, paid=True, note=self.body.get("note"))
        self.write_json(payouts.render_payout(payout))


class RejectHandler(ApiHandler):
    @staff("revenue.manage")
    @body(RejectBody)
    @responds(PayoutOut)
    async def post(self, payout_id: str) -> None:
        """Reject a payout with a `reason` (seed 001 §13): the amount returns to the seller's
        available balance. 404 unknown payout; 409 INVALID_STATE when already decided."""
        payout = await payouts.reject(self.db, self.services.mailer, payout_id,
                                      self.current_user, self.body["reason"])
        self.write_json(payouts.render_payout(payout))


class AnalyticsHandler(ApiHandler):
    @staff("analytics.view")
    @query(AnalyticsQuery)
    @responds(AdminAnalyticsOut)
    async def get(self) -> None:
        """Detailed analytics (seed 000 §7 `GET /api/admin/analytics`): `metric_type`
        overview | users | models | revenue over `days` or `start_date`..`end_date`."""
        report = REPORTS[self.query["metric_type"]]
        self.write_json({"metric_type": self.query["metric_type"],
                         **await report(self.db, window_of(self.query))})


def _report_handler(name: str) -> type:
    class ReportHandler(ApiHandler):
        @staff("analytics.view")
        @query(WindowQuery)
        @responds(REPORT_SCHEMAS[name])
        async def get(self) -> None:
            self.write_json(await REPORTS[name](self.db, window_of(self.query)))

    ReportHandler.get.__doc__ = (f"Admin {name} analytics (seed 001 §13 Analytics) over `days` "
                                 "or `start_date`..`end_date`; daily series with every day.")
    ReportHandler.__name__ = f"Admin{name.title()}AnalyticsHandler"
    return ReportHandler


class StatsHandler(ApiHandler):
    @staff()
    @responds(AdminStatsOut)
    async def get(self) -> None:
        """Overview cards (seed 000 §7): ``{total_users, total_models, total_revenue,
        active_users_today, new_users_today, pending_models, pending_tickets}``."""
        self.write_json(await admin_analytics.admin_stats(self.db))


class RecentActivityHandler(ApiHandler):
    @staff()
    @query(ListQuery)
    @responds(ActivityListOut)
    async def get(self) -> None:
        """Recent activity (seed 001 §13): admin actions, signups, paid orders, newest first:
        ``{items: [{type, message, created_at, data}]}``."""
        items = await admin_analytics.admin_recent_activity(self.db, self.query["limit"])
        self.write_json({"items": items})


class AlertsHandler(ApiHandler):
    @staff()
    @responds(AlertListOut)
    async def get(self) -> None:
        """System alerts that hold now (seed 001 §13): stale pending models (> 48 h),
        pending tickets, payout requests waiting, failed emails: ``{items: [...]}``."""
        self.write_json({"items": await admin_analytics.admin_alerts(self.db)})


routes = [
    (r"/api/admin/revenue", RevenueHandler),
    (r"/api/admin/revenue/stats", RevenueStatsHandler),
    (r"/api/admin/revenue/transactions", TransactionsHandler),
    (r"/api/admin/transactions", TransactionsHandler),
    (r"/api/admin/revenue/payouts", PayoutsHandler),
    (rf"/api/admin/revenue/payouts/{PAYOUT_ID}/approve", ApproveHandler),
    (rf"/api/admin/revenue/payouts/{PAYOUT_ID}/reject", RejectHandler),
    (rf"/api/admin/revenue/payouts/{PAYOUT_ID}/mark-paid", MarkPaidHandler),
    (r"/api/admin/payouts", PayoutsHandler),
    (rf"/api/admin/payouts/{PAYOUT_ID}/approve", ApproveHandler),
    (rf"/api/admin/payouts/{PAYOUT_ID}/reject", RejectHandler),
    (rf"/api/admin/payouts/{PAYOUT_ID}/mark-paid", MarkPaidHandler),
    (r"/api/admin/analytics", AnalyticsHandler),
    *[(rf"/api/admin/analytics/{name}", _report_handler(name)) for name in METRIC_TYPES],
    (r"/api/admin/stats", StatsHandler),
    (r"/api/admin/recent-activity", RecentActivityHandler),
    (r"/api/admin/alerts", AlertsHandler),
]
