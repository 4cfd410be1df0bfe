"""Community posts with their comments and reactions embedded (issue 4 item 2; seed 000 §5,
seed 001 §8; DESIGN §5 "posts embed their comments and reactions").

A post (`posts`)::

    {_id, community_id, author_id, content, image_url, model_id, model_url,
     reactions: {like, love, wow, fire: int}, reacted: [{user_id, type}],
     comments: [{_id, author_id, content, parent_id, created_at, is_deleted}],
     comment_count, share_count, is_pinned, is_deleted, created_at, updated_at}

Bounds of the embedded arrays (DESIGN §5): at most MAX_COMMENTS (500) comments and
MAX_REACTIONS (5,000) reactions per post, enforced inside the conditional update that adds
one (``"comments.499": {"$exists": False}``), so racing writers cannot pass the bound.
Past it, a new comment is refused with 409 POST_THREAD_FULL and a new reaction with 409
POST_REACTIONS_FULL (changing or removing one's reaction still works). A product that
outgrows this would move comments to their own collection; a 16 MB document holds these
bounds with room to spare (500 × 2,000 characters ≈ 1 MB).

Reactions: one per user per post (`reacted` holds who reacted with what; `reactions` the
per-type counts). Every change is one conditional update that moves the count in the same
write as the entry, so counts equal the entries whatever the concurrency:
- add: ``{"_id": p, "reacted.user_id": {"$ne": u}}`` + `$push` + `$inc reactions.<type>`;
- change type: ``{"_id": p, "reacted": {"$elemMatch": {"user_id": u, "type": old}}}`` +
  `$set reacted.$.type` + `$inc` old -1 / new +1 (only the writer that saw `old` wins; the
  loser re-reads and retries);
- remove: the same filter + `$pull` + `$inc` old -1.
Reacting again with the same type changes nothing.

Comments are a flat list; `parent_id` names the comment replied to (any depth). They are
soft-deleted (`is_deleted`); `comment_count` counts the visible ones. Posts are soft-deleted
too (`is_deleted`, hidden everywhere) and the community's `post_count` follows.

Events on ``community:<community_id>`` after each write (DESIGN §4): `new_post` (the
rendered post), `new_comment` ({post_id, community_id, comment, comment_count}),
`new_reaction` ({post_id, community_id, user_id, user, reaction_type, previous_type,
reactions, reaction_count}; `reaction_type` is null when a reaction was removed).
"""
from __future__ import annotations

import math
import re
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from documents import catalog, communities, users
from documents.common import object_id, omit, render, require_id, utcnow
from documents.errors import Conflict, Forbidden, Invalid, NotFound
from documents.support import clean_attachments

POSTS = "posts"
REACTION_TYPES = ("like", "love", "wow", "fire")
FILTERS = ("recent", "popular", "media")
MAX_CONTENT = 10_000
MAX_COMMENT = 2_000
MAX_COMMENTS = 500
MAX_REACTIONS = 5_000
ATTEMPTS = 8
LIST_PROJECTION = {"comments": 0, "reacted": 0}
_MODEL_PAGE = re.compile(r"^/models?/([0-9a-f]{24})$")

INDEXES = {
    POSTS: [
        IndexModel([("community_id", ASCENDING), ("is_deleted", ASCENDING),
                    ("is_pinned", DESCENDING), ("created_at", DESCENDING)]),
        IndexModel([("author_id", ASCENDING), ("created_at", DESCENDING)]),
    ]
}

_POST_NOT_FOUND = ("Post not found", "POST_NOT_FOUND")


# --------------------------------------------------------------------------- reads

async def get(db, post_id: Any, *, arrays: bool = False) -> dict:
    """The post `post_id` unless deleted (without `comments`/`reacted` unless `arrays`).
    Raises NotFound POST_NOT_FOUND (also for an invalid id)."""
    oid = require_id(post_id, "Post")
    post = await db[POSTS].find_one({"_id": oid, "is_deleted": False},
                                    None if arrays else LIST_PROJECTION)
    if post is None:
        raise NotFound(*_POST_NOT_FOUND)
    return post


