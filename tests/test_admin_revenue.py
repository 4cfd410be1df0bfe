"""Staff revenue, transactions, analytics and the admin overview over real HTTP: figures equal
the records inserted; permissions (403 for buyers, creators and moderators lacking the
permission); bad input."""
from datetime import timedelta

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, BUYER2, CREATOR, CREATOR2, MODERATOR
from earnings_builders import cents, make_model, make_sale, uid

from documents.common import utcnow

# these tests count sales, purchases and balances from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")

REVENUE_ROUTES = ("/api/admin/revenue", "/api/admin/revenue/stats",
                  "/api/admin/revenue/transactions", "/api/admin/transactions",
                  "/api/admin/revenue/payouts")
ANALYTICS_ROUTES = ("/api/admin/analytics", "/api/admin/analytics/overview",
                    "/api/admin/analytics/users", "/api/admin/analytics/models",
                    "/api/admin/analytics/revenue")


async def sales(db) -> list[dict]:
    c1, c2 = await uid(db, CREATOR), await uid(db, CREATOR2)
    b1, b2 = await uid(db, BUYER), await uid(db, BUYER2)
    m1, m2 = await make_model(db, c1), await make_model(db, c2)
    now = utcnow()
    return [
        await make_sale(db, seller_id=c1, buyer_id=b1, model_id=m1["_id"], amount_cents=1),
        await make_sale(db, seller_id=c1, buyer_id=b2, model_id=m1["_id"], amount_cents=99,
                        created_at=now - timedelta(days=1)),
        await make_sale(db, seller_id=c2, buyer_id=b1, model_id=m2["_id"], amount_cents=1999,
                        created_at=now - timedelta(days=2)),
        await make_sale(db, seller_id=c2, buyer_id=b2, model_id=m2["_id"], amount_cents=123456,
                        created_at=now - timedelta(days=2), refunded_at=now),
    ]


@pytest.mark.gen_test
async def test_revenue_permissions(api, tokens):
    for path in REVENUE_ROUTES + ANALYTICS_ROUTES + ("/api/admin/stats", "/api/admin/alerts",
                                                     "/api/admin/recent-activity"):
        assert (await api("GET", path)).status == 401, path
        for email in (BUYER, CREATOR):
            reply = await api("GET", path, token=await tokens(email))
            assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN", (path, email)
    moderator = await tokens(MODERATOR)
    for path in REVENUE_ROUTES + ANALYTICS_ROUTES:
        assert (await api("GET", path, token=moderator)).status == 403, path
    for path in ("/api/admin/stats", "/api/admin/alerts", "/api/admin/recent-activity"):
        assert (await api("GET", path, token=moderator)).status == 200, path
    admin = await tokens(ADMIN)
    for path in REVENUE_ROUTES + ANALYTICS_ROUTES:
        assert (await api("GET", path, token=admin)).status == 200, path


@pytest.mark.gen_test
async def test_revenue_figures(api, services, tokens):
    db = services.db
    txns = await sales(db)
    admin = await tokens(ADMIN)
    reply = await api("GET", "/api/admin/revenue?days=3", token=admin)
    assert reply.status == 200, reply.json
    totals = reply.json["totals"]
    assert totals["sales_count"] == 4
    assert cents(totals["gmv"]) == 1 + 99 + 1999 + 123456
    assert cents(totals["platform_fees"]) == 0 + 7 + 150            # the refunded fee is gone
    assert cents(totals["seller_earnings"]) == 1 + 92 + 1849
    assert cents(totals["refunded"]) == 123456 and totals["refunds_count"] == 1
    assert cents(totals["net_revenue"]) == 1 + 99 + 1999
    daily = reply.json["daily"]
    assert [d["sales"] for d in daily] == [2, 1, 1]
    assert [cents(d["gmv"]) for d in daily] == [1999 + 123456, 99, 1]
    assert [cents(d["platform_fees"]) for d in daily] == [150, 7, 0]
    assert [cents(d["refunds"]) for d in daily] == [0, 0, 123456]
    assert [d["refunds_count"] for d in daily] == [0, 0, 1]

    stats = await api("GET", "/api/admin/revenue/stats", token=admin)
    assert stats.status == 200
    assert cents(stats.json["all_time"]["gmv"]) == sum(t["amount_cents"] for t in txns)
    assert cents(stats.json["today"]["gmv"]) == 1

    same = await api("GET", "/api/admin/analytics/revenue?days=3", token=admin)
    assert same.json["totals"] == totals
    by_type = await api("GET", "/api/admin/analytics?metric_type=revenue&days=3", token=admin)
    assert by_type.json["metric_type"] == "revenue" and by_type.json["totals"] == totals
    today = utcnow().date()
    dated = await api("GET", f"/api/admin/revenue?start_date={today - timedelta(days=2)}"
                             f"&end_date={today}", token=admin)
    assert dated.status == 200 and [d["sales"] for d in dated.json["daily"]] == [2, 1, 1]
    for bad in ("days=0", "days=1000", f"start_date={today}&end_date={today - timedelta(days=1)}",
                "start_date=2024-02-30", "start_date=2020-01-01&end_date=2024-01-01"):
        assert (await api("GET", f"/api/admin/revenue?{bad}", token=admin)).status == 422, bad
    assert (await api("GET", "/api/admin/analytics?metric_type=sales", token=admin)).status == 422


