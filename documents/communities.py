"""Communities, their members and chat (seed 000 §5, §9; docs/architecture.md §6). Documents::

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

Community rules (seed 000 §5, seed 001 §8 and §13 "Community Management"):
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

from documents import admin_actions, common, notifications, search_engine, search_kinds, users
from documents.common import (
    object_id,
    omit,
    paginate,
    render,
    require_id,
    utcnow,
)
from documents.community_access import (  # noqa: F401 - the rules, read as communities.<name>
    MANAGER_ROLES,
    MODERATE,
    ROLES,
    can_manage,
    can_read,
    chat_access,
    is_active_member,
    is_moderator,
    require_manage,
    require_read,
)
from documents.errors import Conflict, Forbidden, NotFound
from documents.support import clean_attachments, clean_content
from realtime import channels

COMMUNITIES = "communities"
MEMBERS = "community_members"
CHAT = "community_messages"

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


async def get(db, community_id: Any) -> dict | None:
    """The community with id `community_id` (ObjectId or hex), or None (also for a bad id)."""
    oid = object_id(community_id)
    return await db[COMMUNITIES].find_one({"_id": oid}) if oid else None


async def count(db, query: dict) -> int:
    """How many communities match the MongoDB `query` (e.g. ``{"status": "active"}``)."""
    return await db[COMMUNITIES].count_documents(query)


async def membership(db, community_id: Any, user_id: Any) -> dict | None:
    """The `community_members` record of `user_id` in `community_id` (any status), or None."""
    cid, uid = object_id(community_id), object_id(user_id)
    if cid is None or uid is None:
        return None
    return await db[MEMBERS].find_one({"community_id": cid, "user_id": uid})


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
    await hub.publish(channels.community(community["_id"]), channels.MESSAGE_RECEIVED, rendered)
    return rendered


# =========================================================================== community issue
# Creation, listing, membership, moderation. The functions above are used
# by `handlers/sockets.py` and stay as they are.

STATUSES = ("pending", "active", "suspended")
EDITABLE = ("name", "description", "icon", "banner_gradient", "category", "is_private",
            "require_approval", "rules")
SORTS = {"popular": [("member_count", DESCENDING), ("_id", ASCENDING)],
         "newest": [("created_at", DESCENDING), ("_id", DESCENDING)],
         "name": [("name_lower", ASCENDING)]}
_NOT_FOUND = ("Community not found", "COMMUNITY_NOT_FOUND")


def slugify(name: str) -> str:
    """`name` as a community slug ("3D Game Assets" → "3d-game-assets"); see `common.slugify`."""
    return common.slugify(name, "community")


async def move_post_count(db, community_id, step: int) -> None:
    """Add `step` (±1) to the community's `post_count`, beside the post write that moved it."""
    await db[COMMUNITIES].update_one({"_id": community_id}, {"$inc": {"post_count": step}})


def _is_creator(community: dict, user: dict | None) -> bool:
    return bool(user) and community.get("creator_id") == user["_id"]


async def get_visible(db, community_id: Any, viewer: dict | None) -> dict:
    """The community if `viewer` may know of it: active ones for everyone; pending or
    suspended ones for staff and their creator. Raises NotFound COMMUNITY_NOT_FOUND (also
    for an invalid id)."""
    community = await get(db, community_id)
    if community is None or (community.get("status") != "active"
                             and not is_moderator(viewer) and not _is_creator(community, viewer)):
        raise NotFound(*_NOT_FOUND)
    return community


async def require(db, community_id: Any) -> dict:
    """The community (any status); raises NotFound COMMUNITY_NOT_FOUND."""
    community = await get(db, community_id)
    if community is None:
        raise NotFound(*_NOT_FOUND)
    return community


# --------------------------------------------------------------------------- rendering

def render_membership(member: dict | None) -> dict | None:
    """``{role, status, joined_at}`` of a membership record, or None."""
    if not member:
        return None
    return {"role": member["role"], "status": member["status"],
            "joined_at": render(member.get("joined_at"))}


def render_community(community: dict, member: dict | None = None,
                     creator: dict | None = None) -> dict:
    """A community in API form with the caller's `is_member` (active member) and
    `membership` ({role, status, joined_at} or None) and the `creator` card."""
    out = render(omit(community, ("name_lower",)))
    out["rules"] = list(community.get("rules") or [])
    out["creator"] = users.render_brief(creator)
    out["is_member"] = is_active_member(member)
    out["membership"] = render_membership(member)
    return out


