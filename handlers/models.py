"""The model catalog routes (seed 000 §3, seed 001 §3–§7, §17).

`GET /api/models` (filters and sorts), `GET /api/models/featured`, `GET/PUT/DELETE
/api/models/{id}`, `/{id}/related`, `/{id}/creator`, `/{id}/public`, `POST
/{id}/toggle-publish`, `GET /api/users/me/models`, `GET /api/users/{ref}/models`,
`GET /api/users/{ref}/stats`.

Routing note: Tornado takes the first pattern that matches a path, whatever the method, so
exactly one handler class may own `/api/models`. That is `handlers.uploads.ModelsHandler`
(POST, the streamed multipart upload), which inherits `get` from `ModelListHandler` here;
this module therefore does not register `/api/models` itself, and the order of the two
modules in HANDLER_MODULES does not matter. The id pattern skips `upload`, `analyze`,
`safety-scan` and `featured`, so those routes are not shadowed.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate

from documents import catalog, users
from documents.common import to_cents
from documents.errors import Forbidden, NotFound
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    public,
    query,
    responds,
)

MODEL_ID = r"(?!upload$|analyze$|safety-scan$|featured$)([^/]+)"
USER_REF = r"(?!me$)([^/]+)"


# --------------------------------------------------------------------------- schemas

def _range_text(data: dict, name: str, cast) -> tuple:
    """Parse ``"low-high"`` (either side may be empty) of `data[name]`; ValidationError on `name`."""
    low, sep, high = data.pop(name).partition("-")
    try:
        if not sep:
            raise ValueError(name)
        return (cast(low.strip()) if low.strip() else None,
                cast(high.strip()) if high.strip() else None)
    except (ValueError, ArithmeticError):
        raise ValidationError("Use min-max, e.g. 10-50", name) from None


class ModelListQuery(PageQuery):
    """Filters and sort of `GET /api/models` (seed 000 §3, seed 001 §17). Unknown → 422.

    `price_range` ("10-50") and `poly_count_range` ("1000-50000") are the range forms of
    seed 001 §17; `min_*`/`max_*` win over them. Tags match any of the given tags.
    """

    category = fields.String(validate=validate.Length(min=1, max=60))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=30)),
                       validate=validate.Length(max=20))
    min_price = fields.Decimal(validate=validate.Range(min=0, max=100_000), allow_nan=False)
    max_price = fields.Decimal(validate=validate.Range(min=0, max=100_000), allow_nan=False)
    price_range = fields.String(validate=validate.Length(max=30))
    is_free = fields.Boolean()
    has_animations = fields.Boolean()
    has_rigging = fields.Boolean()
    min_poly_count = fields.Integer(validate=validate.Range(min=0))
    max_poly_count = fields.Integer(validate=validate.Range(min=0))
    poly_count_range = fields.String(validate=validate.Length(max=40))
    search = fields.String(validate=validate.Length(max=100))
    creator = fields.String(validate=validate.Length(min=1, max=60))
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(catalog.SORTS)))

    @post_load
    def _ranges(self, data, **kwargs):
        for name in ("min_price", "max_price"):
            if data.get(name) is not None:
                data[f"{name}_cents"] = to_cents(data.pop(name))
        if "price_range" in data:
            low, high = _range_text(data, "price_range", to_cents)
            data.setdefault("min_price_cents", low)
            data.setdefault("max_price_cents", high)
        if "poly_count_range" in data:
            low, high = _range_text(data, "poly_count_range", int)
            data.setdefault("min_poly_count", low)
            data.setdefault("max_poly_count", high)
        for low, high in (("min_price_cents", "max_price_cents"),
                          ("min_poly_count", "max_poly_count")):
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                raise ValidationError(f"{low.removesuffix('_cents')} is above "
                                      f"{high.removesuffix('_cents')}", low.removesuffix("_cents"))
        return data


class LimitQuery(ApiSchema):
    limit = fields.Integer(load_default=12, validate=validate.Range(min=1, max=50))


class MyModelsQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(catalog.STATUSES))
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(catalog.SORTS)))


class UserModelsQuery(PageQuery):
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(catalog.SORTS)))


class ModelOut(ApiSchema):
    """A model as the API shows it (documentation only)."""

    id = fields.String()
    title = fields.String()
    price = fields.Float()
    status = fields.String()
    creator = fields.Dict()


# --------------------------------------------------------------------------- handlers

class ModelListHandler(ApiHandler):
    @public
    @query(ModelListQuery)
    @responds(ModelOut, paginated=True)
    async def get(self) -> None:
        """Approved, published models with filters and sort (seed 000 §3, seed 001 §17)."""
        page, limit, sort = (self.query.pop(k) for k in ("page", "limit", "sort"))
        docs, meta = await catalog.list_public(self.db, self.query, page=page, limit=limit,
                                               sort=sort, anonymous=self.current_user is None)
        self.write_page(await catalog.render_models(self.db, docs, self.current_user), meta)


class FeaturedHandler(ApiHandler):
    @public
    @query(LimitQuery)
    @responds(ModelOut, many=True)
    async def get(self) -> None:
        """Featured public models, newest approval first: ``{"items": [...]}``."""
        docs = await catalog.list_featured(self.db, self.query["limit"])
        self.write_json({"items": await catalog.render_models(self.db, docs, self.current_user)})


class ModelHandler(ApiHandler):
    @public
    @responds(ModelOut)
    async def get(self, model_id: str) -> None:
        """One model. Public when approved and published; the creator and staff also see it
        in other states, with private fields (file_key, rejection_reason). Others: 404."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        self.write_json((await catalog.render_models(self.db, [model], self.current_user))[0])

    @body(catalog.ModelFieldsSchema)
    @responds(ModelOut)
    async def put(self, model_id: str) -> None:
        """Edit a model (creator or staff; seed 000 §3). An owner's content change of an
        approved/rejected model sends it back to review (`documents.catalog.update_model`).
        403 for another user's public model, 404 for a hidden one, 422 on bad fields."""
        user = self.require_user()
        model = await catalog.get_managed(self.db, model_id, user)
        model = await catalog.update_model(self.db, model, self.body, user)
        self.write_json((await catalog.render_models(self.db, [model], user))[0])

    async def delete(self, model_id: str) -> None:
        """Delete a model (creator or staff); counters are fixed. 204; 409 MODEL_HAS_PURCHASES when bought."""
        model = await catalog.get_managed(self.db, model_id, self.require_user())
        _, media_keys = await catalog.remove_model(self.db, model["_id"], by_staff=self.is_staff())
        for key in media_keys:
            await self.services.storage.delete(key)
        self.no_content()


