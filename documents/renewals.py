"""Subscription renewals at period end, with dunning (the periodic job `renew_subscriptions`).

A subscription (`documents.subscriptions`) whose `current_period_end` has passed is charged
for its next period through the payment provider, with the payment method the subscriber
gave (`payment_method`; with Stripe a reusable ``pm_…`` PaymentMethod; a single-use ``tok_…``
card token cannot be charged again and ends in dunning):

- success: ``current_period_start/end`` move one PERIOD on (from the old end), the renewal is
  recorded in `renewals`, the subscriber is emailed a receipt;
- failure (declined, needs 3-D Secure, provider down): status ``past_due`` and the
  subscriber is emailed; the charge is tried again every `RENEWAL_RETRY_HOURS` (default 24);
  after `RENEWAL_TRIES` failed tries (default 4) the subscription is ``canceled`` (email).

Each try is claimed first with a conditional update on ``renewal_attempt`` (one instance
wins), and its PaymentIntent idempotency key is
``renewal-<subscription>-<period end, unix s>-<try>``: a try re-driven after a crash
returns the same PaymentIntent, so a period is never charged twice. A canceled subscription
is not renewed.
`renewals` ``{_id: "<subscription>:<period end unix s>", subscription_id, user_id,
amount_cents, payment_intent_id, period_start, period_end, created_at}``.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from documents import email_notices, users
from documents.charges import CURRENCY, payment_matches
from documents.common import utcnow
from documents.subscriptions import PERIOD, SUBSCRIPTIONS

log = logging.getLogger("hwc3d.renewals")

RENEWALS = "renewals"
CLAIM_TIMEOUT = timedelta(minutes=10)
BATCH = 200
INDEXES: dict = {}


async def due(db, now: datetime) -> list[dict]:
    """Subscriptions to charge now: active or past_due, period ended, next try due, not
    claimed by a try in flight (or claimed longer than CLAIM_TIMEOUT ago)."""
    return await db[SUBSCRIPTIONS].find({
        "status": {"$in": ["active", "past_due"]}, "current_period_end": {"$lte": now},
        "$and": [{"$or": [{"next_renewal_at": None}, {"next_renewal_at": {"$lte": now}}]},
                 {"$or": [{"renewal_claimed_at": None},
                          {"renewal_claimed_at": {"$lte": now - CLAIM_TIMEOUT}}]}]},
    ).sort("current_period_end", 1).to_list(BATCH)


async def _claim(db, sub: dict, now: datetime) -> dict | None:
    return await db[SUBSCRIPTIONS].find_one_and_update(
        {"_id": sub["_id"], "status": sub["status"],
         "current_period_end": sub["current_period_end"],
         "renewal_claimed_at": sub.get("renewal_claimed_at")},
        {"$set": {"renewal_claimed_at": now}}, return_document=True)


async def renew(db, provider, mailer, sub: dict, now: datetime, *, tries: int,
                retry_after: timedelta) -> str:
    """Try to renew `sub` once; returns "renewed", "past_due", "canceled" or "skipped"
    (another instance holds the try, or the subscription changed)."""
    claimed = await _claim(db, sub, now)
    if claimed is None:
        return "skipped"
    attempt = int(claimed.get("renewal_attempt") or 0) + 1
    end = claimed["current_period_end"]
    stamp = int(end.timestamp())
    try:
        result = await provider.create_payment_intent(
            claimed["amount_cents"], claimed.get("currency") or CURRENCY,
            idempotency_key=f"renewal-{claimed['_id']}-{stamp}-{attempt}",
            metadata={"kind": "subscription_renewal", "subscription_id": str(claimed["_id"]),
                      "user_id": str(claimed["user_id"]), "period_end": str(stamp)},
            payment_method_token=claimed.get("payment_method") or "")
        ok = payment_matches(result, claimed["amount_cents"],
                             currency=claimed.get("currency") or CURRENCY)
        reason = None if ok else (result.failure_message or result.status)
    except Exception as exc:  # declined token, provider down: a failed try either way
        result, ok, reason = None, False, str(getattr(exc, "detail", None) or exc)
    if ok:
        return await _renewed(db, mailer, claimed, result, now)
    return await _failed(db, mailer, claimed, attempt, reason, now, tries, retry_after)


async def _renewed(db, mailer, sub: dict, result, now: datetime) -> str:
    start, end = sub["current_period_end"], sub["current_period_end"] + PERIOD
    while end <= now:  # a subscription renewed long after its end starts a fresh period
        start, end = now, now + PERIOD
    await db[RENEWALS].update_one(
        {"_id": f"{sub['_id']}:{int(sub['current_period_end'].timestamp())}"},
        {"$setOnInsert": {"subscription_id": sub["_id"], "user_id": sub["user_id"],
                          "amount_cents": sub["amount_cents"], "payment_intent_id": result.id,
                          "period_start": start, "period_end": end, "created_at": now}},
        upsert=True)
    await db[SUBSCRIPTIONS].update_one(
        {"_id": sub["_id"], "renewal_claimed_at": sub["renewal_claimed_at"]},
        {"$set": {"status": "active", "current_period_start": start, "current_period_end": end,
                  "payment_intent_id": result.id, "renewal_attempt": 0, "next_renewal_at": None,
                  "renewal_claimed_at": None, "renewed_at": now, "last_renewal_error": None}})
    await _email(db, mailer, sub, "Your HWC3D subscription was renewed",
                 f"Your {sub['plan']} plan was renewed for "
                 f"{sub['amount_cents'] / 100:.2f} {sub.get('currency', CURRENCY).upper()}. "
                 f"It now runs until {end:%Y-%m-%d}.")
    return "renewed"


async def _failed(db, mailer, sub: dict, attempt: int, reason: str | None, now: datetime,
                  tries: int, retry_after: timedelta) -> str:
    final = attempt >= tries
    status = "canceled" if final else "past_due"
    changes = {"status": status, "renewal_attempt": attempt, "renewal_claimed_at": None,
               "last_renewal_error": (reason or "declined")[:300],
               "next_renewal_at": None if final else now + retry_after}
    if final:
        changes["canceled_at"] = now
    await db[SUBSCRIPTIONS].update_one(
        {"_id": sub["_id"], "renewal_claimed_at": sub["renewal_claimed_at"]}, {"$set": changes})
    log.warning("renewal of subscription %s failed (try %d of %d): %s", sub["_id"], attempt,
                tries, reason)
    if final:
        await _email(db, mailer, sub, "Your HWC3D subscription was canceled",
                     f"We could not charge your {sub['plan']} plan after {attempt} tries, so "
                     "it has been canceled. You can subscribe again at any time.")
    else:
        await _email(db, mailer, sub, "Your HWC3D subscription payment failed",
                     f"We could not charge your {sub['plan']} plan ({reason or 'declined'}). "
                     f"We will try again on {now + retry_after:%Y-%m-%d %H:%M} UTC; "
                     f"{tries - attempt} more tries before it is canceled.")
    return status


async def _email(db, mailer, sub: dict, subject: str, text: str) -> None:
    await email_notices.billing(mailer, await users.get(db, sub["user_id"]), subject, text)


async def renew_due(db, provider, mailer, *, now: datetime | None = None, tries: int,
                    retry_after: timedelta) -> dict:
    """Renew every due subscription (`due`); returns counts by outcome."""
    now = now or utcnow()
    counts: dict[str, int] = {}
    for sub in await due(db, now):
        outcome = await renew(db, provider, mailer, sub, now, tries=tries,
                              retry_after=retry_after)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