@pytest.mark.gen_test
async def test_admin_transactions(api, services, tokens):
    db = services.db
    txns = await sales(db)
    admin = await tokens(ADMIN)
    for path in ("/api/admin/transactions", "/api/admin/revenue/transactions"):
        reply = await api("GET", path, token=admin)
        assert reply.status == 200 and reply.json["total"] == 4
        first = reply.json["items"][0]
        assert first["transaction_id"] == txns[0]["transaction_id"]
        assert first["buyer"]["username"] == "buyer" and first["seller"]["username"] == "creator"
        assert cents(first["amount"]) == 1 and cents(first["platform_fee"]) == 0
    refunded = await api("GET", "/api/admin/transactions?status=refunded", token=admin)
    assert [i["transaction_id"] for i in refunded.json["items"]] == [txns[3]["transaction_id"]]
    seller2 = await uid(db, CREATOR2)
    by_seller = await api("GET", f"/api/admin/transactions?seller_id={seller2}", token=admin)
    assert by_seller.json["total"] == 2
    found = await api("GET", f"/api/admin/transactions?search={txns[1]['transaction_id']}",
                      token=admin)
    assert [i["id"] for i in found.json["items"]] == [str(txns[1]["_id"])]
    assert (await api("GET", f"/api/admin/transactions?buyer_id={ObjectId()}",
                      token=admin)).json["total"] == 0
    assert (await api("GET", "/api/admin/transactions?buyer_id=xyz", token=admin)).status == 404
    for bad in ("status=lost", "limit=0", "search=" + "x" * 41):
        assert (await api("GET", f"/api/admin/transactions?{bad}", token=admin)).status == 422


@pytest.mark.gen_test
async def test_admin_stats_match_the_store(api, services, tokens):
    db = services.db
    await sales(db)
    now = utcnow()
    buyer = await uid(db, BUYER)
    await db.users.update_one({"_id": buyer}, {"$set": {"last_login": now}})
    await db.support_tickets.insert_one({"user_id": buyer, "subject": "Help", "status": "pending",
                                         "created_at": now})
    reply = await api("GET", "/api/admin/stats", token=await tokens(MODERATOR))
    assert reply.status == 200
    stats = reply.json
    assert set(stats) == {"total_users", "total_models", "total_revenue", "active_users_today",
                          "new_users_today", "pending_models", "pending_tickets"}
    assert stats["total_users"] == await db.users.count_documents({"deleted_at": None})
    assert stats["total_models"] == await db.models.count_documents({})
    assert stats["pending_models"] == await db.models.count_documents({"status": "pending"})
    assert stats["pending_tickets"] == await db.support_tickets.count_documents(
        {"status": "pending"})
    assert cents(stats["total_revenue"]) == 1 + 99 + 1999
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert stats["active_users_today"] == await db.users.count_documents(
        {"last_login": {"$gte": today}}) >= 1
    assert stats["new_users_today"] == await db.users.count_documents(
        {"created_at": {"$gte": today}})


