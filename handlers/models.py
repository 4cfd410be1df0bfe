"""The model catalog routes (seed 000 §3, seed 001 §3–§7, §17).

`GET /api/models` (filters and sorts), `GET /api/models/featured`, `GET/PUT/DELETE
/api/models/{id}`, `/{id}/related`, `/{id}/creator`, `/{id}/public`, `POST
/{id}/toggle-publish`, `GET /api/users/me/models`, `GET /api/users/{ref}/models`,
`GET /api/users/{ref}/stats`.

Routing note: Tornado takes the first pattern that matches a path, whatever the method, so
exactly one handler class may own `/api/models`. That is `handlers.model_uploads.ModelsHandler`
(POST, the streamed multipart upload), which inherits `get` from `ModelListHandler` here;
this module therefore does not register `/api/models` itself, and the order of the two
modules in HANDLER_MODULES does not matter. The id pattern skips `upload`, `analyze`,
`safety-scan` and `featured`, so those routes are not shadowed.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate

from documents import catalog, model_listing, model_removal, model_search, model_writes, revisions, users
from documents import files as files_db
from documents import previews as previews_db
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
from handlers.previews import begin as begin_preview
from handlers.schemas_catalog import (
    CreatorProfileOut,
    ModelOut,
    PublicModelOut,
    UserStatsOut,
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
    """Filters and sort of `GET /api/models` (seed 000 §3, seed 001 §17); unknown ignored.

    `search` is relevance search (`documents.model_search`); `sort` defaults to "relevance"
    with `search`, else "newest". `facets=true` adds the filter sidebar's counts.
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
    sort = fields.String(load_default=None,
                         validate=validate.OneOf((*model_listing.SORTS, "relevance")))
    facets = fields.Boolean(load_default=False)

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
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(model_listing.SORTS)))


class UserModelsQuery(PageQuery):
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(model_listing.SORTS)))


class ModelEditSchema(catalog.ModelFieldsSchema):
    """`PUT /api/models/{id}`: the editable fields plus uploads to attach (ids or the URLs
    the upload routes returned; checked by `documents.files.resolve_references`)."""

    file_id = fields.String(allow_none=True)
    file_url = fields.String(allow_none=True)
    model_file_id = fields.String(allow_none=True)
    thumbnail_id = fields.String(allow_none=True)
    thumbnail_url = fields.String(allow_none=True)
    preview_image_ids = fields.List(fields.String(), allow_none=True)
    preview_images = fields.List(fields.String(), allow_none=True)


# --------------------------------------------------------------------------- handlers

_VALUE_COUNTS = {"type": "array", "items": {"type": "object", "description": "{value, count}"}}
_BANDS = {"type": "array", "items": {"type": "object", "description": "{value, range, count}"}}
_FLAGS = {"type": "object", "properties": {"true": {"type": "integer"},
                                           "false": {"type": "integer"}}}
FACETS = {"type": "object", "description": (
    "With `facets=true`: counts for the current query and filters (seed 001 §17, "
    "`documents.model_search.facet_counts`)"),
    "properties": {"category": _VALUE_COUNTS, "file_format": _VALUE_COUNTS, "price": _BANDS,
                   "animated": _FLAGS, "rigged": _FLAGS, "poly_count": _BANDS}}


class ModelListHandler(ApiHandler):
    @public
    @query(ModelListQuery)
    @responds(ModelOut, paginated=True, envelope={"facets": FACETS})
    async def get(self) -> None:
        """Approved, published models with filters, relevance search and sort (seed 000 §3,
        seed 001 §17); with `facets=true` also ``facets`` (`documents.model_search`)."""
        page, limit, sort, facets = (self.query.pop(k) for k in ("page", "limit", "sort", "facets"))
        docs, meta, counts = await model_search.list_models(
            self.db, self.query, page=page, limit=limit, sort=sort,
            anonymous=self.current_user is None, facets=facets)
        extra = {"facets": counts} if facets else {}
        self.write_page(await catalog.render_models(self.db, docs, self.current_user), meta,
                        **extra)


class FeaturedHandler(ApiHandler):
    @public
    @query(LimitQuery)
    @responds(ModelOut, items=True)
    async def get(self) -> None:
        """Featured public models, newest approval first: ``{"items": [...]}``."""
        docs = await model_listing.list_featured(self.db, self.query["limit"])
        self.write_json({"items": await catalog.render_models(self.db, docs, self.current_user)})


