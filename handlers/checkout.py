"""Checkout routes (seed 001 §16, seed 004 "Checkout"; docs/architecture.md §5).

`POST /api/checkout` makes one order per attempt and drives its payment through the payment
provider; `POST /api/checkout/process-payment` finishes a payment that needed a second step
(3-D Secure); `GET /api/checkout/payment-methods` lists what can be used. The money rules,
idempotency and the one ``pending → paid`` transition live in `documents.orders`.
"""
from __future__ import annotations

import uuid

from marshmallow import ValidationError, fields, validate, validates_schema

from documents import charges, checkout, downloads, orders
from documents.errors import Invalid
from handlers.base import ApiHandler, ApiSchema, body, responds
from handlers.schemas_out import CheckoutOut, PaymentMethodsOut
from providers.payments import ProviderUnavailable

TOKEN = validate.Length(min=1, max=255)


class PaymentDetailsSchema(ApiSchema):
    card_token = fields.String(validate=TOKEN)
    payment_method_id = fields.String(validate=TOKEN)
    billing_address = fields.Dict(keys=fields.String(validate=validate.Length(max=40)),
                                  values=fields.String(allow_none=True,
                                                       validate=validate.Length(max=200)),
                                  validate=validate.Length(max=20), allow_none=True)


class CheckoutSchema(ApiSchema):
    model_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                            required=True, validate=validate.Length(min=1, max=orders.MAX_LINES))
    payment_method = fields.String(load_default="card", validate=validate.OneOf(("card",)))
    payment_details = fields.Nested(PaymentDetailsSchema, load_default=dict)
    coupon_code = fields.String(allow_none=True, validate=validate.Length(min=1, max=40))


class ProcessPaymentSchema(ApiSchema):
    order_id = fields.String(validate=validate.Length(min=1, max=64))
    payment_intent_id = fields.String(validate=TOKEN)

    @validates_schema
    def _one_reference(self, data, **kwargs):
        if not data.get("order_id") and not data.get("payment_intent_id"):
            raise ValidationError("order_id or payment_intent_id is required", "order_id")


class PaymentHandler(ApiHandler):
    """Shared by the payment routes: the provider and the response."""

    @property
    def provider(self):
        if self.services.payments is None:
            raise ProviderUnavailable("Payments are not configured")
        return self.services.payments

    def write_order(self, order: dict, intent) -> None:
        """200 with the checkout response (202 while the provider is still processing)."""
        status = 202 if order["status"] == "pending" else 200
        buyer_id = order["buyer_id"]

        def link(model_id) -> dict:
            return downloads.make_link(self.settings_, buyer_id, model_id, "purchase")

        self.write_json(checkout.render_checkout(order, intent, self.settings_.public_url, link),
                        status=status)


class CheckoutHandler(PaymentHandler):
    def idempotency_key(self) -> str | None:
        key = self.request.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise Invalid({"Idempotency-Key": ["1 to 255 printable characters"]})
        return key

    @body(CheckoutSchema)
    @responds(CheckoutOut)
    async def post(self) -> None:
        """Buy the models of `model_ids` with one card payment.

        Seed 001 §16: ``{transaction_id, order_id, status, total_amount,
        platform_fee, purchases: [{model_id, download_url}], ...}``; with 3-D Secure, status
        "requires_action" and ``{payment_intent_id, client_secret, next_action}``.

        The same `Idempotency-Key` with the same body answers the same order without a second
        charge; with another body 409 IDEMPOTENCY_KEY_REUSED. 402 PAYMENT_FAILED for a declined
        card (nothing bought, cart kept); 409 CHECKOUT_IN_PROGRESS while another checkout of
        these models runs; the cart's 400/404/409 codes for models that cannot be bought.
        A `coupon_code` holds one of the coupon's uses for this order (given back when the
        payment fails); 404 INVALID_COUPON, 400 COUPON_INACTIVE / COUPON_EXPIRED /
        COUPON_USED_UP (every use taken by paid orders or held by open ones) before any charge.
        """
        user, key = self.current_user, self.idempotency_key()
        fingerprint = orders.fingerprint(self.body)
        order = await orders.find_by_key(self.db, user["_id"], key, fingerprint) if key else None
        if order is None:
            order = await orders.create_order(
                self.db, user, model_ids=self.body["model_ids"],
                coupon_code=self.body.get("coupon_code"),
                payment_method=self.body["payment_method"], provider=self.provider.name,
                payment_token=checkout.payment_token(self.body.get("payment_details")),
                idempotency_key=key or f"auto:{uuid.uuid4().hex}", body_fingerprint=fingerprint)
        order, intent = await checkout.drive_payment(
            self.db, self.services.hub, self.services.mailer, self.provider, order,
            self.body.get("payment_details"))
        self.write_order(order, intent)


class ProcessPaymentHandler(PaymentHandler):
    @body(ProcessPaymentSchema)
    @responds(CheckoutOut)
    async def post(self) -> None:
        """Finish a checkout payment after 3-D Secure.

        ``{"order_id"}`` or ``{"payment_intent_id"}``:
        the intent is looked up (and confirmed again when it still waits) and the order is
        fulfilled when it succeeded for the order's amount and currency. Same response as
        checkout; 402 PAYMENT_FAILED; 404 for an unknown or another buyer's order; 409
        PAYMENT_NOT_STARTED when the order never reached the payment provider."""
        order = await orders.get_buyer_order(
            self.db, self.current_user, order_id=self.body.get("order_id"),
            payment_intent_id=None if self.body.get("order_id") else self.body["payment_intent_id"])
        order, intent = await checkout.complete_action(
            self.db, self.services.hub, self.services.mailer, self.provider, order)
        self.write_order(order, intent)


class PaymentMethodsHandler(PaymentHandler):
    @responds(PaymentMethodsOut)
    async def get(self) -> None:
        """What checkout accepts: ``{payment_methods: [{id, type, name, enabled}], currency,
        provider, test_mode}``."""
        provider = self.provider
        self.write_json({
            "payment_methods": [{"id": "card", "type": "card", "name": "Credit or debit card",
                                 "enabled": True,
                                 "accepts": ["card_token", "payment_method_id"]}],
            "currency": charges.CURRENCY, "provider": provider.name,
            "test_mode": provider.name == "test" or str(
                self.settings_.stripe_secret_key or "").startswith("sk_test_")})


routes = [
    (r"/api/checkout", CheckoutHandler),
    (r"/api/checkout/payment-methods", PaymentMethodsHandler),
    (r"/api/checkout/process-payment", ProcessPaymentHandler),
]
