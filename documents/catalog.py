"""The model catalog: the `models` collection, its fields schema, single-model reads,
search documents and rendering. Lists are in `documents.model_listing`, writes and
moderation in `documents.model_writes`.

A model document (brief "Document shapes"; seed 000 §3 `Model3D`, seed 001 §13)::

    {_id, creator_id, title, description, price_cents, is_free, category (category name),
     tags: [str], file_id, file_key (private), file_size, file_format, file_formats: [str],
     thumbnail_url, preview_images: [str], poly_count, vertex_count, texture_resolution,
     has_animations, has_rigging, has_materials, has_textures, analyzed, analysis,
     views, likes, downloads, comment_count, sales_count, rating, rating_count,
     status: "pending" | "approved" | "rejected", rejection_reason, is_featured,
     is_published, approved_at, approved_by, created_at, updated_at}

A model is public when it is approved AND published (`is_public`, `PUBLIC_QUERY`).
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)
from pymongo import ASCENDING, DESCENDING, IndexModel

from documents import search_index, users
from documents.common import (
    omit,
    render,
    require_id,
    to_cents,
    utcnow,
)
from documents.errors import Forbidden, Invalid, NotFound

COLLECTION = "models"

INDEXES = {
    COLLECTION: [
        IndexModel([("status", ASCENDING), ("is_published", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("creator_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("category", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("tags", ASCENDING)]),
        IndexModel([("is_featured", ASCENDING), ("status", ASCENDING)]),
    ]
}

STATUSES = ("pending", "approved", "rejected")
FILE_FORMATS = ("GLB", "GLTF", "OBJ", "STL", "PLY", "FBX", "BLEND")
MAX_PRICE = Decimal(10000)
MAX_TAGS = 20
MAX_TAG_LENGTH = 30

# Fields only the owner and staff see (brief: file_key is private).
PRIVATE_FIELDS = ("file_key", "file_id", "rejection_reason", "approved_by", "analysis",
                  "rejected_at", "rejected_by", "pending_file", "file_rejection_reason",
                  "file_approved_by")
PRIVATE_SET = frozenset(PRIVATE_FIELDS)
# What a viewer who may not manage a model is sent of it: everything but PRIVATE_FIELDS.
CARD_PROJECTION = {name: 0 for name in PRIVATE_FIELDS}
# Fields whose change by the owner resubmits a rejected model (see `model_writes.update_model`).
CONTENT_FIELDS = ("title", "description", "category", "tags", "texture_resolution",
                  "has_animations", "has_rigging")


# --------------------------------------------------------------------------- schema

class TagsField(fields.Field):
    """Tags as a list of strings, a JSON list string, or a comma-separated string (multipart).

    Lower-cased, stripped, deduplicated in order; at most 20 tags of at most 30 characters.
    """

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise ValidationError("Tags must be a JSON list or comma-separated text") from None
            else:
                value = [part for part in text.split(",")]
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ValidationError("Tags must be a list of strings")
        tags: list[str] = []
        for raw in value:
            tag = raw.strip().lower()
            if not tag:
                continue
            if len(tag) > MAX_TAG_LENGTH:
                raise ValidationError(f"A tag has at most {MAX_TAG_LENGTH} characters")
            if tag not in tags:
                tags.append(tag)
        if len(tags) > MAX_TAGS:
            raise ValidationError(f"At most {MAX_TAGS} tags")
        return tags


class ModelFieldsSchema(Schema):
    """The editable fields of a model (seed 000 §3 upload form, seed 001 §13).

    Loads into ``{title, description, price_cents, is_free, category, tags, ...}``:
    `price` (decimal 0..10000, 2 places) becomes `price_cents`; `is_free` and price agree
    (price 0 ⇔ free; `is_free: true` alone means price 0). Booleans accept form strings
    ("true"/"false"). Whether `category` names an active category is checked by
    `model_writes.create_model` / `update_model` (needs the database).
    """

    class Meta:
        unknown = RAISE

    title = fields.String(validate=validate.Length(min=3, max=120))
    description = fields.String(validate=validate.Length(max=5000))
    price = fields.Decimal(validate=validate.Range(min=0, max=MAX_PRICE), allow_nan=False)
    is_free = fields.Boolean()
    category = fields.String(validate=validate.Length(min=1, max=60))
    tags = TagsField()
    texture_resolution = fields.String(allow_none=True, validate=validate.Length(max=30))
    has_animations = fields.Boolean()
    has_rigging = fields.Boolean()
    is_published = fields.Boolean()

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict):
            data = {k: (v.strip() if isinstance(v, str) and k != "tags" else v)
                    for k, v in data.items()}
        return data

    @validates_schema
    def _price_agrees_with_free(self, data, **kwargs):
        price, free = data.get("price"), data.get("is_free")
        if price is not None and price.as_tuple().exponent < -2:
            raise ValidationError("At most two decimal places", "price")
        if free is True and price is not None and price != 0:
            raise ValidationError("A free model has price 0", "price")
        if free is False and price is not None and price == 0:
            raise ValidationError("A paid model needs a price above 0", "price")

    @post_load
    def _to_document(self, data, **kwargs):
        price = data.pop("price", None)
        if price is not None:
            data["price_cents"] = to_cents(price)
            data["is_free"] = data["price_cents"] == 0
        elif data.get("is_free") is True:
            data["price_cents"] = 0
        return data


class NewModelSchema(ModelFieldsSchema):
    """Fields required on creation: title, category, and a price or `is_free: true`."""

    title = fields.String(required=True, validate=validate.Length(min=3, max=120))
    category = fields.String(required=True, validate=validate.Length(min=1, max=60))

    @validates_schema
    def _priced(self, data, **kwargs):
        if data.get("price") is None and data.get("is_free") is not True:
            raise ValidationError("Give a price, or is_free: true", "price")


def validate_fields(data: dict, *, new: bool) -> dict:
    """`data` validated with NewModelSchema (new) or ModelFieldsSchema; raises Invalid (422)."""
    try:
        return (NewModelSchema() if new else ModelFieldsSchema()).load(data)
    except ValidationError as exc:
        raise Invalid({k: v if isinstance(v, list) else [str(v)]
                       for k, v in _flat(exc.messages).items()}) from None


def _flat(messages: Any) -> dict:
    if isinstance(messages, dict):
        return {str(k): (v if isinstance(v, list) and all(isinstance(m, str) for m in v) else [str(v)])
                for k, v in messages.items()}
    return {"_schema": [str(messages)]}


# --------------------------------------------------------------------------- reads

def is_public(model: dict) -> bool:
    """True when anyone may see `model`: approved and published (seed 001 §3)."""
    return model.get("status") == "approved" and bool(model.get("is_published"))


def can_manage(user: dict | None, model: dict) -> bool:
    """True for the model's creator and for staff (seed 000 §3 "creator only", plus moderation)."""
    return bool(user) and (user["_id"] == model["creator_id"] or users.is_staff(user))


