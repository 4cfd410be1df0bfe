"""Uploaded files: the `files` collection, one record per stored object (docs/architecture.md §7).

A file document (brief "Document shapes")::

    {_id, owner_id: ObjectId, kind: "model" | "image" | "avatar" | "attachment" | "document"
     | "thumbnail", key (storage key, generated: "models/<uuid>.glb"), url (public URL, or
     None for a private object), content_type, size (bytes), format ("GLB", "PNG", ...),
     original_name (the client's file name, sanitised, for display and downloads only),
     width, height (images, px), analysis (models: the dict of `storage.analysis`),
     thumbnail_key (images: the key of the generated thumbnail), created_at,
     attached_to: ObjectId of the model that uses it | None, attached_at,
     preview (models: see `documents.previews`)}

Only the owner and staff may act on a record (`get_owned`). A file uploaded on its own
(`POST /api/upload/...`) starts unattached; a model that references it claims it once, for
its uploader only (`claim`). `list_unattached` finds the uploads nobody attached, for the
periodic clean-up.
"""
from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from pymongo import ASCENDING, DESCENDING, IndexModel

from documents import catalog, users
from documents.common import omit, render, require_id, utcnow
from documents.errors import Conflict, Forbidden, Invalid, NotFound

COLLECTION = "files"
KINDS = ("model", "image", "avatar", "attachment", "document", "thumbnail", "video")

