"""Direct messages between users (seed 001 `/dashboard/messages`, seed 004 Dashboard Messages).

A conversation (`conversations`), one per pair of users::

    {_id, participant_ids: [a, b] (sorted), participants_key: "a:b" (unique),
     last_message: {id, sender_id, content (preview), has_attachments, created_at} | None,
     last_message_at, unread: {"<user_id>": n}, created_at}

A message (`direct_messages`)::

    {_id, conversation_id, sender_id, recipient_id, content, attachments: [url],
     read_at: datetime | None, created_at}

Each new message is delivered live on the recipient's channel ``notifications:<id>`` as a
`direct_message` event. It is deliberately NOT stored as a notification: the conversation
list already carries a per-conversation unread count, and one notification per chat line
would flood the notification list and count every unread message twice.

The unread count of a user in a conversation moves only by `$inc`: +1 after each message to
them, -k after a read that marked k messages (each message is marked read once, by a
conditional update), so concurrent sends and reads cannot make it drift.
"""
from __future__ import annotations

import math
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from documents import notifications, users
from documents.common import object_id, render, upsert_one, utcnow
from documents.errors import BadRequest, Forbidden, NotFound
from documents.support import clean_attachments, clean_content
from realtime import channels

CONVERSATIONS = "conversations"
MESSAGES = "direct_messages"

