"""Writing the model catalog: creating, editing, publishing, moderating and deleting models
(seed 000 §3, §7, seed 001 §7, §13). The model document is in `documents.catalog`.

Moderation (seed 000 §7, seed 001 §13) is a state machine moved by conditional
`find_one_and_update`: pending → approved | rejected, rejected → approved, approved →
rejected. A model is public when it is approved AND published.

Counters: the creator's `total_models` and the category's `model_count` count APPROVED
models only (what the public can find). They are incremented by the transition into
"approved" and decremented by every transition out of it (reject, unpublish, delete), each
applied only by the request whose conditional update won. Editing a listed model keeps it
listed; a new model file for it waits in `pending_file` (`documents.revisions`).
"""
from __future__ import annotations

from pymongo import ReturnDocument

from documents import categories as categories_db
from documents import previews as previews_db
from documents import search_index, users
from documents.catalog import COLLECTION, CONTENT_FIELDS, get_model, is_public, reindex, validate_fields
from documents.common import (
    require_id,
    utcnow,
)
from documents.errors import Conflict, Invalid, NotFound


async def _require_category(db, name: str) -> str:
    """The stored name of the active category `name` (case-insensitive); raises Invalid."""
    category = await categories_db.get_active_by_name(db, name)
    if category is None:
        raise Invalid({"category": ["Unknown category"]})
    return category["name"]


async def create_model(db, *, creator: dict, data: dict, model_file: dict,
                       thumbnail: dict | None, previews: list[dict], model_id=None) -> dict:
    """Insert a new model in status "pending" and return the stored document.

    The preview fields (`preview_status`, `preview_url`, `file_url`) and, without a
    creator's `thumbnail`, a rendered one come from the model file's `preview`
    (`documents.previews`).

    `data` is the raw form (validated here with NewModelSchema: title and category
    required, a price or `is_free`). `model_file`, `thumbnail`, `previews` are `files`
    documents (key, size, format, analysis, url). The analysis fills poly/vertex counts and
    feature flags; `has_animations` / `has_rigging` in `data` override it. Counters are not
    touched: they move on approval (module docstring). Raises Invalid (422).
    """
    fields_ = validate_fields(data, new=True)
    fields_["category"] = await _require_category(db, fields_["category"])
    now = utcnow()
    preview = model_file.get("preview")
    doc = {
        "creator_id": creator["_id"], "description": "", "tags": [],
        "texture_resolution": None, "is_published": True,
        **file_fields(model_file),
        "thumbnail_url": thumbnail.get("url") if thumbnail else None,
        "thumbnails": None, "thumbnail_auto": False,
        **previews_db.model_fields(preview),
        **({} if thumbnail else previews_db.thumbnail_fields(preview)),
        "preview_images": [p.get("url") for p in previews if p.get("url")],
        "views": 0, "likes": 0, "downloads": 0, "comment_count": 0, "sales_count": 0,
        "rating": 0.0, "rating_count": 0, "status": "pending", "rejection_reason": None,
        "is_featured": False, "approved_at": None, "approved_by": None,
        "created_at": now, "updated_at": now,
    }
    doc.update(fields_)
    if model_id is not None:
        doc["_id"] = model_id
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    await reindex(db, doc["_id"])
    return doc


def file_fields(model_file: dict) -> dict:
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


async def show_analysis(db, model_id, model_file: dict) -> None:
    """Copy the figures of `model_file` (a `files` record with its new analysis) onto model
    `model_id`, while that file is still the model's (`file_fields`)."""
    await db[COLLECTION].update_one({"_id": model_id, "file_id": model_file["_id"]},
                                    {"$set": file_fields(model_file)})


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
        await users.move_counters(db, creator_id, total_models=1 if now else -1)


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
    await reindex(db, before["_id"])
    return after


def _needs_review(model: dict, changes: dict, editor: dict) -> bool:
    """An owner's change of content (CONTENT_FIELDS) on a rejected model resubmits it
    ("pending"). A listed (approved) model stays listed: its fields change at once; only a
    new model file waits for review (`documents.revisions`). Staff edits never do."""
    if users.is_staff(editor) or model["status"] != "rejected":
        return False
    return any(key in changes and changes[key] != model.get(key) for key in CONTENT_FIELDS)


async def update_model(db, model: dict, changes: dict, editor: dict) -> dict:
    """Apply `changes` (the output of ModelFieldsSchema: price already as `price_cents`) to
    `model` by `editor` (its creator or staff).

    Price, title, description, tags, category and images of a listed model change at once
    and it stays listed (seed 001 §7 inventory); when the owner changes the content of a
    rejected model, it is resubmitted ("pending", rejection reason cleared). Returns the new
    document. Raises Invalid (422: unknown category, paid without a price), Conflict
    CONCURRENT_UPDATE (409) when the model keeps changing.
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
    await search_index.index_model(db, doc["_id"], None, None)
    return doc


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
