"""The model catalog: the `models` collection, its fields schema, listing, moderation.

A model document (brief "Document shapes"; seed 000 §3 `Model3D`, seed 001 §13)::

    {_id, creator_id, title, description, price_cents, is_free, category (category name),
     tags: [str], file_id, file_key (private), file_size, file_format, file_formats: [str],
     thumbnail_url, preview_images: [str], poly_count, vertex_count, texture_resolution,
     has_animations, has_rigging, has_materials, has_textures, analyzed, analysis,
     views, likes, downloads, comment_count, sales_count, rating, rating_count,
     status: "pending" | "approved" | "rejected", rejection_reason, is_featured,
     is_published, approved_at, approved_by, created_at, updated_at}

Moderation (seed 000 §7, seed 001 §13) is a state machine moved by conditional
`find_one_and_update`: pending → approved | rejected, rejected → approved, approved →
rejected. A model is public when it is approved AND published.

Counters: the creator's `total_models` and the category's `model_count` count APPROVED
models only (what the public can find). They are incremented by the transition into
"approved" and decremented by every transition out of it (reject, edit that sends the model
back to review, delete), each applied only by the request whose conditional update won.
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
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from documents import categories as categories_db
from documents import users
from documents.common import (
    omit,
    paginate,
    render,
    require_id,
    search_regex,
    to_cents,
    utcnow,
)
from documents.errors import Conflict, Forbidden, Invalid, NotFound

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
                  "rejected_at", "rejected_by")
# What a viewer who may not manage a model is sent of it: everything but PRIVATE_FIELDS.
CARD_PROJECTION = {name: 0 for name in PRIVATE_FIELDS}
# Fields whose change sends an approved model back to review (see `update_model`).
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
    `create_model` / `update_model` (needs the database).
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


async def _require_category(db, name: str) -> str:
    """The stored name of the active category `name` (case-insensitive); raises Invalid."""
    category = await categories_db.get_active_by_name(db, name)
    if category is None:
        raise Invalid({"category": ["Unknown category"]})
    return category["name"]


# --------------------------------------------------------------------------- create

async def create_model(db, *, creator: dict, data: dict, model_file: dict,
                       thumbnail: dict | None, previews: list[dict]) -> dict:
    """Insert a new model in status "pending" and return the stored document.

    `data` is the raw form (validated here with NewModelSchema: title and category
    required, a price or `is_free`). `model_file`, `thumbnail`, `previews` are `files`
    documents (key, size, format, analysis, url). The analysis fills poly/vertex counts and
    feature flags; `has_animations` / `has_rigging` in `data` override it. Counters are not
    touched: they move on approval (module docstring). Raises Invalid (422).
    """
    fields_ = validate_fields(data, new=True)
    fields_["category"] = await _require_category(db, fields_["category"])
    now = utcnow()
    doc = {
        "creator_id": creator["_id"], "description": "", "tags": [],
        "texture_resolution": None, "is_published": True,
        **_file_fields(model_file),
        "thumbnail_url": thumbnail.get("url") if thumbnail else None,
        "preview_images": [p.get("url") for p in previews if p.get("url")],
        "views": 0, "likes": 0, "downloads": 0, "comment_count": 0, "sales_count": 0,
        "rating": 0.0, "rating_count": 0, "status": "pending", "rejection_reason": None,
        "is_featured": False, "approved_at": None, "approved_by": None,
        "created_at": now, "updated_at": now,
    }
    doc.update(fields_)
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    return doc


def _file_fields(model_file: dict) -> dict:
    """The model's file fields from a `files` document and its analysis dict."""
    analysis = model_file.get("analysis") or {}
    fmt = str(model_file.get("format") or analysis.get("format") or "").upper() or None
    return {
        "file_id": model_file.get("_id"), "file_key": model_file["key"],
        "file_size": int(model_file.get("size") or 0), "file_format": fmt,
        "file_formats": [fmt] if fmt else [],
        "poly_count": analysis.get("poly_count"), "vertex_count": analysis.get("vertex_count"),
        "has_animations": bool(analysis.get("has_animations")),
        "has_rigging": bool(analysis.get("has_rigging")),
        "has_materials": bool(analysis.get("has_materials")),
        "has_textures": bool(analysis.get("has_textures")),
        "analyzed": bool(analysis.get("analyzed")), "analysis": analysis or None,
    }


