"""Community posts with their comments and reactions embedded (seed 000 §5,
seed 001 §8; docs/architecture.md §4 "posts embed their comments and reactions").

A post (`posts`)::

    {_id, community_id, author_id, content, image_url, model_id, model_url,
     reactions: {like, love, wow, fire: int}, reacted: [{user_id, type}],
     comments: [{_id, author_id, content, parent_id, created_at, is_deleted}],
     comment_count, share_count, is_pinned, is_deleted, created_at, updated_at}

The embedded arrays, their bounds and the reaction and comment writes are in
`documents.post_interactions`. Posts are soft-deleted (`is_deleted`, hidden everywhere) and
the community's `post_count` follows.

Events on ``community:<community_id>`` after each write (docs/architecture.md §6): `new_post` (the
rendered post).
"""
from __future__ import annotations

import math
import re
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from documents import catalog, communities, search_engine, search_kinds, users
from documents.common import object_id, omit, render, require_id, utcnow
from documents.errors import Forbidden, Invalid, NotFound
from documents.support import clean_attachments
from realtime import channels

POSTS = "posts"
REACTION_TYPES = ("like", "love", "wow", "fire")
FILTERS = ("recent", "popular", "media")
MAX_CONTENT = 10_000
MAX_COMMENT = 2_000
LIST_PROJECTION = {"comments": 0, "reacted": 0}
_MODEL_PAGE = re.compile(r"^/models?/([0-9a-f]{24})$")

INDEXES = {
    POSTS: [
        IndexModel([("community_id", ASCENDING), ("is_deleted", ASCENDING),
                    ("is_pinned", DESCENDING), ("created_at", DESCENDING)]),
        IndexModel([("author_id", ASCENDING), ("created_at", DESCENDING)]),
    ]
}

POST_NOT_FOUND = ("Post not found", "POST_NOT_FOUND")


# --------------------------------------------------------------------------- reads

async def get(db, post_id: Any, *, arrays: bool = False) -> dict:
    """The post `post_id` unless deleted (without `comments`/`reacted` unless `arrays`).
    Raises NotFound POST_NOT_FOUND (also for an invalid id)."""
    oid = require_id(post_id, "Post")
    post = await db[POSTS].find_one({"_id": oid, "is_deleted": False},
                                    None if arrays else LIST_PROJECTION)
    if post is None:
        raise NotFound(*POST_NOT_FOUND)
    return post


async def get_readable(db, post_id: Any, viewer: dict | None,
                       *, arrays: bool = False) -> tuple[dict, dict, dict | None]:
    """(post, community, viewer's membership) when `viewer` may read the post: its community
    is active and public, or the viewer is an active member or staff. A post of a community
    the viewer cannot see is a 404; of a private community the viewer could join, 403."""
    post = await get(db, post_id, arrays=arrays)
    community = await communities.get(db, post["community_id"])
    if community is None:
        raise NotFound(*POST_NOT_FOUND)
    member = await communities.membership(db, community["_id"], viewer["_id"]) if viewer else None
    if community.get("status") != "active" and not communities.is_moderator(viewer):
        raise NotFound(*POST_NOT_FOUND)
    communities.require_read(community, member, viewer)
    return post, community, member


def can_post(community: dict, member: dict | None, user: dict) -> bool:
    """Active members of an active community post; staff with `communities.moderate` too."""
    if communities.is_moderator(user):
        return True
    return community.get("status") == "active" and communities.is_active_member(member)


def require_remover(post: dict, member: dict | None, user: dict) -> None:
    """The author, the community's admins/moderators and staff remove a post; else Forbidden."""
    if post["author_id"] != user["_id"] and not communities.can_manage(member, user):
        raise Forbidden("Only the author, community moderators or staff can remove this post")


def require_author(post: dict, user: dict) -> None:
    """Only the author edits a post (seed 000 §5 PUT /api/posts/{id}); else Forbidden."""
    if post["author_id"] != user["_id"]:
        raise Forbidden("Only the author can edit this post", "NOT_POST_AUTHOR")


# --------------------------------------------------------------------------- rendering

def reaction_count(post: dict) -> int:
    return sum(int((post.get("reactions") or {}).get(t) or 0) for t in REACTION_TYPES)


def render_post(post: dict, authors: dict, my_reaction: str | None = None) -> dict:
    """A post in API form: no comment list nor who-reacted list; `author` card,
    `reactions` per type, `reaction_count`, `my_reaction` of the caller, `comment_count`."""
    out = render(omit(post, ("comments", "reacted", "is_deleted", "deleted_by", "deleted_at")))
    out["reactions"] = {t: int((post.get("reactions") or {}).get(t) or 0) for t in REACTION_TYPES}
    out["reaction_count"] = reaction_count(post)
    out["author"] = users.render_brief(authors.get(post["author_id"]))
    out["my_reaction"] = my_reaction
    return out


