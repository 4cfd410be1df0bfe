"""Pricing plans and subscriptions (seed 004 "Pricing").

Plans are data (PLANS): free, pro and studio with a monthly price in cents and features.
`subscriptions` ``{_id, user_id, plan, status: "active" | "past_due" | "canceled",
amount_cents, currency, current_period_start, current_period_end, payment_intent_id,
payment_method, provider, created_at, canceled_at, renewal_attempt, next_renewal_at,
renewal_claimed_at, renewed_at, last_renewal_error}``.

- Subscribe charges the first period (PERIOD, 30 days) through the payment provider
  (`services.payments`, `providers.payments`) with an idempotency key unique to the attempt.
  A declined card is 402 PAYMENT_FAILED and nothing is stored; a card that needs 3-D Secure
  is refused with 402 AUTHENTICATION_REQUIRED (subscriptions have no second step yet).
  While one subscribe runs, a claim ``subscription_claims {_id: user_id}`` refuses a second
  one (409 SUBSCRIBE_IN_PROGRESS), so two clicks never charge twice. A user with access
  (an active subscription, or a canceled one before its period end) cannot subscribe again:
  409 ALREADY_SUBSCRIBED.
- Cancel is the conditional ``active → canceled``; access lasts until `current_period_end`.
  Cancelling without an active subscription (also a second cancel) is 409 NOT_SUBSCRIBED.
- Renewal: at period end the periodic job charges the next period with the stored
  `payment_method`, with retries and dunning (`documents.renewals`). A new subscription
  ends the user's earlier ones still in dunning (``past_due → canceled``).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import charges
from documents.common import omit, render, utcnow
from documents.errors import Conflict, Invalid

SUBSCRIPTIONS = "subscriptions"
CLAIMS = "subscription_claims"
PERIOD = timedelta(days=30)

PLANS = (
    {"id": "free", "name": "Free", "price_cents": 0, "interval": "month",
     "description": "Browse, buy and share models.",
     "features": ["Buy and download models", "Up to 5 uploads", "Community access",
                  "Standard support"], "limits": {"uploads": 5, "storage_gb": 1}},
    {"id": "pro", "name": "Pro", "price_cents": 1299, "interval": "month",
     "description": "For creators selling their work.",
     "features": ["Unlimited uploads", "Model analytics", "Priority review",
                  "Verified creator badge eligibility", "Priority support"],
     "limits": {"uploads": None, "storage_gb": 50}},
    {"id": "studio", "name": "Studio", "price_cents": 4999, "interval": "month",
     "description": "For teams and studios.",
     "features": ["Everything in Pro", "Team seats (5)", "Advanced analytics exports",
                  "Featured placement credits", "Dedicated support"],
     "limits": {"uploads": None, "storage_gb": 500}},
)
PLAN_IDS = tuple(p["id"] for p in PLANS)
PAID_PLANS = tuple(p["id"] for p in PLANS if p["price_cents"] > 0)

INDEXES = {
    SUBSCRIPTIONS: [
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("payment_intent_id", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("current_period_end", ASCENDING)]),
    ],
}


def plan(plan_id: str) -> dict:
    """The plan with id `plan_id`; raises Invalid (422) for an unknown one."""
    for item in PLANS:
        if item["id"] == plan_id:
            return item
    raise Invalid({"plan": [f"Must be one of: {', '.join(PLAN_IDS)}"]})


def render_plans() -> list[dict]:
    """The plans in API form (`price` a decimal)."""
    return [render(dict(p)) for p in PLANS]


def render_subscription(sub: dict, now: datetime | None = None) -> dict:
    """A subscription in API form plus `has_access` (active, or canceled before period end)."""
    out = render(omit(sub, ("payment_method", "renewal_claimed_at")))
    out["has_access"] = has_access(sub, now)
    return out


def has_access(sub: dict | None, now: datetime | None = None) -> bool:
    """True while the subscription's period runs (canceled ones keep access until its end)."""
    return bool(sub) and sub["status"] in ("active", "canceled") \
        and sub["current_period_end"] > (now or utcnow())