# --------------------------------------------------------------------------- reads

def is_public(model: dict) -> bool:
    """True when anyone may see `model`: approved and published (seed 001 §3)."""
    return model.get("status") == "approved" and bool(model.get("is_published"))


def can_manage(user: dict | None, model: dict) -> bool:
    """True for the model's creator and for staff (seed 000 §3 "creator only", plus moderation)."""
    return bool(user) and (user["_id"] == model["creator_id"] or users.is_staff(user))


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


SORTS = {
    "newest": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "oldest": [("created_at", ASCENDING), ("_id", ASCENDING)],
    "popular": [("views", DESCENDING), ("likes", DESCENDING), ("_id", DESCENDING)],
    "price_low": [("price_cents", ASCENDING), ("_id", DESCENDING)],
    "price_high": [("price_cents", DESCENDING), ("_id", DESCENDING)],
    "most_liked": [("likes", DESCENDING), ("_id", DESCENDING)],
    "most_downloaded": [("downloads", DESCENDING), ("_id", DESCENDING)],
    "rating": [("rating", DESCENDING), ("rating_count", DESCENDING), ("_id", DESCENDING)],
}

PUBLIC_QUERY = {"status": "approved", "is_published": True}


async def _category_name(db, ref: str) -> str:
    """The stored category name for a name or slug (case-insensitive); `ref` itself if none."""
    category = await categories_db.find_by_name_or_slug(db, ref)
    return category["name"] if category else ref


def _range(low, high) -> dict | None:
    cond = {}
    if low is not None:
        cond["$gte"] = low
    if high is not None:
        cond["$lte"] = high
    return cond or None


async def filter_query(db, filters: dict) -> dict | None:
    """The MongoDB filter for the list filters of seed 000 §3 / seed 001 §17, on top of
    `PUBLIC_QUERY`; None when nothing can match (unknown creator).

    `filters`: category (name or slug), tags ([str], any of), min/max_price_cents,
    is_free, has_animations, has_rigging, min/max_poly_count, search (literal text in
    title, description or tags), creator (id or username).
    """
    query: dict = dict(PUBLIC_QUERY)
    if filters.get("category"):
        query["category"] = await _category_name(db, filters["category"])
    if filters.get("tags"):
        query["tags"] = {"$in": [t.lower() for t in filters["tags"]]}
    for flag in ("is_free", "has_animations", "has_rigging"):
        if filters.get(flag) is not None:
            query[flag] = filters[flag]
    for name, low, high in (("price_cents", "min_price_cents", "max_price_cents"),
                            ("poly_count", "min_poly_count", "max_poly_count")):
        cond = _range(filters.get(low), filters.get(high))
        if cond:
            query[name] = cond
    if filters.get("search"):
        regex = search_regex(filters["search"])
        query["$or"] = [{"title": regex}, {"description": regex}, {"tags": regex}]
    if filters.get("creator"):
        try:
            query["creator_id"] = (await users.find(db, filters["creator"]))["_id"]
        except NotFound:
            return None
    return query


async def list_public(db, filters: dict, *, page: int, limit: int, sort: str = "newest",
                      anonymous: bool = False) -> tuple[list[dict], dict]:
    """One page of approved, published models matching `filters` (see `filter_query`),
    in `sort` order (a key of SORTS). Returns (documents, pagination meta).

    `anonymous`: the page is for a viewer without an account, who never sees PRIVATE_FIELDS,
    so they are not fetched (less to copy and to send; `render_models` shows the same).
    """
    query = await filter_query(db, filters)
    if query is None:
        return [], {"total": 0, "page": page, "limit": limit, "pages": 0}
    return await paginate(db[COLLECTION], query, page=page, limit=limit, sort=SORTS[sort],
                          projection=CARD_PROJECTION if anonymous else None)