async def render_many(db, docs: list[dict], viewer: dict | None) -> list[dict]:
    """`docs` rendered for `viewer` (memberships and creators in one query each)."""
    mine: dict = {}
    if viewer and docs:
        cursor = db[MEMBERS].find({"user_id": viewer["_id"],
                                   "community_id": {"$in": [d["_id"] for d in docs]}})
        mine = {m["community_id"]: m async for m in cursor}
    creators = await users.get_many(db, [d.get("creator_id") for d in docs])
    return [render_community(d, mine.get(d["_id"]), creators.get(d.get("creator_id")))
            for d in docs]


async def render_one(db, community: dict, viewer: dict | None) -> dict:
    """One community rendered for `viewer`."""
    return (await render_many(db, [community], viewer))[0]


# --------------------------------------------------------------------------- listing

async def list_page(db, viewer: dict | None, *, page: int, limit: int, search: str | None = None,
                    category: str | None = None, status: str | None = None,
                    member_of_me: bool = False, sort: str = "popular",
                    staff_view: bool = False) -> tuple[list[dict], dict]:
    """One page of communities (seed 000 §5 GET /api/communities: search, category, status).

    Everyone sees active communities (private ones included: their card is public); staff
    (`staff_view`) see every status. `member_of_me` lists the viewer's own communities
    (active memberships and pending requests), whatever their status. A non-staff `status`
    other than active without `member_of_me` raises Forbidden. `search` ranks by relevance
    (`documents.search_engine.ranked_page`: name, category, description; `sort` then does
    not apply). Returns (documents, pagination meta).
    """
    query: dict = {}
    if member_of_me:
        ids = await db[MEMBERS].distinct("community_id", {"user_id": viewer["_id"]})
        query["_id"] = {"$in": ids}
    if status:
        if not staff_view and not member_of_me and status != "active":
            raise Forbidden("Only staff can list pending or suspended communities")
        query["status"] = status
    elif not staff_view and not member_of_me:
        query["status"] = "active"
    if category:
        query["category"] = {"$regex": f"^{re.escape(category.strip())}$", "$options": "i"}
    if search and search.strip():     # relevance: words in any order, stems, typos
        return await search_engine.ranked_page(db, COMMUNITIES, search, db[COMMUNITIES], query,
                                               page=page, limit=limit)
    return await paginate(db[COMMUNITIES], query, page=page, limit=limit,
                          sort=SORTS.get(sort, SORTS["popular"]))


# --------------------------------------------------------------------------- writes

def _clean_rules(rules: Any) -> list[str]:
    return [r.strip() for r in rules or [] if isinstance(r, str) and r.strip()]


async def create(db, creator: dict, data: dict, *, status: str = "pending") -> dict:
    """Create a community of `creator` (seed 000 §5 POST /api/communities) and make the
    creator its `admin` member (member_count 1).

    `data`: name, description, icon, banner_gradient, category, is_private, require_approval,
    rules (validated by the handler). Users' communities start `pending`; staff pass
    ``status="active"``. Raises Conflict COMMUNITY_NAME_TAKEN (409) for a name in use
    (case-insensitive). Returns the stored document.
    """
    now = utcnow()
    name = data["name"].strip()
    doc = {"name": name, "name_lower": name.lower(), "slug": slugify(name),
           "description": data.get("description") or "", "icon": data.get("icon") or "",
           "banner_gradient": data.get("banner_gradient") or "",
           "category": data.get("category") or "", "creator_id": creator["_id"],
           "member_count": 1, "post_count": 0, "status": status,
           "is_private": bool(data.get("is_private", False)),
           "require_approval": bool(data.get("require_approval", False)),
           "rules": _clean_rules(data.get("rules")), "created_at": now, "updated_at": now}
    try:
        doc["_id"] = (await db[COMMUNITIES].insert_one(doc)).inserted_id
    except DuplicateKeyError:
        raise Conflict("A community with this name already exists",
                       "COMMUNITY_NAME_TAKEN") from None
    await db[MEMBERS].insert_one({"community_id": doc["_id"], "user_id": creator["_id"],
                                  "role": "admin", "status": "active", "joined_at": now})
    await search_kinds.index(db, COMMUNITIES, doc["_id"], doc)
    return doc