INDEXES = {
    CONVERSATIONS: [
        IndexModel([("participants_key", ASCENDING)], unique=True),
        IndexModel([("participant_ids", ASCENDING), ("last_message_at", DESCENDING)]),
    ],
    MESSAGES: [
        IndexModel([("conversation_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("recipient_id", ASCENDING), ("conversation_id", ASCENDING),
                    ("read_at", ASCENDING)]),
    ],
}

PREVIEW = 140


# --------------------------------------------------------------------------- conversations

def participants_key(a, b) -> str:
    """The unique key of the conversation between users `a` and `b` (order-free)."""
    return ":".join(sorted((str(a), str(b))))


async def _get_or_create(db, a, b) -> dict:
    """The conversation between `a` and `b`, created on first use (race-safe upsert)."""
    key = participants_key(a, b)
    fresh = {"participant_ids": sorted([a, b], key=str), "participants_key": key,
             "last_message": None, "last_message_at": None,
             "unread": {str(a): 0, str(b): 0}, "created_at": utcnow()}
    return await upsert_one(db[CONVERSATIONS], {"participants_key": key},
                            {"$setOnInsert": fresh}, reread=True)


async def conversation_for(db, conversation_id: Any, user: dict) -> dict:
    """The conversation when `user` takes part in it; raises NotFound otherwise."""
    oid = object_id(conversation_id)
    conversation = oid and await db[CONVERSATIONS].find_one(
        {"_id": oid, "participant_ids": user["_id"]})
    if not conversation:
        raise NotFound("Conversation not found", "CONVERSATION_NOT_FOUND")
    return conversation


def other_participant(conversation: dict, user_id) -> Any:
    """The id of the participant that is not `user_id`."""
    a, b = conversation["participant_ids"]
    return b if a == user_id else a


def render_conversation(conversation: dict, me, other: dict | None) -> dict:
    """A conversation as `me` sees it: ``{id, participant (brief card), last_message,
    last_message_at, unread_count, created_at}``."""
    return {"id": str(conversation["_id"]),
            "participant": users.render_brief(other),
            "last_message": render(conversation.get("last_message")),
            "last_message_at": render(conversation.get("last_message_at")),
            "unread_count": max(0, conversation.get("unread", {}).get(str(me), 0)),
            "created_at": render(conversation["created_at"])}


async def list_conversations(db, user: dict, *, page: int,
                             limit: int) -> tuple[list[dict], dict, int]:
    """One page of `user`'s conversations, newest activity first, rendered.

    Returns (items, page meta, total unread count over all conversations).
    """
    me = user["_id"]
    query = {"participant_ids": me, "last_message_at": {"$ne": None}}
    collection = db[CONVERSATIONS]
    total = await collection.count_documents(query)
    docs = await collection.find(query).sort([("last_message_at", DESCENDING), ("_id", DESCENDING)]
                                             ).skip((page - 1) * limit).limit(limit).to_list(length=limit)
    others = await users.get_many(db, [other_participant(c, me) for c in docs])
    items = [render_conversation(c, me, others.get(other_participant(c, me))) for c in docs]
    unread = 0
    async for c in collection.find({**query, f"unread.{me}": {"$gt": 0}}, {"unread": 1}):
        unread += c["unread"][str(me)]
    meta = {"total": total, "page": page, "limit": limit, "pages": math.ceil(total / limit)}
    return items, meta, unread


# --------------------------------------------------------------------------- messages

def render_message(message: dict, sender: dict | None = None) -> dict:
    """A direct message in API form, with the sender's brief card under `sender` when given."""
    out = render(message)
    if sender is not None:
        out["sender"] = users.render_brief(sender)
    return out


async def find_recipient(db, *, recipient_id: str | None = None,
                         recipient_username: str | None = None) -> dict:
    """The active user named by id or username; raises NotFound USER_NOT_FOUND."""
    ref = recipient_id if recipient_id is not None else recipient_username
    user = await users.find(db, ref.strip())
    if not user.get("is_active", True) or user.get("is_banned"):
        raise NotFound("User not found", "USER_NOT_FOUND")
    return user


async def send(db, hub, sender: dict, recipient: dict, content: Any, attachments: Any, *,
               settings=None, conversation: dict | None = None) -> dict:
    """Send a direct message from `sender` to `recipient`; returns the rendered message.

    Creates the conversation on first use. `content` 1..5000 characters after stripping,
    `attachments` at most 5 URLs of our storage. Publishes `direct_message` on the
    recipient's ``notifications:<id>`` channel. Raises Invalid (422) on bad input and
    BadRequest CANNOT_MESSAGE_SELF (400) for a message to oneself.
    """
    if sender["_id"] == recipient["_id"]:
        raise BadRequest("You cannot send a message to yourself", "CANNOT_MESSAGE_SELF")
    text = clean_content(content)
    urls = clean_attachments(attachments, settings)
    conversation = conversation or await _get_or_create(db, sender["_id"], recipient["_id"])
    now = utcnow()
    message = {"conversation_id": conversation["_id"], "sender_id": sender["_id"],
               "recipient_id": recipient["_id"], "content": text, "attachments": urls,
               "read_at": None, "created_at": now}
    message["_id"] = (await db[MESSAGES].insert_one(message)).inserted_id
    last = {"id": message["_id"], "sender_id": sender["_id"], "content": text[:PREVIEW],
            "has_attachments": bool(urls), "created_at": now}
    await db[CONVERSATIONS].update_one(
        {"_id": conversation["_id"]},
        {"$set": {"last_message": last, "last_message_at": now},
         "$inc": {f"unread.{recipient['_id']}": 1}})
    rendered = render_message(message, sender)
    await notifications.publish(hub, channels.notifications(recipient["_id"]),
                                channels.DIRECT_MESSAGE, rendered)
    return rendered


async def send_in(db, hub, sender: dict, conversation_id: Any, content: Any, attachments: Any,
                  *, settings=None) -> dict:
    """Send into an existing conversation of `sender` (to the other participant).

    Raises NotFound when `sender` is not a participant, plus what `send` raises.
    """
    conversation = await conversation_for(db, conversation_id, sender)
    recipient = await users.get(db, other_participant(conversation, sender["_id"]))
    if recipient is None:
        raise NotFound("User not found", "USER_NOT_FOUND")
    return await send(db, hub, sender, recipient, content, attachments, settings=settings,
                      conversation=conversation)


async def history(db, conversation: dict, *, before: Any = None,
                  limit: int = 20) -> dict:
    """Messages of `conversation`, newest first, `limit` at a time before cursor `before`.

    `before` is a message id (exclusive); returns ``{items, next_cursor, has_more}``, where
    `next_cursor` is the id to pass as `before` for the next (older) page, or None.
    """
    query: dict = {"conversation_id": conversation["_id"]}
    if before is not None:
        query["_id"] = {"$lt": before}
    docs = await db[MESSAGES].find(query).sort([("_id", DESCENDING)]).limit(limit + 1).to_list(
        length=limit + 1)
    has_more = len(docs) > limit
    docs = docs[:limit]
    senders = await users.get_many(db, [m["sender_id"] for m in docs])
    items = [render_message(m, senders.get(m["sender_id"])) for m in docs]
    return {"items": items, "next_cursor": items[-1]["id"] if has_more else None,
            "has_more": has_more}


async def mark_read(db, user: dict, message_id: Any) -> dict:
    """Mark message `message_id` and every earlier unread message to `user` in its
    conversation read; returns ``{conversation_id, marked, unread_count}``.

    Raises NotFound when `user` is not a participant of the message's conversation, and
    Forbidden when `user` sent the message (only the recipient reads it).
    """
    oid = object_id(message_id)
    message = oid and await db[MESSAGES].find_one({"_id": oid})
    if not message or user["_id"] not in (message["sender_id"], message["recipient_id"]):
        raise NotFound("Message not found", "MESSAGE_NOT_FOUND")
    if message["recipient_id"] != user["_id"]:
        raise Forbidden("Only the recipient can mark a message read")
    result = await db[MESSAGES].update_many(
        {"conversation_id": message["conversation_id"], "recipient_id": user["_id"],
         "_id": {"$lte": oid}, "read_at": None},
        {"$set": {"read_at": utcnow()}})
    conversation = await db[CONVERSATIONS].find_one_and_update(
        {"_id": message["conversation_id"]},
        {"$inc": {f"unread.{user['_id']}": -result.modified_count}}, return_document=True)
    unread = (conversation or {}).get("unread", {}).get(str(user["_id"]), 0)
    return {"conversation_id": str(message["conversation_id"]),
            "marked": result.modified_count, "unread_count": max(0, unread)}
