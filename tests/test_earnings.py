"""Creator earnings over real HTTP: balances and revenue sums to the cent, matured lines
released exactly once (repeated and concurrent), refunds released with their sale, own
transactions only, dashboard routes, bad input."""
import asyncio
from datetime import timedelta

import pytest
from bson import ObjectId
from demo_accounts import BUYER, BUYER2, CREATOR, CREATOR2
from earnings_builders import balance, cents, make_model, make_sale, refund_line, uid

from documents import earnings, money
from documents.common import utcnow

# these tests count sales, purchases and balances from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")

AWKWARD = (1, 99, 1999, 123456)          # 0.01, 0.99, 19.99, 1234.56
FEES = (0, 7, 150, 9259)                # 7.5 % rounded half up


async def awkward_sales(db, seller, buyer, created_at=None) -> list[dict]:
    model = await make_model(db, seller)
    return [await make_sale(db, seller_id=seller, buyer_id=buyer, model_id=model["_id"],
                            amount_cents=a, created_at=created_at) for a in AWKWARD]


@pytest.mark.gen_test
async def test_revenue_and_balance_agree_to_the_cent(api, services, tokens):
    db = services.db
    seller, buyer = await uid(db, CREATOR), await uid(db, BUYER)
    txns = await awkward_sales(db, seller, buyer)
    assert [t["platform_fee_cents"] for t in txns] == list(FEES)
    net = sum(AWKWARD) - sum(FEES)
    token = await tokens(CREATOR)

    reply = await api("GET", "/api/users/me/revenue", token=token)
    assert reply.status == 200, reply.json
    totals, bal = reply.json["totals"], reply.json["balance"]
    assert cents(totals["gross"]) == sum(AWKWARD) == 125555
    assert cents(totals["fees"]) == sum(FEES) == 9416
    assert cents(totals["net"]) == net == 116139
    assert totals["sales_count"] == 4
    assert cents(bal["pending"]) == net and cents(bal["available"]) == 0
    assert cents(bal["lifetime_earnings"]) == net and cents(bal["paid_out"]) == 0
    assert cents(reply.json["this_month"]) == net
    chart = reply.json["chart"]
    assert len(chart["points"]) == 30 and chart["points"][-1]["sales"] == 4
    assert cents(chart["points"][-1]["revenue"]) == sum(AWKWARD)
    assert cents(chart["points"][-1]["earnings"]) == net
    assert all(p["sales"] == 0 for p in chart["points"][:-1])

    same = await api("GET", "/api/dashboard/revenue", token=token)
    assert same.status == 200 and same.json["totals"] == totals

    stats = await api("GET", "/api/dashboard/stats", token=token)
    assert stats.status == 200
    assert stats.json["total_sales"] == 4 and cents(stats.json["total_revenue"]) == 125555
    assert cents(stats.json["total_earnings"]) == net

    sales = await api("GET", "/api/users/me/sales?limit=2", token=token)
    assert sales.status == 200 and sales.json["total"] == 4 and len(sales.json["items"]) == 2
    assert cents(sales.json["totals"]["net"]) == net
    amounts = sorted(cents(i["amount"]) for i in
                     (await api("GET", "/api/users/me/sales", token=token)).json["items"])
    assert amounts == sorted(AWKWARD)


@pytest.mark.gen_test
async def test_matured_sales_become_available_exactly_once(api, services, tokens):
    db = services.db
    seller, buyer = await uid(db, CREATOR), await uid(db, BUYER)
    old = utcnow() - money.REFUND_WINDOW - timedelta(hours=1)
    await awkward_sales(db, seller, buyer, created_at=old)
    fresh = await make_sale(db, seller_id=seller, buyer_id=buyer,
                            model_id=(await make_model(db, seller))["_id"], amount_cents=500)
    net = sum(AWKWARD) - sum(FEES)

    moved = await asyncio.gather(*[earnings.release_matured(db, seller) for _ in range(5)])
    assert sum(moved) == net                       # one call moved each line
    assert await earnings.release_matured(db, seller) == 0
    token = await tokens(CREATOR)
    replies = await asyncio.gather(*[api("GET", "/api/users/me/revenue", token=token)
                                     for _ in range(4)])
    assert {r.status for r in replies} == {200}
    stored = await balance(db, seller)
    assert stored["available_cents"] == net
    assert stored["pending_cents"] == fresh["seller_amount_cents"]
    lines = await db.ledger_entries.find({"seller_id": seller, "kind": "sale"}).to_list(None)
    assert sorted(x["status"] for x in lines) == ["available"] * 4 + ["pending"]
    assert all(x.get("release_applied", True) for x in lines)
    bal = replies[0].json["balance"]
    assert cents(bal["available"]) == net and cents(bal["pending"]) == fresh["seller_amount_cents"]
    assert cents(bal["lifetime_earnings"]) == net + fresh["seller_amount_cents"]