async def get_readable(db, post_id: Any, viewer: dict | None,
                       *, arrays: bool = False) -> tuple[dict, dict, dict | None]:
    """(post, community, viewer's membership) when `viewer` may read the post: its community
    is active and public, or the viewer is an active member or staff. A post of a community
    the viewer cannot see is a 404; of a private community the viewer could join, 403."""
    post = await get(db, post_id, arrays=arrays)
    community = await communities.get(db, post["community_id"])
    if community is None:
        raise NotFound(*_POST_NOT_FOUND)
    member = await communities.membership(db, community["_id"], viewer["_id"]) if viewer else None
    if community.get("status") != "active" and not communities.is_moderator(viewer):
        raise NotFound(*_POST_NOT_FOUND)
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

def _meta(total: int, page: int, limit: int) -> dict:
    return {"total": total, "page": page, "limit": limit, "pages": math.ceil(total / limit)}


async def list_page(db, community: dict, *, filter: str, page: int,
                    limit: int) -> tuple[list[dict], dict]:
    """One page of a community's visible posts, pinned first (seed 000 §5 `filter`):
    `recent` newest first; `popular` by reactions + comments + shares; `media` only posts
    with an image or a model, newest first. Documents come without their arrays."""
    query: dict = {"community_id": community["_id"], "is_deleted": False}
    if filter == "media":
        query["$or"] = [{"image_url": {"$nin": [None, ""]}}, {"model_id": {"$ne": None}},
                        {"model_url": {"$nin": [None, ""]}}]
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
    return docs, _meta(total, page, limit)


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
    model = await db[catalog.COLLECTION].find_one({"_id": oid}) if oid else None
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
    await db[communities.COMMUNITIES].update_one({"_id": community["_id"]},
                                                 {"$inc": {"post_count": 1}})
    rendered = render_post(post, {author["_id"]: author})
    await hub.publish(communities.channel_of(community["_id"]), "new_post", rendered)
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
        raise NotFound(*_POST_NOT_FOUND)
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
    await db[communities.COMMUNITIES].update_one({"_id": before["community_id"]},
                                                 {"$inc": {"post_count": -1}})
    return True


