"""Creator and model analytics, leaderboard and top creators: the numbers equal counts from
the records the test inserted; zero-filled days; permissions; bad input."""
from datetime import timedelta

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, BUYER2, CREATOR, CREATOR2, MODERATOR
from earnings_builders import cents, make_model, make_sale, uid

from documents.common import utcnow

# these tests count sales, purchases and balances from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")


@pytest.mark.gen_test
async def test_model_analytics_counts_the_records(api, services, tokens):
    db = services.db
    seller, buyer, buyer2 = await uid(db, CREATOR), await uid(db, BUYER), await uid(db, BUYER2)
    model = await make_model(db, seller, views=17, likes=2, downloads=5, sales_count=3,
                             comment_count=1, rating=4.5, rating_count=2)
    now = utcnow()
    await db.model_likes.insert_many([
        {"user_id": buyer, "model_id": model["_id"], "created_at": now},
        {"user_id": buyer2, "model_id": model["_id"], "created_at": now - timedelta(days=3)}])
    await db.model_comments.insert_one({"model_id": model["_id"], "user_id": buyer,
                                        "content": "nice", "parent_id": None,
                                        "is_deleted": False, "created_at": now})
    for days_ago, amount in ((0, 1999), (3, 99), (3, 1)):
        await make_sale(db, seller_id=seller, buyer_id=buyer, model_id=model["_id"],
                        amount_cents=amount, created_at=now - timedelta(days=days_ago))
    await make_sale(db, seller_id=seller, buyer_id=buyer2, model_id=model["_id"],
                    amount_cents=5000, created_at=now, refunded_at=now)

    reply = await api("GET", f"/api/models/{model['_id']}/analytics?days=5",
                      token=await tokens(CREATOR))
    assert reply.status == 200, reply.json
    totals = reply.json["totals"]
    assert (totals["views"], totals["likes"], totals["downloads"], totals["sales"]) == (17, 2, 5, 3)
    assert totals["comments"] == 1 and totals["rating"] == 4.5 and totals["refunds"] == 1
    assert cents(totals["revenue"]) == 2099
    assert cents(totals["earnings"]) == (1999 - 150) + (99 - 7) + 1
    daily = reply.json["daily"]
    assert len(daily) == 5
    assert [d["sales"] for d in daily] == [0, 2, 0, 0, 1]
    assert [d["likes"] for d in daily] == [0, 1, 0, 0, 1]
    assert [d["comments"] for d in daily] == [0, 0, 0, 0, 1]
    assert cents(daily[1]["revenue"]) == 100 and cents(daily[4]["revenue"]) == 1999

    same = await api("GET", f"/api/analytics/models/{model['_id']}?days=5",
                     token=await tokens(MODERATOR))
    assert same.status == 200 and same.json["totals"] == totals
    other = await api("GET", f"/api/models/{model['_id']}/analytics", token=await tokens(CREATOR2))
    assert other.status == 403
    hidden = await make_model(db, seller, status="pending")
    assert (await api("GET", f"/api/models/{hidden['_id']}/analytics",
                      token=await tokens(BUYER))).status == 404
    assert (await api("GET", f"/api/models/{model['_id']}/analytics")).status == 401
    token = await tokens(CREATOR)
    for ref in ("nope", str(ObjectId())):
        assert (await api("GET", f"/api/models/{ref}/analytics", token=token)).status == 404
    assert (await api("GET", f"/api/models/{model['_id']}/analytics?days=-1",
                      token=token)).status == 422


@pytest.mark.gen_test
async def test_creator_analytics_totals(api, services, tokens):
    db = services.db
    seller, buyer = await uid(db, CREATOR), await uid(db, BUYER)
    a = await make_model(db, seller, views=11, likes=4, downloads=2, sales_count=10_000)
    await make_model(db, seller, status="pending", views=1)
    await make_sale(db, seller_id=seller, buyer_id=buyer, model_id=a["_id"], amount_cents=123456)
    expected = {"views": 0, "likes": 0, "downloads": 0}
    count = 0
    async for m in db.models.find({"creator_id": seller}):
        count += 1
        for key in expected:
            expected[key] += m.get(key, 0)
    for path in ("/api/users/me/analytics?days=14", "/api/analytics/dashboard?days=14"):
        reply = await api("GET", path, token=await tokens(CREATOR))
        assert reply.status == 200, reply.json
        totals = reply.json["totals"]
        assert totals["models"] == count
        assert {k: totals[k] for k in expected} == expected
        assert cents(totals["revenue"]) == 123456 and cents(totals["earnings"]) == 123456 - 9259
        assert reply.json["models_by_status"]["pending"] >= 1
        assert len(reply.json["daily"]) == 14 and reply.json["daily"][-1]["sales"] == 1
        assert sum(d["sales"] for d in reply.json["daily"]) == 1
        assert reply.json["top_models"][0]["id"] == str(a["_id"])
    # seed 000 §10's top-level fields of the creator dashboard, beside ours
    seed = reply.json
    assert (seed["total_views"], seed["total_likes"], seed["total_downloads"]) == (
        expected["views"], expected["likes"], expected["downloads"])
    assert seed["total_revenue"] == totals["revenue"] and seed["top_models"][0]["id"] == str(a["_id"])
    assert [d["date"] for d in seed["revenue_chart"]] == [d["date"] for d in seed["daily"]]
    assert sum(cents(d["revenue"]) for d in seed["revenue_chart"]) == 123456
    empty = await api("GET", "/api/users/me/analytics", token=await tokens(BUYER))
    assert empty.status == 200 and empty.json["totals"]["models"] == 0
    assert len(empty.json["daily"]) == 30
    assert (await api("GET", "/api/analytics/dashboard?days=x",
                      token=await tokens(BUYER))).status == 422


