"""Support tickets and their messages (seed 000 §6, seed 001 §9 and §13 "Support Management").

A ticket (`support_tickets`)::

    {_id, user_id, subject, category: "Payment"|"Technical"|"Account"|"Refund"|"Other",
     priority: "low"|"medium"|"high", status: "pending"|"active"|"resolved",
     assigned_to: str|None (team name), assignee_id: ObjectId|None (a staff user),
     message_count, last_message_at, created_at, updated_at, resolved_at,
     unread_by_user: int, unread_by_staff: int, user_read_at, staff_read_at}

A message (`support_messages`)::

    {_id, ticket_id, sender_id, sender_type: "user"|"admin", content, attachments: [url],
     created_at}

Status moves pending → active → resolved, and resolved → active to reopen, each with a
conditional `find_one_and_update` on the current status so that two racing updates cannot
both win (docs/architecture.md §4). A staff reply moves a pending ticket to active; a reply by the owner
to a resolved ticket reopens it. Events on ``support:<ticket_id>`` (docs/architecture.md §6):
`message_received` (the rendered message) and `ticket_status_changed`
({ticket_id, status, previous_status}). Staff replies notify the owner (`ticket_reply`) and,
given a mailer, email them (`support_reply`); a status change asked for by staff emails the
owner the ticket's status (`support_status`; README "Emails").

Read state, per side of the ticket: `unread_by_user` counts the staff messages its owner has
not read yet, `unread_by_staff` the owner's messages no agent has read yet. Each message
`$inc`s the other side's count in the same update that counts the message; `mark_read`
(``PUT .../read`` or a `read` frame on ``/ws/support/{id}``) sets the reader's side back
to 0 and stamps `user_read_at` / `staff_read_at` (everything received so far is read), and
the owner's `ticket_reply` notifications of that ticket are marked read with it. A ticket
is shown with `unread_count`: the count of the side looking at it.

Who may see a ticket: its owner, and staff holding `support.manage`; to anyone else it does
not exist (404).
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pymongo import ASCENDING, DESCENDING, IndexModel

from documents import email_notices, notifications, users
from documents.common import object_id, paginate, render, search_regex, utcnow
from documents.errors import Conflict, Invalid, NotFound
from realtime import channels

TICKETS = "support_tickets"
MESSAGES = "support_messages"

INDEXES = {
    TICKETS: [
        IndexModel([("user_id", ASCENDING), ("updated_at", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("updated_at", DESCENDING)]),
        IndexModel([("assignee_id", ASCENDING), ("updated_at", DESCENDING)]),
        IndexModel([("updated_at", DESCENDING)]),
    ],
    MESSAGES: [IndexModel([("ticket_id", ASCENDING), ("created_at", ASCENDING)])],
}

CATEGORIES = ("Payment", "Technical", "Account", "Refund", "Other")
PRIORITIES = ("low", "medium", "high")
STATUSES = ("pending", "active", "resolved")
# current status → statuses it may move to (seed 000 §6: pending, active, resolved).
TRANSITIONS = {"pending": ("active",), "active": ("resolved",), "resolved": ("active",)}

PERMISSION = "support.manage"
MAX_CONTENT = 5000
MAX_ATTACHMENTS = 5
MAX_URL = 2048
TICKET_MESSAGES_SHOWN = 500
_FILES_PATH = re.compile(r"^/files/(?!.*\.\.)[A-Za-z0-9._~%/+-]+$")


# --------------------------------------------------------------------------- validation

def clean_content(content: Any, field: str = "content") -> str:
    """`content` stripped; raises Invalid unless it is a string of 1..5000 characters."""
    if not isinstance(content, str) or not content.strip():
        raise Invalid({field: ["Message cannot be empty."]})
    content = content.strip()
    if len(content) > MAX_CONTENT:
        raise Invalid({field: [f"Message is longer than {MAX_CONTENT} characters."]})
    return content


def _own_url(url: str, settings) -> bool:
    """True when `url` points into our storage: `/files/...` (relative or under PUBLIC_URL)
    or under CDN_URL."""
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return bool(_FILES_PATH.match(parts.path))
    if settings is None:
        return False
    public = urlsplit(settings.public_url)
    if (parts.scheme, parts.netloc) == (public.scheme, public.netloc):
        return bool(_FILES_PATH.match(parts.path))
    cdn = (settings.cdn_url or "").rstrip("/")
    return bool(cdn) and url.startswith(cdn + "/") and ".." not in parts.path


def clean_attachments(attachments: Any, settings=None) -> list[str]:
    """`attachments` as a list of at most 5 URLs of our own storage; raises Invalid.

    Accepted: ``/files/<key>``, ``<PUBLIC_URL>/files/<key>``, ``<CDN_URL>/<key>`` (the URLs
    that `POST /api/upload/attachment` hands out). Without `settings` only relative URLs pass;
    with them a relative one is stored absolute, as the storage serves it (CDN_URL or
    PUBLIC_URL; docs/api-contract.md §2).
    """
    if attachments is None:
        return []
    if not isinstance(attachments, list) or not all(isinstance(a, str) for a in attachments):
        raise Invalid({"attachments": ["Must be a list of URLs."]})
    if len(attachments) > MAX_ATTACHMENTS:
        raise Invalid({"attachments": [f"At most {MAX_ATTACHMENTS} attachments."]})
    bad = [a for a in attachments if not _own_url(a, settings)]
    if bad:
        raise Invalid({"attachments": ["Attachments must be files uploaded to HWC3D."]})
    return [absolute_file_url(a, settings) for a in attachments]


def absolute_file_url(url: str, settings) -> str:
    """A relative ``/files/<key>`` URL as the absolute URL the storage serves it at."""
    if settings is None or not url.startswith("/"):
        return url
    if settings.cdn_url:
        return f"{settings.cdn_url.rstrip('/')}/{url[len('/files/'):]}"
    return f"{settings.public_url.rstrip('/')}{url}"


# --------------------------------------------------------------------------- access

def is_support_staff(user: dict | None) -> bool:
    """True for staff holding `support.manage` (seed 000 `AdminUser`)."""
    return users.has_permission(user, PERMISSION)


def can_access(ticket: dict, user: dict | None) -> bool:
    """The owner of `ticket` and support staff may read and write it."""
    return bool(user) and (ticket["user_id"] == user["_id"] or is_support_staff(user))


async def get_ticket(db, ticket_id: Any) -> dict | None:
    """The ticket with id `ticket_id` (ObjectId or hex), or None (also for a malformed id)."""
    oid = object_id(ticket_id)
    return await db[TICKETS].find_one({"_id": oid}) if oid else None


async def ticket_for(db, ticket_id: Any, user: dict) -> dict:
    """The ticket when `user` may access it; raises NotFound otherwise (no existence leak)."""
    ticket = await get_ticket(db, ticket_id)
    if ticket is None or not can_access(ticket, user):
        raise NotFound("Ticket not found", "TICKET_NOT_FOUND")
    return ticket


# --------------------------------------------------------------------------- rendering

def render_message(message: dict, sender: dict | None = None) -> dict:
    """A support message in API form, with the sender's brief card under `sender`."""
    out = render(message)
    out["sender"] = users.render_brief(sender)
    return out


