"""A new model file for an existing model, and its review (seed 001 §7 inventory, §13).

A creator replaces the file of a model with ``PUT /api/models/{id}`` and a ``file_id`` from
`POST /api/upload/model`. While the model is listed (approved), the new file waits in
``pending_file`` — ``{file_id, file_key, file_size, file_format, file_formats, poly_count,
vertex_count, has_*, analyzed, analysis, preview_status, preview_url, file_url,
thumbnail_url?, thumbnails?, submitted_at}`` — and the approved file stays live until staff
approve it (`approve_file`: the pending fields replace the live ones) or reject it
(`reject_file`: dropped, ``file_rejection_reason`` kept for the creator). A pending or
rejected model takes the new file at once (a rejected one is resubmitted, "pending").
"""
from __future__ import annotations

from documents import catalog, model_writes
from documents import previews as previews_db
from documents.common import utcnow
from documents.errors import Conflict

MODELS = catalog.COLLECTION


def _file_doc(model_file: dict) -> dict:
    fields = model_writes.file_fields(model_file)
    fields.update(previews_db.model_fields(model_file.get("preview")))
    return fields


async def replace_file(db, model: dict, model_file: dict) -> tuple[dict, list[str]]:
    """Give `model` the (claimed) `files` record `model_file`. Returns (the new document,
    what is under review: ``["file"]`` or ``[]``)."""
    fields = _file_doc(model_file)
    auto = previews_db.thumbnail_fields(model_file.get("preview"))
    if model["status"] == "approved":
        pending = {**fields, **auto, "submitted_at": utcnow()}
        await db[MODELS].update_one({"_id": model["_id"]},
                                    {"$set": {"pending_file": pending,
                                              "file_rejection_reason": None,
                                              "updated_at": utcnow()}})
        return await catalog.get_model(db, model["_id"]), ["file"]
    changes = dict(fields)
    if model.get("thumbnail_url") is None or model.get("thumbnail_auto"):
        changes.update(auto or {"thumbnail_url": None, "thumbnails": None,
                                "thumbnail_auto": False})
    if model["status"] == "rejected":
        changes.update(status="pending", rejection_reason=None)
    changes["updated_at"] = utcnow()
    await db[MODELS].update_one({"_id": model["_id"]},
                                {"$set": changes, "$unset": {"pending_file": ""}})
    return await catalog.get_model(db, model["_id"]), []


async def approve_file(db, model: dict, moderator: dict) -> dict:
    """Make the model's `pending_file` its live file (staff). Conflict NOTHING_TO_REVIEW."""
    pending = model.get("pending_file")
    if not pending:
        raise Conflict("This model has no new file to review", "NOTHING_TO_REVIEW")
    live = {k: v for k, v in pending.items() if k not in ("submitted_at", "thumbnail_url",
                                                          "thumbnails", "thumbnail_auto")}
    if model.get("thumbnail_auto") or model.get("thumbnail_url") is None:
        live.update({k: pending[k] for k in ("thumbnail_url", "thumbnails", "thumbnail_auto")
                     if k in pending})
    live.update(updated_at=utcnow(), file_approved_at=utcnow(),
                file_approved_by=moderator["_id"])
    result = await db[MODELS].update_one(
        {"_id": model["_id"], "pending_file.file_id": pending["file_id"]},
        {"$set": live, "$unset": {"pending_file": ""}})
    if result.matched_count == 0:
        raise Conflict("The new file changed while it was being reviewed", "CONCURRENT_UPDATE")
    return await catalog.get_model(db, model["_id"])


async def reject_file(db, model: dict, reason: str) -> dict:
    """Drop the model's `pending_file` with `reason` (staff); the live file stays."""
    pending = model.get("pending_file")
    if not pending:
        raise Conflict("This model has no new file to review", "NOTHING_TO_REVIEW")
    await db[MODELS].update_one(
        {"_id": model["_id"]},
        {"$set": {"file_rejection_reason": reason, "updated_at": utcnow()},
         "$unset": {"pending_file": ""}})
    return await catalog.get_model(db, model["_id"])


def under_review(model: dict) -> list[str]:
    """What of `model` waits for review: ``["model"]`` while it is pending, ``["file"]``
    while a new file is, else ``[]``."""
    if model.get("status") == "pending":
        return ["model"]
    return ["file"] if model.get("pending_file") else []