@pytest.mark.gen_test
async def test_leaderboard(api, services, tokens):
    db = services.db
    c1, c2, buyer = await uid(db, CREATOR), await uid(db, CREATOR2), await uid(db, BUYER)
    m1 = await make_model(db, c1, downloads=50, rating=3.0, rating_count=10)
    m2 = await make_model(db, c2, downloads=5, rating=5.0, rating_count=2)
    now = utcnow()
    await make_sale(db, seller_id=c1, buyer_id=buyer, model_id=m1["_id"], amount_cents=1000,
                    created_at=now - timedelta(days=10))
    await make_sale(db, seller_id=c1, buyer_id=buyer, model_id=m1["_id"], amount_cents=1000,
                    created_at=now - timedelta(days=12))
    await make_sale(db, seller_id=c2, buyer_id=buyer, model_id=m2["_id"], amount_cents=500)

    week = await api("GET", "/api/leaderboard?period=week&metric=sales")
    assert week.status == 200
    assert [(i["creator"]["username"], i["value"]) for i in week.json["items"]] == [("creator2", 1)]
    month = await api("GET", "/api/leaderboard?period=month&metric=sales")
    assert [(i["rank"], i["creator"]["username"], i["value"]) for i in month.json["items"]] == \
        [(1, "creator", 2), (2, "creator2", 1)]
    assert cents(month.json["items"][0]["revenue"]) == 2000

    downloads = await api("GET", "/api/leaderboard?period=all_time&metric=downloads")
    by_name = {i["creator"]["username"]: i["value"] for i in downloads.json["items"]}
    expected = {}
    async for m in db.models.find({"status": "approved"}):
        expected[m["creator_id"]] = expected.get(m["creator_id"], 0) + m.get("downloads", 0)
    assert by_name["creator"] == expected[c1] and by_name["creator2"] == expected[c2]

    rating = await api("GET", "/api/leaderboard?metric=rating&period=all_time")
    values = {i["creator"]["username"]: i["value"] for i in rating.json["items"]}
    assert values["creator2"] >= values["creator"]

    await db.purchases.insert_one({"user_id": buyer, "model_id": m2["_id"], "created_at": now,
                                   "download_count": 0, "download_limit": 10, "status": "active"})
    week_dl = await api("GET", "/api/leaderboard?period=week&metric=downloads")
    assert [(i["creator"]["username"], i["value"]) for i in week_dl.json["items"]] == \
        [("creator2", 1)]
    default = await api("GET", "/api/leaderboard?period=&metric=")
    assert default.status == 200 and default.json["period"] == "month"
    for bad in ("period=year", "metric=likes", "limit=0"):
        assert (await api("GET", f"/api/leaderboard?{bad}")).status == 422, bad

    top = await api("GET", "/api/creators/top?limit=5")
    assert top.status == 200
    names = [i["creator"]["username"] for i in top.json["items"]]
    assert names[:2] == ["creator", "creator2"] and top.json["items"][0]["total_sales"] == 2
    assert (await api("GET", "/api/creators/top?limit=0")).status == 422
    clamped = await api("GET", "/api/creators/top?limit=500&_=1")    # clamped to 50, ignored
    assert clamped.status == 200 and len(clamped.json["items"]) <= 50


@pytest.mark.gen_test
async def test_leaderboard_leaves_out_banned(api, services, tokens):
    db = services.db
    c2, buyer = await uid(db, CREATOR2), await uid(db, BUYER)
    model = await make_model(db, c2)
    await make_sale(db, seller_id=c2, buyer_id=buyer, model_id=model["_id"], amount_cents=500)
    await db.users.update_one({"_id": c2}, {"$set": {"is_banned": True}})
    reply = await api("GET", "/api/leaderboard?period=week", token=await tokens(ADMIN))
    assert reply.status == 200 and reply.json["items"] == []