async def set_pinned(db, post: dict, pinned: bool) -> dict:
    """Pin or unpin a visible post (community moderators and staff); returns it."""
    after = await db[POSTS].find_one_and_update(
        {"_id": post["_id"], "is_deleted": False}, {"$set": {"is_pinned": pinned}},
        projection=LIST_PROJECTION, return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound(*_POST_NOT_FOUND)
    return after


async def share(db, post: dict) -> int:
    """Count one share of a visible post; returns the new `share_count`."""
    after = await db[POSTS].find_one_and_update(
        {"_id": post["_id"], "is_deleted": False}, {"$inc": {"share_count": 1}},
        projection={"share_count": 1}, return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound(*_POST_NOT_FOUND)
    return after["share_count"]


# --------------------------------------------------------------------------- reactions

async def _mine(db, post_id: ObjectId, user_id: ObjectId) -> tuple[bool, str | None]:
    """(post visible, the user's reaction type or None)."""
    doc = await db[POSTS].find_one({"_id": post_id, "is_deleted": False},
                                   {"reacted": {"$elemMatch": {"user_id": user_id}}})
    if doc is None:
        return False, None
    return True, (doc.get("reacted") or [{}])[0].get("type")


async def _add_reaction(db, post_id, user_id, kind: str) -> dict | None:
    return await db[POSTS].find_one_and_update(
        {"_id": post_id, "is_deleted": False, "reacted.user_id": {"$ne": user_id},
         f"reacted.{MAX_REACTIONS - 1}": {"$exists": False}},
        {"$push": {"reacted": {"user_id": user_id, "type": kind}},
         "$inc": {f"reactions.{kind}": 1}},
        projection=LIST_PROJECTION, return_document=ReturnDocument.AFTER)


async def _change_reaction(db, post_id, user_id, old: str, new: str | None) -> dict | None:
    """Move the user's reaction `old` → `new` (None: remove) in one conditional update."""
    condition = {"_id": post_id, "is_deleted": False,
                 "reacted": {"$elemMatch": {"user_id": user_id, "type": old}}}
    if new is None:
        change = {"$pull": {"reacted": {"user_id": user_id}}, "$inc": {f"reactions.{old}": -1}}
    else:
        change = {"$set": {"reacted.$.type": new},
                  "$inc": {f"reactions.{old}": -1, f"reactions.{new}": 1}}
    # update_one, not find_one_and_update: mongomock resolves the positional `$` of the
    # latter against the wrong element.
    result = await db[POSTS].update_one(condition, change)
    if not result.modified_count:
        return None
    return await db[POSTS].find_one({"_id": post_id}, LIST_PROJECTION)


async def _publish_reaction(hub, post: dict, user: dict, kind: str | None,
                            previous: str | None) -> None:
    await hub.publish(communities.channel_of(post["community_id"]), "new_reaction", {
        "post_id": post["_id"], "community_id": post["community_id"], "user_id": user["_id"],
        "user": users.render_brief(user), "reaction_type": kind, "previous_type": previous,
        "reactions": render_post(post, {})["reactions"], "reaction_count": reaction_count(post)})


async def react(db, hub, post: dict, user: dict, kind: str) -> tuple[dict, str | None]:
    """Set `user`'s reaction on `post` to `kind` (like, love, wow, fire; seed 000 §5).

    Returns (the post after, the previous type or None). Adds, or moves the count from the
    old type, or changes nothing when it is the same type; publishes `new_reaction` when
    something changed. Raises NotFound, Conflict POST_REACTIONS_FULL past MAX_REACTIONS.
    """
    if kind not in REACTION_TYPES:
        raise Invalid({"reaction_type": [f"Must be one of: {', '.join(REACTION_TYPES)}."]})
    pid, uid = post["_id"], user["_id"]
    for _attempt in range(ATTEMPTS):
        after = await _add_reaction(db, pid, uid, kind)
        if after is not None:
            await _publish_reaction(hub, after, user, kind, None)
            return after, None
        visible, old = await _mine(db, pid, uid)
        if not visible:
            raise NotFound(*_POST_NOT_FOUND)
        if old == kind:
            return await get(db, pid), old
        if old is None:
            if await db[POSTS].count_documents(
                    {"_id": pid, f"reacted.{MAX_REACTIONS - 1}": {"$exists": True}}):
                raise Conflict(f"This post has reached {MAX_REACTIONS} reactions",
                               "POST_REACTIONS_FULL")
            continue  # removed meanwhile: add again
        after = await _change_reaction(db, pid, uid, old, kind)
        if after is not None:
            await _publish_reaction(hub, after, user, kind, old)
            return after, old
    raise Conflict("The reaction changed meanwhile; try again", "CONCURRENT_UPDATE")


async def unreact(db, hub, post: dict, user: dict) -> tuple[dict, str]:
    """Remove `user`'s reaction from `post` (count -1). Returns (post after, removed type);
    publishes `new_reaction` with `reaction_type` null. Raises NotFound POST_NOT_FOUND or
    REACTION_NOT_FOUND."""
    pid, uid = post["_id"], user["_id"]
    for _attempt in range(ATTEMPTS):
        visible, old = await _mine(db, pid, uid)
        if not visible:
            raise NotFound(*_POST_NOT_FOUND)
        if old is None:
            raise NotFound("You have not reacted to this post", "REACTION_NOT_FOUND")
        after = await _change_reaction(db, pid, uid, old, None)
        if after is not None:
            await _publish_reaction(hub, after, user, None, old)
            return after, old
    raise Conflict("The reaction changed meanwhile; try again", "CONCURRENT_UPDATE")


# --------------------------------------------------------------------------- comments

def render_comment(comment: dict, post_id: Any, authors: dict, reply_count: int = 0) -> dict:
    """``{id, post_id, author_id, author, content, parent_id, created_at, is_deleted,
    reply_count}``; a deleted comment keeps its place (for its replies) without content."""
    deleted = bool(comment.get("is_deleted"))
    return {"id": str(comment["_id"]), "post_id": str(post_id),
            "author_id": None if deleted else str(comment["author_id"]),
            "author": None if deleted else users.render_brief(authors.get(comment["author_id"])),
            "content": None if deleted else comment["content"],
            "parent_id": render(comment.get("parent_id")),
            "created_at": render(comment["created_at"]), "is_deleted": deleted,
            "reply_count": reply_count}


async def add_comment(db, hub, post: dict, author: dict, content: str,
                      parent_id: Any = None) -> dict:
    """Add a comment (1..2,000 characters, validated by the handler) to a visible post,
    optionally replying to comment `parent_id` of the same post (seed 000 §5). Bumps
    `comment_count` in the same update, publishes `new_comment`; returns the comment
    rendered. Raises NotFound POST_NOT_FOUND / COMMENT_NOT_FOUND (parent), Conflict
    POST_THREAD_FULL (409) past MAX_COMMENTS comments."""
    parent = require_id(parent_id, "Comment") if parent_id else None
    comment = {"_id": ObjectId(), "author_id": author["_id"], "content": content,
               "parent_id": parent, "created_at": utcnow(), "is_deleted": False}
    condition: dict = {"_id": post["_id"], "is_deleted": False,
                       f"comments.{MAX_COMMENTS - 1}": {"$exists": False}}
    if parent is not None:
        condition["comments"] = {"$elemMatch": {"_id": parent, "is_deleted": False}}
    after = await db[POSTS].find_one_and_update(
        condition, {"$push": {"comments": comment}, "$inc": {"comment_count": 1}},
        projection={"comment_count": 1, "community_id": 1}, return_document=ReturnDocument.AFTER)
    if after is None:
        await _why_no_comment(db, post["_id"], parent)
    rendered = render_comment(comment, post["_id"], {author["_id"]: author})
    await hub.publish(communities.channel_of(after["community_id"]), "new_comment", {
        "post_id": post["_id"], "community_id": after["community_id"], "comment": rendered,
        "comment_count": after["comment_count"]})
    return rendered


async def _why_no_comment(db, post_id: ObjectId, parent: ObjectId | None) -> None:
    """Raise the error that made a comment's conditional update match nothing."""
    post = await db[POSTS].find_one({"_id": post_id, "is_deleted": False},
                                    {"comments._id": 1, "comments.is_deleted": 1})
    if post is None:
        raise NotFound(*_POST_NOT_FOUND)
    if len(post.get("comments") or []) >= MAX_COMMENTS:
        raise Conflict(f"This thread has reached {MAX_COMMENTS} comments", "POST_THREAD_FULL")
    raise NotFound("The comment you reply to was not found", "COMMENT_NOT_FOUND")


async def comments_page(db, post: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of a post's comments, oldest first, as a flat list with `parent_id` and
    `reply_count`. Deleted comments are left out unless visible replies hang off them (then
    shown without author or content)."""
    doc = await db[POSTS].find_one({"_id": post["_id"]}, {"comments": 1}) or {}
    comments = doc.get("comments") or []
    replies: dict = {}
    for c in comments:
        if not c.get("is_deleted") and c.get("parent_id") is not None:
            replies[c["parent_id"]] = replies.get(c["parent_id"], 0) + 1
    shown = [c for c in comments if not c.get("is_deleted") or replies.get(c["_id"])]
    chunk = shown[(page - 1) * limit: page * limit]
    authors = await users.get_many(db, [c["author_id"] for c in chunk])
    items = [render_comment(c, post["_id"], authors, replies.get(c["_id"], 0)) for c in chunk]
    return items, _meta(len(shown), page, limit)


async def find_comment(db, post_id: Any, comment_id: Any) -> tuple[dict, dict]:
    """(post without arrays, the visible comment `comment_id` of it). Raises NotFound."""
    post = await get(db, post_id)
    cid = require_id(comment_id, "Comment")
    doc = await db[POSTS].find_one({"_id": post["_id"]},
                                   {"comments": {"$elemMatch": {"_id": cid, "is_deleted": False}}})
    if not doc or not doc.get("comments"):
        raise NotFound("Comment not found", "COMMENT_NOT_FOUND")
    return post, doc["comments"][0]


async def find_comment_anywhere(db, comment_id: Any) -> dict | None:
    """The post (without arrays) holding comment `comment_id`, or None."""
    cid = object_id(comment_id)
    if cid is None:
        return None
    return await db[POSTS].find_one({"comments._id": cid}, LIST_PROJECTION)


async def remove_comment(db, post_id: Any, comment_id: Any) -> bool:
    """Soft-delete a comment and take it off `comment_count`, once. Returns True when this
    call removed it."""
    pid, cid = object_id(post_id), object_id(comment_id)
    if pid is None or cid is None:
        return False
    result = await db[POSTS].update_one(
        {"_id": pid, "comments": {"$elemMatch": {"_id": cid, "is_deleted": False}}},
        {"$set": {"comments.$.is_deleted": True}, "$inc": {"comment_count": -1}})
    return bool(result.modified_count)
