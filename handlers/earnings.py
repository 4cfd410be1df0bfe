"""Creator earnings, payouts and the creator dashboard (seed 001 §7 "Main
Dashboard" and "Financials"; seed 004 "Dashboard", "Dashboard Inventory", "Dashboard
Financials", "Dashboard Social").

Every route is the signed-in user's own data (401 without a token); nobody reads another
user's earnings here. Routes:

- `GET /api/users/me/transactions`, `GET /api/dashboard/transactions` — own transactions
  (`role=sales|purchases|all`, `status=completed|refunded`, paginated).
- `GET /api/users/me/revenue`, `GET /api/dashboard/revenue` — balance, totals, chart.
- `GET /api/users/me/sales` — own sales (paginated) with totals.
- `GET /api/users/me/analytics` — creator analytics (`days`).
- `GET /api/users/me/dashboard` — stats, recent sales and activity, sales chart.
- `GET|POST /api/users/me/payout-methods` — masked payout methods.
- `POST /api/users/me/payout-request`, `POST /api/dashboard/request-payout` — 201.
- `GET /api/dashboard/payouts` — own payouts (paginated) with the balance.
- `GET /api/dashboard/stats`, `/sales-chart`, `/models`, `/followers`, `/activity`,
  `/recent-activity`.
(`GET /api/dashboard/notifications` is served by handlers.notifications.)
"""
from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate, validates_schema

from documents import analytics, catalog, earnings, follows, model_listing, payouts
from documents.common import render
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds
from handlers.schemas import BlankDropping, MoneyAmount
from handlers.schemas_catalog import ModelOut
from handlers.schemas_money import (
    ActivityListOut,
    CreatorAnalyticsOut,
    CreatorDashboardOut,
    DashboardStatsOut,
    PayoutMethodListOut,
    PayoutMethodOut,
    PayoutPageOut,
    PayoutRequestedOut,
    RevenueOut,
    SalesChartOut,
    TransactionPageOut,
)
from handlers.schemas_out import FollowerCardOut


class DaysQuery(BlankDropping):
    days = fields.Integer(load_default=analytics.DEFAULT_DAYS,
                          validate=validate.Range(min=1, max=analytics.MAX_DAYS))


class TransactionsQuery(PageQuery, BlankDropping):
    role = fields.String(load_default="all", validate=validate.OneOf(("sales", "purchases", "all")))
    status = fields.String(validate=validate.OneOf(("completed", "refunded")))


class SalesQuery(PageQuery, BlankDropping):
    status = fields.String(validate=validate.OneOf(("completed", "refunded")))


class PayoutsQuery(PageQuery, BlankDropping):
    status = fields.String(validate=validate.OneOf(payouts.STATUSES))


class ModelsQuery(PageQuery, BlankDropping):
    status = fields.String(validate=validate.OneOf(catalog.STATUSES))


class ActivityQuery(BlankDropping):
    limit = fields.Integer(validate=validate.Range(min=1, max=50))


class PayoutRequestBody(ApiSchema):
    """``{amount, method_id?, note?}``: amount a decimal ≥ the minimum payout (10.00)."""

    amount = MoneyAmount(required=True, max_cents=payouts.MAX_PAYOUT_CENTS)
    method_id = fields.String(validate=validate.Length(min=1, max=64))
    note = fields.String(validate=validate.Length(max=500))


ACCOUNT_NUMBER = re.compile(r"^[0-9][0-9 -]{2,46}[0-9]$")
BANK_FIELDS = ("bank_name", "account_holder_name", "account_number", "routing_number")


class PayoutMethodBody(ApiSchema):
    """A bank account ``{type: "bank_account", bank_name, account_holder_name,
    account_number, routing_number?}`` or ``{type: "paypal", email}``; plus `label?`,
    `is_default?`. Only masked details are stored."""

    type = fields.String(required=True, validate=validate.OneOf(payouts.METHOD_TYPES))
    label = fields.String(validate=validate.Length(min=1, max=60))
    is_default = fields.Boolean()
    bank_name = fields.String(validate=validate.Length(min=2, max=100))
    account_holder_name = fields.String(validate=validate.Length(min=2, max=100))
    account_number = fields.String(validate=validate.Regexp(ACCOUNT_NUMBER))
    routing_number = fields.String(validate=validate.Regexp(r"^[0-9]{5,12}$"))
    email = fields.Email(validate=validate.Length(max=254))

    @validates_schema
    def _per_type(self, data, **kwargs):
        errors: dict = {}
        if data.get("type") == "bank_account":
            needed, refused = BANK_FIELDS[:3], ("email",)
            digits = re.sub(r"\D", "", data.get("account_number", ""))
            if data.get("account_number") and not 4 <= len(digits) <= 34:
                errors["account_number"] = ["Must have 4 to 34 digits"]
        else:
            needed, refused = ("email",), BANK_FIELDS
        for name in needed:
            if name not in data:
                errors[name] = ["Missing data for required field."]
        for name in refused:
            if name in data:
                errors[name] = [f"Not used for {data.get('type')}"]
        if errors:
            raise ValidationError(errors)