@pytest.mark.gen_test
async def test_refund_of_pending_sale_is_released_with_it(services):
    db = services.db
    seller, buyer = await uid(db, CREATOR), await uid(db, BUYER)
    model = await make_model(db, seller)
    old = utcnow() - money.REFUND_WINDOW + timedelta(hours=1)     # matures in an hour
    txn = await make_sale(db, seller_id=seller, buyer_id=buyer, model_id=model["_id"],
                          amount_cents=1999, created_at=old)
    await refund_line(db, txn)
    assert await earnings.release_matured(db, seller) == 0           # refund waits for its sale
    assert await balance(db, seller) == {"pending_cents": 0, "available_cents": 0,
                                         "paid_out_cents": 0}
    later = utcnow() + timedelta(hours=2)
    assert await earnings.release_matured(db, seller, later) == 0    # +x and -x moved
    assert await balance(db, seller) == {"pending_cents": 0, "available_cents": 0,
                                         "paid_out_cents": 0}
    statuses = {x["kind"]: x["status"] for x in await db.ledger_entries.find(
        {"transaction_id": txn["transaction_id"]}).to_list(None)}
    assert statuses == {"sale": "available", "refund": "available"}
    assert (await earnings.balance_cents(db, seller))["lifetime_earnings_cents"] == 0


@pytest.mark.gen_test
async def test_transactions_are_own_only(api, services, tokens):
    db = services.db
    seller, seller2 = await uid(db, CREATOR), await uid(db, CREATOR2)
    buyer, buyer2 = await uid(db, BUYER), await uid(db, BUYER2)
    model = await make_model(db, seller)
    sold = await make_sale(db, seller_id=seller, buyer_id=buyer, model_id=model["_id"],
                           amount_cents=2500)
    await make_sale(db, seller_id=seller2, buyer_id=buyer2,
                    model_id=(await make_model(db, seller2))["_id"], amount_cents=700)

    mine = await api("GET", "/api/users/me/transactions", token=await tokens(CREATOR))
    assert mine.status == 200 and mine.json["total"] == 1
    item = mine.json["items"][0]
    assert item["transaction_id"] == sold["transaction_id"] and item["direction"] == "sale"
    assert cents(item["seller_amount"]) == 2500 - money.platform_fee_cents(2500)
    assert item["model_title"] == model["title"]

    bought = await api("GET", "/api/dashboard/transactions?page=1", token=await tokens(BUYER))
    assert bought.status == 200 and bought.json["total"] == 1
    assert bought.json["items"][0]["direction"] == "purchase"
    assert "seller_amount" not in bought.json["items"][0]
    none = await api("GET", "/api/users/me/transactions?role=sales", token=await tokens(BUYER))
    assert none.json["total"] == 0
    other = await api("GET", "/api/users/me/transactions", token=await tokens(CREATOR2))
    assert [i["transaction_id"] for i in other.json["items"]] != [sold["transaction_id"]]
    assert other.json["total"] == 1

    token = await tokens(CREATOR)
    for bad in ("role=everyone", "status=pending", "limit=0", "page=-1"):
        reply = await api("GET", f"/api/users/me/transactions?{bad}", token=token)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", bad
    for path in ("/api/users/me/transactions", "/api/users/me/revenue", "/api/users/me/sales",
                 "/api/users/me/analytics", "/api/users/me/dashboard",
                 "/api/dashboard/stats", "/api/dashboard/sales-chart", "/api/dashboard/payouts",
                 "/api/dashboard/models", "/api/dashboard/followers", "/api/dashboard/activity",
                 "/api/dashboard/recent-activity", "/api/dashboard/revenue",
                 "/api/dashboard/transactions", "/api/users/me/payout-methods"):
        assert (await api("GET", path)).status == 401, path


