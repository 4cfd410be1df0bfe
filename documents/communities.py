"""Communities: what the community socket needs so far (seed 000 §5, §9; DESIGN §4).

The community issue extends this module (creation, membership, posts). Documents::

    communities: {_id, name, name_lower (unique), slug, description, icon, banner_gradient,
                  category, creator_id, member_count, post_count,
                  status: "pending"|"active"|"suspended", is_private, require_approval,
                  rules: [str], created_at, updated_at}
    community_members: {_id, community_id, user_id, role: "member"|"moderator"|"admin",
                        status: "active"|"pending", joined_at}
    community_messages: {_id, community_id, sender_id, content, attachments: [url], created_at}

Chat access (`chat_access`): active members write; staff holding
`communities.moderate` write anywhere; anyone signed in may read the live feed of a public
active community; a private community is closed to non-members; a community that is not
active does not exist except to staff.

Community rules (issue 4 item 1; seed 000 §5, seed 001 §8 and §13 "Community Management"):
- A community created by a user is `pending` until staff approve it (`approve`, conditional
  pending → active; the creator is notified `community_approved`); staff create active ones.
  Its name is unique case-insensitively (`name_lower`, 409 COMMUNITY_NAME_TAKEN). The creator
  becomes its `admin` member, so `member_count` starts at 1.
- Who sees what: name, description, rules and counts of an active community are public (a
  private one too, so that people can ask to join); its posts and members are for active
  members and staff (`can_read`). A pending or suspended community exists only for staff
  and its creator.
- Joining a public community, or a private one without `require_approval`, makes an active
  member at once (`member_joined` on ``community:<id>``); a private community with
  `require_approval` keeps a `pending` request (202) until a community admin/moderator or
  staff approves it. `member_count` counts active members: it moves with `$inc` right after
  the membership write that changes it, on the request whose write matched (the unique
  (community_id, user_id) index stops double joins: 409 ALREADY_MEMBER).
- The last admin cannot leave or step down (409 LAST_ADMIN): hand the role over first
  (`set_role`). Demoting an admin first moves the record off `admin` conditionally, then
  counts the admins left and moves it back when none is, so racing admins can never leave
  a community with no admin (at worst both get 409 and retry).
- Update: community admins/moderators and staff (`can_manage`). Delete: the creator or
  staff; a hard delete that cascades to members, posts and chat messages, and dismisses the
  pending reports about its posts (the name becomes free again).
"""
from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import notifications, users
from documents.common import object_id, omit, paginate, render, require_id, search_regex, utcnow
from documents.errors import Conflict, Forbidden, NotFound
from documents.support import clean_attachments, clean_content

COMMUNITIES = "communities"
MEMBERS = "community_members"
CHAT = "community_messages"
MODERATE = "communities.moderate"

INDEXES = {
    COMMUNITIES: [IndexModel([("name_lower", ASCENDING)], unique=True)],
    MEMBERS: [IndexModel([("community_id", ASCENDING), ("user_id", ASCENDING)], unique=True),
              IndexModel([("user_id", ASCENDING)])],
    CHAT: [IndexModel([("community_id", ASCENDING), ("created_at", ASCENDING)])],
}
INDEXES[COMMUNITIES] += [IndexModel([("status", ASCENDING), ("member_count", DESCENDING)]),
                         IndexModel([("category", ASCENDING)])]
INDEXES[MEMBERS] += [IndexModel([("community_id", ASCENDING), ("status", ASCENDING),
                                 ("joined_at", ASCENDING)])]


def channel_of(community_id: Any) -> str:
    """The live channel of a community: ``community:<ObjectId hex>``."""
    return f"community:{community_id}"


async def get(db, community_id: Any) -> dict | None:
    """The community with id `community_id` (ObjectId or hex), or None (also for a bad id)."""
    oid = object_id(community_id)
    return await db[COMMUNITIES].find_one({"_id": oid}) if oid else None


async def membership(db, community_id: Any, user_id: Any) -> dict | None:
    """The `community_members` record of `user_id` in `community_id` (any status), or None."""
    cid, uid = object_id(community_id), object_id(user_id)
    if cid is None or uid is None:
        return None
    return await db[MEMBERS].find_one({"community_id": cid, "user_id": uid})


def chat_access(community: dict, member: dict | None, user: dict) -> str:
    """``"write"`` or ``"read"`` for `user` (with `member`, its membership record or None).

    Raises NotFound when the community is not active (staff excepted) and Forbidden for a
    private community the user is not an active member of.
    """
    staff = users.has_permission(user, MODERATE)
    active_member = bool(member and member.get("status") == "active")
    if community.get("status") != "active" and not staff:
        raise NotFound("Community not found", "COMMUNITY_NOT_FOUND")
    if active_member or staff:
        return "write"
    if community.get("is_private"):
        raise Forbidden("This community is private; join it first", "NOT_A_MEMBER")
    return "read"


async def add_chat_message(db, hub, community: dict, sender: dict, content: Any,
                           attachments: Any, *, settings=None) -> dict:
    """Store a chat message by `sender` in `community` and publish it; returns it rendered.

    ``{id, community_id, sender_id, content, attachments, created_at, sender: {brief}}``,
    published as `message_received` on ``community:<id>``. `content` 1..5000 characters
    after stripping, `attachments` at most 5 URLs of our storage (the support rules).
    Raises Invalid (422) on bad input, nothing stored. The caller checks `chat_access`.
    """
    content = clean_content(content)
    urls = clean_attachments(attachments, settings or getattr(hub, "settings", None))
    message = {"community_id": community["_id"], "sender_id": sender["_id"],
               "content": content, "attachments": urls, "created_at": utcnow()}
    message["_id"] = (await db[CHAT].insert_one(message)).inserted_id
    rendered = render(message)
    rendered["sender"] = users.render_brief(sender)
    await hub.publish(channel_of(community["_id"]), "message_received", rendered)
    return rendered
