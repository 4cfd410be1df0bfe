"""Payout methods (stored masked) and payout requests over real HTTP: never more than the
available balance even with concurrent requests; staff approve/reject with conditional
transitions (reject returns the amount); permissions; bad input."""
import asyncio

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, CREATOR, CREATOR2, MODERATOR
from earnings_builders import add_bank, balance, cents, give_available, uid

# these tests count sales, purchases and balances from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")


async def everything(db) -> str:
    """Every document of every collection as one string (to search for secrets)."""
    out = []
    for name in await db.list_collection_names():
        out.extend(repr(d) for d in await db[name].find({}).to_list(None))
    return "\n".join(out)


@pytest.mark.gen_test
async def test_payout_methods_are_stored_masked(api, services, tokens):
    token = await tokens(CREATOR)
    bank = await add_bank(api, token, routing_number="110000000")
    assert bank["type"] == "bank_account" and bank["is_default"] is True
    assert bank["details"] == {"bank_name": "First Bank", "account_holder": "Cre Ator",
                               "last4": "6789"}
    paypal = await api("POST", "/api/users/me/payout-methods", token=token, json={
        "type": "paypal", "email": "jane.doe@example.com", "is_default": True})
    assert paypal.status == 201
    assert paypal.json["details"] == {"email_masked": "j***@example.com"}
    listed = await api("GET", "/api/users/me/payout-methods", token=token)
    assert [m["is_default"] for m in listed.json["items"]] == [False, True]
    dump = await everything(services.db)
    for secret in ("000123456789", "123456789", "110000000", "jane.doe"):
        assert secret not in dump, secret
    other = await api("GET", "/api/users/me/payout-methods", token=await tokens(CREATOR2))
    assert other.status == 200 and other.json["items"] == []


