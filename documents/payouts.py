"""Payout methods and payout requests (seed 001 §7 "Financials", §13
"Revenue Management"; docs/architecture.md §4, §5).

`payout_methods` ``{_id, user_id, type: "bank_account" | "paypal", label, details, is_default,
created_at}`` keep masked details only: a bank account as ``{bank_name, account_holder,
last4}``, PayPal as ``{email_masked}`` (``j***@example.com``). The full account number,
routing number and PayPal address are never stored or logged.

`payouts` ``{_id, seller_id, amount_cents, method_id, method: {type, label, details},
status: "requested" | "approved" | "rejected" | "paid", note, created_at, decided_at,
decided_by, paid_at, counted}``.

Request (seller): MIN_PAYOUT_CENTS ≤ amount ≤ available balance. The amount is taken first,
atomically — ``find_one_and_update({_id: seller, available_cents: {$gte: amount}},
{$inc: {available_cents: -amount}, $push: {ops: "payout:<id>:<amount>"}})`` — and only then
are the payout and its negative `payout` ledger line written (then the op is dropped), so two
concurrent requests can never take more than the balance, and an amount taken by a request
that crashed before storing its payout is given back by the periodic reclaim job
(`documents.reclaim`). State machine (staff, `revenue.manage`), each step a conditional update:

    requested ──approve(paid=false)──▶ approved ──approve──▶ paid
    requested ──approve (default)────────────────────────▶ paid
    requested | approved ──reject──▶ rejected   (amount back to available + a
                                                 `payout_reversal` ledger line)

"approve" by default means the staff member has sent the money (there is no automated
transfer provider): the payout becomes `paid` and `paid_out_cents` grows. Balance moves use
`money.apply_counter` (flag `counted` on the payout), so each happens exactly once.

Once a decision is stored it is recorded as the admin action ``payout_<status>`` (with the
`amount_cents`) and the seller gets the `payout_decision` email; those follow-ups never undo
or fail the decision: a failure is logged (docs/architecture.md §4 "Side effects beside the
write").
"""
from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import admin_actions, earnings, email_notices, money, users
from documents.common import paginate, render, require_id, utcnow
from documents.errors import Conflict, Invalid, NotFound

log = logging.getLogger("hwc3d.payouts")

METHODS = "payout_methods"
PAYOUTS = earnings.PAYOUTS
LEDGER = money.LEDGER
BALANCES = money.BALANCES
METHOD_TYPES = ("bank_account", "paypal")
STATUSES = ("requested", "approved", "rejected", "paid")
MIN_PAYOUT_CENTS = 1000
MAX_PAYOUT_CENTS = 100_000_000
MAX_METHODS = 5

