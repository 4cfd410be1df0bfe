"""Payment providers (docs/architecture.md §5): one interface, Stripe and the embedded test provider.

`open_payment_provider(settings)` picks `StripeProvider` when `STRIPE_SECRET_KEY` is set (the
real `stripe` library, its async calls through `StripeClient`, `STRIPE_API_BASE` to point it at
another address), else `TestPaymentProvider` (embedded default: Stripe's test-card semantics,
in memory, no network).

Every call returns a `PaymentIntentResult` whose `status` is one of "succeeded",
"requires_action", "requires_payment_method", "requires_confirmation", "processing" or
"canceled". A declined card is a result with status "requires_payment_method" and a
`failure_code`, not an exception; an unknown payment method raises PaymentFailed (402); an
unreachable or misconfigured provider raises ProviderUnavailable (503).

Webhooks: both providers verify Stripe's signature scheme on the raw body
(``Stripe-Signature: t=<unix>,v1=<hex hmac_sha256(secret, f"{t}.{payload}")>``) with
`STRIPE_WEBHOOK_SECRET`; without a secret every webhook is refused.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import stripe

from config import Settings
from documents.errors import BadRequest, DomainError, NotFound, PaymentFailed

log = logging.getLogger("hwc3d.payments")

WEBHOOK_TOLERANCE_SECONDS = 300


class ProviderUnavailable(DomainError):
    """503 `PAYMENT_PROVIDER_UNAVAILABLE`: the provider could not be reached; retry later."""

    status, error_code = 503, "PAYMENT_PROVIDER_UNAVAILABLE"


@dataclass(frozen=True)
class PaymentIntentResult:
    """What we keep of a PaymentIntent. `amount_cents` in the currency's minor unit."""

    id: str
    status: str
    amount_cents: int
    currency: str
    client_secret: str | None = None
    next_action: dict | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    """A refund at the provider: its id, amount in cents and status ("succeeded", "pending")."""

    id: str
    amount_cents: int
    status: str
    payment_intent_id: str


class PaymentProvider:
    """The interface of a payment provider (async). Subclasses implement every method."""

    name = "abstract"

    def __init__(self, settings: Settings):
        self.settings = settings

    async def create_payment_intent(self, amount_cents: int, currency: str, *,
                                    idempotency_key: str, metadata: dict,
                                    payment_method_token: str) -> PaymentIntentResult:
        """Create and confirm a PaymentIntent for `amount_cents` with the card token
        (`tok_...`) or PaymentMethod id (`pm_...`). The same `idempotency_key` returns the same
        intent and never charges twice. Raises PaymentFailed, ProviderUnavailable."""
        raise NotImplementedError

    async def confirm_payment_intent(self, payment_intent_id: str) -> PaymentIntentResult:
        """Confirm the intent again (after the customer completed 3-D Secure)."""
        raise NotImplementedError

    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentResult:
        """The intent as the provider has it now. Raises NotFound for an unknown id."""
        raise NotImplementedError

    async def refund(self, payment_intent_id: str, amount_cents: int, *,
                     idempotency_key: str) -> RefundResult:
        """Refund `amount_cents` of the intent; the same `idempotency_key` refunds once."""
        raise NotImplementedError

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> dict:
        """The event of a webhook as a dict ``{id, type, data: {object}}`` after checking its
        signature on the raw `payload`. Raises BadRequest INVALID_SIGNATURE (400)."""
        secret = self.settings.stripe_webhook_secret
        if not secret:
            raise BadRequest("Webhooks are not configured", "INVALID_SIGNATURE")
        try:
            stripe.WebhookSignature.verify_header(payload, signature_header, secret,
                                                  WEBHOOK_TOLERANCE_SECONDS)
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError):
            raise BadRequest("Invalid webhook signature", "INVALID_SIGNATURE") from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) \
                or not isinstance(event.get("type"), str):
            raise BadRequest("Malformed webhook event", "INVALID_SIGNATURE")
        return event

    async def close(self) -> None:
        """Release network clients."""


