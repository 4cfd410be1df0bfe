"""Model engagement: likes, comments, views, shares, captured media (seed 000 §3, seed 001 §3–§5).

Documents (referenced, never embedded in the model: they grow without bound)::

    model_likes     {_id, user_id, model_id, created_at}            unique (user_id, model_id)
    model_comments  {_id, model_id, user_id, content, parent_id, reply_count, likes,
                     is_deleted, created_at, updated_at}
    model_views     {_id, model_id, viewer_key, window_start}        unique triple
    model_media     {_id, model_id, owner_id, kind: "screenshot" | "video", file_id, key,
                     url, content_type, size, format, width, height, created_at}

Counters on the model (`likes`, `comment_count`, `views`, `shares`) move with `$inc` right
after the write that changes the state won (the unique insert or the delete), so a counter
moves exactly once per stored or removed record, even when requests race (docs/architecture.md §4).
Shares are a bare counter (no per-share record).

Comments are threaded one level deep: a reply to a reply joins the thread of its top-level
comment (`parent_id` is always a top-level comment), and the top-level comment counts its
replies in `reply_count`.

A view counts once per viewer (`u:<user id>`, or `ip:<hashed client IP>` for anonymous
visitors) per VIEW_WINDOW (30 minutes, aligned to the clock): the unique (model_id,
viewer_key, window_start) index admits one record per window; records expire after a day.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import catalog, common, email_notices, notifications, users
from documents.common import (
    counted_delete,
    counted_insert,
    iso,
    paginate,
    render,
    thread_root,
    utcnow,
)
from documents.errors import Conflict, NotFound
from realtime import channels

LIKES = "model_likes"
COMMENTS = "model_comments"
VIEWS = "model_views"
MEDIA = "model_media"

VIEW_WINDOW = timedelta(minutes=30)
VIEW_RECORD_TTL_SECONDS = 24 * 3600
MAX_COMMENT_LENGTH = 2000
REPLIES_SHOWN = 50
MEDIA_KINDS = ("screenshot", "video")

INDEXES = {
    LIKES: [
        IndexModel([("user_id", ASCENDING), ("model_id", ASCENDING)], unique=True),
        IndexModel([("model_id", ASCENDING), ("created_at", DESCENDING)]),
    ],
    COMMENTS: [
        IndexModel([("model_id", ASCENDING), ("parent_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("parent_id", ASCENDING), ("created_at", ASCENDING)]),
    ],
    VIEWS: [
        IndexModel([("model_id", ASCENDING), ("viewer_key", ASCENDING), ("window_start", ASCENDING)],
                   unique=True),
        IndexModel([("window_start", ASCENDING)], expireAfterSeconds=VIEW_RECORD_TTL_SECONDS),
    ],
    MEDIA: [IndexModel([("model_id", ASCENDING), ("kind", ASCENDING), ("created_at", DESCENDING)])],
}


async def _bump(db, model_id, field: str, step: int) -> dict | None:
    """`$inc` the model's counter `field` by `step`; the new model document, or None if gone."""
    return await catalog.move_counter(db, model_id, field, step)


# --------------------------------------------------------------------------- likes

async def like(db, hub, model: dict, user: dict) -> int:
    """`user` likes `model` (seed 000 §3 `POST /api/models/{id}/like`); returns the new `likes`.

    One like per (user, model), held by the unique index even under racing requests. The
    creator gets a `model_liked` notification (through `hub`) unless the like is their own.
    Raises Conflict ALREADY_LIKED (409); NotFound when the model vanished meanwhile.
    """
    doc = {"user_id": user["_id"], "model_id": model["_id"], "created_at": utcnow()}
    after = await counted_insert(
        db, LIKES, doc, lambda step: _bump(db, model["_id"], "likes", step),
        duplicate=Conflict("You already like this model", "ALREADY_LIKED"),
        missing=NotFound("Model not found", "MODEL_NOT_FOUND"))
    if model["creator_id"] != user["_id"]:
        await notifications.notify(
            db, hub, model["creator_id"], channels.MODEL_LIKED, "New like",
            f"{user['username']} liked your model \"{model['title']}\"",
            data={"model_id": str(model["_id"]), "user": users.render_brief(user)},
            action_url=f"/model/{model['_id']}")
    return int(after["likes"])


async def unlike(db, model: dict, user: dict) -> int:
    """`user` takes back a like (seed 000 §3 `DELETE .../like`); returns the new `likes`.

    Raises NotFound NOT_LIKED (404) when there was no like.
    """
    after = await counted_delete(
        db, LIKES, {"user_id": user["_id"], "model_id": model["_id"]},
        lambda step: _bump(db, model["_id"], "likes", step),
        missing=NotFound("You have not liked this model", "NOT_LIKED"))
    return int(after["likes"]) if after else 0


