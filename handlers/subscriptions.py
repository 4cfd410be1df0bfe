"""Pricing plans and subscriptions (seed 004 "Pricing").

- `GET /api/pricing/plans` (public): ``{items: [plan], current_subscription}`` — the
  subscription is the signed-in user's one that still gives access (else null).
- `POST /api/subscriptions/subscribe` ``{plan, payment_method: "card", payment_details:
  {card_token}}``: charges the first month through the payment provider; 201 with the
  subscription; 402 PAYMENT_FAILED on a declined card (nothing stored); 409
  ALREADY_SUBSCRIBED.
- `PUT /api/subscriptions/cancel`: active → canceled, access until the period end; 409
  NOT_SUBSCRIBED without an active subscription (also the second time).
"""
from __future__ import annotations

from marshmallow import fields, validate

from documents import subscriptions
from handlers.base import ApiHandler, ApiSchema, body, public, responds
from handlers.schemas_catalog import PlansOut, SubscriptionOut


class PaymentDetails(ApiSchema):
    card_token = fields.String(required=True, validate=validate.Length(min=3, max=255))


class SubscribeBody(ApiSchema):
    """`plan` (pro | studio), `payment_method` "card" (default), `payment_details.card_token`
    (a Stripe token `tok_...` or PaymentMethod `pm_...`)."""

    plan = fields.String(required=True, validate=validate.OneOf(subscriptions.PLAN_IDS))
    payment_method = fields.String(load_default="card", validate=validate.OneOf(("card",)))
    payment_details = fields.Nested(PaymentDetails, required=True)


class PlansHandler(ApiHandler):
    @public
    @responds(PlansOut)
    async def get(self) -> None:
        """The pricing plans (seed 004 "Pricing") with monthly `price` and `features`; for a
        signed-in user also `current_subscription` (or null)."""
        current = None
        if self.current_user:
            sub = await subscriptions.current(self.db, self.current_user["_id"])
            current = subscriptions.render_subscription(sub) if sub else None
        self.write_json({"items": subscriptions.render_plans(), "current_subscription": current})


class SubscribeHandler(ApiHandler):
    @body(SubscribeBody)
    @responds(SubscriptionOut, status=201)
    async def post(self) -> None:
        """Subscribe to a paid plan, charging the first month (seed 004 "Pricing"). 201 with
        the subscription; 402 PAYMENT_FAILED (declined, nothing stored); 409
        ALREADY_SUBSCRIBED / SUBSCRIBE_IN_PROGRESS; 422 unknown or free plan."""
        sub = await subscriptions.subscribe(
            self.db, self.services.payments, self.require_user(), self.body["plan"],
            self.body["payment_details"]["card_token"])
        self.write_json(subscriptions.render_subscription(sub), 201)


class CancelHandler(ApiHandler):
    @responds(SubscriptionOut)
    async def put(self) -> None:
        """Cancel the active subscription (seed 004 "Pricing"); access stays until
        `current_period_end`. 409 NOT_SUBSCRIBED when there is none."""
        sub = await subscriptions.cancel(self.db, self.require_user()["_id"])
        self.write_json(subscriptions.render_subscription(sub))


routes = [
    (r"/api/pricing/plans", PlansHandler),
    (r"/api/subscriptions/subscribe", SubscribeHandler),
    (r"/api/subscriptions/cancel", CancelHandler),
]