async def get_many(db, ids: list) -> dict:
    """Models by id as ``{ObjectId: model}`` (one query), whatever their state."""
    if not ids:
        return {}
    return {m["_id"]: m async for m in db[COLLECTION].find({"_id": {"$in": list(ids)}})}


async def count(db, query: dict) -> int:
    """How many models match the MongoDB `query` (e.g. `PUBLIC_QUERY`)."""
    return await db[COLLECTION].count_documents(query)


async def total_downloads(db) -> int:
    """The sum of every model's `downloads` counter (seed 001 §2 "platform stats")."""
    rows = await db[COLLECTION].aggregate([
        {"$match": {}}, {"$group": {"_id": None, "total": {"$sum": "$downloads"}}}]).to_list(1)
    return int(rows[0]["total"]) if rows else 0


async def find_model(db, model_id) -> dict | None:
    """The model with ObjectId `model_id` whatever its state, or None."""
    return await db[COLLECTION].find_one({"_id": model_id})


async def show_preview(db, file_id, fields: dict, thumbnails: dict) -> None:
    """Show the preview of file `file_id` on every model using it (`documents.previews`):
    `fields` (preview_status, preview_url, file_url) on models whose live file it is, and
    on the `pending_file` of models where it waits for review; `thumbnails` (the automatic
    thumbnail fields, may be empty) only where the creator gave no thumbnail of their own."""
    await db[COLLECTION].update_many({"file_id": file_id}, {"$set": fields})
    if thumbnails:
        await db[COLLECTION].update_many(
            {"file_id": file_id, "$or": [{"thumbnail_url": None}, {"thumbnail_auto": True}]},
            {"$set": thumbnails})
    pending = {f"pending_file.{k}": v for k, v in {**fields, **thumbnails}.items()}
    await db[COLLECTION].update_many({"pending_file.file_id": file_id}, {"$set": pending})


async def uses_file(db, file_id, url: str | None = None) -> bool:
    """True when a model points at file `file_id`: as its model file, or (with the file's
    public `url`) as its thumbnail or one of its preview images."""
    uses: list[dict] = [{"file_id": file_id}]
    if url:
        uses += [{"thumbnail_url": url}, {"preview_images": url}]
    return await db[COLLECTION].find_one({"$or": uses}, {"_id": 1}) is not None