@pytest.mark.gen_test
async def test_admin_user_and_model_analytics(api, services, tokens):
    db = services.db
    creator = await uid(db, CREATOR)
    now = utcnow()
    await make_model(db, creator, status="pending", created_at=now - timedelta(days=1),
                     category="Vehicles")
    admin = await tokens(ADMIN)
    users_reply = await api("GET", "/api/admin/analytics/users?days=7", token=admin)
    assert users_reply.status == 200
    body = users_reply.json
    assert body["total"] == await db.users.count_documents({"deleted_at": None})
    assert body["by_type"]["creator"] == await db.users.count_documents(
        {"user_type": "creator", "deleted_at": None})
    since = (now - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert body["new_in_period"] == await db.users.count_documents(
        {"created_at": {"$gte": since, "$lt": since + timedelta(days=7)}, "deleted_at": None})
    assert len(body["daily"]) == 7
    assert all(d["signups"] == d["buyers"] + d["creators"] for d in body["daily"])

    models_reply = await api("GET", "/api/admin/analytics/models?days=3", token=admin)
    body = models_reply.json
    assert body["total"] == await db.models.count_documents({})
    assert body["by_status"]["pending"] == await db.models.count_documents({"status": "pending"})
    vehicles = next(c for c in body["by_category"] if c["category"] == "Vehicles")
    assert vehicles["count"] == await db.models.count_documents({"category": "Vehicles"})
    uploads = [d["uploads"] for d in body["daily"]]
    start = (now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert sum(uploads) == await db.models.count_documents(
        {"created_at": {"$gte": start, "$lt": start + timedelta(days=3)}})
    assert uploads[1] >= 1

    overview = await api("GET", "/api/admin/analytics/overview", token=admin)
    assert overview.status == 200 and len(overview.json["daily"]) == 30
    assert overview.json["stats"]["total_models"] == body["total"]


@pytest.mark.gen_test
async def test_alerts_and_recent_activity(api, services, tokens):
    db = services.db
    admin_token = await tokens(ADMIN)
    baseline = await api("GET", "/api/admin/alerts", token=admin_token)
    assert baseline.status == 200
    known = {a["type"] for a in baseline.json["items"]}
    creator, buyer = await uid(db, CREATOR), await uid(db, BUYER)
    now = utcnow()
    await make_model(db, creator, status="pending", created_at=now - timedelta(hours=49))
    await db.support_tickets.insert_one({"user_id": buyer, "subject": "Help", "status": "pending",
                                         "created_at": now})
    await db.payouts.insert_one({"seller_id": creator, "amount_cents": 1500,
                                 "status": "requested", "created_at": now})
    await db.emails.insert_one({"to": "x@example.com", "subject": "s", "status": "failed",
                                "created_at": now})
    reply = await api("GET", "/api/admin/alerts", token=admin_token)
    alerts = {a["type"]: a for a in reply.json["items"]}
    assert {"stale_pending_models", "pending_tickets", "payout_requests",
            "failed_emails"} <= set(alerts)
    assert alerts["payout_requests"]["count"] == 1 and alerts["failed_emails"]["count"] == 1
    assert alerts["stale_pending_models"]["count"] == await db.models.count_documents(
        {"status": "pending", "created_at": {"$lte": now - timedelta(hours=48)}})
    assert "payout_requests" not in known

    order_id = ObjectId()
    await db.orders.insert_one({"_id": order_id, "number": "ORD-2030-000001", "buyer_id": buyer,
                                "status": "paid", "total_cents": 1999, "created_at": now,
                                "paid_at": now + timedelta(seconds=5)})
    await db.admin_actions.insert_one({"admin_id": await uid(db, ADMIN),
                                       "action_type": "model_approved", "target_type": "model",
                                       "target_id": ObjectId(),
                                       "created_at": now + timedelta(seconds=4)})
    activity = await api("GET", "/api/admin/recent-activity?limit=5", token=admin_token)
    assert activity.status == 200
    items = activity.json["items"]
    assert len(items) == 5
    assert items[0]["type"] == "order_paid" and items[0]["data"]["order_id"] == str(order_id)
    assert items[1]["type"] == "model_approved"
    assert any(i["type"] == "user_registered" for i in
               (await api("GET", "/api/admin/recent-activity?limit=100",
                          token=admin_token)).json["items"])
    assert (await api("GET", "/api/admin/recent-activity?limit=0",
                      token=admin_token)).status == 422