async def update(db, community: dict, changes: dict) -> dict:
    """Apply `changes` (fields of EDITABLE, plus `status` for staff callers) and return the
    new document. A new name renames `name_lower` and `slug` too; raises Conflict
    COMMUNITY_NAME_TAKEN, NotFound when the community is gone."""
    changes = dict(changes)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        changes["name_lower"] = changes["name"].lower()
        changes["slug"] = slugify(changes["name"])
    if "rules" in changes:
        changes["rules"] = _clean_rules(changes["rules"])
    changes["updated_at"] = utcnow()
    try:
        doc = await db[COMMUNITIES].find_one_and_update(
            {"_id": community["_id"]}, {"$set": changes}, return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:
        raise Conflict("A community with this name already exists",
                       "COMMUNITY_NAME_TAKEN") from None
    if doc is None:
        raise NotFound(*_NOT_FOUND)
    await search_kinds.index(db, COMMUNITIES, doc["_id"], doc)
    return doc


def require_owner_or_staff(community: dict, user: dict) -> None:
    """Raise Forbidden unless `user` created the community or is staff (seed 000 §5 DELETE)."""
    if not (_is_creator(community, user) or is_moderator(user)):
        raise Forbidden("Only the community's owner or staff can delete it")


async def delete(db, community: dict) -> None:
    """Delete the community with its members and chat messages (hard delete; the name
    becomes free), and its posts' search documents. Raises NotFound when it was already
    gone. `documents.community_removal.remove_community` also removes its posts and
    reports."""
    result = await db[COMMUNITIES].delete_one({"_id": community["_id"]})
    if not result.deleted_count:
        raise NotFound(*_NOT_FOUND)
    cid = community["_id"]
    await search_kinds.index(db, COMMUNITIES, cid, None)
    await search_kinds.remove_community_posts(db, cid)
    await db[MEMBERS].delete_many({"community_id": cid})
    await db[CHAT].delete_many({"community_id": cid})


async def approve(db, hub, community_id: Any, moderator: dict) -> dict:
    """Staff approval (seed 000 §7): conditional pending → active; notifies the creator
    (`community_approved`) and records the admin action `community_approved`. Raises
    NotFound, Conflict COMMUNITY_NOT_PENDING (409)."""
    oid = require_id(community_id, "Community")
    now = utcnow()
    doc = await db[COMMUNITIES].find_one_and_update(
        {"_id": oid, "status": "pending"},
        {"$set": {"status": "active", "approved_at": now, "approved_by": moderator["_id"],
                  "updated_at": now}}, return_document=ReturnDocument.AFTER)
    if doc is None:
        await require(db, oid)
        raise Conflict("Only a pending community can be approved", "COMMUNITY_NOT_PENDING")
    await search_kinds.index(db, COMMUNITIES, doc["_id"], doc)
    await notifications.notify(
        db, hub, doc["creator_id"], channels.COMMUNITY_APPROVED, "Community approved",
        f"Your community \"{doc['name']}\" is now live.",
        data={"community_id": str(doc["_id"])}, action_url=f"/community/{doc['_id']}")
    await admin_actions.record_after(db, moderator, "community_approved", "community", doc["_id"])
    return doc


# --------------------------------------------------------------------------- membership

async def _count_members(db, community_id, step: int) -> dict | None:
    return await db[COMMUNITIES].find_one_and_update(
        {"_id": community_id}, {"$inc": {"member_count": step}},
        return_document=ReturnDocument.AFTER)


async def publish_member_joined(hub, community: dict, user: dict, member: dict) -> None:
    """`member_joined` on ``community:<id>``: {community_id, user, role, member_count}."""
    await hub.publish(channels.community(community["_id"]), channels.MEMBER_JOINED, {
        "community_id": community["_id"], "user": users.render_brief(user),
        "role": member["role"], "member_count": community.get("member_count", 0)})


async def join(db, hub, community: dict, user: dict) -> tuple[dict, dict]:
    """`user` joins `community` (seed 000 §5 POST .../join). Returns (membership, community).

    Active member at once (member_count +1, `member_joined` published), or a `pending`
    request for a private community with `require_approval`. Raises NotFound (community not
    active), Conflict ALREADY_MEMBER / JOIN_REQUEST_PENDING (409).
    """
    if community.get("status") != "active":
        raise NotFound(*_NOT_FOUND)
    pending = bool(community.get("is_private") and community.get("require_approval"))
    member = {"community_id": community["_id"], "user_id": user["_id"], "role": "member",
              "status": "pending" if pending else "active", "joined_at": utcnow()}
    try:
        member["_id"] = (await db[MEMBERS].insert_one(member)).inserted_id
    except DuplicateKeyError:
        existing = await membership(db, community["_id"], user["_id"])
        if existing and existing["status"] == "pending":
            raise Conflict("Your request to join is waiting for approval",
                           "JOIN_REQUEST_PENDING") from None
        raise Conflict("You are already a member of this community", "ALREADY_MEMBER") from None
    if pending:
        return member, community
    after = await _count_members(db, community["_id"], 1)
    if after is None:  # deleted meanwhile
        await db[MEMBERS].delete_one({"_id": member["_id"]})
        raise NotFound(*_NOT_FOUND)
    await publish_member_joined(hub, after, user, member)
    return member, after


async def _step_down(db, member: dict, new_role: str) -> None:
    """Move an admin's record to `new_role` unless it is the community's last admin.

    Conditional on the record still being `admin`; then counts the admins left and moves it
    back when there is none. Raises Conflict LAST_ADMIN or CONCURRENT_UPDATE (409).
    """
    moved = await db[MEMBERS].find_one_and_update(
        {"_id": member["_id"], "role": "admin"}, {"$set": {"role": new_role}})
    if moved is None:
        raise Conflict("The membership changed meanwhile; try again", "CONCURRENT_UPDATE")
    left = await db[MEMBERS].count_documents({"community_id": member["community_id"],
                                              "role": "admin", "status": "active"})
    if left == 0:
        await db[MEMBERS].update_one({"_id": member["_id"], "role": new_role},
                                     {"$set": {"role": "admin"}})
        raise Conflict("You are the last admin of this community; make another member admin "
                       "first", "LAST_ADMIN")


async def remove_member(db, community: dict, user_id: Any) -> dict:
    """Take `user_id` out of `community` (leave, cancel a request, or removal by a manager).

    Returns the community after (member_count -1 when the membership was active). Raises
    NotFound NOT_A_MEMBER, Conflict LAST_ADMIN for the last admin.
    """
    member = await membership(db, community["_id"], user_id)
    if member is None:
        raise NotFound("Not a member of this community", "NOT_A_MEMBER")
    if member["role"] == "admin" and member["status"] == "active":
        await _step_down(db, member, "leaving")
    removed = await db[MEMBERS].find_one_and_delete({"_id": member["_id"]})
    if removed is None:
        raise NotFound("Not a member of this community", "NOT_A_MEMBER")
    if removed["status"] == "active":
        return await _count_members(db, community["_id"], -1) or community
    return community


async def approve_member(db, hub, community: dict, user_id: Any) -> tuple[dict, dict]:
    """Accept a pending join request (community admin/moderator or staff): conditional
    pending → active, member_count +1, `member_joined` published. Returns (membership,
    community). Raises NotFound JOIN_REQUEST_NOT_FOUND."""
    uid = require_id(user_id, "User")
    member = await db[MEMBERS].find_one_and_update(
        {"community_id": community["_id"], "user_id": uid, "status": "pending"},
        {"$set": {"status": "active", "joined_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if member is None:
        raise NotFound("No pending join request from this user", "JOIN_REQUEST_NOT_FOUND")
    after = await _count_members(db, community["_id"], 1) or community
    await publish_member_joined(hub, after, await users.get(db, uid) or {"_id": uid}, member)
    return member, after


async def set_role(db, community: dict, user_id: Any, role: str) -> dict:
    """Give active member `user_id` the `role` (member, moderator, admin). Demoting the last
    admin raises Conflict LAST_ADMIN; NotFound NOT_A_MEMBER. Returns the membership."""
    member = await membership(db, community["_id"], user_id)
    if not is_active_member(member):
        raise NotFound("Not a member of this community", "NOT_A_MEMBER")
    if member["role"] == "admin" and role != "admin":
        await _step_down(db, member, role)
    else:
        await db[MEMBERS].update_one({"_id": member["_id"]}, {"$set": {"role": role}})
    return {**member, "role": role}


async def members_page(db, community: dict, *, page: int, limit: int, status: str = "active",
                       role: str | None = None) -> tuple[list[dict], dict]:
    """One page of members (oldest first) as ``{user, user_id, role, status, joined_at}``;
    `status="pending"` lists join requests. The caller checks who may see them."""
    query: dict = {"community_id": community["_id"], "status": status}
    if role:
        query["role"] = role
    docs, meta = await paginate(db[MEMBERS], query, page=page, limit=limit,
                                sort=[("joined_at", ASCENDING), ("_id", ASCENDING)])
    people = await users.get_many(db, [d["user_id"] for d in docs])
    items = [{"user_id": str(d["user_id"]), "user": users.render_brief(people.get(d["user_id"])),
              **render_membership(d)} for d in docs]
    return items, meta


async def chat_page(db, community: dict | None, *, page: int, limit: int,
                    member: dict | None = None) -> tuple[list[dict], dict]:
    """One page of chat messages, newest first, each with its `sender`: of `community`, or
    without one of every community where `member` is an active member."""
    query = {"community_id": community["_id"]} if community else {"community_id": {"$in": [
        m["community_id"] for m in await db[MEMBERS].find(
            {"user_id": member["_id"], "status": "active"}, {"community_id": 1}).to_list(None)]}}
    docs, meta = await paginate(db[CHAT], query, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    senders = await users.get_many(db, [d["sender_id"] for d in docs])
    return [{**render(d), "sender": users.render_brief(senders.get(d["sender_id"]))}
            for d in docs], meta


async def count_pending_requests(db, community_id) -> int:
    """How many join requests of `community_id` wait for approval (admin community view)."""
    return await db[MEMBERS].count_documents({"community_id": community_id, "status": "pending"})