async def list_featured(db, limit: int) -> list[dict]:
    """Up to `limit` featured public models, the most recently approved first."""
    cursor = db[COLLECTION].find({**PUBLIC_QUERY, "is_featured": True}).sort(
        [("approved_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
    return await cursor.to_list(length=limit)


async def list_related(db, model: dict, limit: int) -> list[dict]:
    """Up to `limit` public models sharing the category or a tag of `model`, not itself.

    Ranked by shared tags (+1 for the same category), then likes, then newest.
    """
    either = [{"category": model["category"]}]
    if model.get("tags"):
        either.append({"tags": {"$in": model["tags"]}})
    query = {**PUBLIC_QUERY, "_id": {"$ne": model["_id"]}, "$or": either}
    candidates = await db[COLLECTION].find(query).sort(
        [("likes", DESCENDING), ("_id", DESCENDING)]).limit(200).to_list(length=200)
    tags = set(model.get("tags") or ())

    def score(doc: dict) -> int:
        return len(tags & set(doc.get("tags") or ())) + (doc["category"] == model["category"])

    candidates.sort(key=score, reverse=True)   # stable: keeps likes/newest order within a score
    return candidates[:limit]


async def list_by_creator(db, creator_id, *, page: int, limit: int, status: str | None = None,
                          public_only: bool = False, sort: str = "newest") -> tuple[list[dict], dict]:
    """One page of a creator's models: every status (optionally one `status`), or only the
    public ones when `public_only`."""
    query: dict = {"creator_id": creator_id}
    if public_only:
        query.update(PUBLIC_QUERY)
    elif status:
        query["status"] = status
    return await paginate(db[COLLECTION], query, page=page, limit=limit, sort=SORTS[sort])


async def list_for_moderation(db, *, page: int, limit: int, status: str | None = None,
                              search: str | None = None, category: str | None = None,
                              creator: str | None = None) -> tuple[list[dict], dict]:
    """One page of models of every status for staff (seed 000 §7 `GET /api/admin/models`).

    Pending models come oldest first (a review queue); other views newest first.
    """
    query: dict = {}
    if status:
        query["status"] = status
    if category:
        query["category"] = await _category_name(db, category)
    if search:
        regex = search_regex(search)
        query["$or"] = [{"title": regex}, {"description": regex}, {"tags": regex}]
    if creator:
        try:
            query["creator_id"] = (await users.find(db, creator))["_id"]
        except NotFound:
            return [], {"total": 0, "page": page, "limit": limit, "pages": 0}
    sort = SORTS["oldest" if status == "pending" else "newest"]
    return await paginate(db[COLLECTION], query, page=page, limit=limit, sort=sort)


async def creator_stats(db, creator: dict) -> dict:
    """A creator's public figures: models (public ones), total views, likes, downloads,
    sales, followers (seed 004 `GET /api/users/:username/stats`)."""
    totals = {"views": 0, "likes": 0, "downloads": 0, "sales_count": 0}
    count = 0
    async for doc in db[COLLECTION].find({"creator_id": creator["_id"], **PUBLIC_QUERY},
                                         {key: 1 for key in totals}):
        count += 1
        for key in totals:
            totals[key] += int(doc.get(key) or 0)
    return {"models_count": count, "total_views": totals["views"],
            "total_likes": totals["likes"], "total_downloads": totals["downloads"],
            "total_sales": totals["sales_count"],
            "followers_count": int(creator.get("followers_count") or 0),
            "following_count": int(creator.get("following_count") or 0),
            "rating": float(creator.get("rating") or 0.0)}


# --------------------------------------------------------------------------- writes

async def _counters(db, before: dict | None, after: dict | None) -> None:
    """Move the creator's `total_models` and the category's `model_count` for one change of
    a model from `before` to `after` (None: did not exist). Counts public models only."""
    was = before is not None and is_public(before)
    now = after is not None and is_public(after)
    if was and (not now or before["category"] != after["category"]):
        await categories_db.adjust_count(db, before["category"], -1)
    if now and (not was or before["category"] != after["category"]):
        await categories_db.adjust_count(db, after["category"], 1)
    if was != now:
        creator_id = (after or before)["creator_id"]
        await db[users.COLLECTION].update_one({"_id": creator_id},
                                              {"$inc": {"total_models": 1 if now else -1}})


async def _move(db, condition: dict, changes: dict) -> dict | None:
    """Apply `$set changes` to the one model matching `condition`; fix the counters.

    Returns the new document, or None when no model matched (someone else moved it first).
    The counters move only for the request whose conditional update matched.
    """
    changes = {**changes, "updated_at": utcnow()}
    before = await db[COLLECTION].find_one_and_update(
        condition, {"$set": changes}, return_document=ReturnDocument.BEFORE)
    if before is None:
        return None
    after = {**before, **changes}
    await _counters(db, before, after)
    return after


def _needs_review(model: dict, changes: dict, editor: dict) -> bool:
    """An owner's change of content (CONTENT_FIELDS) on an approved or rejected model sends
    it back to "pending"; staff edits, price and publish changes never do."""
    if users.is_staff(editor) or model["status"] == "pending":
        return False
    return any(key in changes and changes[key] != model.get(key) for key in CONTENT_FIELDS)


async def update_model(db, model: dict, changes: dict, editor: dict) -> dict:
    """Apply `changes` (the output of ModelFieldsSchema: price already as `price_cents`) to
    `model` by `editor` (its creator or staff).

    Decision (module docstring): when the owner changes the content (title, description,
    category, tags, texture resolution, animation/rigging claims) of an approved or rejected
    model, it goes back to "pending" for review; its rejection reason is cleared and it is
    unfeatured. Returns the new document. Raises Invalid (422: unknown category, paid
    without a price), Conflict CONCURRENT_UPDATE (409) when the model keeps changing.
    """
    changes = dict(changes)
    if "category" in changes:
        changes["category"] = await _require_category(db, changes["category"])
    if changes.get("is_free") is False and "price_cents" not in changes \
            and not model.get("price_cents"):
        raise Invalid({"price": ["A paid model needs a price above 0"]})
    if changes.get("is_free") is True:
        changes["price_cents"] = 0
    for _attempt in range(3):
        step = dict(changes)
        if _needs_review(model, step, editor):
            step.update(status="pending", rejection_reason=None, approved_at=None,
                        approved_by=None, is_featured=False)
        condition = {"_id": model["_id"], "status": model["status"],
                     "is_published": model.get("is_published"), "category": model["category"]}
        after = await _move(db, condition, step)
        if after is not None:
            return after
        model = await get_model(db, model["_id"])
    raise Conflict("The model changed while it was being edited; try again", "CONCURRENT_UPDATE")


async def delete_model(db, model_id) -> dict:
    """Delete the model; fix the counters if it was public. Returns the deleted document.

    The stored file stays in storage (buyers' purchases may still point at it).
    Raises NotFound.
    """
    doc = await db[COLLECTION].find_one_and_delete({"_id": require_id(model_id, "Model")})
    if doc is None:
        raise NotFound("Model not found", "MODEL_NOT_FOUND")
    await _counters(db, doc, None)
    return doc


async def remove_model(db, model_id, *, by_staff: bool = False) -> tuple[dict, list[str]]:
    """Take a model off the platform with everything that hangs off it (seed 000 §3 DELETE).

    A creator cannot delete a model somebody bought (409 MODEL_HAS_PURCHASES: buyers keep
    their downloads; unpublish it instead); staff can, for moderation. Likes, comments, view
    records, media and collection entries go with the model. Returns (the deleted document,
    storage keys of its media for the caller to delete). Raises NotFound, Conflict.
    """
    from documents import collections, engagement

    oid = require_id(model_id, "Model")
    if not by_staff and await db["purchases"].find_one({"model_id": oid}, {"_id": 1}):
        raise Conflict("This model has buyers; unpublish it instead of deleting it",
                       "MODEL_HAS_PURCHASES")
    doc = await delete_model(db, oid)
    await collections.remove_model_everywhere(db, oid)
    return doc, await engagement.remove_for_model(db, oid)


async def toggle_publish(db, model: dict) -> dict:
    """Flip `is_published` (conditional on the value read, so two toggles make two flips).

    Returns the new document. Raises Conflict when the model keeps changing under us.
    """
    for _attempt in range(3):
        current = bool(model.get("is_published"))
        after = await _move(db, {"_id": model["_id"], "is_published": model.get("is_published"),
                                 "status": model["status"], "category": model["category"]},
                            {"is_published": not current})
        if after is not None:
            return after
        model = await get_model(db, model["_id"])
    raise Conflict("The model changed while it was being updated; try again", "CONCURRENT_UPDATE")


APPROVE_FROM = ("pending", "rejected")
REJECT_FROM = ("pending", "approved")


async def approve(db, model_id, moderator: dict) -> dict:
    """Move a pending or rejected model to "approved" (seed 000 §7). Returns the new document.

    Raises NotFound, Conflict INVALID_STATE (409) when it is already approved, including
    when a racing approval won first.
    """
    oid = require_id(model_id, "Model")
    now = utcnow()
    after = await _move(db, {"_id": oid, "status": {"$in": list(APPROVE_FROM)}},
                        {"status": "approved", "approved_at": now, "approved_by": moderator["_id"],
                         "rejection_reason": None})
    if after is None:
        await get_model(db, oid)   # NotFound when it does not exist
        raise Conflict("The model is already approved", "INVALID_STATE")
    return after


async def reject(db, model_id, moderator: dict, reason: str) -> dict:
    """Move a pending or approved model to "rejected" with `reason` (seed 000 §7).

    Rejecting an approved model takes it off the marketplace and unfeatures it.
    Returns the new document. Raises NotFound, Conflict INVALID_STATE (409) when it is
    already rejected.
    """
    oid = require_id(model_id, "Model")
    after = await _move(db, {"_id": oid, "status": {"$in": list(REJECT_FROM)}},
                        {"status": "rejected", "rejection_reason": reason, "is_featured": False,
                         "approved_at": None, "rejected_at": utcnow(),
                         "rejected_by": moderator["_id"]})
    if after is None:
        await get_model(db, oid)
        raise Conflict("The model is already rejected", "INVALID_STATE")
    return after


async def set_featured(db, model_id, featured: bool) -> dict:
    """Set `is_featured` (seed 001 §13 "Feature model"). Only an approved model can be
    featured: Conflict INVALID_STATE (409) otherwise. Raises NotFound."""
    oid = require_id(model_id, "Model")
    condition: dict = {"_id": oid}
    if featured:
        condition["status"] = "approved"
    after = await _move(db, condition, {"is_featured": featured})
    if after is None:
        await get_model(db, oid)
        raise Conflict("Only an approved model can be featured", "INVALID_STATE")
    return after


# --------------------------------------------------------------------------- rendering

def render_model(model: dict, creators: dict | None = None, *, private: bool = False) -> dict:
    """A model in API form: `price` from `price_cents`, `creator` brief card (from
    `creators`, ``{ObjectId: user}``), private fields (file_key, rejection_reason, ...) only
    when `private` (the creator or staff)."""
    doc = model if private else omit(model, PRIVATE_FIELDS)
    out = render(doc)
    out["creator"] = users.render_brief((creators or {}).get(model["creator_id"]))
    return out


async def render_models(db, models: list[dict], viewer: dict | None = None) -> list[dict]:
    """Models in API form with their creators fetched in one query; private fields for the
    models `viewer` may manage."""
    creators = await creator_cards(db, [m["creator_id"] for m in models])
    return [render_model(m, creators, private=can_manage(viewer, m)) for m in models]


# The user fields `users.render_brief` shows: the only ones fetched for a model's creator.
BRIEF_PROJECTION = {"username": 1, "full_name": 1, "avatar_url": 1, "is_verified_creator": 1}


async def creator_cards(db, ids) -> dict:
    """The creators `ids` as ``{ObjectId: user}`` with only the fields of their brief card
    (`users.render_brief`), in one query."""
    wanted = list({i for i in ids if i is not None})
    if not wanted:
        return {}
    query = {"_id": wanted[0]} if len(wanted) == 1 else {"_id": {"$in": wanted}}
    cursor = db[users.COLLECTION].find(query, BRIEF_PROJECTION)
    return {u["_id"]: u async for u in cursor}


PUBLIC_VIEW_FIELDS = ("_id", "title", "description", "price_cents", "is_free", "category",
                      "tags", "thumbnail_url", "preview_images", "file_format", "file_formats",
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