@pytest.mark.gen_test
async def test_payout_method_bad_input(api, services, tokens):
    token = await tokens(CREATOR)
    base = {"type": "bank_account", "bank_name": "First Bank", "account_holder_name": "Cre Ator",
            "account_number": "000123456789"}
    bad_bodies = [
        {**base, "type": "cheque"}, {**base, "account_number": "12"},
        {**base, "account_number": "abc12345"}, {k: v for k, v in base.items()
                                                 if k != "account_number"},
        {**base, "email": "a@b.co"}, {"type": "paypal", "email": "not-an-email"},
        {"type": "paypal", "email": "a@b.co", "bank_name": "X Bank"}, {**base, "iban": "x"},
        {**base, "account_number": 123456789}, [base], {},
    ]
    for payload in bad_bodies:
        reply = await api("POST", "/api/users/me/payout-methods", token=token, json=payload)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", payload
    malformed = await api("POST", "/api/users/me/payout-methods", token=token, body="{nope",
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400
    assert await services.db.payout_methods.count_documents({}) == 0
    for _ in range(5):
        await add_bank(api, token)
    sixth = await api("POST", "/api/users/me/payout-methods", token=token, json=base)
    assert sixth.status == 409 and sixth.json["error_code"] == "TOO_MANY_PAYOUT_METHODS"


@pytest.mark.gen_test
async def test_concurrent_payout_requests_never_exceed_the_balance(api, services, tokens):
    db = services.db
    seller = await uid(db, CREATOR)
    await give_available(db, seller, 10000)
    token = await tokens(CREATOR)
    await add_bank(api, token)
    replies = await asyncio.gather(*[
        api("POST", "/api/users/me/payout-request", token=token, json={"amount": 60})
        for _ in range(2)])
    assert sorted(r.status for r in replies) == [201, 409]
    loser = next(r for r in replies if r.status == 409)
    assert loser.json["error_code"] == "INSUFFICIENT_BALANCE"
    assert (await balance(db, seller))["available_cents"] == 4000

    many = await asyncio.gather(*[
        api("POST", "/api/dashboard/request-payout", token=token, json={"amount": "15.00"})
        for _ in range(5)])
    assert sorted(r.status for r in many) == [201, 201, 409, 409, 409]
    stored = await balance(db, seller)
    assert stored["available_cents"] == 1000 and stored["available_cents"] >= 0
    assert await db.payouts.count_documents({"seller_id": seller}) == 3
    lines = await db.ledger_entries.find({"seller_id": seller, "kind": "payout"}).to_list(None)
    assert sorted(x["amount_cents"] for x in lines) == [-6000, -1500, -1500]

    listed = await api("GET", "/api/dashboard/payouts", token=token)
    assert listed.status == 200 and listed.json["total"] == 3
    bal = listed.json["balance"]
    assert cents(bal["available"]) == 1000 and cents(bal["in_payout"]) == 9000
    assert cents(bal["lifetime_earnings"]) == 10000


@pytest.mark.gen_test
async def test_payout_request_bad_input(api, services, tokens):
    db = services.db
    seller = await uid(db, CREATOR)
    await give_available(db, seller, 5000)
    token = await tokens(CREATOR)
    no_method = await api("POST", "/api/users/me/payout-request", token=token,
                          json={"amount": 20})
    assert no_method.status == 422 and "method_id" in no_method.json["field_errors"]
    method = await add_bank(api, token)
    for amount in (0, -5, "10.001", 10.005, "abc", True, None, 9.99, "NaN", "1e400", [10]):
        reply = await api("POST", "/api/users/me/payout-request", token=token,
                          json={"amount": amount})
        assert reply.status == 422 and "amount" in reply.json["field_errors"], amount
    for payload in ({}, {"amount": 20, "currency": "eur"}, {"amount": 20, "note": "x" * 501}):
        assert (await api("POST", "/api/users/me/payout-request", token=token,
                          json=payload)).status == 422, payload
    too_much = await api("POST", "/api/users/me/payout-request", token=token, json={"amount": 51})
    assert too_much.status == 409 and too_much.json["error_code"] == "INSUFFICIENT_BALANCE"
    other_method = await add_bank(api, await tokens(CREATOR2))
    for ref in (other_method["id"], "nope", str(ObjectId())):
        reply = await api("POST", "/api/users/me/payout-request", token=token,
                          json={"amount": 20, "method_id": ref})
        assert reply.status == 404, ref
    assert await db.payouts.count_documents({}) == 0
    assert (await balance(db, seller))["available_cents"] == 5000
    ok = await api("POST", "/api/users/me/payout-request", token=token,
                   json={"amount": "50.00", "method_id": method["id"], "note": "thanks"})
    assert ok.status == 201
    assert ok.json["payout"]["status"] == "requested" and cents(ok.json["payout"]["amount"]) == 5000
    assert ok.json["payout"]["method"]["details"]["last4"] == "6789"
    assert cents(ok.json["balance"]["available"]) == 0
    assert (await api("POST", "/api/users/me/payout-request", json={"amount": 20})).status == 401


async def requested(api, db, tokens, amount=3000) -> tuple:
    seller = await uid(db, CREATOR)
    await give_available(db, seller, 10000)
    token = await tokens(CREATOR)
    await add_bank(api, token)
    reply = await api("POST", "/api/users/me/payout-request", token=token,
                      json={"amount": amount / 100})
    assert reply.status == 201
    return seller, reply.json["payout"]["id"]


@pytest.mark.gen_test
async def test_approve_pays_once(api, services, tokens):
    db = services.db
    seller, payout_id = await requested(api, db, tokens)
    admin = await tokens(ADMIN)
    replies = await asyncio.gather(*[
        api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve", token=admin)
        for _ in range(3)])
    assert sorted(r.status for r in replies) == [200, 409, 409]
    won = next(r for r in replies if r.status == 200)
    assert won.json["status"] == "paid" and won.json["paid_at"]
    stored = await balance(db, seller)
    assert stored == {"pending_cents": 0, "available_cents": 7000, "paid_out_cents": 3000}
    reject = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/reject", token=admin,
                       json={"reason": "too late"})
    assert reject.status == 409 and reject.json["error_code"] == "INVALID_STATE"
    me = await api("GET", "/api/users/me/revenue", token=await tokens(CREATOR))
    bal = me.json["balance"]
    assert cents(bal["paid_out"]) == 3000 and cents(bal["in_payout"]) == 0
    assert cents(bal["available"]) + cents(bal["paid_out"]) == cents(bal["lifetime_earnings"])
    action = await db.admin_actions.find_one({"target_type": "payout"})
    assert action["action_type"] == "payout_paid"