# --------------------------------------------------------------------------- Stripe

def _intent_from_stripe(obj: Any) -> PaymentIntentResult:
    pi = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    error = pi.get("last_payment_error") or {}
    return PaymentIntentResult(
        id=pi["id"], status=pi["status"], amount_cents=int(pi["amount"]),
        currency=str(pi["currency"]).lower(), client_secret=pi.get("client_secret"),
        next_action=pi.get("next_action"),
        failure_code=error.get("decline_code") or error.get("code"),
        failure_message=error.get("message"),
        metadata=dict(pi.get("metadata") or {}))


class StripeProvider(PaymentProvider):
    """Stripe through `stripe.StripeClient` and its `*_async` calls (aiohttp transport)."""

    name = "stripe"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._http = stripe.AIOHTTPClient(timeout=30)
        bases = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(settings.stripe_secret_key, base_addresses=bases,
                                          http_client=self._http, max_network_retries=2)

    async def _call(self, fn, *args, **kwargs) -> Any:
        try:
            return await fn(*args, **kwargs)
        except stripe.CardError:
            raise
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise NotFound("Payment not found", "PAYMENT_NOT_FOUND") from None
            raise PaymentFailed(exc.user_message or "The payment was refused") from None
        except stripe.StripeError as exc:
            log.warning("stripe call failed: %s", type(exc).__name__)
            raise ProviderUnavailable("The payment provider is unavailable, try again") from None

    async def create_payment_intent(self, amount_cents, currency, *, idempotency_key, metadata,
                                    payment_method_token):
        params: dict[str, Any] = {
            "amount": amount_cents, "currency": currency, "confirm": True,
            "payment_method_types": ["card"], "metadata": dict(metadata)}
        if payment_method_token.startswith("pm_"):
            params["payment_method"] = payment_method_token
        else:
            params["payment_method_data"] = {"type": "card", "card": {"token": payment_method_token}}
        try:
            pi = await self._call(self.client.v1.payment_intents.create_async, params,
                                  options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            return self._declined(exc)
        return _intent_from_stripe(pi)

    def _declined(self, exc: stripe.CardError) -> PaymentIntentResult:
        error = exc.error
        pi = getattr(error, "payment_intent", None) if error else None
        code = (getattr(error, "decline_code", None) or exc.code or "card_declined")
        if pi is not None:
            result = _intent_from_stripe(pi)
            return PaymentIntentResult(**{**result.__dict__, "status": "requires_payment_method",
                                          "failure_code": result.failure_code or code,
                                          "failure_message": result.failure_message
                                          or exc.user_message})
        raise PaymentFailed(exc.user_message or "Your card was declined", decline_code=code)

    async def confirm_payment_intent(self, payment_intent_id):
        try:
            pi = await self._call(self.client.v1.payment_intents.confirm_async, payment_intent_id)
        except stripe.CardError as exc:
            return self._declined(exc)
        return _intent_from_stripe(pi)

    async def retrieve_payment_intent(self, payment_intent_id):
        pi = await self._call(self.client.v1.payment_intents.retrieve_async, payment_intent_id)
        return _intent_from_stripe(pi)

    async def refund(self, payment_intent_id, amount_cents, *, idempotency_key):
        refund = await self._call(
            self.client.v1.refunds.create_async,
            {"payment_intent": payment_intent_id, "amount": amount_cents},
            options={"idempotency_key": idempotency_key})
        return RefundResult(id=refund.id, amount_cents=int(refund.amount),
                            status=refund.status, payment_intent_id=payment_intent_id)

    async def close(self) -> None:
        if self._http._cached_session is not None:
            await self._http.close_async()


# --------------------------------------------------------------------------- test provider

# Stripe's test cards (https://docs.stripe.com/testing): token / PaymentMethod → behaviour.
SUCCEEDS = frozenset({"tok_visa", "pm_card_visa", "tok_mastercard", "pm_card_mastercard",
            "tok_amex", "pm_card_amex"})
DECLINES = MappingProxyType({"tok_chargeDeclined": "generic_decline",
                             "pm_card_chargeDeclined": "generic_decline",
            "tok_chargeDeclinedInsufficientFunds": "insufficient_funds",
            "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds"})
THREE_D_SECURE = frozenset({"tok_threeDSecure2Required", "pm_card_threeDSecure2Required"})


class TestPaymentProvider(PaymentProvider):
    """The embedded default: Stripe's test-card semantics in memory, idempotent by key.

    `tok_visa`/`pm_card_visa` succeed, `tok_chargeDeclined`/`pm_card_chargeDeclined` are
    declined, `tok_threeDSecure2Required`/`pm_card_threeDSecure2Required` need 3-D Secure
    (status "requires_action"); confirming such an intent again (process-payment) stands for
    the customer having passed the challenge and succeeds. Unknown tokens raise PaymentFailed.
    """

    __test__ = False  # not a pytest class
    name = "test"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._intents: dict[str, dict] = {}
        self._by_key: dict[str, str] = {}
        self._refunds: dict[str, RefundResult] = {}

    def _result(self, intent: dict) -> PaymentIntentResult:
        return PaymentIntentResult(**{k: intent[k] for k in (
            "id", "status", "amount_cents", "currency", "client_secret", "next_action",
            "failure_code", "failure_message", "metadata")})

    async def create_payment_intent(self, amount_cents, currency, *, idempotency_key, metadata,
                                    payment_method_token):
        if idempotency_key in self._by_key:
            return self._result(self._intents[self._by_key[idempotency_key]])
        token = payment_method_token
        if token not in SUCCEEDS and token not in DECLINES and token not in THREE_D_SECURE:
            raise PaymentFailed("Unknown card token", field_errors={
                "payment_details.card_token": ["Unknown test card"]})
        intent_id = f"pi_test_{secrets.token_hex(12)}"
        intent = {"id": intent_id, "amount_cents": amount_cents, "currency": currency.lower(),
                  "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                  "metadata": dict(metadata), "next_action": None, "failure_code": None,
                  "failure_message": None, "status": "succeeded", "refunded_cents": 0}
        if token in DECLINES:
            intent.update(status="requires_payment_method", failure_code=DECLINES[token],
                          failure_message="Your card was declined.")
        elif token in THREE_D_SECURE:
            intent.update(status="requires_action", next_action={
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": intent_id}})
        self._intents[intent_id] = intent
        self._by_key[idempotency_key] = intent_id
        return self._result(intent)

    def _get(self, payment_intent_id: str) -> dict:
        intent = self._intents.get(payment_intent_id)
        if intent is None:
            raise NotFound("Payment not found", "PAYMENT_NOT_FOUND")
        return intent

    async def confirm_payment_intent(self, payment_intent_id):
        intent = self._get(payment_intent_id)
        if intent["status"] in ("requires_action", "requires_confirmation"):
            intent.update(status="succeeded", next_action=None)
        return self._result(intent)

    async def retrieve_payment_intent(self, payment_intent_id):
        return self._result(self._get(payment_intent_id))

    async def refund(self, payment_intent_id, amount_cents, *, idempotency_key):
        if idempotency_key in self._refunds:
            return self._refunds[idempotency_key]
        intent = self._get(payment_intent_id)
        if intent["status"] != "succeeded" or \
                intent["refunded_cents"] + amount_cents > intent["amount_cents"]:
            raise PaymentFailed("This payment cannot be refunded", "REFUND_FAILED")
        intent["refunded_cents"] += amount_cents
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        result = RefundResult(id=f"re_test_{digest}", amount_cents=amount_cents,
                              status="succeeded", payment_intent_id=payment_intent_id)
        self._refunds[idempotency_key] = result
        return result


def open_payment_provider(settings: Settings) -> PaymentProvider:
    """`StripeProvider` when `settings.stripe_secret_key` is set, else `TestPaymentProvider`."""
    if settings.stripe_secret_key:
        return StripeProvider(settings)
    return TestPaymentProvider(settings)