class ModelHandler(ApiHandler):
    @public
    @responds(ModelOut)
    async def get(self, model_id: str) -> None:
        """One model. Public when approved and published; the creator and staff also see it
        in other states, with private fields (file_key, rejection_reason). Others: 404."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        self.write_json((await catalog.render_models(self.db, [model], self.current_user))[0])

    @body(ModelEditSchema)
    @responds(ModelOut)
    async def put(self, model_id: str) -> None:
        """Edit a model (creator or staff; seed 000 §3, seed 001 §7). Price, title,
        description, tags, category and images (``thumbnail_id``/``thumbnail_url``,
        ``preview_image_ids``/``preview_images`` of `POST /api/upload/image`) change at once
        and a listed model stays listed; a new model file (``file_id``/``file_url`` of
        `POST /api/upload/model`) waits for review while the approved one stays live. The
        answer is the model with ``under_review``: ``["file"]``, ``["model"]`` (pending) or
        ``[]``. An owner's content change of a rejected model resubmits it. 403 for another
        user's public model or upload, 404 for a hidden model, 409 FILE_ALREADY_ATTACHED,
        422 on bad fields or unknown files."""
        user = self.require_user()
        model = await catalog.get_managed(self.db, model_id, user)
        changes = dict(self.body)
        named = {k: changes.pop(k) for k in files_db.REFERENCE_FIELDS if k in changes}
        refs = await files_db.resolve_references(self.db, named, require_file=False)
        owner = await users.get(self.db, model["creator_id"]) or user
        if refs.get("thumbnail_id"):
            thumb = await files_db.claim(self.db, refs["thumbnail_id"], owner,
                                         files_db.IMAGE_KINDS, model["_id"], "thumbnail_id")
            changes.update(thumbnail_url=thumb["url"], thumbnails=None, thumbnail_auto=False)
        if "preview_image_ids" in refs:
            images = [await files_db.claim(self.db, ref, owner, files_db.IMAGE_KINDS,
                                           model["_id"], "preview_image_ids")
                      for ref in refs["preview_image_ids"]]
            changes["preview_images"] = [image["url"] for image in images]
        if changes:
            model = await model_writes.update_model(self.db, model, changes, user)
        if refs.get("file_id"):
            record = await files_db.claim(self.db, refs["file_id"], owner, ("model",),
                                          model["_id"], "file_id")
            if not record.get("preview"):
                await begin_preview(self.services, record)
            model, _ = await revisions.replace_file(self.db, model, record)
            await previews_db.resync(self.db, record["_id"])
            model = await catalog.get_model(self.db, model["_id"])
        out = (await catalog.render_models(self.db, [model], user))[0]
        out["under_review"] = revisions.under_review(model)
        self.write_json(out)

    @responds(status=204)
    async def delete(self, model_id: str) -> None:
        """Delete a model (creator or staff); counters are fixed. 204; 409 MODEL_HAS_PURCHASES when bought."""
        model = await catalog.get_managed(self.db, model_id, self.require_user())
        _, media_keys = await model_removal.remove_model(self.db, model["_id"], by_staff=self.is_staff())
        for key in media_keys:
            await self.services.storage.delete(key)
        self.no_content()


class RelatedHandler(ApiHandler):
    @public
    @query(LimitQuery)
    @responds(ModelOut, items=True)
    async def get(self, model_id: str) -> None:
        """Public models of the same category or sharing a tag (seed 001 §4): ``{"items"}``."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        docs = await model_listing.list_related(self.db, model, self.query["limit"])
        self.write_json({"items": await catalog.render_models(self.db, docs, self.current_user)})


class ModelCreatorHandler(ApiHandler):
    @public
    @responds(CreatorProfileOut)
    async def get(self, model_id: str) -> None:
        """The model's creator: public profile plus `stats` (seed 001 §4 "Load creator info")."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        creator = await users.get(self.db, model["creator_id"])
        if creator is None:
            raise NotFound("User not found", "USER_NOT_FOUND")
        out = users.render_public(creator)
        out["stats"] = await model_listing.creator_stats(self.db, creator)
        self.write_json(out)


class PublicViewHandler(ApiHandler):
    @public
    @responds(PublicModelOut)
    async def get(self, model_id: str) -> None:
        """The public viewer shape of a model (seed 001 §5): no private or moderation fields."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        creator = await users.get(self.db, model["creator_id"])
        self.write_json(catalog.render_public_view(model, creator))


class TogglePublishHandler(ApiHandler):
    @responds(ModelOut)
    async def post(self, model_id: str) -> None:
        """Publish or unpublish a model (its creator, or staff taking it off the
        marketplace): flips `is_published`.

        409 CONCURRENT_UPDATE when the model keeps changing meanwhile."""
        user = self.require_user()
        model = await catalog.get_visible(self.db, model_id, user)
        if model["creator_id"] != user["_id"] and not users.is_staff(user):
            raise Forbidden("Only the creator can publish or unpublish this model")
        model = await model_writes.toggle_publish(self.db, model)
        self.write_json((await catalog.render_models(self.db, [model], user))[0])


class MyModelsHandler(ApiHandler):
    @query(MyModelsQuery)
    @responds(ModelOut, paginated=True)
    async def get(self) -> None:
        """The signed-in user's models of every status (filter `status`), with private fields."""
        user = self.require_user()
        docs, meta = await model_listing.list_by_creator(
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
        docs, meta = await model_listing.list_by_creator(
            self.db, creator["_id"], page=self.query["page"], limit=self.query["limit"],
            public_only=True, sort=self.query["sort"])
        self.write_page(await catalog.render_models(self.db, docs, self.current_user), meta)


class UserStatsHandler(ApiHandler):
    @public
    @responds(UserStatsOut)
    async def get(self, ref: str) -> None:
        """A user's public figures (seed 004 `GET /api/users/:username/stats`): models_count,
        total_views, total_likes, total_downloads, total_sales, followers/following, rating.
        `me` names the signed-in user (401 without a token)."""
        user = self.require_user() if ref == "me" else await users.find(self.db, ref)
        out = await model_listing.creator_stats(self.db, user)
        out["user_id"] = str(user["_id"])
        out["username"] = user["username"]
        self.write_json(out)


routes = [
    # (r"/api/models", ModelListHandler) is served by handlers.model_uploads.ModelsHandler.
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
