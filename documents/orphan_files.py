"""Unattached uploads: files uploaded but never used (the periodic job `delete_unattached`).

An upload (`documents.files`) is attached when a document points at it: by id (a model's
`file_id`) or by a URL that holds its storage key (REFERENCES: models, avatars, message,
ticket, chat and post attachments, blog, community, course, bounty and slider images). A
file record older than `UNATTACHED_UPLOAD_HOURS` (default 24) that nothing points at is
deleted with its stored object and thumbnail. A file found attached once is marked
(`attached_seen_at`) and not looked at again.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from documents import catalog, files
from documents.common import utcnow

log = logging.getLogger("hwc3d.uploads")

KINDS = ("model", "image", "avatar", "attachment", "document", "video")
BATCH = 200
# collection → fields that may hold the URL of an upload (strings or lists of strings)
REFERENCES = {
    "models": ("thumbnail_url", "preview_images", "file_url", "file_key", "video_url"),
    "users": ("avatar_url", "banner_url"),
    "direct_messages": ("attachments",),
    "support_messages": ("attachments",),
    "community_messages": ("attachments",),
    "posts": ("image_url", "model_url"),
    "blog_posts": ("cover_image", "image_url", "featured_image", "thumbnail_url"),
    "communities": ("avatar_url", "banner_url", "image_url", "cover_image"),
    "courses": ("thumbnail_url", "video_url", "lessons.video_url"),
    "bounties": ("attachments", "reference_images", "image_url"),
    "bounty_applications": ("attachments", "model_url"),
    "slider_slides": ("image_url",),
    "testimonials": ("avatar_url",),
}


async def is_attached(db, doc: dict) -> bool:
    """True when any document of REFERENCES (or a model's `file_id`) points at `doc`."""
    if await catalog.uses_file(db, doc["_id"]):
        return True
    pattern = {"$regex": re.escape(doc["key"])}
    for collection, names in REFERENCES.items():
        query = {"$or": [{name: pattern} for name in names]}
        if await db[collection].find_one(query, {"_id": 1}) is not None:
            return True
    return False


async def delete_unattached(db, storage, *, older_than: timedelta,
                            now: datetime | None = None) -> int:
    """Delete the unattached uploads created before ``now - older_than``; returns how many."""
    cutoff = (now or utcnow()) - older_than
    candidates = await db[files.COLLECTION].find(
        {"kind": {"$in": list(KINDS)}, "created_at": {"$lte": cutoff},
         "attached_seen_at": None}).sort("created_at", 1).to_list(BATCH)
    deleted = 0
    for doc in candidates:
        if await is_attached(db, doc):  # attached once: never a candidate again
            await db[files.COLLECTION].update_one({"_id": doc["_id"]},
                                                  {"$set": {"attached_seen_at": utcnow()}})
            continue
        if await files.delete(db, doc["_id"]):
            for key in (doc["key"], doc.get("thumbnail_key")):
                if key:
                    try:
                        await storage.delete(key)
                    except Exception:
                        log.warning("could not delete stored object %s", key, exc_info=True)
            await db[files.COLLECTION].delete_one({"key": doc.get("thumbnail_key") or ""})
            deleted += 1
    if deleted:
        log.info("deleted %d unattached uploads older than %s", deleted, older_than)
    return deleted