async def move_counter(db, model_id, field: str, step: int) -> dict | None:
    """`$inc` the model's counter `field` (likes, views, downloads, comments...) by `step`;
    the new model document, or None when the model is gone."""
    return await db[COLLECTION].find_one_and_update(
        {"_id": model_id}, {"$inc": {field: step}}, return_document=True)


async def set_thumbnail(db, model_id, url: str) -> None:
    """Make `url` the model's `thumbnail_url` (a presentation change: no new review)."""
    await db[COLLECTION].update_one(
        {"_id": model_id}, {"$set": {"thumbnail_url": url, "updated_at": utcnow()}})


async def get_model(db, model_id) -> dict:
    """The model with id `model_id` (any status); raises NotFound MODEL_NOT_FOUND (also for bad ids)."""
    model = await db[COLLECTION].find_one({"_id": require_id(model_id, "Model")})
    if model is None:
        raise NotFound("Model not found", "MODEL_NOT_FOUND")
    return model


async def get_visible(db, model_id, viewer: dict | None) -> dict:
    """The model if `viewer` may see it: public, or the creator's own, or staff. Else NotFound.

    A hidden model answers 404 rather than 403 so that its existence does not leak.
    """
    model = await get_model(db, model_id)
    if not is_public(model) and not can_manage(viewer, model):
        raise NotFound("Model not found", "MODEL_NOT_FOUND")
    return model


async def get_managed(db, model_id, user: dict) -> dict:
    """The model if `user` is its creator or staff; NotFound when hidden from them, Forbidden
    when they may see it (public) but not change it."""
    model = await get_model(db, model_id)
    if can_manage(user, model):
        return model
    if is_public(model):
        raise Forbidden("Only the creator can change this model")
    raise NotFound("Model not found", "MODEL_NOT_FOUND")


PUBLIC_QUERY = {"status": "approved", "is_published": True}


# --------------------------------------------------------------------------- search

async def reindex(db, model_id) -> None:
    """Bring the model's search document up to date with the stored model (called after
    every write of a model; `documents.search_index`)."""
    model = await db[COLLECTION].find_one({"_id": model_id})
    creators = await users.brief_cards(db, [model["creator_id"]]) if model else {}
    await search_index.index_model(db, model_id, model,
                                   creators.get(model["creator_id"]) if model else None)


async def search_documents(db) -> list[dict]:
    """The search documents of every model (a rebuild of the index)."""
    models = await db[COLLECTION].find({}).to_list(length=None)
    creators = await users.brief_cards(db, [m["creator_id"] for m in models])
    return [search_index.model_document(m, creators.get(m["creator_id"])) for m in models]


# --------------------------------------------------------------------------- rendering

def render_model(model: dict, creators: dict | None = None, *, private: bool = False) -> dict:
    """A model in API form: `price` from `price_cents`, `creator` brief card (from
    `creators`, ``{ObjectId: user}``), private fields (file_key, rejection_reason, ...) only
    when `private` (the creator or staff)."""
    hidden = not private and not PRIVATE_SET.isdisjoint(model)
    out = render(omit(model, PRIVATE_SET) if hidden else model)
    out["creator"] = users.render_brief((creators or {}).get(model["creator_id"]))
    return out


async def render_models(db, models: list[dict], viewer: dict | None = None) -> list[dict]:
    """Models in API form with their creators fetched in one query; private fields for the
    models `viewer` may manage."""
    creators = await creator_cards(db, [m["creator_id"] for m in models])
    return [render_model(m, creators, private=can_manage(viewer, m)) for m in models]


async def creator_cards(db, ids) -> dict:
    """The creators `ids` as ``{ObjectId: user}`` with only the fields of their brief card
    (`users.brief_cards`), in one query."""
    return await users.brief_cards(db, ids)


PUBLIC_VIEW_FIELDS = ("_id", "title", "description", "price_cents", "is_free", "category",
                      "tags", "thumbnail_url", "thumbnails", "preview_images", "preview_status",
                      "preview_url", "file_url", "file_format", "file_formats",
                      "file_size", "poly_count", "vertex_count", "texture_resolution",
                      "has_animations", "has_rigging", "has_materials", "has_textures", "views",
                      "likes", "downloads", "comment_count", "rating", "rating_count",
                      "created_at")


def render_public_view(model: dict, creator: dict | None) -> dict:
    """The public viewer shape (seed 001 §5 `GET /api/models/{id}/public`): presentation
    fields and the creator's brief card; never private or moderation fields."""
    out = render({k: model.get(k) for k in PUBLIC_VIEW_FIELDS})
    out["creator"] = users.render_brief(creator)
    out["share_url"] = f"/view/{model['_id']}"
    return out