async def has_liked(db, user_id, model_id) -> bool:
    """True when `user_id` likes `model_id`."""
    return await db[LIKES].count_documents({"user_id": user_id, "model_id": model_id}) > 0


# --------------------------------------------------------------------------- comments

async def add_comment(db, hub, model: dict, user: dict, content: str, parent_id=None, *,
                      mailer) -> dict:
    """Store a comment of `user` on `model` (seed 000 §3 `POST .../comments`), 1–2000 chars
    (the schema strips and bounds it). `parent_id` (hex) makes it a reply (module docstring).

    Bumps the model's `comment_count` (and the root's `reply_count`). Unless the comment is
    their own, the creator gets a `comment_received` notification (through `hub`) and the
    `new_comment` email (through `mailer`, README "Emails"; none when they turned emails
    off). Returns the document.
    Raises Invalid (422) for an unknown `parent_id`; NotFound when the model vanished.
    """
    root = (await thread_root(db, COMMENTS, ("model_id", model["_id"]), parent_id, "model")
            if parent_id is not None else None)
    now = utcnow()
    doc = {"model_id": model["_id"], "user_id": user["_id"], "content": content,
           "parent_id": root["_id"] if root else None, "reply_count": 0, "likes": 0,
           "is_deleted": False, "created_at": now, "updated_at": now}
    result = await db[COMMENTS].insert_one(doc)
    doc["_id"] = result.inserted_id
    if await _bump(db, model["_id"], "comment_count", 1) is None:
        await db[COMMENTS].delete_one({"_id": doc["_id"]})
        raise NotFound("Model not found", "MODEL_NOT_FOUND")
    if root is not None:
        await db[COMMENTS].update_one({"_id": root["_id"]}, {"$inc": {"reply_count": 1}})
    if model["creator_id"] != user["_id"]:
        await notifications.notify(
            db, hub, model["creator_id"], channels.COMMENT_RECEIVED,
            "New comment", f"{user['username']} commented on \"{model['title']}\"",
            data={"model_id": str(model["_id"]), "comment_id": str(doc["_id"]),
                  "user": users.render_brief(user)},
            action_url=f"/model/{model['_id']}")
        await email_notices.after_write(email_notices.new_comment, db, mailer, model, user,
                                        content)
    return doc


def render_comment(doc: dict, authors: dict) -> dict:
    """A comment in API form with its author's brief card; a deleted one shows no content."""
    out = render({k: v for k, v in doc.items() if k != "user_id"})
    out["user_id"] = str(doc["user_id"])
    out["author"] = users.render_brief(authors.get(doc["user_id"]))
    if doc.get("is_deleted"):
        out["content"] = None
    return out


