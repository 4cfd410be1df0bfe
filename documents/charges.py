"""The one check of a payment (docs/architecture.md §7, "Payments").

Every paid flow — orders at checkout, course enrollments, subscriptions and their renewals —
charges through a `providers.payments.PaymentProvider` and then asks this module whether the
PaymentIntent it got back pays for what is being sold: succeeded, for exactly the expected
amount in integer cents, in the platform's one currency, and (when the flow tags its intents)
carrying the flow's metadata. Nothing is granted on an intent that fails this check.

The platform sells in one currency, `CURRENCY` (lower-case ISO 4217, as Stripe writes it);
every stored amount is in its minor unit (cents, docs/architecture.md §3).
"""
from __future__ import annotations

import logging

from documents.errors import PaymentFailed

CURRENCY = "usd"

log = logging.getLogger("hwc3d.payments")


def payment_matches(intent, amount_cents: int, *, currency: str = CURRENCY,
                    metadata: dict | None = None) -> bool:
    """True when `intent` (a `PaymentIntentResult`) succeeded for exactly `amount_cents` in
    `currency`, and each key of `metadata` that the intent carries has the given value (a
    key the intent lacks is not held against it: intents created before a flow tagged them)."""
    if intent.status != "succeeded" or intent.amount_cents != amount_cents:
        return False
    if (intent.currency or "").lower() != currency.lower():
        return False
    return all(intent.metadata.get(key, value) == value
               for key, value in (metadata or {}).items())


def require_payment(intent, amount_cents: int, *, currency: str = CURRENCY,
                    metadata: dict | None = None,
                    requires_action: tuple[str, str] | None = None) -> None:
    """Raise unless `intent` pays `amount_cents` in `currency` (see `payment_matches`).

    Raises `PaymentFailed` (402):
    - the intent waits for 3-D Secure (``requires_action``): with `requires_action` =
      ``(message, error_code)`` that message and code; by default
      ``PAYMENT_REQUIRES_ACTION`` carrying ``payment_intent_id``, ``client_secret`` and
      ``next_action`` so that the client can complete the authentication;
    - the intent did not succeed: the provider's decline message and ``decline_code``;
    - it succeeded for another amount, currency or purpose: ``PAYMENT_MISMATCH``.
    """
    if intent.status == "requires_action":
        if requires_action is not None:
            raise PaymentFailed(*requires_action)
        raise PaymentFailed("The payment needs authentication", "PAYMENT_REQUIRES_ACTION",
                            payment_intent_id=intent.id, client_secret=intent.client_secret,
                            next_action=intent.next_action)
    if intent.status != "succeeded":
        raise PaymentFailed(intent.failure_message or "Your card was declined",
                            decline_code=intent.failure_code)
    if not payment_matches(intent, amount_cents, currency=currency, metadata=metadata):
        log.error("payment %s (%s %s) does not pay %s %s", intent.id, intent.amount_cents,
                  intent.currency, amount_cents, currency)
        raise PaymentFailed("The payment does not match the price", "PAYMENT_MISMATCH")
