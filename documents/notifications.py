"""Notifications: the `notifications` collection and the one function that creates them.

A notification document (seed 001 §18, seed 004 `Notification`)::

    {_id, user_id: ObjectId, type: str, title: str, message: str, data: {}, action_url: str|None,
     is_read: bool, created_at}

`notify` is the one way to create a notification: it stores the document, then publishes it
as event `type` on the user's channel `notifications:<user_id>` (docs/architecture.md §6). Types in use:
new_follower, model_liked, model_purchased, comment_received, bounty_application,
model_approved, model_rejected, ticket_reply, community_approved, announcement. Reading a
support ticket marks its `ticket_reply` notifications read (`mark_read_where`). Direct
messages are delivered live on the same channel as `direct_message` events but are NOT
stored here (see
`documents.messages`): a conversation keeps its own unread count.
"""
from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from documents.common import object_id, paginate, render, require_id, utcnow
from documents.errors import NotFound
from realtime import channels

COLLECTION = "notifications"

INDEXES = {
    COLLECTION: [
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("user_id", ASCENDING), ("is_read", ASCENDING)]),
    ]
}

TYPES = channels.NOTIFICATION_EVENTS

log = logging.getLogger(__name__)


async def publish(hub, channel: str, type: str, data: dict) -> None:
    """Publish one event after a successful write; a failing hub is logged, never raised.

    The write already happened and the client can read it over REST, so a broker outage
    must not turn a successful request into an error.
    """
    try:
        await hub.publish(channel, type, data)
    except Exception:  # delivery is best effort once the write is stored
        log.warning("publish of %s on %s failed", type, channel, exc_info=True)


def render_notification(doc: dict) -> dict:
    """A notification in API form: ``{id, user_id, type, title, message, data, action_url,
    is_read, created_at}``."""
    return render(doc)


async def notify(db, hub, user_id: Any, type: str, title: str, message: str, *,
                 data: dict | None = None, action_url: str | None = None) -> dict:
    """Store a notification for `user_id` (ObjectId or hex) and publish it live.

    Publishes event `type` with the rendered notification on ``notifications:<user_id>``.
    Returns the rendered notification. Raises NotFound when `user_id` is not an id.
    """
    oid = require_id(user_id, "User")
    doc = {"user_id": oid, "type": type, "title": title[:200], "message": message[:1000],
           "data": dict(data or {}), "action_url": action_url, "is_read": False,
           "created_at": utcnow()}
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    rendered = render_notification(doc)
    await publish(hub, channels.notifications(oid), type, rendered)
    return rendered


async def list_for(db, user_id, *, unread_only: bool, page: int, limit: int,
                   type: str | None = None) -> tuple[list[dict], dict]:
    """One page of `user_id`'s notifications, newest first; ``(documents, page meta)``."""
    query: dict = {"user_id": user_id}
    if unread_only:
        query["is_read"] = False
    if type:
        query["type"] = type
    return await paginate(db[COLLECTION], query, page=page, limit=limit,
                          sort=[("created_at", DESCENDING), ("_id", DESCENDING)])


async def unread_count(db, user_id) -> int:
    """How many of `user_id`'s notifications are unread."""
    return await db[COLLECTION].count_documents({"user_id": user_id, "is_read": False})


async def mark_read(db, user_id, notification_id: Any) -> dict:
    """Mark one of `user_id`'s notifications read; returns it. Raises NotFound (also for
    another user's notification and for ids that are not ObjectIds)."""
    oid = object_id(notification_id)
    doc = oid and await db[COLLECTION].find_one_and_update(
        {"_id": oid, "user_id": user_id}, {"$set": {"is_read": True}}, return_document=True)
    if not doc:
        raise NotFound("Notification not found")
    return doc


async def mark_all_read(db, user_id) -> int:
    """Mark every unread notification of `user_id` read; returns how many changed."""
    result = await db[COLLECTION].update_many({"user_id": user_id, "is_read": False},
                                              {"$set": {"is_read": True}})
    return result.modified_count


async def mark_read_where(db, user_id, type: str, match: dict) -> int:
    """Mark read the unread notifications of `user_id` of `type` whose fields equal `match`
    (e.g. ``{"data.ticket_id": "<hex>"}``); returns how many changed."""
    result = await db[COLLECTION].update_many(
        {**match, "user_id": user_id, "type": type, "is_read": False},
        {"$set": {"is_read": True}})
    return result.modified_count


async def delete(db, user_id, notification_id: Any) -> None:
    """Delete one of `user_id`'s notifications. Raises NotFound (others' included)."""
    oid = object_id(notification_id)
    result = oid and await db[COLLECTION].delete_one({"_id": oid, "user_id": user_id})
    if not result or not result.deleted_count:
        raise NotFound("Notification not found")
