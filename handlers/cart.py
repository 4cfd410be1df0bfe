"""Cart routes (seed 000 §4, seed 004 "Cart"): list with totals, add, remove, apply a coupon.

The rules (own, unavailable, free, already bought, duplicates) live in `documents.cart`.
A coupon is not stored on the cart: `apply-coupon` checks it and answers the cart priced with
it; the client sends the same `coupon_code` to `POST /api/checkout`.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from documents import cart, coupons, orders
from handlers.base import ApiHandler, ApiSchema, body, query, responds
from handlers.schemas_out import CartAddedOut, CartOut


class CartQuery(ApiSchema):
    coupon_code = fields.String(validate=validate.Length(min=1, max=40))


class AddToCartSchema(ApiSchema):
    model_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ApplyCouponSchema(ApiSchema):
    code = fields.String(validate=validate.Length(min=1, max=40))
    coupon_code = fields.String(validate=validate.Length(min=1, max=40))

    @validates_schema
    def _one_code(self, data, **kwargs):
        if not data.get("code") and not data.get("coupon_code"):
            raise ValidationError("A coupon code is required", "code")


class CartHandler(ApiHandler):
    @query(CartQuery)
    @responds(CartOut)
    async def get(self) -> None:
        """The caller's cart with its totals, optionally priced with a coupon.

        ``{items, item_count, subtotal, discount, total, platform_fee,
        currency, coupon}``; `?coupon_code=` prices it with a coupon (404 INVALID_COUPON,
        400 COUPON_EXPIRED / COUPON_INACTIVE / COUPON_USED_UP)."""
        code = self.query.get("coupon_code")
        coupon = await coupons.get_valid_coupon(self.db, code) if code else None
        self.write_json(await orders.quote_cart(self.db, self.current_user, coupon))

    @body(AddToCartSchema)
    @responds(CartAddedOut, status=201)
    async def post(self) -> None:
        """Add a model (``{"model_id"}``): 201 with the cart and the new `item`. 400
        CANNOT_BUY_OWN_MODEL / MODEL_IS_FREE, 404 MODEL_NOT_FOUND / MODEL_NOT_AVAILABLE,
        409 ALREADY_IN_CART / ALREADY_PURCHASED / CART_FULL."""
        item = await cart.add_item(self.db, self.current_user, self.body["model_id"])
        out = await cart.get_cart(self.db, self.current_user)
        out["item"] = {"id": str(item["_id"]), "model_id": str(item["model_id"])}
        self.write_json(out, status=201)


class CartItemHandler(ApiHandler):
    @responds(CartOut)
    async def delete(self, model_id: str) -> None:
        """Remove a model from the cart: 200 with the cart; 404 NOT_IN_CART."""
        await cart.remove_item(self.db, self.current_user, model_id)
        self.write_json(await cart.get_cart(self.db, self.current_user))


class ApplyCouponHandler(ApiHandler):
    @body(ApplyCouponSchema)
    @responds(CartOut)
    async def post(self) -> None:
        """Price the cart with a coupon code, without taking one of its uses.

        Checks a coupon (``{"code"}``) and answers the cart priced with it (seed 004 §5
        `Coupon`: percent off, max uses, expiry, active flag): 404 INVALID_COUPON, 400
        COUPON_INACTIVE / COUPON_EXPIRED / COUPON_USED_UP (uses held by orders waiting for
        their payment count as taken). A quote only: checkout takes the use."""
        code = self.body.get("code") or self.body["coupon_code"]
        coupon = await coupons.get_valid_coupon(self.db, code)
        self.write_json(await orders.quote_cart(self.db, self.current_user, coupon))


routes = [
    (r"/api/cart", CartHandler),
    (r"/api/cart/apply-coupon", ApplyCouponHandler),
    (r"/api/cart/([^/]+)", CartItemHandler),
]