INDEXES = {
    COLLECTION: [
        IndexModel([("key", ASCENDING)], unique=True),
        IndexModel([("owner_id", ASCENDING), ("kind", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("attached_to", ASCENDING), ("created_at", ASCENDING)]),
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
            "analysis": analysis, "created_at": utcnow(), "attached_to": None,
            "attached_at": None, **extra}


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


async def find(db, file_id) -> dict | None:
    """The record `file_id` (ObjectId; None gives None), or None when it is gone."""
    return None if file_id is None else await db[COLLECTION].find_one({"_id": file_id})


async def set_analysis(db, file_id, analysis: dict) -> None:
    """Store a new `analysis` (the dict of `storage.analysis`) on record `file_id`."""
    await db[COLLECTION].update_one({"_id": file_id}, {"$set": {"analysis": analysis}})


async def get_by_key(db, key: str) -> dict | None:
    """The record of storage key `key`, or None."""
    return await db[COLLECTION].find_one({"key": key})


async def used_by_model(db, doc: dict) -> bool:
    """True when a model points at the file `doc` (its model file, thumbnail or a preview)."""
    return await catalog.uses_file(db, doc["_id"], doc.get("url"))


async def clear_avatar(db, doc: dict) -> None:
    """Unset the owner's `avatar_url` when it is the URL of the avatar file `doc`."""
    if doc["kind"] == "avatar" and doc.get("url"):
        await users.clear_avatar(db, doc["owner_id"], doc["url"])


def render_file(doc: dict) -> dict:
    """A file record in API form (for its owner): id, kind, url, size, format, dimensions,
    analysis; the storage key is kept private."""
    out = render(omit(doc, ("key", "thumbnail_key")))
    out["file_id"] = out["id"]
    return out


# --------------------------------------------------------------------------- attaching

REFERENCE_FIELDS = ("file_id", "file_url", "model_file_id", "thumbnail_id", "thumbnail_url",
                    "preview_image_ids", "preview_images")
IMAGE_KINDS = ("image", "thumbnail")
MAX_PREVIEWS = 8


async def resolve_references(db, body: dict, *, require_file: bool) -> dict:
    """The uploaded files a JSON body names, as ids: ``{file_id, thumbnail_id,
    preview_image_ids}`` (URLs resolved to the uploads they came from; keys absent when not
    named). `require_file`: a model file must be named. Raises Invalid (422)."""
    errors: dict = {}

    def text(name: str) -> str | None:
        value = body.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > 2048:
            errors[name] = ["Must be a string"]
            return None
        return value

    out: dict = {}
    file_id, file_url = text("file_id") or text("model_file_id"), text("file_url")
    thumb_id, thumb_url = text("thumbnail_id"), text("thumbnail_url")
    lists = {}
    for name in ("preview_image_ids", "preview_images"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or len(value) > MAX_PREVIEWS \
                or not all(isinstance(v, str) and 0 < len(v) <= 2048 for v in value):
            errors[name] = [f"A list of at most {MAX_PREVIEWS} ids or URLs"]
        else:
            lists[name] = value
    if require_file and not file_id and not file_url and "file_id" not in errors:
        errors["file_id"] = ["Missing data for required field."]
    if errors:
        raise Invalid(errors)
    if file_id or file_url:
        out["file_id"] = file_id or await id_for_url(db, file_url, "file_url")
    if thumb_id or thumb_url:
        out["thumbnail_id"] = thumb_id or await id_for_url(db, thumb_url,
                                                                     "thumbnail_url")
    ids = list(lists.get("preview_image_ids", ()))
    for url in lists.get("preview_images", ()):
        ids.append(await id_for_url(db, url, "preview_images"))
    if len(set(ids)) != len(ids) or out.get("thumbnail_id") in ids:
        raise Invalid({"preview_image_ids": ["The same image is named twice"]})
    if lists:
        out["preview_image_ids"] = ids
    return out




async def claim(db, file_id, owner: dict, kinds: tuple[str, ...], model_id, field: str) -> dict:
    """Attach the uploaded file `file_id` to the model `model_id` (seed 001 §6, two steps).

    Only its uploader can, only once (naming it again for the same model is fine), and only
    a file of one of `kinds`. Returns the record.
    Raises Invalid (422, on `field`) for an unknown id or a file of another kind, Forbidden
    FILE_NOT_OWNED (403) for another user's file, Conflict FILE_ALREADY_ATTACHED (409).
    """
    try:
        oid = require_id(file_id, "File")
    except NotFound:
        raise Invalid({field: ["Unknown file id"]}) from None
    doc = await db[COLLECTION].find_one_and_update(
        {"_id": oid, "owner_id": owner["_id"], "kind": {"$in": list(kinds)},
         "attached_to": {"$in": [None, model_id]}},
        {"$set": {"attached_to": model_id, "attached_at": utcnow()}},
        return_document=True)
    if doc is not None:
        return doc
    current = await db[COLLECTION].find_one({"_id": oid})
    if current is None or current["kind"] not in kinds:
        raise Invalid({field: ["Unknown file id"]})
    if current["owner_id"] != owner["_id"]:
        raise Forbidden("Only the uploader can use this file", "FILE_NOT_OWNED")
    raise Conflict("This file is already attached to a model", "FILE_ALREADY_ATTACHED")


async def id_for_url(db, url: str, field: str) -> str:
    """The id of the file a URL returned by an upload route points at (its key is in the
    URL's path: public URLs as stored, signed ones with their query). Invalid (422) if none."""
    from urllib.parse import unquote, urlsplit

    path = unquote(urlsplit(url).path) if isinstance(url, str) else ""
    doc = await db[COLLECTION].find_one({"url": url}, {"_id": 1}) if path else None
    if doc is None:
        for prefix in ("models/", "images/", "thumbnails/"):
            at = path.find(prefix)
            if at >= 0:
                doc = await db[COLLECTION].find_one({"key": path[at:]}, {"_id": 1})
                break
    if doc is None:
        raise Invalid({field: ["No upload has this URL"]})
    return str(doc["_id"])


async def attach(db, file_ids: list, model_id) -> None:
    """Mark the records `file_ids` (uploaded with the model itself) as attached to it."""
    ids = [i for i in file_ids if i is not None]
    if ids:
        await db[COLLECTION].update_many({"_id": {"$in": ids}},
                                         {"$set": {"attached_to": model_id,
                                                   "attached_at": utcnow()}})


async def release(db, model_id, file_ids: list | None = None) -> None:
    """Detach files from `model_id` again (its creation failed): all, or only `file_ids`."""
    query: dict = {"attached_to": model_id}
    if file_ids is not None:
        query["_id"] = {"$in": list(file_ids)}
    await db[COLLECTION].update_many(query, {"$set": {"attached_to": None, "attached_at": None}})


async def list_unattached(db, older_than, kinds: tuple[str, ...] = ("model",),
                          limit: int = 500) -> list[dict]:
    """Uploads of `kinds` never attached to a model and created before `older_than` (a
    datetime): what the periodic clean-up deletes. Records without `attached_to` (stored
    before it existed) are left alone. Model files are only ever used by models; images
    (kinds "image", "thumbnail") may also be used by posts, blog articles or profiles, so a
    clean-up of those must check their URL is used nowhere."""
    cursor = db[COLLECTION].find({"attached_to": None, "kind": {"$in": list(kinds)},
                                  "created_at": {"$lt": older_than}}).limit(limit)
    return [doc for doc in await cursor.to_list(length=limit) if "attached_to" in doc]