INDEXES = {
    METHODS: [IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)])],
    PAYOUTS: [
        IndexModel([("seller_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)]),
    ],
}


# --------------------------------------------------------------------------- methods

def mask_email(email: str) -> str:
    """``jane.doe@example.com`` → ``j***@example.com``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def masked_details(data: dict) -> dict:
    """The only details kept of a payout method (validated `data` of the request schema)."""
    if data["type"] == "bank_account":
        digits = re.sub(r"\D", "", data["account_number"])
        return {"bank_name": data["bank_name"], "account_holder": data["account_holder_name"],
                "last4": digits[-4:]}
    return {"email_masked": mask_email(data["email"])}


def _label(data: dict, details: dict) -> str:
    if data.get("label"):
        return data["label"]
    if data["type"] == "bank_account":
        return f"{details['bank_name']} ••••{details['last4']}"
    return f"PayPal {details['email_masked']}"


def render_method(doc: dict) -> dict:
    """``{id, type, label, details (masked), is_default, created_at}``."""
    return render({k: doc.get(k) for k in ("_id", "type", "label", "details", "is_default",
                                            "created_at")})


async def list_methods(db, user_id) -> list[dict]:
    """The user's payout methods (API form), oldest first."""
    docs = await db[METHODS].find({"user_id": user_id}).sort(
        [("created_at", ASCENDING), ("_id", ASCENDING)]).to_list(MAX_METHODS * 2)
    return [render_method(d) for d in docs]


async def add_method(db, user_id, data: dict) -> dict:
    """Store a payout method with masked details; returns it in API form.

    `data`: ``{type, label?, is_default?, bank_name, account_holder_name, account_number,
    routing_number?}`` or ``{type: "paypal", email, label?, is_default?}`` (validated by the
    handler). The first method, or one sent with `is_default`, becomes the default.
    Raises Conflict TOO_MANY_PAYOUT_METHODS (409) past MAX_METHODS.
    """
    count = await db[METHODS].count_documents({"user_id": user_id})
    if count >= MAX_METHODS:
        raise Conflict(f"At most {MAX_METHODS} payout methods", "TOO_MANY_PAYOUT_METHODS")
    details = masked_details(data)
    is_default = bool(data.get("is_default")) or count == 0
    doc = {"_id": ObjectId(), "user_id": user_id, "type": data["type"],
           "label": _label(data, details), "details": details, "is_default": False,
           "created_at": utcnow()}
    await db[METHODS].insert_one(doc)
    if is_default:
        await set_default(db, user_id, doc["_id"])
        doc["is_default"] = True
    return render_method(doc)


async def set_default(db, user_id, method_id) -> None:
    """Make `method_id` the user's only default method."""
    await db[METHODS].update_one({"_id": method_id, "user_id": user_id},
                                 {"$set": {"is_default": True}})
    await db[METHODS].update_many({"user_id": user_id, "_id": {"$ne": method_id}},
                                  {"$set": {"is_default": False}})


async def _method_for(db, user_id, method_ref: str | None) -> dict:
    if method_ref is not None:
        method = await db[METHODS].find_one({"_id": require_id(method_ref, "Payout method"),
                                             "user_id": user_id})
        if method is None:
            raise NotFound("Payout method not found")
        return method
    method = await db[METHODS].find_one({"user_id": user_id},
                                        sort=[("is_default", DESCENDING), ("created_at", ASCENDING)])
    if method is None:
        raise Invalid({"method_id": ["Add a payout method first"]},
                      "No payout method on file")
    return method


# --------------------------------------------------------------------------- requests

def take_op(payout_id, amount_cents: int) -> str:
    """The in-flight op a payout request leaves on the balance until its payout is stored."""
    return f"payout:{payout_id}:{amount_cents}"


async def _take(db, seller_id, amount_cents: int, payout_id) -> bool:
    taken = await db[BALANCES].find_one_and_update(
        {"_id": seller_id, "available_cents": {"$gte": amount_cents}},
        {"$inc": {"available_cents": -amount_cents},
         "$push": {"ops": take_op(payout_id, amount_cents)}})
    return taken is not None


async def _ledger_line(db, kind: str, payout: dict, amount_cents: int) -> None:
    now = utcnow()
    key = {"entry_key": f"{kind}:{payout['_id']}"}
    doc = {**key, "seller_id": payout["seller_id"], "kind": kind, "amount_cents": amount_cents,
           "transaction_id": None, "payout_id": payout["_id"], "status": "available",
           "available_at": now, "applied": True, "created_at": now}
    try:
        await db[LEDGER].update_one(key, {"$setOnInsert": doc}, upsert=True)
    except DuplicateKeyError:
        pass  # written by a concurrent retry


async def request_payout(db, seller_id, amount_cents: int, *, method_id: str | None = None,
                         note: str | None = None) -> dict:
    """A payout request of `amount_cents` (int) by the seller to a payout method (their
    default when `method_id` is None). Returns the payout in API form.

    Raises Invalid (422) below MIN_PAYOUT_CENTS or without a payout method, NotFound (404)
    for a method that is not the seller's, Conflict INSUFFICIENT_BALANCE (409) when the
    available balance is smaller (also for the loser of two concurrent requests).
    """
    if amount_cents < MIN_PAYOUT_CENTS:
        raise Invalid({"amount": [f"The minimum payout is {MIN_PAYOUT_CENTS / 100:.2f}"]})
    method = await _method_for(db, seller_id, method_id)
    await earnings.release_matured(db, seller_id)
    payout_id = ObjectId()
    if not await _take(db, seller_id, amount_cents, payout_id):
        raise Conflict("The amount is more than your available balance", "INSUFFICIENT_BALANCE")
    payout = {"_id": payout_id, "seller_id": seller_id, "amount_cents": amount_cents,
              "method_id": method["_id"],
              "method": {k: method.get(k) for k in ("type", "label", "details")},
              "status": "requested", "note": note, "created_at": utcnow(), "decided_at": None,
              "decided_by": None, "paid_at": None, "counted": False}
    await db[PAYOUTS].insert_one(payout)
    await finish_take(db, payout)
    return render_payout(payout)


async def finish_take(db, payout: dict) -> None:
    """Write the payout's ledger line (once) and drop its in-flight take op: the request is
    complete. Also how `documents.reclaim` completes a request a crash cut short."""
    await _ledger_line(db, "payout", payout, -payout["amount_cents"])
    await money.forget_op(db[BALANCES], payout["seller_id"],
                          take_op(payout["_id"], payout["amount_cents"]))


async def balances_with_takes(db) -> AsyncIterator[dict]:
    """The seller balances with a take op (`take_op`) in flight, streamed as ``{_id: seller
    id, ops}``."""
    async for balance in db[BALANCES].find({"ops": {"$regex": "^payout:"}}, {"ops": 1}):
        yield balance


async def stored(db, payout_id) -> dict | None:
    """The payout with this id, or None when it was never stored."""
    return await db[PAYOUTS].find_one({"_id": payout_id})


async def give_back_take(db, seller_id, op: str, amount_cents: int) -> bool:
    """Put back on the seller's `available_cents` the amount of a take whose payout was
    never stored, and drop its op; conditional on the op, so exactly once. True when this
    call gave it back."""
    result = await db[BALANCES].update_one(
        {"_id": seller_id, "ops": op},
        {"$inc": {"available_cents": amount_cents}, "$pull": {"ops": op}})
    return bool(result.modified_count)


def render_payout(payout: dict, seller: dict | None = None) -> dict:
    """``{id, seller_id, amount, method_id, method, status, note, created_at, decided_at,
    decided_by, paid_at}`` (+ `seller` brief card when given)."""
    out = render({k: v for k, v in payout.items() if k not in ("counted", "counted_claim")})
    if seller is not None:
        out["seller"] = users.render_brief(seller)
    return out


async def list_own(db, seller_id, *, page: int, limit: int,
                   status: str | None = None) -> tuple[list[dict], dict]:
    """One page of the seller's payouts, newest first."""
    query: dict = {"seller_id": seller_id}
    if status:
        query["status"] = status
    docs, meta = await paginate(db[PAYOUTS], query, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    return [render_payout(d) for d in docs], meta


async def list_all(db, *, page: int, limit: int, status: str | None = None,
                   seller_id=None) -> tuple[list[dict], dict]:
    """One page of every payout for staff (open ones oldest first), with seller cards."""
    query: dict = {}
    if status:
        query["status"] = status
    if seller_id is not None:
        query["seller_id"] = seller_id
    oldest_first = status in ("requested", "approved")
    order = ASCENDING if oldest_first else DESCENDING
    docs, meta = await paginate(db[PAYOUTS], query, page=page, limit=limit,
                                sort=[("created_at", order), ("_id", order)])
    sellers = await users.get_many(db, [d["seller_id"] for d in docs])
    return [render_payout(d, sellers.get(d["seller_id"])) for d in docs], meta


# --------------------------------------------------------------------------- decisions

async def _transition(db, payout_id, from_states: tuple, changes: dict) -> dict:
    oid = require_id(payout_id, "Payout")
    moved = await db[PAYOUTS].find_one_and_update(
        {"_id": oid, "status": {"$in": list(from_states)}}, {"$set": changes},
        return_document=True)
    if moved is not None:
        return moved
    if await db[PAYOUTS].find_one({"_id": oid}, {"_id": 1}) is None:
        raise NotFound("Payout not found")
    raise Conflict("The payout is not in a state that allows this", "INVALID_STATE")


async def _count(db, payout: dict, inc: dict) -> None:
    await money.apply_counter(db, PAYOUTS, {"_id": payout["_id"]}, "counted", BALANCES,
                              payout["seller_id"], f"payout:{payout['_id']}", inc,
                              money.BALANCE_DEFAULTS)


async def approve(db, mailer, payout_id, staff_user: dict, *, paid: bool = True,
                  note: str | None = None) -> dict:
    """Approve a payout: to `paid` (default; from requested or approved; `paid_out_cents`
    grows by the amount once) or, with `paid=False`, requested → `approved`. Then the
    admin action ``payout_<status>`` ``{note, amount_cents}`` is recorded and the seller is
    emailed through `mailer` (module doc). Returns the payout document. Raises NotFound
    (404), Conflict INVALID_STATE (409)."""
    now = utcnow()
    changes = {"decided_at": now, "decided_by": staff_user["_id"]}
    if note:
        changes["note"] = note
    if not paid:
        payout = await _transition(db, payout_id, ("requested",),
                                   {**changes, "status": "approved"})
    else:
        payout = await _transition(db, payout_id, ("requested", "approved"),
                                   {**changes, "status": "paid", "paid_at": now})
        await _count(db, payout, {"paid_out_cents": payout["amount_cents"]})
    await _decided(db, mailer, payout, staff_user, {"note": note})
    return payout


async def reject(db, mailer, payout_id, staff_user: dict, reason: str) -> dict:
    """Reject a requested or approved payout with `reason`: the amount goes back to the
    available balance once, with a `payout_reversal` ledger line. Then the admin action
    `payout_rejected` ``{reason, amount_cents}`` is recorded and the seller is emailed
    through `mailer` (module doc). Returns the payout. Raises NotFound (404), Conflict
    INVALID_STATE (409)."""
    payout = await _transition(db, payout_id, ("requested", "approved"),
                               {"status": "rejected", "note": reason, "decided_at": utcnow(),
                                "decided_by": staff_user["_id"]})
    await _ledger_line(db, "payout_reversal", payout, payout["amount_cents"])
    await _count(db, payout, {"available_cents": payout["amount_cents"]})
    await _decided(db, mailer, payout, staff_user, {"reason": reason})
    return payout


async def _decided(db, mailer, payout: dict, staff_user: dict, details: dict) -> None:
    """Record the stored decision and email the seller (module doc); failures are logged."""
    await admin_actions.record_after(db, staff_user, f"payout_{payout['status']}", "payout",
                                     payout["_id"],
                                     {**details, "amount_cents": payout["amount_cents"]})
    try:
        await email_notices.payout_decision(db, mailer, payout)
    except Exception:
        log.exception("could not email the seller of payout %s", payout["_id"])


async def open_count(db) -> int:
    """How many payouts wait for a staff decision (requested or approved)."""
    return await db[PAYOUTS].count_documents({"status": {"$in": ["requested", "approved"]}})