@pytest.mark.gen_test
async def test_two_step_approval(api, services, tokens):
    db = services.db
    seller, payout_id = await requested(api, db, tokens)
    admin = await tokens(ADMIN)
    step = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve", token=admin,
                     json={"paid": False, "note": "queued for Friday"})
    assert step.status == 200 and step.json["status"] == "approved"
    assert (await balance(db, seller))["paid_out_cents"] == 0
    again = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve", token=admin,
                      json={"paid": False})
    assert again.status == 409
    paid = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve", token=admin,
                     json={})
    assert paid.status == 200 and paid.json["status"] == "paid"
    assert (await balance(db, seller))["paid_out_cents"] == 3000


@pytest.mark.gen_test
async def test_reject_returns_the_amount(api, services, tokens):
    db = services.db
    seller, payout_id = await requested(api, db, tokens)
    admin = await tokens(ADMIN)
    assert (await balance(db, seller))["available_cents"] == 7000
    for payload in ({}, {"reason": "  "}, {"reason": "ok", "x": 1}):
        reply = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/reject", token=admin,
                          json=payload)
        assert reply.status == 422, payload
    replies = await asyncio.gather(
        api("POST", f"/api/admin/revenue/payouts/{payout_id}/reject", token=admin,
            json={"reason": "Bank details do not match"}),
        api("POST", f"/api/admin/revenue/payouts/{payout_id}/reject", token=admin,
            json={"reason": "Bank details do not match"}),
        api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve", token=admin))
    assert sorted(r.status for r in replies) == [200, 409, 409]
    doc = await db.payouts.find_one({"_id": ObjectId(payout_id)})
    stored = await balance(db, seller)
    if doc["status"] == "rejected":
        assert stored["available_cents"] == 10000 and stored["paid_out_cents"] == 0
        reversal = await db.ledger_entries.find({"payout_id": doc["_id"]}).to_list(None)
        assert sorted(x["amount_cents"] for x in reversal) == [-3000, 3000]
        assert doc["note"] == "Bank details do not match"
    else:
        assert stored["available_cents"] == 7000 and stored["paid_out_cents"] == 3000


@pytest.mark.gen_test
async def test_reject_alone(api, services, tokens):
    db = services.db
    seller, payout_id = await requested(api, db, tokens)
    reply = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/reject",
                      token=await tokens(ADMIN), json={"reason": "Bank details do not match"})
    assert reply.status == 200 and reply.json["status"] == "rejected"
    assert (await balance(db, seller))["available_cents"] == 10000
    mine = await api("GET", "/api/dashboard/payouts?status=rejected", token=await tokens(CREATOR))
    assert [p["id"] for p in mine.json["items"]] == [payout_id]


@pytest.mark.gen_test
async def test_payout_permissions(api, services, tokens):
    db = services.db
    _, payout_id = await requested(api, db, tokens)
    theirs = await api("GET", "/api/dashboard/payouts", token=await tokens(CREATOR2))
    assert theirs.status == 200 and theirs.json["total"] == 0
    paths = [("GET", "/api/admin/revenue/payouts"),
             ("POST", f"/api/admin/revenue/payouts/{payout_id}/approve"),
             ("POST", f"/api/admin/revenue/payouts/{payout_id}/reject")]
    for method, path in paths:
        assert (await api(method, path)).status == 401
        for email in (BUYER, CREATOR, MODERATOR):
            reply = await api(method, path, token=await tokens(email),
                              json={"reason": "nope nope"} if "reject" in path else None)
            assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN", (email, path)
    admin = await tokens(ADMIN)
    listed = await api("GET", "/api/admin/revenue/payouts?status=requested", token=admin)
    assert listed.status == 200 and [p["id"] for p in listed.json["items"]] == [payout_id]
    assert listed.json["items"][0]["seller"]["username"] == "creator"
    by_seller = await api("GET", f"/api/admin/revenue/payouts?seller_id={await uid(db, CREATOR2)}",
                          token=admin)
    assert by_seller.json["total"] == 0
    for ref in ("nope", str(ObjectId())):
        reply = await api("POST", f"/api/admin/revenue/payouts/{ref}/approve", token=admin)
        assert reply.status == 404, ref
    assert (await api("GET", "/api/admin/revenue/payouts?status=lost", token=admin)).status == 422
    assert (await api("GET", "/api/admin/revenue/payouts?seller_id=zz", token=admin)).status == 404
