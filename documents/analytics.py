"""Creator analytics computed from the stored records: dashboards, charts, activity,
leaderboards (seed 001 §7, §12; seed 004 dashboard routes), and the day windows and
aggregation helpers that the staff reports of `documents.admin_analytics` share (seed 000 §7,
seed 001 §13). Nothing here is stored: every figure is counted again.

Sources: model counters (`views`, `likes`, `downloads`, `sales_count`, `rating`) on `models`;
revenue from `transactions` (`amount_cents` gross, `platform_fee_cents`, `seller_amount_cents`;
a refunded transaction is no longer revenue, and counts as a refund on its `refunded_at` day);
likes from `model_likes`, comments from `model_comments`, followers from `follows`, signups
from `users.created_at`, uploads from `models.created_at`.

Time series are day buckets in UTC over a window of `days` (default 30, at most MAX_DAYS)
ending today, every day present (zeros where nothing happened) so charts need no gaps
filled: ``[{"date": "YYYY-MM-DD", <metric>: number, ...}]``. Aggregation uses only `$match`,
`$group` (with `$dateToString`), `$sort` and `$limit`, which mongomock supports as well.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import DESCENDING

from documents import catalog, earnings, model_listing, purchases, user_directory, users
from documents.common import from_cents, iso, render, utcnow

DEFAULT_DAYS = 30
MAX_DAYS = 366
TRANSACTIONS = purchases.TRANSACTIONS
MODELS = catalog.COLLECTION
PERIODS = {"week": timedelta(days=7), "month": timedelta(days=30), "all_time": None}
METRICS = ("sales", "downloads", "rating")
MODEL_STATUSES = ("pending", "approved", "rejected")

INDEXES: dict = {}


# --------------------------------------------------------------------------- windows

class Window:
    """A day window in UTC: `start` (midnight of the first day), `end` (exclusive), `dates`."""

    def __init__(self, days: int = DEFAULT_DAYS, now: datetime | None = None,
                 first: datetime | None = None, last: datetime | None = None):
        today = (now or utcnow()).astimezone(UTC).replace(
            hour=0, minute=0, second=0, microsecond=0)
        if first is not None or last is not None:
            end_day = midnight(last) if last else today
            start_day = midnight(first) if first else end_day - timedelta(days=days - 1)
            days = max(1, min(MAX_DAYS, (end_day - start_day).days + 1))
            today = start_day + timedelta(days=days - 1)
        self.days = max(1, min(MAX_DAYS, int(days)))
        self.start = today - timedelta(days=self.days - 1)
        self.end = today + timedelta(days=1)
        self.dates = [(self.start + timedelta(days=i)).strftime("%Y-%m-%d")
                      for i in range(self.days)]

    def match(self, field: str) -> dict:
        """The filter on `field` for this window."""
        return {field: {"$gte": self.start, "$lt": self.end}}

    def describe(self) -> dict:
        return {"days": self.days, "start": iso(self.start), "end": iso(self.end)}


def midnight(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def daily_counts(db, collection: str, match: dict, date_field: str, window: Window,
                 sums: dict[str, str] | None = None) -> dict[str, dict]:
    """``{date: {"count": n, <name>: sum of field}}`` for documents in the window."""
    group: dict = {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": f"${date_field}"}},
                   "count": {"$sum": 1}}
    for name, field in (sums or {}).items():
        group[name] = {"$sum": f"${field}"}
    rows = await db[collection].aggregate(
        [{"$match": {**match, **window.match(date_field)}}, {"$group": group}]).to_list(None)
    return {r["_id"]: r for r in rows}


def fill(window: Window, series: dict[str, tuple[dict, str]], money: tuple = ()) -> list[dict]:
    """Merge day maps into ``[{date, name: value}]``: `series` is name → (day map, key);
    names in `money` are cents shown as decimals."""
    out = []
    for date in window.dates:
        point: dict = {"date": date}
        for name, (days, key) in series.items():
            value = int((days.get(date) or {}).get(key) or 0)
            point[name] = from_cents(value) if name in money else value
        out.append(point)
    return out


async def group_sums(db, collection: str, match: dict, key: str,
                      sums: dict[str, str]) -> dict:
    group: dict = {"_id": f"${key}", "count": {"$sum": 1}}
    for name, field in sums.items():
        group[name] = {"$sum": f"${field}"}
    rows = await db[collection].aggregate([{"$match": match}, {"$group": group}]).to_list(None)
    return {r["_id"]: r for r in rows}


# --------------------------------------------------------------------------- creators

MODEL_COUNTERS = {"views": "views", "likes": "likes", "downloads": "downloads",
                  "sales": "sales_count", "comments": "comment_count"}


async def model_totals(db, creator_id) -> dict:
    """Totals over a creator's models: ``{models, by_status: {pending, approved, rejected},
    published, views, likes, downloads, sales, comments}`` (model counters)."""
    rows = await group_sums(db, MODELS, {"creator_id": creator_id}, "status", MODEL_COUNTERS)
    out = {"models": sum(int(r["count"]) for r in rows.values()),
           "by_status": {s: int(rows.get(s, {}).get("count", 0)) for s in MODEL_STATUSES},
           "published": await catalog.count(
               db, {"creator_id": creator_id, "status": "approved", "is_published": True})}
    for name in MODEL_COUNTERS:
        out[name] = sum(int(r.get(name) or 0) for r in rows.values())
    return out


async def _seller_daily(db, match: dict, window: Window) -> dict:
    return await daily_counts(db, TRANSACTIONS, {**match, "payment_status": "completed"}, "created_at",
                        window, {"revenue": "amount_cents", "earnings": "seller_amount_cents"})


async def top_models(db, creator_id, limit: int = 5) -> list[dict]:
    """The creator's best models by sales then views: ``[{id, title, thumbnail_url, status,
    views, likes, downloads, sales, revenue, earnings}]`` (revenue from transactions)."""
    docs = await model_listing.best_selling_by(db, creator_id, limit)
    money = await group_sums(db, TRANSACTIONS, {"model_id": {"$in": [d["_id"] for d in docs]},
                                                 "payment_status": "completed"}, "model_id",
                              {"revenue": "amount_cents", "earnings": "seller_amount_cents"})
    return [{"id": str(d["_id"]), "title": d.get("title"), "thumbnail_url": d.get("thumbnail_url"),
             "status": d.get("status"), "views": int(d.get("views") or 0),
             "likes": int(d.get("likes") or 0), "downloads": int(d.get("downloads") or 0),
             "sales": int(d.get("sales_count") or 0),
             "revenue": from_cents(money.get(d["_id"], {}).get("revenue", 0)),
             "earnings": from_cents(money.get(d["_id"], {}).get("earnings", 0))} for d in docs]


async def creator_analytics(db, user: dict, days: int = DEFAULT_DAYS) -> dict:
    """A creator's analytics (seed 001 §7 `GET /api/users/me/analytics`): ``{period, totals:
    {models, published, views, likes, downloads, sales, comments, revenue, earnings,
    followers, rating}, models_by_status, daily: [{date, sales, revenue, earnings, likes,
    followers}], top_models}``; money as decimals."""
    window = Window(days)
    uid = user["_id"]
    counters = await model_totals(db, uid)
    sales = await earnings.sales_totals(db, uid)
    ids = await model_listing.ids_by_creator(db, uid)
    daily = fill(window, {
        "sales": (txn := await _seller_daily(db, {"seller_id": uid}, window), "count"),
        "revenue": (txn, "revenue"), "earnings": (txn, "earnings"),
        "likes": (await daily_counts(db, "model_likes", {"model_id": {"$in": ids}}, "created_at",
                               window), "count"),
        "followers": (await daily_counts(db, "follows", {"following_id": uid}, "created_at", window),
                      "count")}, money=("revenue", "earnings"))
    totals = {k: counters[k] for k in ("models", "published", *MODEL_COUNTERS)}
    totals.update(revenue=from_cents(sales["gross_cents"]), earnings=from_cents(sales["net_cents"]),
                  followers=int(user.get("followers_count") or 0),
                  rating=float(user.get("rating") or 0.0))
    return {"period": window.describe(), "totals": totals,
            "models_by_status": counters["by_status"], "daily": daily,
            "top_models": await top_models(db, uid)}


async def model_analytics(db, model: dict, days: int = DEFAULT_DAYS) -> dict:
    """One model's analytics (seed 001 §7 "View analytics"): ``{model_id, title, period,
    totals: {views, likes, downloads, sales, comments, rating, rating_count, revenue,
    earnings, refunds}, daily: [{date, sales, revenue, earnings, likes, comments}]}``."""
    window = Window(days)
    mid = model["_id"]
    by_status = await group_sums(db, TRANSACTIONS, {"model_id": mid}, "payment_status",
                                  {"revenue": "amount_cents", "earnings": "seller_amount_cents"})
    done = by_status.get("completed", {})
    txn = await _seller_daily(db, {"model_id": mid}, window)
    daily = fill(window, {
        "sales": (txn, "count"), "revenue": (txn, "revenue"), "earnings": (txn, "earnings"),
        "likes": (await daily_counts(db, "model_likes", {"model_id": mid}, "created_at", window),
                  "count"),
        "comments": (await daily_counts(db, "model_comments", {"model_id": mid}, "created_at", window),
                     "count")}, money=("revenue", "earnings"))
    totals = {name: int(model.get(field) or 0) for name, field in MODEL_COUNTERS.items()}
    totals.update(rating=float(model.get("rating") or 0.0),
                  rating_count=int(model.get("rating_count") or 0),
                  revenue=from_cents(done.get("revenue", 0)),
                  earnings=from_cents(done.get("earnings", 0)),
                  refunds=int(by_status.get("refunded", {}).get("count", 0)))
    return {"model_id": str(mid), "title": model.get("title"), "status": model.get("status"),
            "period": window.describe(), "totals": totals, "daily": daily}


async def sales_chart(db, seller_id, days: int = DEFAULT_DAYS) -> dict:
    """``{period, total_sales, total_revenue, total_earnings, points: [{date, sales, revenue,
    earnings}]}`` (seed 004 `GET /api/dashboard/sales-chart`)."""
    window = Window(days)
    txn = await _seller_daily(db, {"seller_id": seller_id}, window)
    points = fill(window, {"sales": (txn, "count"), "revenue": (txn, "revenue"),
                            "earnings": (txn, "earnings")}, money=("revenue", "earnings"))
    return {"period": window.describe(), "total_sales": sum(p["sales"] for p in points),
            "total_revenue": from_cents(sum(int(r.get("revenue", 0)) for r in txn.values())),
            "total_earnings": from_cents(sum(int(r.get("earnings", 0)) for r in txn.values())),
            "points": points}


def month_start(now: datetime, back: int = 0) -> datetime:
    year, month = now.year, now.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return now.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


async def _earned_between(db, seller_id, start: datetime, end: datetime | None) -> int:
    created: dict = {"$gte": start}
    if end is not None:
        created["$lt"] = end
    rows = await group_sums(db, TRANSACTIONS, {"seller_id": seller_id, "created_at": created,
                                                "payment_status": "completed"},
                             "seller_id", {"net": "seller_amount_cents"})
    return int(rows.get(seller_id, {}).get("net", 0))


async def creator_revenue(db, seller_id, days: int = DEFAULT_DAYS) -> dict:
    """The Financials summary (seed 001 §7 `GET /api/users/me/revenue`): ``{balance,
    totals: {sales_count, refunds_count, gross, fees, net, refunded}, this_month, last_month,
    chart}`` — balance as `earnings.balance`, money as decimals."""
    now = utcnow()
    this_month, last_month = month_start(now), month_start(now, 1)
    totals = await earnings.sales_totals(db, seller_id)
    return {"balance": await earnings.balance(db, seller_id),
            "totals": render(totals),
            "this_month": from_cents(await _earned_between(db, seller_id, this_month, None)),
            "last_month": from_cents(await _earned_between(db, seller_id, last_month, this_month)),
            "chart": await sales_chart(db, seller_id, days)}


async def dashboard_stats(db, user: dict) -> dict:
    """The creator dashboard cards (seed 004 `GET /api/dashboard/stats`): ``{total_models,
    published_models, pending_models, total_views, total_likes, total_downloads, total_sales,
    total_revenue, total_earnings, followers_count, following_count, rating, balance}``."""
    uid = user["_id"]
    counters = await model_totals(db, uid)
    sales = await earnings.sales_totals(db, uid)
    return {"total_models": counters["models"], "published_models": counters["published"],
            "pending_models": counters["by_status"]["pending"],
            "total_views": counters["views"], "total_likes": counters["likes"],
            "total_downloads": counters["downloads"], "total_sales": sales["sales_count"],
            "total_revenue": from_cents(sales["gross_cents"]),
            "total_earnings": from_cents(sales["net_cents"]),
            "followers_count": int(user.get("followers_count") or 0),
            "following_count": int(user.get("following_count") or 0),
            "rating": float(user.get("rating") or 0.0),
            "balance": await earnings.balance(db, uid)}


# --------------------------------------------------------------------------- activity

def event(kind: str, at: datetime, message: str, **data) -> dict:
    return {"type": kind, "message": message, "created_at": iso(at),
            "data": {k: str(v) if v is not None and not isinstance(v, (int, float, str, bool))
                     else v for k, v in data.items()}}


async def newest(db, collection: str, query: dict, limit: int, field: str = "created_at"):
    return await db[collection].find(query).sort([(field, DESCENDING), ("_id", DESCENDING)]) \
        .to_list(limit)


async def creator_activity(db, user_id, limit: int = 20) -> list[dict]:
    """The newest things that happened to a creator, newest first (seed 004 "Dashboard"
    activity): sales, new followers, likes and comments on their models, payout changes.
    Each ``{type, message, created_at, data}``."""
    ids = await model_listing.ids_by_creator(db, user_id)
    titles = await model_listing.titles(db, ids)
    events = []
    for t in await newest(db, TRANSACTIONS, {"seller_id": user_id}, limit):
        events.append(event("sale", t["created_at"], f'Sold "{titles.get(t["model_id"], "a model")}"',
                             transaction_id=t["transaction_id"], model_id=t["model_id"],
                             amount=from_cents(t.get("seller_amount_cents"))))
    follows = await newest(db, "follows", {"following_id": user_id}, limit)
    likes = await newest(db, "model_likes", {"model_id": {"$in": ids}}, limit)
    comments = await newest(db, "model_comments", {"model_id": {"$in": ids},
                                                    "user_id": {"$ne": user_id}}, limit)
    people = await users.get_many(db, [f["follower_id"] for f in follows]
                                  + [x["user_id"] for x in likes + comments])

    def who(uid) -> str:
        return (people.get(uid) or {}).get("username", "someone")

    for f in follows:
        events.append(event("new_follower", f["created_at"], f"{who(f['follower_id'])} followed you",
                             user_id=f["follower_id"]))
    for x in likes:
        events.append(event("model_liked", x["created_at"],
                             f'{who(x["user_id"])} liked "{titles.get(x["model_id"])}"',
                             user_id=x["user_id"], model_id=x["model_id"]))
    for c in comments:
        events.append(event("comment_received", c["created_at"],
                             f'{who(c["user_id"])} commented on "{titles.get(c["model_id"])}"',
                             user_id=c["user_id"], model_id=c["model_id"]))
    for p in await newest(db, earnings.PAYOUTS, {"seller_id": user_id}, limit):
        at = p.get("decided_at") or p["created_at"]
        events.append(event(f"payout_{p['status']}", at,
                             f"Payout of {from_cents(p['amount_cents']):.2f} {p['status']}",
                             payout_id=p["_id"], amount=from_cents(p["amount_cents"])))
    events.sort(key=lambda e: e["created_at"], reverse=True)
    return events[:limit]


# --------------------------------------------------------------------------- leaderboard

def _since(period: str) -> datetime | None:
    span = PERIODS[period]
    return utcnow() - span if span else None


async def _sales_scores(db, since: datetime | None, limit: int) -> list[tuple]:
    rows = await purchases.top_sellers(db, since, limit)
    return [(r["_id"], int(r["n"]), {"revenue": from_cents(r["amount"])}) for r in rows]


async def _download_scores(db, since: datetime | None) -> list[tuple]:
    if since is None:
        rows = await group_sums(db, MODELS, {"status": "approved"}, "creator_id",
                                 {"downloads": "downloads"})
        return [(k, int(r["downloads"]), {}) for k, r in rows.items() if r["downloads"]]
    per_model = await group_sums(db, "purchases", {"created_at": {"$gte": since}}, "model_id", {})
    totals: dict = {}
    for model_id, creator_id in (await model_listing.creators_of(db, list(per_model))).items():
        totals[creator_id] = totals.get(creator_id, 0) + int(per_model[model_id]["count"])
    return [(k, v, {}) for k, v in totals.items()]


async def _rating_scores(db) -> list[tuple]:
    rows = await model_listing.creator_ratings(db)
    return [(r["_id"], round(float(r["weighted"]) / int(r["ratings"]), 2),
             {"rating_count": int(r["ratings"])}) for r in rows if r["ratings"]]


async def leaderboard(db, period: str = "month", metric: str = "sales", limit: int = 20) -> dict:
    """Creators ranked by `metric` over `period` (seed 001 §12): ``{period, metric, items:
    [{rank, creator (brief card), value, followers_count, ...}]}``.

    sales: completed transactions in the period (ties by revenue); downloads: all_time sums
    the models' download counters, week/month count acquisitions (purchases, paid or free,
    made in the period) because single downloads are not dated; rating: the creators'
    rating-count-weighted model ratings (all time for every period: ratings are not dated).
    Banned and deleted accounts are left out.
    """
    since = _since(period)
    if metric == "sales":
        scores = await _sales_scores(db, since, limit * 2)
    elif metric == "downloads":
        scores = await _download_scores(db, since)
    else:
        scores = await _rating_scores(db)
    scores.sort(key=lambda s: (-s[1], str(s[0])))
    people = await users.get_many(db, [s[0] for s in scores[:limit * 2]])
    items = []
    for uid, value, extra in scores:
        person = people.get(uid)
        if person is None or person.get("is_banned") or person.get("deleted_at"):
            continue
        items.append({"rank": len(items) + 1, "creator": users.render_brief(person),
                      "value": value, "followers_count": int(person.get("followers_count") or 0),
                      **extra})
        if len(items) == limit:
            break
    return {"period": period, "metric": metric, "items": items}


async def top_creators(db, limit: int = 10) -> list[dict]:
    """Top creators (seed 004 homepage "top creators"): by completed sales (all time), then
    followers. ``[{creator, total_sales, revenue, followers_count, total_models}]``."""
    sellers = {uid: (n, extra["revenue"]) for uid, n, extra in await _sales_scores(db, None, limit)}
    popular = await user_directory.most_followed_creator_ids(db, limit)
    people = await users.get_many(db, list(sellers) + popular)
    rows = []
    for uid, person in people.items():
        if person.get("is_banned") or person.get("deleted_at"):
            continue
        sales, revenue = sellers.get(uid, (0, 0.0))
        rows.append({"creator": users.render_brief(person), "total_sales": sales,
                     "revenue": revenue, "followers_count": int(person.get("followers_count") or 0),
                     "total_models": int(person.get("total_models") or 0)})
    rows.sort(key=lambda r: (-r["total_sales"], -r["followers_count"], r["creator"]["id"]))
    return rows[:limit]
