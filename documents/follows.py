"""Follows: the `follows` collection (seed 000 §2 `UserFollower`) and the users' follow counters.

A follow document::

    {_id, follower_id: ObjectId, following_id: ObjectId, created_at}

One document per (follower, following) pair, held unique by a compound index: a second
follow of the same user is a 409, even when two requests race. Each follow that is stored
(or deleted) moves `following_count` of the follower and `followers_count` of the followed
user by exactly one, right after the write that won, so the counters equal the number of
documents (docs/architecture.md §4). A new follow tells the followed user: a `new_follower`
notification and, unless they turned emails off, the `new_follower` email.
"""
from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import email_notices, notifications, users
from documents.common import iso, paginate, utcnow
from documents.errors import BadRequest, Conflict, NotFound
from realtime import channels

COLLECTION = "follows"

INDEXES = {
    COLLECTION: [
        IndexModel([("follower_id", ASCENDING), ("following_id", ASCENDING)], unique=True),
        IndexModel([("following_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("follower_id", ASCENDING), ("created_at", DESCENDING)]),
    ]
}


async def _count(db, follower_id, following_id, step: int) -> None:
    await users.move_counters(db, follower_id, following_count=step)
    await users.move_counters(db, following_id, followers_count=step)


async def follow(db, hub, follower: dict, target: dict, *, mailer) -> dict:
    """`follower` follows `target` (both user documents); returns the stored follow document.

    The followed user gets a `new_follower` notification through `hub` and the
    `new_follower` email through `mailer` (README "Emails"; none when they turned emails off).
    Raises BadRequest CANNOT_FOLLOW_SELF (400) and Conflict ALREADY_FOLLOWING (409).
    """
    if follower["_id"] == target["_id"]:
        raise BadRequest("You cannot follow yourself", "CANNOT_FOLLOW_SELF")
    doc = {"follower_id": follower["_id"], "following_id": target["_id"], "created_at": utcnow()}
    try:
        result = await db[COLLECTION].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict("You already follow this user", "ALREADY_FOLLOWING") from None
    doc["_id"] = result.inserted_id
    await _count(db, follower["_id"], target["_id"], 1)
    await notifications.notify(
        db, hub, target["_id"], channels.NEW_FOLLOWER, "New follower",
        f"{follower['username']} started following you",
        data={"follower_id": str(follower["_id"]), "follower_username": follower["username"],
              "follower": users.render_brief(follower)},
        action_url=f"/profile/{follower['username']}")
    await email_notices.after_write(email_notices.new_follower, mailer, follower, target)
    return doc


async def unfollow(db, follower: dict, target: dict) -> None:
    """`follower` stops following `target`. Raises NotFound NOT_FOLLOWING (404) when it did not."""
    removed = await db[COLLECTION].find_one_and_delete(
        {"follower_id": follower["_id"], "following_id": target["_id"]})
    if removed is None:
        raise NotFound("You do not follow this user", "NOT_FOLLOWING")
    await _count(db, follower["_id"], target["_id"], -1)


async def is_following(db, follower_id, following_id) -> bool:
    """True when `follower_id` follows `following_id`."""
    found = await db[COLLECTION].find_one(
        {"follower_id": follower_id, "following_id": following_id}, {"_id": 1})
    return found is not None


async def page_of(db, user_id, direction: str, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of the followers (`direction="followers"`) or followings of `user_id`, newest first.

    Returns (cards, meta): each card is `users.render_brief` of the other user plus
    `followed_at` (ISO Z); meta as `common.paginate`.
    """
    mine, other = (("following_id", "follower_id") if direction == "followers"
                   else ("follower_id", "following_id"))
    docs, meta = await paginate(db[COLLECTION], {mine: user_id}, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    people = await users.get_many(db, [d[other] for d in docs])
    cards = []
    for doc in docs:
        card = users.render_brief(people.get(doc[other]))
        if card is not None:
            card["followed_at"] = iso(doc["created_at"])
            cards.append(card)
    return cards, meta


async def remove_all(db, user_id) -> int:
    """Delete every follow from and to `user_id`, moving the other side's counter each time.

    Used by account deletion; returns the number of follows removed. The user's own counters
    are left to the caller (they are reset with the rest of the account).
    """
    removed = 0
    while doc := await db[COLLECTION].find_one_and_delete({"follower_id": user_id}):
        await users.move_counters(db, doc["following_id"], followers_count=-1)
        removed += 1
    while doc := await db[COLLECTION].find_one_and_delete({"following_id": user_id}):
        await users.move_counters(db, doc["follower_id"], following_count=-1)
        removed += 1
    return removed