def render_ticket(ticket: dict, owner: dict | None = None, *, staff_view: bool = False) -> dict:
    """A ticket in API form with the owner's brief card under `user` (and email for staff)
    and `unread_count`: messages of the other side that the viewer's side has not read."""
    out = render(ticket)
    out["unread_count"] = ticket.get("unread_by_staff" if staff_view else "unread_by_user", 0)
    out["user"] = users.render_brief(owner)
    if staff_view and owner:
        out["user"]["email"] = owner.get("email")
    return out


async def render_tickets(db, tickets: list[dict], *, staff_view: bool = False) -> list[dict]:
    """Several tickets rendered with their owners (one user query)."""
    owners = await users.get_many(db, [t["user_id"] for t in tickets])
    return [render_ticket(t, owners.get(t["user_id"]), staff_view=staff_view) for t in tickets]


async def ticket_messages(db, ticket: dict) -> list[dict]:
    """The ticket's latest 500 messages, oldest first, rendered with their senders."""
    docs = await db[MESSAGES].find({"ticket_id": ticket["_id"]}).sort(
        [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(TICKET_MESSAGES_SHOWN).to_list(
        length=TICKET_MESSAGES_SHOWN)
    docs.reverse()
    senders = await users.get_many(db, [m["sender_id"] for m in docs])
    return [render_message(m, senders.get(m["sender_id"])) for m in docs]


async def ticket_detail(db, ticket: dict, *, staff_view: bool = False) -> dict:
    """The rendered ticket with `messages` (oldest first, latest 500)."""
    owner = await users.get(db, ticket["user_id"])
    out = render_ticket(ticket, owner, staff_view=staff_view)
    out["messages"] = await ticket_messages(db, ticket)
    return out


# --------------------------------------------------------------------------- writes

async def create_ticket(db, hub, owner: dict, *, subject: str, category: str, message: str,
                        priority: str = "medium", attachments: list[str] | None = None,
                        settings=None) -> tuple[dict, dict]:
    """Open a ticket for `owner` with its first message (seed 000 §6 POST /api/support/tickets).

    Returns (ticket, rendered first message). Raises Invalid on bad content or attachments;
    nothing is written then.
    """
    content = clean_content(message, "message")
    if len(subject.strip()) < 3:
        raise Invalid({"subject": ["Subject must have at least 3 characters."]})
    urls = clean_attachments(attachments, settings)
    now = utcnow()
    ticket = {"user_id": owner["_id"], "subject": subject.strip(), "category": category,
              "priority": priority, "status": "pending", "assigned_to": None,
              "assignee_id": None, "message_count": 0, "last_message_at": now,
              "created_at": now, "updated_at": now, "resolved_at": None,
              "unread_by_user": 0, "unread_by_staff": 0, "user_read_at": None,
              "staff_read_at": None}
    ticket["_id"] = (await db[TICKETS].insert_one(ticket)).inserted_id
    first = await add_message(db, hub, ticket, owner, content, urls, settings=settings)
    ticket = await get_ticket(db, ticket["_id"])
    return ticket, first


def _after_message(ticket: dict, sender_type: str) -> str | None:
    """The status a message moves the ticket to: a staff reply activates a pending ticket,
    the owner's reply reopens a resolved one; else None."""
    if sender_type == "admin" and ticket["status"] == "pending":
        return "active"
    if sender_type == "user" and ticket["status"] == "resolved":
        return "active"
    return None


async def _count_message(db, ticket: dict, sender_type: str, now) -> tuple[dict, str | None]:
    """`$inc` message_count and the other side's unread count, and move the status when the
    message does; returns (ticket, old status when it moved)."""
    changes: dict = {"last_message_at": now, "updated_at": now}
    other_side = "unread_by_staff" if sender_type == "user" else "unread_by_user"
    counts = {"message_count": 1, other_side: 1}
    target = _after_message(ticket, sender_type)
    if target:
        moved = await db[TICKETS].find_one_and_update(
            {"_id": ticket["_id"], "status": ticket["status"]},
            {"$inc": counts, "$set": {**changes, "status": target, "resolved_at": None}},
            return_document=True)
        if moved is not None:
            return moved, ticket["status"]
    updated = await db[TICKETS].find_one_and_update(
        {"_id": ticket["_id"]}, {"$inc": counts, "$set": changes}, return_document=True)
    return updated or ticket, None


async def add_message(db, hub, ticket: dict, sender: dict, content: str,
                      attachments: list[str] | None, *, settings=None, mailer=None) -> dict:
    """Persist a message by `sender` on `ticket` and announce it; returns the rendered message.

    The one path for REST and WebSocket `message` frames. `content` must be 1..5000
    characters after stripping and `attachments` at most 5 URLs of our storage (see
    `clean_attachments`; `settings` defaults to `hub.settings` when the hub has them).
    Bumps message_count/last_message_at/updated_at; a staff reply moves pending → active,
    the owner's reply reopens a resolved ticket. Publishes `message_received` (and
    `ticket_status_changed` when the status moved) on ``support:<ticket_id>``; a staff reply
    notifies the owner with `ticket_reply` and emails them through `mailer` (None: no
    email). Raises Invalid (422) on bad input and NotFound
    when `sender` may not access the ticket.
    """
    if not can_access(ticket, sender):
        raise NotFound("Ticket not found", "TICKET_NOT_FOUND")
    settings = settings if settings is not None else getattr(hub, "settings", None)
    content = clean_content(content)
    urls = clean_attachments(attachments, settings)
    sender_type = "user" if sender["_id"] == ticket["user_id"] else "admin"
    now = utcnow()
    message = {"ticket_id": ticket["_id"], "sender_id": sender["_id"],
               "sender_type": sender_type, "content": content, "attachments": urls,
               "created_at": now}
    message["_id"] = (await db[MESSAGES].insert_one(message)).inserted_id
    updated, previous = await _count_message(db, ticket, sender_type, now)
    rendered = render_message(message, sender)
    await notifications.publish(hub, channels.support(ticket["_id"]), channels.MESSAGE_RECEIVED,
                                rendered)
    if previous:
        await _status_event(hub, updated, previous)
    if sender_type == "admin":
        await _notify_reply(db, hub, updated, sender, content)
        await email_notices.after_write(email_notices.support_reply, db, mailer, updated,
                                        sender, content)
    return rendered


async def _notify_reply(db, hub, ticket: dict, sender: dict, content: str) -> None:
    preview = content if len(content) <= 140 else content[:137] + "..."
    await notifications.notify(
        db, hub, ticket["user_id"], channels.TICKET_REPLY, f"New reply on \"{ticket['subject']}\"",
        f"{sender.get('full_name') or sender['username']}: {preview}",
        data={"ticket_id": str(ticket["_id"])}, action_url=f"/support?ticket={ticket['_id']}")


async def _status_event(hub, ticket: dict, previous: str) -> None:
    await notifications.publish(hub, channels.support(ticket["_id"]), channels.TICKET_STATUS_CHANGED,
                                {"ticket_id": str(ticket["_id"]), "status": ticket["status"],
                                 "previous_status": previous})


async def mark_read(db, ticket_id: Any, reader: dict) -> dict:
    """`reader` (the owner, or support staff) has read ticket `ticket_id` up to now.

    Sets the reader's side's unread count (`unread_by_user` for the owner, `unread_by_staff`
    for staff) to 0 with a `<side>_read_at` stamp, and marks the owner's unread
    `ticket_reply` notifications of this ticket read. Returns the updated ticket. Raises
    NotFound TICKET_NOT_FOUND when `reader` may not access the ticket (or the id is bad).
    """
    ticket = await ticket_for(db, ticket_id, reader)
    side = "user" if reader["_id"] == ticket["user_id"] else "staff"
    updated = await db[TICKETS].find_one_and_update(
        {"_id": ticket["_id"]},
        {"$set": {f"unread_by_{side}": 0, f"{side}_read_at": utcnow()}}, return_document=True)
    if updated is None:
        raise NotFound("Ticket not found", "TICKET_NOT_FOUND")
    if side == "user":
        await notifications.mark_read_where(db, ticket["user_id"], channels.TICKET_REPLY,
                                            {"data.ticket_id": str(ticket["_id"])})
    return updated


async def set_status(db, hub, ticket: dict, status: str, *, mailer=None) -> dict:
    """Move `ticket` to `status` (pending → active → resolved, resolved → active) for staff.

    Conditional on the status read, so of two racing updates exactly one wins. Sets
    `resolved_at` when resolving (cleared on reopen). Publishes `ticket_status_changed`.
    Returns the updated ticket; a ticket already in `status` is returned unchanged, with no
    event and no email. The call that moves the status emails the owner through `mailer`
    (None: no email). Raises Conflict INVALID_STATUS_TRANSITION (409), before anything is sent.
    """
    updated, moved = await _move_status(db, hub, ticket, status)
    if moved:
        await email_notices.after_write(email_notices.support_status, db, mailer, updated)
    return updated


async def _move_status(db, hub, ticket: dict, status: str) -> tuple[dict, bool]:
    current = ticket["status"]
    if status == current:
        return ticket, False
    if status not in TRANSITIONS.get(current, ()):
        raise Conflict(f"Cannot move a {current} ticket to {status}", "INVALID_STATUS_TRANSITION")
    now = utcnow()
    updated = await db[TICKETS].find_one_and_update(
        {"_id": ticket["_id"], "status": current},
        {"$set": {"status": status, "updated_at": now,
                  "resolved_at": now if status == "resolved" else None}},
        return_document=True)
    if updated is None:
        latest = await db[TICKETS].find_one({"_id": ticket["_id"]})
        if latest is not None and latest["status"] == status:
            return latest, False  # a racing request made the same move: done, as asked
        raise Conflict("The ticket's status changed meanwhile; reload it",
                       "INVALID_STATUS_TRANSITION")
    await _status_event(hub, updated, current)
    return updated, True


async def assign(db, ticket: dict, changes: dict) -> dict:
    """Set `assigned_to` (team name or None) and/or `assignee_id` (a support staff user's
    id or None) on `ticket`; returns the updated ticket.

    Raises Invalid when `assignee_id` is not a staff user holding `support.manage`.
    """
    update: dict = {"updated_at": utcnow()}
    if "assigned_to" in changes:
        name = (changes["assigned_to"] or "").strip()
        update["assigned_to"] = name or None
    if "assignee_id" in changes:
        update["assignee_id"] = await _assignee(db, changes["assignee_id"])
    updated = await db[TICKETS].find_one_and_update({"_id": ticket["_id"]}, {"$set": update},
                                                    return_document=True)
    if updated is None:
        raise NotFound("Ticket not found", "TICKET_NOT_FOUND")
    return updated


async def _assignee(db, ref: str | None):
    if ref is None:
        return None
    staff_user = await users.get(db, ref)
    if staff_user is None or not is_support_staff(staff_user):
        raise Invalid({"assignee_id": ["Must be the id of a support staff member."]})
    return staff_user["_id"]


async def record_email(db, mailer, ticket: dict, staff_user: dict, subject: str,
                       text: str) -> dict:
    """Email the ticket's owner through `mailer` (seed 001 §13 "Email user"); returns the
    email record of the `emails` collection, tagged with the ticket and the sender.

    Raises NotFound when the owner no longer exists.
    """
    owner = await users.get(db, ticket["user_id"])
    if owner is None or not owner.get("email"):
        raise NotFound("The ticket's owner has no email address", "USER_NOT_FOUND")
    record = await email_notices.support_message(mailer, ticket, owner, subject.strip(),
                                                 text.strip())
    tags = {"ticket_id": ticket["_id"], "sent_by": staff_user["_id"]}
    await mailer.tag(record["_id"], tags)
    return {**record, **tags}


# --------------------------------------------------------------------------- reads

async def list_own(db, user_id, *, status: str | None, page: int,
                   limit: int) -> tuple[list[dict], dict]:
    """One page of `user_id`'s tickets, latest activity first."""
    query: dict = {"user_id": user_id}
    if status:
        query["status"] = status
    return await paginate(db[TICKETS], query, page=page, limit=limit,
                          sort=[("updated_at", DESCENDING), ("_id", DESCENDING)])


def _assignee_query(assignee: str, me: dict) -> dict:
    value = assignee.strip()
    if value.lower() == "me":
        return {"assignee_id": me["_id"]}
    if value.lower() == "unassigned":
        return {"assigned_to": None, "assignee_id": None}
    oid = object_id(value)
    if oid is not None:
        return {"assignee_id": oid}
    return {"assigned_to": {"$regex": f"^{re.escape(value)}$", "$options": "i"}}


async def list_all(db, me: dict, *, filters: dict, page: int,
                   limit: int) -> tuple[list[dict], dict]:
    """One page of every ticket for staff, latest activity first (seed 001 §13).

    `filters`: status, priority, category (exact), assignee ("me", "unassigned", a staff
    user id, or a team name, case-insensitive), search (subject, case-insensitive).
    """
    query: dict = {k: filters[k] for k in ("status", "priority", "category") if filters.get(k)}
    if filters.get("assignee"):
        query.update(_assignee_query(filters["assignee"], me))
    if filters.get("search"):
        query["subject"] = search_regex(filters["search"])
    return await paginate(db[TICKETS], query, page=page, limit=limit,
                          sort=[("updated_at", DESCENDING), ("_id", DESCENDING)])


async def status_counts(db) -> dict[str, int]:
    """How many tickets are in each status: ``{"pending": n, "active": n, "resolved": n}``."""
    return {s: await db[TICKETS].count_documents({"status": s}) for s in STATUSES}


async def count_pending(db) -> int:
    """How many tickets wait for staff (status ``pending``)."""
    return await db[TICKETS].count_documents({"status": "pending"})