async def current(db, user_id) -> dict | None:
    """The user's newest subscription that still gives access, or None."""
    sub = await db[SUBSCRIPTIONS].find_one({"user_id": user_id},
                                           sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    return sub if has_access(sub) else None


async def _claim(db, user_id) -> ObjectId:
    attempt = ObjectId()
    try:
        await db[CLAIMS].insert_one({"_id": user_id, "attempt": attempt, "created_at": utcnow()})
    except DuplicateKeyError:
        raise Conflict("A subscription payment is already in progress",
                       "SUBSCRIBE_IN_PROGRESS") from None
    return attempt


AUTHENTICATION_UNSUPPORTED = (
    "This card needs 3-D Secure authentication, which subscriptions do not support yet; "
    "use another card", "AUTHENTICATION_REQUIRED")


async def subscribe(db, provider, user: dict, plan_id: str, payment_method_token: str) -> dict:
    """Subscribe `user` to the paid plan `plan_id`, charging the first period with the card
    token through `provider` (a `providers.payments.PaymentProvider`). Returns the stored
    subscription document.

    Raises Invalid (422) for an unknown or free plan, Conflict ALREADY_SUBSCRIBED /
    SUBSCRIBE_IN_PROGRESS (409), PaymentFailed (402; nothing stored), ProviderUnavailable.
    """
    chosen = plan(plan_id)
    if chosen["price_cents"] <= 0:
        raise Invalid({"plan": ["The free plan needs no subscription"]})
    if await current(db, user["_id"]) is not None:
        raise Conflict("You already have a subscription", "ALREADY_SUBSCRIBED")
    attempt = await _claim(db, user["_id"])
    try:
        if await current(db, user["_id"]) is not None:   # stored by a request that just ended
            raise Conflict("You already have a subscription", "ALREADY_SUBSCRIBED")
        metadata = {"kind": "subscription", "user_id": str(user["_id"]), "plan": plan_id,
                    "attempt": str(attempt)}
        result = await provider.create_payment_intent(
            chosen["price_cents"], charges.CURRENCY, idempotency_key=f"subscription-{attempt}",
            metadata=metadata, payment_method_token=payment_method_token)
        charges.require_payment(result, chosen["price_cents"], metadata=metadata,
                                requires_action=AUTHENTICATION_UNSUPPORTED)
        now = utcnow()
        sub = {"_id": attempt, "user_id": user["_id"], "plan": plan_id, "status": "active",
               "amount_cents": chosen["price_cents"], "currency": charges.CURRENCY,
               "current_period_start": now, "current_period_end": now + PERIOD,
               "payment_intent_id": result.id, "payment_method": payment_method_token,
               "provider": getattr(provider, "name", None), "created_at": now,
               "canceled_at": None, "renewal_attempt": 0, "next_renewal_at": None}
        await db[SUBSCRIPTIONS].insert_one(sub)
        await db[SUBSCRIPTIONS].update_many(
            {"user_id": user["_id"], "status": "past_due", "_id": {"$ne": attempt}},
            {"$set": {"status": "canceled", "canceled_at": now, "next_renewal_at": None}})
        return sub
    finally:
        await db[CLAIMS].delete_one({"_id": user["_id"], "attempt": attempt})


async def cancel(db, user_id) -> dict:
    """Cancel the user's active subscription (``active → canceled``, conditional); access
    lasts until `current_period_end`. Returns the canceled document. Raises Conflict
    NOT_SUBSCRIBED (409) when there is no active subscription (also on a second cancel)."""
    sub = await db[SUBSCRIPTIONS].find_one_and_update(
        {"user_id": user_id, "status": "active", "current_period_end": {"$gt": utcnow()}},
        {"$set": {"status": "canceled", "canceled_at": utcnow()}},
        sort=[("created_at", DESCENDING)], return_document=True)
    if sub is None:
        raise Conflict("You have no active subscription", "NOT_SUBSCRIBED")
    return sub

