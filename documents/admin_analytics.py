"""Staff analytics: the admin overview cards, revenue, users and models over a window,
recent activity and alerts (seed 000 §7; seed 001 §13 "Admin Overview", "Revenue
Management", "Analytics"; seed 004 "Admin Pages"). Nothing here is stored: every figure is
counted again.

Sources and the day-window rules (UTC buckets, every day present) are those of
`documents.analytics`, whose `Window` and aggregation helpers these reports use. Revenue is
counted from `transactions` (a refunded transaction is no longer revenue, and counts as a
refund on its `refunded_at` day); users from `users` (deleted accounts left out), models
from `models` by status; a model pending for more than PENDING_MODEL_ALERT_AGE (48 h) raises
an alert.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from documents import catalog, earnings, model_listing, outbox, payouts, support, users
from documents.analytics import (
    MODEL_COUNTERS,
    MODEL_STATUSES,
    MODELS,
    TRANSACTIONS,
    Window,
    daily_counts,
    event,
    fill,
    group_sums,
    midnight,
    month_start,
    newest,
)
from documents.common import from_cents, iso, render, utcnow

PENDING_MODEL_ALERT_AGE = timedelta(hours=48)


def _today(now: datetime | None = None) -> datetime:
    return midnight(now or utcnow())


async def _completed_sum(db, field: str) -> int:
    rows = await group_sums(db, TRANSACTIONS, {"payment_status": "completed"}, "payment_status",
                             {"total": field})
    return int(rows.get("completed", {}).get("total", 0))


LIVE_USERS = {"deleted_at": None}


async def admin_stats(db) -> dict:
    """Seed 000 §7 `GET /api/admin/stats`: ``{total_users, total_models, total_revenue,
    active_users_today, new_users_today, pending_models, pending_tickets}``; total_revenue
    is the gross of completed (not refunded) transactions, a decimal."""
    today = _today()
    return {
        "total_users": await users.count(db, LIVE_USERS),
        "total_models": await catalog.count(db, {}),
        "total_revenue": from_cents(await _completed_sum(db, "amount_cents")),
        "active_users_today": await users.count(db, {**LIVE_USERS, "last_login": {"$gte": today}}),
        "new_users_today": await users.count(db, {**LIVE_USERS, "created_at": {"$gte": today}}),
        "pending_models": await catalog.count(db, {"status": "pending"}),
        "pending_tickets": await support.count_pending(db),
    }


async def revenue_totals(db, window: Window | None = None) -> dict:
    """Money totals (cents) over transactions created in `window` (all time when None):
    ``{sales_count, gmv_cents, platform_fees_cents, seller_earnings_cents, refunds_count,
    refunded_cents, net_revenue_cents}``. GMV counts every sale made (refunded or not);
    platform fees and seller earnings only the sales that stand; refunds by `refunded_at`."""
    match = window.match("created_at") if window else {}
    by = await group_sums(db, TRANSACTIONS, match, "payment_status",
                           {"amount": "amount_cents", "fee": "platform_fee_cents",
                            "seller": "seller_amount_cents"})
    refund_match = {"payment_status": "refunded", **(window.match("refunded_at") if window else {})}
    refunds = await group_sums(db, TRANSACTIONS, refund_match, "payment_status",
                                {"amount": "amount_cents"})
    done = by.get("completed", {})
    gmv = sum(int(r.get("amount", 0)) for r in by.values())
    refunded = int(refunds.get("refunded", {}).get("amount", 0))
    return {"sales_count": sum(int(r["count"]) for r in by.values()), "gmv_cents": gmv,
            "platform_fees_cents": int(done.get("fee", 0)),
            "seller_earnings_cents": int(done.get("seller", 0)),
            "refunds_count": int(refunds.get("refunded", {}).get("count", 0)),
            "refunded_cents": refunded, "net_revenue_cents": gmv - refunded}


async def admin_revenue(db, window: Window) -> dict:
    """Revenue analytics (seed 001 §13): ``{period, totals (decimals, see revenue_totals),
    all_time, payouts: {requested, requested_count, paid}, daily: [{date, sales, gmv,
    platform_fees, refunds, refunds_count}]}``."""
    created = await daily_counts(db, TRANSACTIONS, {}, "created_at", window, {"gmv": "amount_cents"})
    standing = await daily_counts(db, TRANSACTIONS, {"payment_status": "completed"}, "created_at",
                            window, {"fees": "platform_fee_cents"})
    refunds = await daily_counts(db, TRANSACTIONS, {"payment_status": "refunded"}, "refunded_at",
                           window, {"amount": "amount_cents"})
    daily = fill(window, {"sales": (created, "count"), "gmv": (created, "gmv"),
                           "platform_fees": (standing, "fees"), "refunds": (refunds, "amount"),
                           "refunds_count": (refunds, "count")},
                  money=("gmv", "platform_fees", "refunds"))
    payout_sums = await group_sums(db, earnings.PAYOUTS, {}, "status", {"amount": "amount_cents"})
    open_ = [payout_sums.get(s, {}) for s in earnings.OPEN_PAYOUT]
    return {"period": window.describe(), "totals": render(await revenue_totals(db, window)),
            "all_time": render(await revenue_totals(db)),
            "payouts": {"requested": from_cents(sum(int(p.get("amount", 0)) for p in open_)),
                        "requested_count": sum(int(p.get("count", 0)) for p in open_),
                        "paid": from_cents(payout_sums.get("paid", {}).get("amount", 0)),
                        "paid_count": int(payout_sums.get("paid", {}).get("count", 0))},
            "daily": daily}


async def admin_users(db, window: Window) -> dict:
    """User analytics: ``{period, total, by_type: {buyer, creator}, staff, verified, banned,
    active_today, new_today, new_in_period, daily: [{date, signups, buyers, creators}]}``."""
    by_type = await group_sums(db, users.COLLECTION, LIVE_USERS, "user_type", {})
    buyers = await daily_counts(db, users.COLLECTION, {**LIVE_USERS, "user_type": "buyer"},
                          "created_at", window)
    creators = await daily_counts(db, users.COLLECTION, {**LIVE_USERS, "user_type": "creator"},
                            "created_at", window)
    signups = await daily_counts(db, users.COLLECTION, LIVE_USERS, "created_at", window)
    daily = fill(window, {"signups": (signups, "count"), "buyers": (buyers, "count"),
                           "creators": (creators, "count")})
    today = _today()
    return {"period": window.describe(),
            "total": await users.count(db, LIVE_USERS),
            "by_type": {t: int(by_type.get(t, {}).get("count", 0)) for t in users.USER_TYPES},
            "staff": await users.count(
                db, {**LIVE_USERS, "staff_role": {"$in": list(users.STAFF_ROLES)}}),
            "verified": await users.count(db, {**LIVE_USERS, "is_verified": True}),
            "banned": await users.count(db, {**LIVE_USERS, "is_banned": True}),
            "active_today": await users.count(db, {**LIVE_USERS, "last_login": {"$gte": today}}),
            "new_today": await users.count(db, {**LIVE_USERS, "created_at": {"$gte": today}}),
            "new_in_period": sum(p["signups"] for p in daily), "daily": daily}


async def admin_models(db, window: Window) -> dict:
    """Model analytics: ``{period, total, by_status, by_category: [{category, count}],
    totals: {views, likes, downloads, sales}, daily: [{date, uploads}], top_models}``."""
    by_status = await group_sums(db, MODELS, {}, "status", MODEL_COUNTERS)
    by_category = await group_sums(db, MODELS, {}, "category", {})
    uploads = await daily_counts(db, MODELS, {}, "created_at", window)
    top = await model_listing.most_viewed_approved(db, 10)
    return {"period": window.describe(),
            "total": sum(int(r["count"]) for r in by_status.values()),
            "by_status": {s: int(by_status.get(s, {}).get("count", 0)) for s in MODEL_STATUSES},
            "by_category": sorted(({"category": k, "count": int(r["count"])}
                                   for k, r in by_category.items()),
                                  key=lambda c: (-c["count"], str(c["category"]))),
            "totals": {name: sum(int(r.get(name) or 0) for r in by_status.values())
                       for name in ("views", "likes", "downloads", "sales")},
            "daily": fill(window, {"uploads": (uploads, "count")}),
            "top_models": [render(m) for m in top]}


async def admin_overview(db, window: Window) -> dict:
    """The admin analytics overview: ``{period, stats (admin_stats), revenue (totals in the
    window), daily: [{date, signups, uploads, sales, gmv}]}``."""
    signups = await daily_counts(db, users.COLLECTION, LIVE_USERS, "created_at", window)
    uploads = await daily_counts(db, MODELS, {}, "created_at", window)
    sales = await daily_counts(db, TRANSACTIONS, {}, "created_at", window, {"gmv": "amount_cents"})
    daily = fill(window, {"signups": (signups, "count"), "uploads": (uploads, "count"),
                           "sales": (sales, "count"), "gmv": (sales, "gmv")}, money=("gmv",))
    return {"period": window.describe(), "stats": await admin_stats(db),
            "revenue": render(await revenue_totals(db, window)), "daily": daily}


async def admin_recent_activity(db, limit: int = 20) -> list[dict]:
    """Recent platform activity for the admin overview (seed 001 §13), newest first: admin
    actions, signups and paid orders. Each ``{type, message, created_at, data}``."""
    actions = await newest(db, "admin_actions", {}, limit)
    signups = await newest(db, users.COLLECTION, LIVE_USERS, limit)
    orders = await newest(db, "orders", {"status": "paid"}, limit, "paid_at")
    people = await users.get_many(db, [a["admin_id"] for a in actions]
                                  + [o["buyer_id"] for o in orders])

    def who(uid) -> str:
        return (people.get(uid) or {}).get("username", "someone")

    events = [event(a["action_type"], a["created_at"],
                     f"{who(a['admin_id'])}: {a['action_type'].replace('_', ' ')}",
                     admin_id=a["admin_id"], target_type=a.get("target_type"),
                     target_id=a.get("target_id")) for a in actions]
    events += [event("user_registered", u["created_at"], f"{u['username']} signed up",
                      user_id=u["_id"], user_type=u.get("user_type")) for u in signups]
    events += [event("order_paid", o["paid_at"],
                      f"{who(o['buyer_id'])} paid order {o.get('number')}",
                      order_id=o["_id"], total=from_cents(o.get("total_cents")))
               for o in orders if o.get("paid_at")]
    events.sort(key=lambda e: e["created_at"], reverse=True)
    return events[:limit]


def _alert(kind: str, severity: str, title: str, count: int, action_url: str, **data) -> dict:
    return {"type": kind, "severity": severity, "title": title, "count": count,
            "action_url": action_url, "data": data}


async def admin_alerts(db, now: datetime | None = None) -> list[dict]:
    """Conditions that need staff attention (seed 001 §13 "system alerts"), only those that
    hold now: models pending for more than 48 h, support tickets waiting, payout requests
    waiting, emails that failed in the last 7 days. ``[{type, severity, title, count,
    action_url, data}]``."""
    now = now or utcnow()
    alerts = []
    count, oldest = await model_listing.pending_since(db, now - PENDING_MODEL_ALERT_AGE)
    if count:
        alerts.append(_alert("stale_pending_models", "warning",
                             f"{count} model(s) waiting for review for more than 48 hours",
                             count, "/admin/models?status=pending",
                             oldest_created_at=iso(oldest["created_at"])))
    if count := await support.count_pending(db):
        alerts.append(_alert("pending_tickets", "info", f"{count} support ticket(s) waiting",
                             count, "/admin/support"))
    if count := await payouts.open_count(db):
        alerts.append(_alert("payout_requests", "warning", f"{count} payout request(s) waiting",
                             count, "/admin/revenue"))
    if count := await outbox.count_failed(db, now - timedelta(days=7)):
        alerts.append(_alert("failed_emails", "error",
                             f"{count} email(s) failed in the last 7 days", count, "/admin/emails"))
    return alerts


async def admin_revenue_stats(db) -> dict:
    """Revenue Management cards (seed 001 §13 `GET /api/admin/revenue/stats`): money totals
    (see revenue_totals, decimals) ``{all_time, this_month, today, payouts}``."""
    now = utcnow()
    month = Window(first=month_start(now), last=now)
    full = await admin_revenue(db, Window(1))
    return {"all_time": full["all_time"], "this_month": render(await revenue_totals(db, month)),
            "today": full["totals"], "payouts": full["payouts"]}
