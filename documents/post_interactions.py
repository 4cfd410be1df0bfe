"""Comments and reactions on community posts, embedded in the post (seed 000 §5, seed 001 §8;
docs/architecture.md §4 "posts embed their comments and reactions").

The arrays of a post (`posts`, shape in `documents.posts`)::

    reactions: {like, love, wow, fire: int}, reacted: [{user_id, type}],
    comments: [{_id, author_id, content, parent_id, created_at, is_deleted}], comment_count

Bounds (docs/architecture.md §4): at most MAX_COMMENTS (500) comments and MAX_REACTIONS
(5,000) reactions per post, enforced inside the conditional update that adds one
(``"comments.499": {"$exists": False}``), so racing writers cannot pass the bound. Past it,
a new comment is refused with 409 POST_THREAD_FULL and a new reaction with 409
POST_REACTIONS_FULL (changing or removing one's reaction still works).

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
soft-deleted (`is_deleted`); `comment_count` counts the visible ones.

Events on ``community:<community_id>`` after each write (docs/architecture.md §6):
`new_comment` ({post_id, community_id, comment, comment_count}), `new_reaction` ({post_id,
community_id, user_id, user, reaction_type, previous_type, reactions, reaction_count};
`reaction_type` is null when a reaction was removed).
"""
from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from documents import users
from documents.common import object_id, render, require_id, utcnow
from documents.errors import Conflict, Invalid, NotFound
from documents.posts import (
    LIST_PROJECTION,
    POST_NOT_FOUND,
    POSTS,
    REACTION_TYPES,
    get,
    page_meta,
    reaction_count,
    render_post,
)
from realtime import channels

MAX_COMMENTS = 500


MAX_REACTIONS = 5_000


ATTEMPTS = 8


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
    await hub.publish(channels.community(post["community_id"]), channels.NEW_REACTION, {
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
            raise NotFound(*POST_NOT_FOUND)
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
            raise NotFound(*POST_NOT_FOUND)
        if old is None:
            raise NotFound("You have not reacted to this post", "REACTION_NOT_FOUND")
        after = await _change_reaction(db, pid, uid, old, None)
        if after is not None:
            await _publish_reaction(hub, after, user, None, old)
            return after, old
    raise Conflict("The reaction changed meanwhile; try again", "CONCURRENT_UPDATE")


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
    await hub.publish(channels.community(after["community_id"]), channels.NEW_COMMENT, {
        "post_id": post["_id"], "community_id": after["community_id"], "comment": rendered,
        "comment_count": after["comment_count"]})
    return rendered


async def _why_no_comment(db, post_id: ObjectId, parent: ObjectId | None) -> None:
    """Raise the error that made a comment's conditional update match nothing."""
    post = await db[POSTS].find_one({"_id": post_id, "is_deleted": False},
                                    {"comments._id": 1, "comments.is_deleted": 1})
    if post is None:
        raise NotFound(*POST_NOT_FOUND)
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
    return items, page_meta(len(shown), page, limit)


async def find_comment(db, post_id: Any, comment_id: Any) -> tuple[dict, dict]:
    """(post without arrays, the visible comment `comment_id` of it). Raises NotFound."""
    post = await get(db, post_id)
    cid = require_id(comment_id, "Comment")
    doc = await db[POSTS].find_one({"_id": post["_id"]},
                                   {"comments": {"$elemMatch": {"_id": cid, "is_deleted": False}}})
    if not doc or not doc.get("comments"):
        raise NotFound("Comment not found", "COMMENT_NOT_FOUND")
    return post, doc["comments"][0]


async def comment_of(db, post_id, comment_id) -> dict | None:
    """Comment `comment_id` (ObjectId) of post `post_id`, deleted or not, or None."""
    doc = await db[POSTS].find_one({"_id": post_id},
                                   {"comments": {"$elemMatch": {"_id": comment_id}}})
    found = (doc or {}).get("comments") or []
    return found[0] if found else None


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
