"""Admin actions: the `admin_actions` audit log (seed 000 §7 `AdminAction`).

An admin action document::

    {_id, admin_id: ObjectId, action_type: str (user_banned, user_unbanned, user_verified,
     user_updated, user_created, user_deleted, model_approved, ...), target_type: str (user,
     model, community, ...), target_id: ObjectId, details: {}, created_at}

Recorded after the change it describes succeeded, by the `documents/` function that made
the change (docs/architecture.md §4 "Side effects beside the write"); never edited.
"""
from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from documents.common import render, utcnow

log = logging.getLogger("hwc3d.admin_actions")

COLLECTION = "admin_actions"

INDEXES = {
    COLLECTION: [
        IndexModel([("target_type", ASCENDING), ("target_id", ASCENDING),
                    ("created_at", DESCENDING)]),
        IndexModel([("admin_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("created_at", DESCENDING)]),
    ]
}


async def record(db, admin: dict, action_type: str, target_type: str, target_id: Any,
                 details: dict | None = None) -> dict:
    """Store one admin action by `admin` (a user document) on `target_type`/`target_id`.

    Returns the stored document. `details` holds what changed (plain JSON values or ids).
    """
    doc = {"admin_id": admin["_id"], "action_type": action_type, "target_type": target_type,
           "target_id": target_id, "details": details or {}, "created_at": utcnow()}
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    return doc


async def record_after(db, admin: dict, action_type: str, target_type: str, target_id: Any,
                       details: dict | None = None) -> dict | None:
    """`record`, for a change that is already stored: returns the stored document, or None
    when recording failed; the failure is logged, never raised, so it cannot undo or fail
    the change (docs/architecture.md §4 "Side effects beside the write")."""
    try:
        return await record(db, admin, action_type, target_type, target_id, details)
    except Exception:
        log.exception("could not record %s on %s %s", action_type, target_type, target_id)
        return None


async def recent_for(db, target_type: str, target_id: Any, limit: int = 20) -> list[dict]:
    """The latest `limit` actions on one target, newest first, in API form."""
    cursor = db[COLLECTION].find({"target_type": target_type, "target_id": target_id})
    docs = await cursor.sort([("created_at", DESCENDING), ("_id", DESCENDING)]).to_list(limit)
    return [render(d) for d in docs]