@pytest.mark.gen_test
async def test_sales_chart_fills_days_with_zeros(api, services, tokens):
    db = services.db
    seller, buyer = await uid(db, CREATOR), await uid(db, BUYER)
    model = await make_model(db, seller)
    now = utcnow()
    for days_ago, amount in ((0, 1000), (0, 99), (2, 123456), (9, 5000)):
        await make_sale(db, seller_id=seller, buyer_id=buyer, model_id=model["_id"],
                        amount_cents=amount, created_at=now - timedelta(days=days_ago))
    token = await tokens(CREATOR)
    reply = await api("GET", "/api/dashboard/sales-chart?days=7", token=token)
    assert reply.status == 200
    points = reply.json["points"]
    assert len(points) == 7 and points[-1]["date"] == now.strftime("%Y-%m-%d")
    assert [p["sales"] for p in points] == [0, 0, 0, 0, 1, 0, 2]
    assert cents(points[-1]["revenue"]) == 1099 and cents(points[-3]["revenue"]) == 123456
    assert reply.json["total_sales"] == 3 and cents(reply.json["total_revenue"]) == 124555
    for bad in ("days=0", "days=400", "days=abc"):
        assert (await api("GET", f"/api/dashboard/sales-chart?{bad}", token=token)).status == 422


@pytest.mark.gen_test
async def test_dashboard_routes(api, services, tokens):
    db = services.db
    seller, buyer = await uid(db, CREATOR), await uid(db, BUYER)
    pending = await make_model(db, seller, status="pending", views=3)
    model = await make_model(db, seller, views=10, likes=1)
    await db.model_likes.insert_one({"user_id": buyer, "model_id": model["_id"],
                                     "created_at": utcnow()})
    await make_sale(db, seller_id=seller, buyer_id=buyer, model_id=model["_id"], amount_cents=900)
    follow = await api("POST", f"/api/users/{CREATOR.split('@')[0]}/follow",
                       token=await tokens(BUYER))
    assert follow.status in (200, 201), follow.json
    token = await tokens(CREATOR)

    models = await api("GET", "/api/dashboard/models?status=&page=1", token=token)
    assert models.status == 200
    ids = {i["id"] for i in models.json["items"]}
    assert {str(pending["_id"]), str(model["_id"])} <= ids
    only = await api("GET", "/api/dashboard/models?status=pending&limit=100", token=token)
    assert str(pending["_id"]) in {i["id"] for i in only.json["items"]}
    assert all(i["status"] == "pending" for i in only.json["items"])
    assert (await api("GET", "/api/dashboard/models?status=gone", token=token)).status == 422

    followers = await api("GET", "/api/dashboard/followers", token=token)
    assert followers.status == 200 and followers.json["items"][0]["username"] == "buyer"

    activity = await api("GET", "/api/dashboard/activity", token=token)
    assert activity.status == 200
    kinds = {e["type"] for e in activity.json["items"]}
    assert {"sale", "model_liked", "new_follower"} <= kinds
    recent = await api("GET", "/api/dashboard/recent-activity?limit=2", token=token)
    assert recent.status == 200 and len(recent.json["items"]) == 2
    assert (await api("GET", "/api/dashboard/activity?limit=0", token=token)).status == 422

    dash = await api("GET", "/api/users/me/dashboard", token=token)
    assert dash.status == 200
    assert dash.json["stats"]["total_sales"] == 1 and len(dash.json["recent_sales"]) == 1
    assert len(dash.json["sales_chart"]["points"]) == 30


@pytest.mark.gen_test
async def test_release_ignores_lines_not_yet_applied(services):
    """A sale line whose balance write has not happened yet (`applied: False`) is not moved."""
    db = services.db
    seller = ObjectId()
    old = utcnow() - money.REFUND_WINDOW - timedelta(days=1)
    await db.ledger_entries.insert_one({
        "seller_id": seller, "kind": "sale", "amount_cents": 500, "transaction_id": "TXN-X",
        "status": "pending", "available_at": old, "created_at": old, "applied": False,
        "entry_key": "sale:TXN-X"})
    assert await earnings.release_matured(db, seller) == 0
    assert (await db.ledger_entries.find_one({"entry_key": "sale:TXN-X"}))["status"] == "pending"
