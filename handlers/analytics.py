"""Analytics for creators and the public rankings (seed 001 §7, §12; seed 004).

- `GET /api/analytics/dashboard` — the signed-in creator's analytics (`days`), with seed 000
  §10's top-level fields beside ours (`with_seed_fields`).
- `GET /api/analytics/models/{id}`, `GET /api/models/{id}/analytics` — one model's analytics,
  for its creator or staff (another user: 403; unknown or invalid id: 404).
- `GET /api/leaderboard?period=week|month|all_time&metric=sales|downloads|rating` (public).
- `GET /api/creators/top?limit=` (public).
"""
from __future__ import annotations

from marshmallow import fields, validate

from documents import analytics, catalog
from handlers.base import ApiHandler, ApiSchema, public, query, responds
from handlers.earnings import DaysQuery
from handlers.schemas import BlankDropping
from handlers.schemas_money import CreatorAnalyticsOut, LeaderboardOut, ModelAnalyticsOut, TopCreatorsOut

MODEL_ID = r"([^/]+)"


class LeaderboardQuery(BlankDropping):
    period = fields.String(load_default="month", validate=validate.OneOf(tuple(analytics.PERIODS)))
    metric = fields.String(load_default="sales", validate=validate.OneOf(analytics.METRICS))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class TopQuery(ApiSchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


def with_seed_fields(report: dict) -> dict:
    """A creator's analytics with seed 000 §10's top-level fields beside `totals`:
    `total_views`, `total_likes`, `total_downloads` (counts), `total_revenue` (decimal, all
    time), `top_models` (as in the report) and `revenue_chart` (``[{date, revenue, sales}]``
    per day of the period, decimals)."""
    totals = report["totals"]
    return {**report, "total_views": totals["views"], "total_likes": totals["likes"],
            "total_downloads": totals["downloads"], "total_revenue": totals["revenue"],
            "revenue_chart": [{"date": day["date"], "revenue": day["revenue"],
                               "sales": day["sales"]} for day in report["daily"]]}


class CreatorDashboardHandler(ApiHandler):
    @query(DaysQuery)
    @responds(CreatorAnalyticsOut)
    async def get(self) -> None:
        """The signed-in creator's analytics (as `GET /api/users/me/analytics`) plus seed 000
        §10's `total_views`, `total_likes`, `total_downloads`, `total_revenue`, `top_models`
        and `revenue_chart` (`with_seed_fields`). 422 for a bad `days`."""
        report = await analytics.creator_analytics(self.db, self.require_user(),
                                                   self.query["days"])
        self.write_json(with_seed_fields(report))


class ModelAnalyticsHandler(ApiHandler):
    @query(DaysQuery)
    @responds(ModelAnalyticsOut)
    async def get(self, model_id: str) -> None:
        """One model's analytics (seed 001 §7 "View analytics"): totals from its counters and
        transactions, daily sales/revenue/likes/comments over `days`. Creator or staff only:
        403 for another user's public model, 404 for a hidden one or an unknown/invalid id."""
        model = await catalog.get_managed(self.db, model_id, self.require_user())
        self.write_json(await analytics.model_analytics(self.db, model, self.query["days"]))


class LeaderboardHandler(ApiHandler):
    @public
    @query(LeaderboardQuery)
    @responds(LeaderboardOut)
    async def get(self) -> None:
        """Creators ranked by `metric` over `period` (seed 001 §12): ``{period, metric,
        items: [{rank, creator, value, followers_count, ...}]}``."""
        q = self.query
        self.write_json(await analytics.leaderboard(self.db, q["period"], q["metric"], q["limit"]))


class TopCreatorsHandler(ApiHandler):
    @public
    @query(TopQuery)
    @responds(TopCreatorsOut)
    async def get(self) -> None:
        """Top creators by completed sales, then followers: ``{items: [{creator, total_sales,
        revenue, followers_count, total_models}]}``."""
        self.write_json({"items": await analytics.top_creators(self.db, self.query["limit"])})


routes = [
    (r"/api/analytics/dashboard", CreatorDashboardHandler),
    (rf"/api/analytics/models/{MODEL_ID}", ModelAnalyticsHandler),
    (rf"/api/models/{MODEL_ID}/analytics", ModelAnalyticsHandler),
    (r"/api/leaderboard", LeaderboardHandler),
    (r"/api/creators/top", TopCreatorsHandler),
]