class RelatedHandler(ApiHandler):
    @public
    @query(LimitQuery)
    @responds(ModelOut, many=True)
    async def get(self, model_id: str) -> None:
        """Public models of the same category or sharing a tag (seed 001 §4): ``{"items"}``."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        docs = await catalog.list_related(self.db, model, self.query["limit"])
        self.write_json({"items": await catalog.render_models(self.db, docs, self.current_user)})


class ModelCreatorHandler(ApiHandler):
    @public
    async def get(self, model_id: str) -> None:
        """The model's creator: public profile plus `stats` (seed 001 §4 "Load creator info")."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        creator = await users.get(self.db, model["creator_id"])
        if creator is None:
            raise NotFound("User not found", "USER_NOT_FOUND")
        out = users.render_public(creator)
        out["stats"] = await catalog.creator_stats(self.db, creator)
        self.write_json(out)


class PublicViewHandler(ApiHandler):
    @public
    async def get(self, model_id: str) -> None:
        """The public viewer shape of a model (seed 001 §5): no private or moderation fields."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        creator = await users.get(self.db, model["creator_id"])
        self.write_json(catalog.render_public_view(model, creator))


class TogglePublishHandler(ApiHandler):
    @responds(ModelOut)
    async def post(self, model_id: str) -> None:
        """Publish or unpublish one's own model (the creator only): flips `is_published`."""
        user = self.require_user()
        model = await catalog.get_visible(self.db, model_id, user)
        if model["creator_id"] != user["_id"]:
            raise Forbidden("Only the creator can publish or unpublish this model")
        model = await catalog.toggle_publish(self.db, model)
        self.write_json((await catalog.render_models(self.db, [model], user))[0])


class MyModelsHandler(ApiHandler):
    @query(MyModelsQuery)
    @responds(ModelOut, paginated=True)
    async def get(self) -> None:
        """The signed-in user's models of every status (filter `status`), with private fields."""
        user = self.require_user()
        docs, meta = await catalog.list_by_creator(
            self.db, user["_id"], page=self.query["page"], limit=self.query["limit"],
            status=self.query.get("status"), sort=self.query["sort"])
        self.write_page(await catalog.render_models(self.db, docs, user), meta)


class UserModelsHandler(ApiHandler):
    @public
    @query(UserModelsQuery)
    @responds(ModelOut, paginated=True)
    async def get(self, ref: str) -> None:
        """A creator's public models by user id or username (seed 004 profile page)."""
        creator = await users.find(self.db, ref)
        docs, meta = await catalog.list_by_creator(
            self.db, creator["_id"], page=self.query["page"], limit=self.query["limit"],
            public_only=True, sort=self.query["sort"])
        self.write_page(await catalog.render_models(self.db, docs, self.current_user), meta)


class UserStatsHandler(ApiHandler):
    @public
    async def get(self, ref: str) -> None:
        """A user's public figures (seed 004 `GET /api/users/:username/stats`): models_count,
        total_views, total_likes, total_downloads, total_sales, followers/following, rating.
        `me` names the signed-in user (401 without a token)."""
        user = self.require_user() if ref == "me" else await users.find(self.db, ref)
        out = await catalog.creator_stats(self.db, user)
        out["user_id"] = str(user["_id"])
        out["username"] = user["username"]
        self.write_json(out)


routes = [
    # (r"/api/models", ModelListHandler) is served by handlers.uploads.ModelsHandler.
    (r"/api/models/featured", FeaturedHandler),
    (rf"/api/models/{MODEL_ID}", ModelHandler),
    (rf"/api/models/{MODEL_ID}/related", RelatedHandler),
    (rf"/api/models/{MODEL_ID}/creator", ModelCreatorHandler),
    (rf"/api/models/{MODEL_ID}/public", PublicViewHandler),
    (rf"/api/models/{MODEL_ID}/toggle-publish", TogglePublishHandler),
    (r"/api/users/me/models", MyModelsHandler),
    (rf"/api/users/{USER_REF}/models", UserModelsHandler),
    (r"/api/users/([^/]+)/stats", UserStatsHandler),
]
