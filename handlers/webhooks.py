"""`POST /api/webhooks/stripe` (DESIGN §7): the payment provider's events.

Public (the provider does not sign in) and not rate limited; the signature is checked on the
raw body with `STRIPE_WEBHOOK_SECRET` (400 INVALID_SIGNATURE), events are deduplicated by id,
and the PaymentIntent events end in the same ``pending → paid`` transition as checkout. Any
2xx tells the provider to stop retrying; a 5xx (provider unreachable) makes it retry.
"""
from __future__ import annotations

from documents import purchases
from documents.payments import ProviderUnavailable
from handlers.base import ApiHandler, public, responds


class StripeWebhookHandler(ApiHandler):
    rate_limit = None

    @public
    @responds()
    async def post(self) -> None:
        """Verify and process one event: ``{"received": true, "outcome": "..."}``; unknown
        types answer 200 with outcome "ignored", a replayed event "duplicate"."""
        provider = self.services.payments
        if provider is None:
            raise ProviderUnavailable("Payments are not configured")
        event = provider.parse_webhook(self.request.body,
                                       self.request.headers.get("Stripe-Signature"))
        outcome = await purchases.handle_stripe_event(
            self.db, self.services.hub, self.services.mailer, provider, event)
        self.write_json({"received": True, "outcome": outcome})


routes = [(r"/api/webhooks/stripe", StripeWebhookHandler)]