class OwnHandler(ApiHandler):
    """Base of the routes on the signed-in user's own data."""

    @property
    def me(self):
        return self.require_user()["_id"]


class TransactionsHandler(OwnHandler):
    @query(TransactionsQuery)
    @responds(TransactionPageOut)
    async def get(self) -> None:
        """Own transactions, newest first (seed 001 §7 Financials): `role` sales | purchases |
        all, `status` completed | refunded. Each is seed 000 `Transaction` plus `direction`
        and the model title; a purchase hides the seller's share and fee."""
        q = self.query
        items, meta = await earnings.transactions_page(
            self.db, self.me, page=q["page"], limit=q["limit"], role=q["role"],
            status=q.get("status"))
        self.write_page(items, meta)


class SalesHandler(OwnHandler):
    @query(SalesQuery)
    @responds(TransactionPageOut)
    async def get(self) -> None:
        """Own sales (transactions as seller), newest first, with lifetime `totals`
        ``{sales_count, refunds_count, gross, fees, net, refunded}`` (seed 001 §7)."""
        q = self.query
        items, meta = await earnings.transactions_page(
            self.db, self.me, page=q["page"], limit=q["limit"], role="sales",
            status=q.get("status"))
        totals = await earnings.sales_totals(self.db, self.me)
        self.write_page(items, meta, totals=render(totals))


class RevenueHandler(OwnHandler):
    @query(DaysQuery)
    @responds(RevenueOut)
    async def get(self) -> None:
        """Revenue summary (seed 001 §7, seed 004 Financials): ``{balance, totals,
        this_month, last_month, chart}`` over `days` (default 30)."""
        self.write_json(await analytics.creator_revenue(self.db, self.me, self.query["days"]))


class AnalyticsHandler(OwnHandler):
    @query(DaysQuery)
    @responds(CreatorAnalyticsOut)
    async def get(self) -> None:
        """Creator analytics from the stored records (seed 001 §7): totals, models by status,
        daily sales/revenue/earnings/likes/followers over `days`, top models."""
        user = self.require_user()
        self.write_json(await analytics.creator_analytics(self.db, user, self.query["days"]))


class DashboardHandler(OwnHandler):
    @responds(CreatorDashboardOut)
    async def get(self) -> None:
        """The main dashboard (seed 001 §7 `GET /api/users/me/dashboard`): ``{stats,
        recent_sales, recent_activity, sales_chart}``."""
        user = self.require_user()
        sales, _ = await earnings.transactions_page(self.db, self.me, page=1, limit=5,
                                                    role="sales")
        self.write_json({
            "stats": await analytics.dashboard_stats(self.db, user), "recent_sales": sales,
            "recent_activity": await analytics.creator_activity(self.db, self.me, 10),
            "sales_chart": await analytics.sales_chart(self.db, self.me)})


class StatsHandler(OwnHandler):
    @responds(DashboardStatsOut)
    async def get(self) -> None:
        """Dashboard cards (seed 004 `GET /api/dashboard/stats`): models, views, likes,
        downloads, sales, revenue, earnings, followers, rating and the balance."""
        self.write_json(await analytics.dashboard_stats(self.db, self.require_user()))


class SalesChartHandler(OwnHandler):
    @query(DaysQuery)
    @responds(SalesChartOut)
    async def get(self) -> None:
        """Daily sales, revenue and earnings over `days` (default 30), every day present
        (seed 004 `GET /api/dashboard/sales-chart`)."""
        self.write_json(await analytics.sales_chart(self.db, self.me, self.query["days"]))


