"""Uploaded files: the `files` collection, one record per stored object (DESIGN §6).

A file document (brief "Document shapes")::

    {_id, owner_id: ObjectId, kind: "model" | "image" | "avatar" | "attachment" | "document"
     | "thumbnail", key (storage key, generated: "models/<uuid>.glb"), url (public URL, or
     None for a private object), content_type, size (bytes), format ("GLB", "PNG", ...),
     original_name (the client's file name, sanitised, for display and downloads only),
     width, height (images, px), analysis (models: the dict of `storage.analysis`),
     thumbnail_key (images: the key of the generated thumbnail), created_at}

Only the owner and staff may act on a record (`get_owned`).
"""
from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from pymongo import ASCENDING, DESCENDING, IndexModel

from documents import users
from documents.common import omit, render, require_id, utcnow
from documents.errors import Forbidden, NotFound

COLLECTION = "files"
KINDS = ("model", "image", "avatar", "attachment", "document", "thumbnail", "video")

INDEXES = {
    COLLECTION: [
        IndexModel([("key", ASCENDING)], unique=True),
        IndexModel([("owner_id", ASCENDING), ("kind", ASCENDING), ("created_at", DESCENDING)]),
    ]
}


def clean_name(name: str | None) -> str | None:
    """The client's file name reduced to a safe display name (no path, no control chars, ≤ 200)."""
    if not name:
        return None
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = "".join(c for c in unicodedata.normalize("NFC", base)
                   if unicodedata.category(c)[0] != "C").strip()
    return base[:200] or None


def new_file(owner_id, kind: str, key: str, *, url: str | None, content_type: str, size: int,
             file_format: str, original_name: str | None = None, width: int | None = None,
             height: int | None = None, analysis: dict | None = None, **extra) -> dict:
    """A fresh file document (not yet stored); `kind` is one of KINDS."""
    if kind not in KINDS:
        raise ValueError(f"unknown file kind {kind!r}")
    return {"owner_id": owner_id, "kind": kind, "key": key, "url": url,
            "content_type": content_type, "size": int(size), "format": file_format,
            "original_name": clean_name(original_name), "width": width, "height": height,
            "analysis": analysis, "created_at": utcnow(), **extra}


async def insert(db, doc: dict) -> dict:
    """Store `doc` (from `new_file`) and return it with its `_id`."""
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    return doc


async def get(db, file_id) -> dict:
    """The file record `file_id`; raises NotFound (404) for an invalid or unknown id."""
    oid = require_id(file_id, "File")
    doc = await db[COLLECTION].find_one({"_id": oid})
    if doc is None:
        raise NotFound("File not found", "FILE_NOT_FOUND")
    return doc


async def get_owned(db, file_id, user: dict) -> dict:
    """The file record `file_id` when `user` owns it or is staff.

    Raises NotFound (404) for an invalid or unknown id, Forbidden (403) for someone else's file.
    """
    doc = await get(db, file_id)
    if doc["owner_id"] != user["_id"] and not users.is_staff(user):
        raise Forbidden("This file belongs to another user")
    return doc


async def delete(db, file_id) -> bool:
    """Remove the record `file_id` (an ObjectId); True when it existed."""
    result = await db[COLLECTION].delete_one({"_id": file_id})
    return result.deleted_count == 1


async def list_by_owner(db, owner_id, kind: str | None = None) -> list[dict]:
    """The records of `owner_id` (optionally of one `kind`), newest first (at most 1000)."""
    query = {"owner_id": owner_id, **({"kind": kind} if kind else {})}
    return await db[COLLECTION].find(query).sort("created_at", DESCENDING).to_list(1000)


async def get_by_key(db, key: str) -> dict | None:
    """The record of storage key `key`, or None."""
    return await db[COLLECTION].find_one({"key": key})


async def used_by_model(db, doc: dict) -> bool:
    """True when a model points at the file `doc` (its model file, thumbnail or a preview)."""
    uses = [{"file_id": doc["_id"]}]
    if doc.get("url"):
        uses += [{"thumbnail_url": doc["url"]}, {"preview_images": doc["url"]}]
    return await db["models"].find_one({"$or": uses}, {"_id": 1}) is not None


async def clear_avatar(db, doc: dict) -> None:
    """Unset the owner's `avatar_url` when it is the URL of the avatar file `doc`."""
    if doc["kind"] == "avatar" and doc.get("url"):
        await db[users.COLLECTION].update_one(
            {"_id": doc["owner_id"], "avatar_url": doc["url"]},
            {"$set": {"avatar_url": None, "updated_at": utcnow()}})


def render_file(doc: dict) -> dict:
    """A file record in API form (for its owner): id, kind, url, size, format, dimensions,
    analysis; the storage key is kept private."""
    out = render(omit(doc, ("key", "thumbnail_key")))
    out["file_id"] = out["id"]
    return out