async def my_reactions(db, post_ids: list, viewer: dict | None) -> dict:
    """``{post_id: reaction type}`` of `viewer` on `post_ids` (one query)."""
    if not viewer or not post_ids:
        return {}
    uid = viewer["_id"]
    cursor = db[POSTS].find({"_id": {"$in": post_ids}, "reacted.user_id": uid},
                            {"reacted": {"$elemMatch": {"user_id": uid}}})
    return {d["_id"]: d["reacted"][0]["type"] async for d in cursor if d.get("reacted")}


async def render_many(db, posts: list[dict], viewer: dict | None) -> list[dict]:
    """`posts` rendered for `viewer` (authors and own reactions in one query each)."""
    authors = await users.get_many(db, [p["author_id"] for p in posts])
    mine = await my_reactions(db, [p["_id"] for p in posts], viewer)
    return [render_post(p, authors, mine.get(p["_id"])) for p in posts]


async def render_one(db, post: dict, viewer: dict | None) -> dict:
    return (await render_many(db, [post], viewer))[0]


# --------------------------------------------------------------------------- listing

def page_meta(total: int, page: int, limit: int) -> dict:
    return {"total": total, "page": page, "limit": limit, "pages": math.ceil(total / limit)}


async def list_page(db, community: dict, *, filter: str, page: int, limit: int,
                    search: str | None = None) -> tuple[list[dict], dict]:
    """One page of a community's visible posts, pinned first (seed 000 §5 `filter`):
    `recent` newest first; `popular` by reactions + comments + shares; `media` only posts
    with an image or a model, newest first. With `search`, the matching posts by relevance
    (`documents.search_engine.ranked_page`). Documents come without their arrays."""
    query: dict = {"community_id": community["_id"], "is_deleted": False}
    if filter == "media":
        query["$or"] = [{"image_url": {"$nin": [None, ""]}}, {"model_id": {"$ne": None}},
                        {"model_url": {"$nin": [None, ""]}}]
    if search and search.strip():
        return await search_engine.ranked_page(
            db, POSTS, search, db[POSTS], query, page=page, limit=limit,
            where={"community_id": community["_id"]}, projection=LIST_PROJECTION)
    total = await db[POSTS].count_documents(query)
    skip = (page - 1) * limit
    if filter == "popular":
        score = {"$add": [{"$ifNull": [f"$reactions.{t}", 0]} for t in REACTION_TYPES]
                 + [{"$ifNull": ["$comment_count", 0]}, {"$ifNull": ["$share_count", 0]}]}
        pipeline = [{"$match": query}, {"$addFields": {"popularity": score}},
                    {"$sort": {"is_pinned": -1, "popularity": -1, "created_at": -1, "_id": -1}},
                    {"$skip": skip}, {"$limit": limit},
                    {"$project": {"comments": 0, "reacted": 0, "popularity": 0}}]
        docs = await db[POSTS].aggregate(pipeline).to_list(length=limit)
    else:
        cursor = db[POSTS].find(query, LIST_PROJECTION).sort(
            [("is_pinned", DESCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
        docs = await cursor.skip(skip).limit(limit).to_list(length=limit)
    return docs, page_meta(total, page, limit)


# --------------------------------------------------------------------------- attachments

def clean_image_url(url: str | None, settings) -> str | None:
    """`url` when it is one of our storage URLs (``/files/...``, PUBLIC_URL, CDN_URL: what
    `POST /api/upload/image` answers); None for empty. Raises Invalid (422) otherwise."""
    if not url:
        return None
    try:
        return clean_attachments([url], settings)[0]
    except Invalid:
        raise Invalid({"image_url": ["Must be an image uploaded to HWC3D."]}) from None


async def _public_model(db, model_id: Any, field: str) -> dict:
    oid = object_id(model_id)
    model = await catalog.find_model(db, oid) if oid else None
    if model is None or not catalog.is_public(model):
        raise Invalid({field: ["Must be an approved, published model."]})
    return model


async def clean_model(db, model_id: str | None, model_url: str | None,
                      settings) -> tuple[ObjectId | None, str | None]:
    """(model_id, model_url) of a post's model attachment. `model_id` must be an approved,
    published model (its page ``/models/<id>`` becomes `model_url` when none is given);
    `model_url` is a model page (``/models/<id>``, the model checked the same way) or one
    of our storage URLs. Raises Invalid (422)."""
    model_oid = None
    if model_id:
        model_oid = (await _public_model(db, model_id, "model_id"))["_id"]
    if model_url:
        page = _MODEL_PAGE.match(model_url)
        if page:
            found = (await _public_model(db, page.group(1), "model_url"))["_id"]
            if model_oid is not None and found != model_oid:
                raise Invalid({"model_url": ["Does not match model_id."]})
            model_oid = found
        else:
            try:
                model_url = clean_attachments([model_url], settings)[0]
            except Invalid:
                raise Invalid({"model_url": ["Must be a model page or a file on HWC3D."]}) \
                    from None
    elif model_oid is not None:
        model_url = f"/models/{model_oid}"
    return model_oid, model_url or None


async def clean_attachments_of(db, data: dict, settings) -> dict:
    """The `image_url`, `model_id`, `model_url` of `data` checked (only the keys present)."""
    out: dict = {}
    if "image_url" in data:
        out["image_url"] = clean_image_url(data["image_url"], settings)
    if "model_id" in data or "model_url" in data:
        out["model_id"], out["model_url"] = await clean_model(
            db, data.get("model_id"), data.get("model_url"), settings)
    return out


# --------------------------------------------------------------------------- posts

async def create(db, hub, community: dict, author: dict, data: dict, settings) -> dict:
    """A new post by `author` in `community` (seed 000 §5 POST .../posts); `data` has
    `content` (1..10,000 characters, validated by the handler) and optional `image_url`,
    `model_id`, `model_url`. Bumps the community's `post_count`, publishes `new_post`.
    Returns the post rendered. Raises Invalid (422) for a bad attachment, nothing stored."""
    attachments = await clean_attachments_of(db, data, settings)
    now = utcnow()
    post = {"community_id": community["_id"], "author_id": author["_id"],
            "content": data["content"], "image_url": attachments.get("image_url"),
            "model_id": attachments.get("model_id"), "model_url": attachments.get("model_url"),
            "reactions": {t: 0 for t in REACTION_TYPES}, "reacted": [], "comments": [],
            "comment_count": 0, "share_count": 0, "is_pinned": False, "is_deleted": False,
            "created_at": now, "updated_at": now}
    post["_id"] = (await db[POSTS].insert_one(post)).inserted_id
    await search_kinds.index(db, POSTS, post["_id"], post)
    await communities.move_post_count(db, community["_id"], 1)
    rendered = render_post(post, {author["_id"]: author})
    await hub.publish(channels.community(community["_id"]), channels.NEW_POST, rendered)
    return rendered


async def update(db, post: dict, changes: dict, settings) -> dict:
    """Apply the author's `changes` (content, image_url, model_id, model_url) to a visible
    post; returns the new document (without arrays). Raises NotFound, Invalid."""
    fields = {k: v for k, v in changes.items() if k == "content"}
    fields.update(await clean_attachments_of(db, changes, settings))
    fields["updated_at"] = utcnow()
    after = await db[POSTS].find_one_and_update(
        {"_id": post["_id"], "is_deleted": False}, {"$set": fields},
        projection=LIST_PROJECTION, return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound(*POST_NOT_FOUND)
    await search_kinds.index(db, POSTS, after["_id"], after)
    return after


async def remove(db, post_id: Any, by: dict | None = None) -> bool:
    """Soft-delete a post (hidden everywhere) and take it off the community's `post_count`,
    once: only the request whose conditional update matched moves the count. Returns True
    when this call removed it, False when it was already removed or does not exist."""
    oid = object_id(post_id)
    if oid is None:
        return False
    before = await db[POSTS].find_one_and_update(
        {"_id": oid, "is_deleted": False},
        {"$set": {"is_deleted": True, "is_pinned": False, "deleted_at": utcnow(),
                  "deleted_by": by["_id"] if by else None}},
        projection={"community_id": 1})
    if before is None:
        return False
    await search_kinds.index(db, POSTS, oid, None)
    await communities.move_post_count(db, before["community_id"], -1)
    return True


async def set_pinned(db, post: dict, pinned: bool) -> dict:
    """Pin or unpin a visible post (community moderators and staff); returns it."""
    after = await db[POSTS].find_one_and_update(
        {"_id": post["_id"], "is_deleted": False}, {"$set": {"is_pinned": pinned}},
        projection=LIST_PROJECTION, return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound(*POST_NOT_FOUND)
    return after


async def share(db, post: dict) -> int:
    """Count one share of a visible post; returns the new `share_count`."""
    after = await db[POSTS].find_one_and_update(
        {"_id": post["_id"], "is_deleted": False}, {"$inc": {"share_count": 1}},
        projection={"share_count": 1}, return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound(*POST_NOT_FOUND)
    return after["share_count"]


# --------------------------------------------------------------------------- comments


async def get_many_brief(db, post_ids: list) -> list[dict]:
    """The posts of `post_ids` without their comment and reaction arrays, deleted ones included."""
    return [p async for p in db[POSTS].find({"_id": {"$in": list(post_ids)}}, LIST_PROJECTION)]


async def remove_all_of_community(db, community_id) -> int:
    """Delete every post of `community_id` (its comments and reactions are embedded);
    returns how many. Their search documents go with the community
    (`search_kinds.remove_community_posts`)."""
    return (await db[POSTS].delete_many({"community_id": community_id})).deleted_count
