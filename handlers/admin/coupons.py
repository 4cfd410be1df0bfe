"""Staff coupon management (seed 001 §13 Revenue, seed 004 §5 `Coupon`); `revenue.manage`.

- `GET /api/admin/coupons` — page of coupons, newest first (`search` by code, `active`).
- `POST /api/admin/coupons` — create: `code`, `discount_type` ``percent`` (with
  `discount_percent`) or ``fixed`` (with `discount_amount`, dollars), `min_order_amount`,
  `valid_from`, `expires_at` (or `valid_until`), `max_uses`, `per_user_limit`, `is_active`
  (or `active`), `description`. 201; 409 COUPON_EXISTS.
- `GET/PUT/DELETE /api/admin/coupons/{id}` — one coupon with its uses so far (`used_count`,
  `reserved_count`, `remaining`); PUT changes any of the fields above (409
  MAX_USES_BELOW_USES when `max_uses` would drop below the uses counted and held); DELETE
  answers 204 (409 COUPON_IN_USE while an open order holds a use).
Every change is recorded in the admin audit log (`admin_actions`, target `coupon`).
"""
from __future__ import annotations

from datetime import UTC

from marshmallow import ValidationError, fields, post_load, pre_load, validate, validates_schema

from documents import coupons
from documents.common import to_cents
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff

PERMISSION = "revenue.manage"
COUPON_ID = r"([^/]+)"
ALIASES = {"valid_until": "expires_at", "active": "is_active", "type": "discount_type",
           "usage_limit": "max_uses", "minimum_order": "min_order_amount"}
MONEY = {"max": 100_000, "min": 0}


class CouponChanges(ApiSchema):
    """The fields of a coupon; every one optional (PUT)."""

    code = fields.String(validate=[validate.Length(min=3, max=40),
                                   validate.Regexp(r"^[A-Za-z0-9_-]+$",
                                                   error="Letters, digits, - and _ only")])
    description = fields.String(allow_none=True, validate=validate.Length(max=300))
    discount_type = fields.String(validate=validate.OneOf(coupons.DISCOUNT_TYPES))
    discount_percent = fields.Float(allow_none=True, allow_nan=False,
                                    validate=validate.Range(min=0, max=100, min_inclusive=False))
    discount_amount = fields.Decimal(allow_none=True, allow_nan=False,
                                     validate=validate.Range(min=0, max=100_000,
                                                             min_inclusive=False))
    min_order_amount = fields.Decimal(allow_none=True, allow_nan=False,
                                      validate=validate.Range(**MONEY))
    valid_from = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    expires_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    max_uses = fields.Integer(validate=validate.Range(min=1, max=10_000_000))
    per_user_limit = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=1000))
    is_active = fields.Boolean()

    @pre_load
    def _aliases(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for alias, name in ALIASES.items():
            if alias in out:
                value = out.pop(alias)
                if name in out and out[name] != value:
                    raise ValidationError({alias: [f"Give {name} or {alias}, not both"]})
                out[name] = value
        return out

    @validates_schema
    def _kind(self, data, **kwargs):
        kind = data.get("discount_type")
        if kind == "fixed" and data.get("discount_amount") is None:
            raise ValidationError({"discount_amount": ["A fixed coupon needs an amount"]})
        if kind == "percent" and "discount_percent" in data and data["discount_percent"] is None:
            raise ValidationError({"discount_percent": ["A percent coupon needs a percent"]})

    @post_load
    def _cents(self, data, **kwargs):
        if "discount_amount" in data:
            amount = data.pop("discount_amount")
            data["discount_amount_cents"] = to_cents(amount) if amount is not None else None
        if "min_order_amount" in data:
            data["min_order_cents"] = to_cents(data.pop("min_order_amount") or 0)
        return data


class NewCoupon(CouponChanges):
    """POST: `code` and `max_uses` required; percent unless `discount_type` says fixed."""

    @validates_schema
    def _required(self, data, **kwargs):
        missing = {name: ["Missing data for required field."]
                   for name in ("code", "max_uses") if name not in data}
        kind = data.get("discount_type", "percent")
        if kind == "percent" and data.get("discount_percent") is None:
            missing["discount_percent"] = ["A percent coupon needs a percent"]
        if missing:
            raise ValidationError(missing)


class CouponsQuery(PageQuery):
    search = fields.String(validate=validate.Length(min=1, max=40))
    active = fields.Boolean()


class CouponOut(ApiSchema):
    """A coupon as staff see it (`coupons.render_admin`)."""

    id = fields.String()
    code = fields.String()
    discount_type = fields.String()
    discount_percent = fields.Float(allow_none=True)
    discount_amount = fields.Float(allow_none=True)
    min_order_amount = fields.Float()
    valid_from = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)
    max_uses = fields.Integer()
    per_user_limit = fields.Integer(allow_none=True)
    used_count = fields.Integer()
    reserved_count = fields.Integer()
    remaining = fields.Integer()
    is_active = fields.Boolean()
    created_at = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    uses_count = fields.Integer(allow_none=True)
    valid_until = fields.String(allow_none=True)


class CouponsHandler(ApiHandler):
    @staff(PERMISSION)
    @query(CouponsQuery)
    @responds(CouponOut, paginated=True)
    async def get(self) -> None:
        """Coupons, newest first, with their uses so far; `search` by code, `active`."""
        q = self.query
        items, meta = await coupons.list_page(self.db, page=q["page"], limit=q["limit"],
                                              search=q.get("search"), active=q.get("active"))
        self.write_page(items, meta)

    @staff(PERMISSION)
    @body(NewCoupon)
    @responds(CouponOut, status=201)
    async def post(self) -> None:
        """Create a coupon (201). 409 COUPON_EXISTS; 422 on bad terms."""
        coupon = await coupons.create(self.db, self.current_user, self.body)
        self.write_json(coupons.render_admin(coupon), 201)


class CouponHandler(ApiHandler):
    @staff(PERMISSION)
    @responds(CouponOut)
    async def get(self, coupon_id: str) -> None:
        """One coupon with its uses so far. 404 NOT_FOUND."""
        self.write_json(coupons.render_admin(await coupons.get(self.db, coupon_id)))

    @staff(PERMISSION)
    @body(CouponChanges)
    @responds(CouponOut)
    async def put(self, coupon_id: str) -> None:
        """Change a coupon's terms. 404; 409 COUPON_EXISTS / MAX_USES_BELOW_USES; 422."""
        coupon = await coupons.update(self.db, coupon_id, self.body, actor=self.current_user)
        self.write_json(coupons.render_admin(coupon))

    @staff(PERMISSION)
    @responds(None, status=204)
    async def delete(self, coupon_id: str) -> None:
        """Delete a coupon (204); orders keep its code. 404; 409 COUPON_IN_USE."""
        await coupons.delete(self.db, coupon_id, actor=self.current_user)
        self.no_content()


routes = [
    (r"/api/admin/coupons", CouponsHandler),
    (rf"/api/admin/coupons/{COUPON_ID}", CouponHandler),
]
