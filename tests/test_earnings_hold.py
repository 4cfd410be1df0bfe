"""The refund hold and paying creators over real HTTP: `EARNINGS_HOLD_DAYS`, pending lines
with the date each becomes available, the demo creators' past sales available on a fresh
start, and a payout requested, approved and marked paid by staff."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, CREATOR, CREATOR_ID, ROBOT

from documents.common import to_cents, utcnow
from documents.seed import fixture_documents

VISA = {"card_token": "tok_visa"}


@pytest.fixture
def settings_overrides():
    return {"earnings_hold_days": 3}


def seeded_earnings(seller_id: ObjectId) -> int:
    return sum(e["amount_cents"] for e in fixture_documents()["ledger_entries"]
               if e["seller_id"] == seller_id)


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.mark.gen_test
async def test_seeded_creator_is_paid_out(api, tokens, services):
    creator, admin = await tokens(CREATOR), await tokens(ADMIN)
    owed = seeded_earnings(ObjectId(CREATOR_ID))
    assert owed > 1000
    page = await api("GET", "/api/dashboard/payouts", token=creator)
    assert page.status == 200, page.json
    balance = page.json["balance"]
    assert to_cents(balance["available"]) == owed and balance["pending"] == 0
    assert balance["pending_lines"] == [] and balance["hold_days"] == 3
    method = await api("POST", "/api/users/me/payout-methods", token=creator, json={
        "type": "bank_account", "bank_name": "First Bank", "account_holder_name": "Cre Ator",
        "account_number": "12345678"})
    assert method.status == 201, method.json
    asked = await api("POST", "/api/dashboard/request-payout", token=creator,
                      json={"amount": owed / 100})
    assert asked.status == 201, asked.json
    payout_id = asked.json["payout"]["id"]
    assert asked.json["balance"]["available"] == 0 and \
        to_cents(asked.json["balance"]["in_payout"]) == owed
    waiting = await api("GET", "/api/admin/payouts?status=requested", token=admin)
    assert [p["id"] for p in waiting.json["items"]] == [payout_id]
    assert waiting.json["items"][0]["seller"]["username"] == "creator"
    approved = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve",
                         token=admin, json={"paid": False})
    assert approved.status == 200 and approved.json["status"] == "approved"
    paid = await api("POST", f"/api/admin/payouts/{payout_id}/mark-paid", token=admin,
                     json={"note": "Wire sent"})
    assert paid.status == 200 and paid.json["status"] == "paid" and paid.json["paid_at"]
    again = await api("POST", f"/api/admin/payouts/{payout_id}/mark-paid", token=admin)
    assert again.status == 409 and again.json["error_code"] == "INVALID_STATE"
    after = (await api("GET", "/api/dashboard/payouts", token=creator)).json
    assert to_cents(after["balance"]["paid_out"]) == owed and after["balance"]["in_payout"] == 0
    assert after["items"][0]["status"] == "paid"
    actions = [a["action_type"] async for a in services.db.admin_actions.find(
        {"target_type": "payout"}).sort("created_at", 1)]
    assert actions == ["payout_approved", "payout_paid"]
    for bad in ("nope", "652000000000000000009999"):
        assert (await api("POST", f"/api/admin/payouts/{bad}/mark-paid",
                          token=admin)).status == 404
    assert (await api("POST", f"/api/admin/payouts/{payout_id}/mark-paid",
                      token=creator)).status == 403


@pytest.mark.gen_test
async def test_hold_days_setting_and_pending_lines(api, tokens, services):
    creator = await tokens(CREATOR)
    before = utcnow()
    bought = await api("POST", "/api/checkout", token=await tokens(BUYER), json={
        "model_ids": [ROBOT], "payment_details": VISA})
    assert bought.status == 200, bought.json
    balance = (await api("GET", "/api/dashboard/payouts", token=creator)).json["balance"]
    assert balance["hold_days"] == 3
    [line] = balance["pending_lines"]
    assert line["amount"] == balance["pending"] == 18.49          # 19.99 less the 7.5 % fee
    assert line["transaction_id"] == bought.json["purchases"][0]["transaction_id"]
    due = parse(line["available_at"])
    assert before + timedelta(days=3) <= due <= utcnow() + timedelta(days=3)
    assert balance["next_available_at"] == line["available_at"]
    # judged by dates at read time: once the date has passed the amount is available
    await services.db.ledger_entries.update_one(
        {"transaction_id": line["transaction_id"]},
        {"$set": {"available_at": utcnow() - timedelta(seconds=1)}})
    later = (await api("GET", "/api/dashboard/payouts", token=creator)).json["balance"]
    assert later["pending"] == 0 and later["pending_lines"] == []
    assert to_cents(later["available"]) == seeded_earnings(ObjectId(CREATOR_ID)) + 1849
