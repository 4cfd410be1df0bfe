"""Driving a checkout's payment and rendering the checkout answer (seed 001 §16,
docs/architecture.md §5). Order shapes and creation are in `documents.orders`.

Rules:
- The PaymentIntent's idempotency key is ``order-<order_id>``: re-driving a pending order
  never charges twice.
- The intent's state decides the order's: succeeded → `fulfilment.fulfil_order`;
  requires_action/requires_confirmation → requires_action (3-D Secure); requires_payment_method
  or canceled → failed (402 PaymentFailed); processing → unchanged.
"""
from __future__ import annotations

from typing import Any

from documents.common import from_cents
from documents.errors import Conflict, Invalid, PaymentFailed
from documents.fulfilment import fulfil_order
from documents.orders import OPEN, attach_intent, fail_order, mark_requires_action


def payment_token(payment_details: dict | None) -> str | None:
    """The card token or PaymentMethod id of a checkout's `payment_details`."""
    details = payment_details or {}
    return details.get("payment_method_id") or details.get("card_token")


async def settle(db, hub, mailer, order: dict, intent) -> dict:
    """Apply a PaymentIntent's state to the order: succeeded → `fulfilment.fulfil_order`;
    requires_action/requires_confirmation → requires_action; requires_payment_method or
    canceled → failed (raises PaymentFailed 402); processing → unchanged. Returns the order."""
    order = await attach_intent(db, order, intent)
    if intent.status == "succeeded":
        return await fulfil_order(db, hub, mailer, order["_id"], intent)
    if intent.status in ("requires_action", "requires_confirmation"):
        return await mark_requires_action(db, order["_id"])
    if intent.status in ("requires_payment_method", "canceled"):
        order = await fail_order(db, order["_id"], intent.failure_code, intent.failure_message)
    return await raise_if_failed(order)


async def raise_if_failed(order: dict) -> dict:
    """Raise PaymentFailed (402) for a failed order, else return it."""
    if order["status"] == "failed":
        raise PaymentFailed(order.get("failure_message") or "Payment failed",
                            order_id=str(order["_id"]), decline_code=order.get("failure_code"))
    if order["status"] in ("canceled", "refunded"):
        raise Conflict(f"This order is {order['status']}", "ORDER_CLOSED")
    return order


async def drive_payment(db, hub, mailer, provider, order: dict, payment_details: dict | None
                        ) -> tuple[dict, Any]:
    """Take the order as far as it can go now; returns (order, intent or None).

    A free order (total 0) is fulfilled without a payment. A pending order gets its
    PaymentIntent (idempotency key ``order-<id>``, so a replay never charges twice); an order
    waiting for 3-D Secure is looked up again. Raises PaymentFailed (402) when declined,
    Invalid when a paid order has no card token.
    """
    if order["status"] == "paid":
        return await fulfil_order(db, hub, mailer, order["_id"], None), None
    if order["status"] not in OPEN:
        return await raise_if_failed(order), None
    if order["total_cents"] == 0:
        return await fulfil_order(db, hub, mailer, order["_id"], None), None
    if order.get("payment_intent_id"):
        intent = await provider.retrieve_payment_intent(order["payment_intent_id"])
    else:
        token = payment_token(payment_details)
        if not token:
            raise Invalid({"payment_details.card_token": ["A card token or payment method is required"]})
        try:
            intent = await provider.create_payment_intent(
                order["total_cents"], order["currency"], idempotency_key=f"order-{order['_id']}",
                metadata={"order_id": str(order["_id"]), "order_number": order["number"],
                          "buyer_id": str(order["buyer_id"])},
                payment_method_token=token)
        except PaymentFailed as exc:  # refused before any charge (unknown card token)
            await fail_order(db, order["_id"], exc.error_code.lower(), exc.detail)
            raise
    return await settle(db, hub, mailer, order, intent), intent


async def complete_action(db, hub, mailer, provider, order: dict) -> tuple[dict, Any]:
    """`POST /api/checkout/process-payment`: after 3-D Secure, look the intent up, confirm it
    when it still waits, and settle. Returns (order, intent or None); raises PaymentFailed,
    Conflict PAYMENT_NOT_STARTED when the order never reached the provider."""
    if order["status"] not in OPEN or order["total_cents"] == 0:
        return await drive_payment(db, hub, mailer, provider, order, None)
    if not order.get("payment_intent_id"):
        raise Conflict("This order has no payment yet: send the checkout again",
                       "PAYMENT_NOT_STARTED")
    intent = await provider.retrieve_payment_intent(order["payment_intent_id"])
    if intent.status in ("requires_action", "requires_confirmation"):
        intent = await provider.confirm_payment_intent(intent.id)
    return await settle(db, hub, mailer, order, intent), intent


def render_checkout(order: dict, intent, public_url: str, link=None) -> dict:
    """The checkout response of seed 001 §16::

        {transaction_id, transaction_ids, order_id, order_number, status, subtotal, discount,
         total_amount, platform_fee, currency, coupon_code,
         purchases: [{model_id, transaction_id, title, amount, download_url}]}

    plus, while 3-D Secure is pending, ``{payment_intent_id, client_secret, next_action}``.
    `download_url` is `link(model_id)["download_url"]` when `link` is given: a short-lived
    signed link a browser tab follows without a header, counted once when followed
    (`documents.downloads`); else our download route.
    """
    lines = order["lines"]
    out = {"transaction_id": lines[0]["transaction_id"] if lines else None,
           "transaction_ids": [line["transaction_id"] for line in lines],
           "order_id": str(order["_id"]), "order_number": order["number"],
           "status": order["status"], "subtotal": from_cents(order["subtotal_cents"]),
           "discount": from_cents(order["discount_cents"]),
           "total_amount": from_cents(order["total_cents"]),
           "platform_fee": from_cents(order["fee_cents"]), "currency": order["currency"],
           "coupon_code": order.get("coupon_code"), "purchases": []}
    if order["status"] == "paid":
        out["purchases"] = [
            {"model_id": str(line["model_id"]), "transaction_id": line["transaction_id"],
             "title": line["title"], "amount": from_cents(line["amount_cents"]),
             "download_url": link(line["model_id"])["download_url"] if link else
             f"{public_url}/api/purchases/{line['model_id']}/download"}
            for line in lines]
    if order["status"] in OPEN and intent is not None:
        out.update(payment_intent_id=intent.id, client_secret=intent.client_secret,
                   next_action=intent.next_action)
    return out
