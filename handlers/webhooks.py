"""`POST /api/webhooks/stripe` (docs/architecture.md §5): the payment provider's events.

Public (the provider does not sign in) and not rate limited; the signature is checked on the
raw body with `STRIPE_WEBHOOK_SECRET` (400 INVALID_SIGNATURE), events are deduplicated by id,
and the PaymentIntent events end in the same ``pending → paid`` transition as checkout. Any
2xx tells the provider to stop retrying; a 5xx (provider unreachable) makes it retry.
"""
from __future__ import annotations

from documents import webhook_events
from handlers.base import ApiHandler, public, responds
from handlers.schemas_catalog import WebhookReceiptOut
from providers.payments import ProviderUnavailable


class StripeWebhookHandler(ApiHandler):
    rate_limit = None

    @public
    @responds(WebhookReceiptOut)
    async def post(self) -> None:
        """Verify and process one event: ``{"received": true, "outcome": "..."}``.

        Unknown types answer 200 with outcome "ignored", a replayed event "duplicate"; 400
        INVALID_SIGNATURE for a bad signature (or webhooks not configured); 503 when the
        payment provider cannot be reached (the provider retries).
        """
        provider = self.services.payments
        if provider is None:
            raise ProviderUnavailable("Payments are not configured")
        event = provider.parse_webhook(self.request.body,
                                       self.request.headers.get("Stripe-Signature"))
        outcome = await webhook_events.handle_stripe_event(
            self.db, self.services.hub, self.services.mailer, provider, event)
        self.write_json({"received": True, "outcome": outcome})


routes = [(r"/api/webhooks/stripe", StripeWebhookHandler)]