async def comment_page(db, model: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of `model`'s top-level comments, newest first, each with `replies` (oldest
    first, at most REPLIES_SHOWN; `reply_count` has them all) and author cards.

    Returns (rendered items, pagination meta over top-level comments).
    """
    tops, meta = await paginate(db[COMMENTS], {"model_id": model["_id"], "parent_id": None},
                                page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    replies: dict = {t["_id"]: [] for t in tops}
    if tops:
        cursor = db[COMMENTS].find({"parent_id": {"$in": list(replies)}}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)])
        async for reply in cursor:
            bucket = replies[reply["parent_id"]]
            if len(bucket) < REPLIES_SHOWN:
                bucket.append(reply)
    everyone = [t["user_id"] for t in tops] + [r["user_id"] for rs in replies.values() for r in rs]
    authors = await users.get_many(db, everyone)
    items = []
    for top in tops:
        item = render_comment(top, authors)
        item["replies"] = [render_comment(r, authors) for r in replies[top["_id"]]]
        items.append(item)
    return items, meta


# --------------------------------------------------------------------------- views, shares

def viewer_key(user: dict | None, client_ip: str | None, secret: str) -> str:
    """Who a view is counted for: ``u:<user id>``, or ``ip:<HMAC of the client IP>`` (the raw
    address is never stored)."""
    if user:
        return f"u:{user['_id']}"
    digest = hmac.new(secret.encode(), (client_ip or "").encode(), hashlib.sha256)
    return f"ip:{digest.hexdigest()[:32]}"


def window_start(now: datetime) -> datetime:
    """The start of the VIEW_WINDOW that `now` falls in (aligned to the epoch)."""
    seconds = int(VIEW_WINDOW.total_seconds())
    stamp = int(now.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(stamp, tz=UTC)


async def record_view(db, model: dict, key: str, now: datetime | None = None) -> tuple[int, bool]:
    """Count a view of `model` by `key` once per window (seed 000 §3 `POST .../view`).

    Returns (views, counted): `counted` is False for a repeat within the same window.
    """
    doc = {"model_id": model["_id"], "viewer_key": key, "window_start": window_start(now or utcnow())}
    try:
        await db[VIEWS].insert_one(doc)
    except DuplicateKeyError:
        current = await catalog.find_model(db, model["_id"])
        return int((current or {}).get("views") or 0), False
    after = await _bump(db, model["_id"], "views", 1)
    return int((after or {}).get("views") or 0), after is not None


async def share(db, model: dict) -> int:
    """Count one share of `model` (seed 001 §5 "Share model"); returns the new `shares`."""
    after = await _bump(db, model["_id"], "shares", 1)
    if after is None:
        raise NotFound("Model not found", "MODEL_NOT_FOUND")
    return int(after["shares"])


# --------------------------------------------------------------------------- specs

def slug(title: str) -> str:
    """A file-name-safe slug of a title ("Knight's Sword" → "knight-s-sword"), "model" if empty."""
    return common.slugify(title, "model")


def _dimensions(bounds) -> dict | None:
    try:
        low, high = bounds
        return {axis: round(float(high[i]) - float(low[i]), 6) for i, axis in enumerate("xyz")}
    except (TypeError, ValueError, IndexError):
        return None


def specs(model: dict, creator: dict | None, public_url: str) -> dict:
    """The technical specs document of `model` (seed 001 §4 "Download specs"): formats, file
    size (bytes and MB), poly/vertex counts, materials/textures/animations/rigging (with
    counts from the analysis), bounds and dimensions (model units), texture resolution,
    category, tags, creator. Never the private file key."""
    analysis = model.get("analysis") or {}
    bounds = analysis.get("bounds")
    size = int(model.get("file_size") or 0)
    return {
        "model_id": str(model["_id"]), "title": model.get("title"),
        "url": f"{public_url}/model/{model['_id']}",
        "creator": users.render_brief(creator),
        "category": model.get("category"), "tags": list(model.get("tags") or []),
        "file_format": model.get("file_format"),
        "file_formats": list(model.get("file_formats") or []),
        "file_size": size, "file_size_mb": round(size / (1024 * 1024), 3),
        "poly_count": model.get("poly_count"), "vertex_count": model.get("vertex_count"),
        "texture_resolution": model.get("texture_resolution"),
        "has_materials": bool(model.get("has_materials")),
        "has_textures": bool(model.get("has_textures")),
        "has_animations": bool(model.get("has_animations")),
        "has_rigging": bool(model.get("has_rigging")),
        "material_count": analysis.get("material_count"),
        "texture_count": analysis.get("texture_count"),
        "animation_count": analysis.get("animation_count"),
        "bounds": bounds, "dimensions": _dimensions(bounds),
        "analyzed": bool(model.get("analyzed")),
        "created_at": iso(model.get("created_at")), "generated_at": iso(utcnow()),
    }


# --------------------------------------------------------------------------- media

async def add_media(db, model: dict, owner: dict, kind: str, file_record: dict,
                    url: str | None) -> dict:
    """Store a captured screenshot or video (`kind`) of `model` from its `files` record.

    Returns the `model_media` document.
    """
    if kind not in MEDIA_KINDS:
        raise ValueError(f"unknown media kind {kind!r}")
    doc = {"model_id": model["_id"], "owner_id": owner["_id"], "kind": kind,
           "file_id": file_record["_id"], "key": file_record["key"], "url": url,
           "content_type": file_record.get("content_type"), "size": file_record.get("size"),
           "format": file_record.get("format"), "width": file_record.get("width"),
           "height": file_record.get("height"), "created_at": utcnow()}
    result = await db[MEDIA].insert_one(doc)
    doc["_id"] = result.inserted_id
    return doc


async def set_thumbnail(db, model: dict, url: str) -> None:
    """Make `url` the model's `thumbnail_url` (a presentation change: no new review)."""
    await catalog.set_thumbnail(db, model["_id"], url)


def render_media(doc: dict) -> dict:
    """A media record in API form (the storage key is left out)."""
    return render({k: v for k, v in doc.items() if k != "key"})


async def remove_for_model(db, model_id) -> list[str]:
    """Delete the likes, comments, view records and media records of a deleted model.

    For `documents.model_writes.delete_model` callers. Returns the storage keys of the media
    files, for the caller to delete from storage.
    """
    keys = [m["key"] async for m in db[MEDIA].find({"model_id": model_id}, {"key": 1})]
    for name in (LIKES, COMMENTS, VIEWS, MEDIA):
        await db[name].delete_many({"model_id": model_id})
    return keys