class ActivityHandler(OwnHandler):
    default_limit = 20

    @query(ActivityQuery)
    @responds(ActivityListOut)
    async def get(self) -> None:
        """Newest events on the user's account (sales, followers, likes, comments, payouts):
        ``{items: [{type, message, created_at, data}]}`` (seed 004 "Dashboard")."""
        limit = self.query.get("limit", self.default_limit)
        self.write_json({"items": await analytics.creator_activity(self.db, self.me, limit)})


class RecentActivityHandler(ActivityHandler):
    default_limit = 10


class DashboardModelsHandler(OwnHandler):
    @query(ModelsQuery)
    @responds(ModelOut, paginated=True)
    async def get(self) -> None:
        """Own models of every status, newest first, optionally one `status` (seed 004
        "Dashboard Inventory"); private fields included."""
        q = self.query
        docs, meta = await model_listing.list_by_creator(self.db, self.me, page=q["page"],
                                                         limit=q["limit"], status=q.get("status"))
        self.write_page(await catalog.render_models(self.db, docs, self.require_user()), meta)


class FollowersHandler(OwnHandler):
    @query(PageQuery)
    @responds(FollowerCardOut, paginated=True)
    async def get(self) -> None:
        """Own followers, newest first (seed 004 "Dashboard Social")."""
        items, meta = await follows.page_of(self.db, self.me, "followers",
                                            page=self.query["page"], limit=self.query["limit"])
        self.write_page(items, meta)


class PayoutsHandler(OwnHandler):
    @query(PayoutsQuery)
    @responds(PayoutPageOut)
    async def get(self) -> None:
        """Own payout requests, newest first, with the current `balance` (seed 004
        "Dashboard Financials")."""
        q = self.query
        items, meta = await payouts.list_own(self.db, self.me, page=q["page"], limit=q["limit"],
                                             status=q.get("status"))
        self.write_page(items, meta, balance=await earnings.balance(self.db, self.me, self.settings_))


class PayoutRequestHandler(OwnHandler):
    @body(PayoutRequestBody)
    @responds(PayoutRequestedOut, status=201)
    async def post(self) -> None:
        """Request a payout of `amount` (≥ 10.00, ≤ available balance) to `method_id` or the
        default payout method (seed 001 §7). 201 ``{payout, balance}``; 422 bad amount or no
        method; 404 unknown method; 409 INSUFFICIENT_BALANCE."""
        b = self.body
        payout = await payouts.request_payout(self.db, self.me, b["amount"],
                                              method_id=b.get("method_id"), note=b.get("note"))
        balance = await earnings.balance(self.db, self.me, self.settings_)
        self.write_json({"payout": payout, "balance": balance}, 201)


class PayoutMethodsHandler(OwnHandler):
    @responds(PayoutMethodListOut)
    async def get(self) -> None:
        """Own payout methods with masked details (seed 001 §7): ``{items: [...]}``."""
        self.write_json({"items": await payouts.list_methods(self.db, self.me)})

    @body(PayoutMethodBody)
    @responds(PayoutMethodOut, status=201)
    async def post(self) -> None:
        """Add a payout method; only masked details are kept (last4 of the account number,
        masked PayPal email). 201 with the method; 409 past 5 methods."""
        self.write_json(await payouts.add_method(self.db, self.me, self.body), 201)


routes = [
    (r"/api/users/me/transactions", TransactionsHandler),
    (r"/api/users/me/revenue", RevenueHandler),
    (r"/api/users/me/sales", SalesHandler),
    (r"/api/users/me/analytics", AnalyticsHandler),
    (r"/api/users/me/dashboard", DashboardHandler),
    (r"/api/users/me/payout-methods", PayoutMethodsHandler),
    (r"/api/users/me/payout-request", PayoutRequestHandler),
    (r"/api/dashboard/activity", ActivityHandler),
    (r"/api/dashboard/followers", FollowersHandler),
    (r"/api/dashboard/models", DashboardModelsHandler),
    (r"/api/dashboard/payouts", PayoutsHandler),
    (r"/api/dashboard/recent-activity", RecentActivityHandler),
    (r"/api/dashboard/request-payout", PayoutRequestHandler),
    (r"/api/dashboard/revenue", RevenueHandler),
    (r"/api/dashboard/sales-chart", SalesChartHandler),
    (r"/api/dashboard/stats", StatsHandler),
    (r"/api/dashboard/transactions", TransactionsHandler),
]
