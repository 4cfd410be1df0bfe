"""Bounties: requests for a 3D model with a budget, and the creators' applications to them
(seed 000 "Additional Features" `Bounty`, seed 001 §10 and §13 Bounty Management, seed 004
`Bounty`).

A bounty document (collection `bounties`)::

    {_id, creator_id: ObjectId, title, description, requirements, budget_cents: int,
     currency: "usd", deadline: datetime (in the future at creation), category: str|None
     (an existing category's name), tags: [str], status: "open"|"in_progress"|"completed"|
     "cancelled", winner_id: ObjectId|None, winning_application_id: ObjectId|None,
     application_count: int, completed_at, created_at, updated_at}

An application document (collection `bounty_applications`), one per (bounty, applicant)::

    {_id, bounty_id, applicant_id, proposal (≤ 5000 characters), price_cents: int|None
     (a counter-offer), portfolio_model_ids: [ObjectId] (the applicant's own public models),
     status: "pending"|"selected"|"rejected", created_at, decided_at}

Rules:
- Only creators apply (403 CREATORS_ONLY), never to their own bounty (400
  CANNOT_APPLY_OWN_BOUNTY), only to an `open` bounty before its deadline (409 BOUNTY_CLOSED),
  once (409 ALREADY_APPLIED, unique index). `application_count` moves by one in the
  conditional update that re-checks the bounty is still open right after the insert; when
  that check fails the application is removed again, so the count always equals the stored
  applications.
- The owner selects one pending application: a conditional `find_one_and_update` on
  ``status in (open, in_progress)`` moves the bounty to `completed` with its winner, so two
  racing selections cannot both win (409 BOUNTY_CLOSED for the loser). The chosen
  application becomes `selected`, every other pending one `rejected`.
- The owner gets a `bounty_application` notification for each application; the winner gets
  one too (same type, ``data.status == "selected"``: the notification types are a fixed
  list, see `documents.notifications.TYPES`).
- Staff (`bounties.moderate`) edit fields, move the status between open, in_progress and
  cancelled (never out of `completed`), and delete a bounty that has no winner (with its
  applications); a bounty with a selected winner is kept as a record (409 BOUNTY_HAS_WINNER).
  Each staff change is recorded as an admin action on target `bounty` once stored.
- Paying the winner is outside this module: no money moves when a winner is selected.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import admin_actions, catalog, categories, charges, notifications, users
from documents.common import (
    object_id,
    omit,
    paginate,
    render,
    require_id,
    search_regex,
    utcnow,
)
from documents.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from realtime import channels

COLLECTION = "bounties"
APPLICATIONS = "bounty_applications"

INDEXES = {
    COLLECTION: [
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("creator_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("category", ASCENDING), ("status", ASCENDING)]),
    ],
    APPLICATIONS: [
        IndexModel([("bounty_id", ASCENDING), ("applicant_id", ASCENDING)], unique=True),
        IndexModel([("applicant_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("bounty_id", ASCENDING), ("created_at", ASCENDING)]),
    ],
}

STATUSES = ("open", "in_progress", "completed", "cancelled")
PUBLIC_STATUSES = ("open", "in_progress", "completed")
STAFF_STATUSES = ("open", "in_progress", "cancelled")  # what staff may set by hand
SELECTABLE = ("open", "in_progress")
APPLICATION_STATUSES = ("pending", "selected", "rejected")
MAX_BUDGET_CENTS = 10_000_000          # 100,000.00 USD
MAX_DEADLINE_DAYS = 730
MAX_PROPOSAL = 5000
MAX_PORTFOLIO_MODELS = 10
MAX_LISTED_APPLICATIONS = 200          # shown to the owner in the bounty detail
SORTS = {
    "newest": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "budget": [("budget_cents", DESCENDING), ("_id", DESCENDING)],
    "deadline": [("deadline", ASCENDING), ("_id", ASCENDING)],
}
EDITABLE = ("title", "description", "requirements", "budget_cents", "deadline", "category",
            "tags", "status")


# --------------------------------------------------------------------------- reads

async def get(db, bounty_id: Any) -> dict:
    """The bounty with id `bounty_id`; raises NotFound BOUNTY_NOT_FOUND (also for a bad id)."""
    doc = await db[COLLECTION].find_one({"_id": require_id(bounty_id, "Bounty")})
    if doc is None:
        raise NotFound("Bounty not found", "BOUNTY_NOT_FOUND")
    return doc


def is_owner(user: dict | None, bounty: dict) -> bool:
    return bool(user) and user["_id"] == bounty["creator_id"]


def accepting_applications(bounty: dict, now: datetime | None = None) -> bool:
    """True while the bounty is `open` and its deadline has not passed."""
    return bounty.get("status") == "open" and bounty["deadline"] > (now or utcnow())


def list_query(filters: dict, *, all_statuses: bool = False) -> dict:
    """The filter of a bounty listing.

    `filters`: status, category, min_budget_cents, max_budget_cents, search, creator_id.
    Without a `status` filter, cancelled bounties are left out unless `all_statuses` (staff,
    or the owner's own list).
    """
    query: dict = {}
    if filters.get("status"):
        query["status"] = filters["status"]
    elif not all_statuses:
        query["status"] = {"$in": list(PUBLIC_STATUSES)}
    if filters.get("category"):
        query["category"] = {"$regex": f"^{re.escape(filters['category'].strip())}$",
                             "$options": "i"}
    budget = {op: filters[key] for op, key in (("$gte", "min_budget_cents"),
                                               ("$lte", "max_budget_cents")) if key in filters}
    if budget:
        query["budget_cents"] = budget
    if filters.get("creator_id") is not None:
        query["creator_id"] = filters["creator_id"]
    if filters.get("search"):
        regex = search_regex(filters["search"])
        query["$or"] = [{"title": regex}, {"description": regex}, {"tags": regex}]
    return query


async def list_page(db, filters: dict, *, page: int, limit: int, sort: str = "newest",
                    all_statuses: bool = False) -> tuple[list[dict], dict]:
    """One page of bounties matching `filters` (see `list_query`), sorted by `sort`
    ("newest", "budget" high→low, "deadline" soonest first). Returns (docs, meta)."""
    return await paginate(db[COLLECTION], list_query(filters, all_statuses=all_statuses),
                          page=page,
                          limit=limit, sort=SORTS[sort])


async def application_of(db, bounty: dict, user: dict | None) -> dict | None:
    """The application of `user` to `bounty`, or None."""
    if not user:
        return None
    return await db[APPLICATIONS].find_one({"bounty_id": bounty["_id"],
                                            "applicant_id": user["_id"]})


async def applications_of(db, bounty: dict, limit: int = MAX_LISTED_APPLICATIONS) -> list[dict]:
    """The first `limit` applications to `bounty`, oldest first."""
    cursor = db[APPLICATIONS].find({"bounty_id": bounty["_id"]}).sort(
        [("created_at", ASCENDING), ("_id", ASCENDING)])
    return await cursor.to_list(length=limit)


# --------------------------------------------------------------------------- writes

def _check_deadline(deadline: datetime) -> datetime:
    now = utcnow()
    if deadline <= now:
        raise Invalid({"deadline": ["Must be in the future"]})
    if deadline > now + timedelta(days=MAX_DEADLINE_DAYS):
        raise Invalid({"deadline": [f"Must be within {MAX_DEADLINE_DAYS} days"]})
    return deadline.replace(microsecond=deadline.microsecond // 1000 * 1000)


async def _category(db, name: str | None) -> str | None:
    """The canonical name of the active category `name`; Invalid (422) when there is none."""
    if not name:
        return None
    found = await categories.find_by_name_or_slug(db, name)
    if found is None or not found.get("is_active", True):
        raise Invalid({"category": ["Unknown category"]})
    return found["name"]


def _tags(tags: list[str] | None) -> list[str]:
    out: list[str] = []
    for tag in tags or ():
        tag = tag.strip().lower()
        if tag and tag not in out:
            out.append(tag)
    return out


async def create(db, creator: dict, data: dict) -> dict:
    """Store a new `open` bounty of `creator` (seed 000 `Bounty`) and return it.

    `data`: title, description, requirements, budget_cents (1..MAX_BUDGET_CENTS), deadline
    (aware datetime, future, within MAX_DEADLINE_DAYS), category (optional), tags (optional).
    Raises Invalid (422) for a past deadline or an unknown category.
    """
    now = utcnow()
    doc = {"creator_id": creator["_id"], "title": data["title"],
           "description": data["description"], "requirements": data.get("requirements") or "",
           "budget_cents": data["budget_cents"], "currency": charges.CURRENCY,
           "deadline": _check_deadline(data["deadline"]),
           "category": await _category(db, data.get("category")),
           "tags": _tags(data.get("tags")), "status": "open", "winner_id": None,
           "winning_application_id": None, "application_count": 0, "completed_at": None,
           "created_at": now, "updated_at": now}
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    return doc


async def _portfolio(db, applicant: dict, model_ids: list[str] | None) -> list:
    """The applicant's portfolio as ObjectIds: their own public models only (422 otherwise)."""
    ids = []
    for value in model_ids or ():
        oid = require_id_or_invalid(value)
        if oid not in ids:
            ids.append(oid)
    if not ids:
        return []
    found = await catalog.get_many(db, ids)
    if any(i not in found or found[i]["creator_id"] != applicant["_id"]
           or not catalog.is_public(found[i]) for i in ids):
        raise Invalid({"portfolio_model_ids": ["Must be your own published models"]})
    return ids


def require_id_or_invalid(value: Any):
    """`value` as an ObjectId, or Invalid (422) on `portfolio_model_ids`."""
    try:
        return require_id(value, "Model")
    except NotFound:
        raise Invalid({"portfolio_model_ids": ["Must be your own published models"]}) from None


def _check_can_apply(bounty: dict, applicant: dict) -> None:
    if applicant.get("user_type") != "creator":
        raise Forbidden("Only creators can apply to bounties", "CREATORS_ONLY")
    if is_owner(applicant, bounty):
        raise BadRequest("You cannot apply to your own bounty", "CANNOT_APPLY_OWN_BOUNTY")
    if not accepting_applications(bounty):
        raise Conflict("This bounty no longer accepts applications", "BOUNTY_CLOSED")


async def apply(db, hub, bounty_id: Any, applicant: dict, data: dict) -> tuple[dict, dict]:
    """Store the application of `applicant` to the bounty and notify the bounty's owner.

    `data`: proposal (str ≤ 5000), price_cents (optional counter-offer), portfolio_model_ids
    (hex ids of the applicant's own public models). Returns (application, bounty after the
    count moved). Raises NotFound, Forbidden CREATORS_ONLY, BadRequest
    CANNOT_APPLY_OWN_BOUNTY, Conflict BOUNTY_CLOSED / ALREADY_APPLIED, Invalid.
    """
    bounty = await get(db, bounty_id)
    _check_can_apply(bounty, applicant)
    doc = {"bounty_id": bounty["_id"], "applicant_id": applicant["_id"],
           "proposal": data["proposal"], "price_cents": data.get("price_cents"),
           "portfolio_model_ids": await _portfolio(db, applicant, data.get("portfolio_model_ids")),
           "status": "pending", "created_at": utcnow(), "decided_at": None}
    try:
        result = await db[APPLICATIONS].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict("You already applied to this bounty", "ALREADY_APPLIED") from None
    doc["_id"] = result.inserted_id
    bounty = await db[COLLECTION].find_one_and_update(
        {"_id": bounty["_id"], "status": "open", "deadline": {"$gt": utcnow()}},
        {"$inc": {"application_count": 1}}, return_document=ReturnDocument.AFTER)
    if bounty is None:  # closed between the check and the insert
        await db[APPLICATIONS].delete_one({"_id": doc["_id"]})
        raise Conflict("This bounty no longer accepts applications", "BOUNTY_CLOSED")
    await _notify_owner(db, hub, bounty, doc, applicant)
    return doc, bounty


async def _notify_owner(db, hub, bounty: dict, application: dict, applicant: dict) -> None:
    await notifications.notify(
        db, hub, bounty["creator_id"], channels.BOUNTY_APPLICATION, "New bounty application",
        f"{applicant['username']} applied to your bounty \"{bounty['title']}\"",
        data={"bounty_id": str(bounty["_id"]), "application_id": str(application["_id"]),
              "applicant": users.render_brief(applicant)},
        action_url=f"/bounties/{bounty['_id']}")


async def select_winner(db, hub, bounty_id: Any, owner: dict, application_id: Any) -> dict:
    """The bounty's owner picks the pending application `application_id` as the winner.

    Moves the bounty from open/in_progress to `completed` with `winner_id` and
    `winning_application_id` in one conditional update (two racing selections: one wins, the
    other gets 409 BOUNTY_CLOSED); marks that application `selected` and every other pending
    one `rejected`; notifies the winner. Returns the completed bounty. Raises NotFound
    (bounty, or APPLICATION_NOT_FOUND), Forbidden NOT_BOUNTY_OWNER, Conflict BOUNTY_CLOSED.
    """
    bounty = await get(db, bounty_id)
    if not is_owner(owner, bounty):
        raise Forbidden("Only the bounty's owner can select a winner", "NOT_BOUNTY_OWNER")
    oid = object_id(application_id)
    application = oid and await db[APPLICATIONS].find_one({"_id": oid, "bounty_id": bounty["_id"]})
    if application is None:
        raise NotFound("Application not found", "APPLICATION_NOT_FOUND")
    now = utcnow()
    won = await db[COLLECTION].find_one_and_update(
        {"_id": bounty["_id"], "status": {"$in": list(SELECTABLE)}},
        {"$set": {"status": "completed", "winner_id": application["applicant_id"],
                  "winning_application_id": application["_id"], "completed_at": now,
                  "updated_at": now}},
        return_document=ReturnDocument.AFTER)
    if won is None:
        raise Conflict("This bounty already has a winner or was cancelled", "BOUNTY_CLOSED")
    await db[APPLICATIONS].update_one({"_id": application["_id"]},
                                      {"$set": {"status": "selected", "decided_at": now}})
    await db[APPLICATIONS].update_many(
        {"bounty_id": bounty["_id"], "_id": {"$ne": application["_id"]}, "status": "pending"},
        {"$set": {"status": "rejected", "decided_at": now}})
    await notifications.notify(
        db, hub, application["applicant_id"], channels.BOUNTY_APPLICATION, "You won a bounty",
        f"Your application to \"{won['title']}\" was selected",
        data={"bounty_id": str(won["_id"]), "application_id": str(application["_id"]),
              "status": "selected"},
        action_url=f"/bounties/{won['_id']}")
    return won


async def moderate(db, bounty_id: Any, changes: dict, *, actor: dict) -> dict:
    """Staff edit of a bounty (`bounties.moderate`) by `actor`: any of EDITABLE; `status`
    only among open, in_progress, cancelled. A completed bounty keeps its status (409
    BOUNTY_COMPLETED); the check and the write are one conditional update. Then the admin
    action `bounty_cancelled` (status cancelled) or `bounty_updated` ``{fields,
    previous_status}`` is recorded (a failure is logged). Returns the bounty after."""
    before = await get(db, bounty_id)
    fields = sorted(changes)
    action = "bounty_cancelled" if changes.get("status") == "cancelled" else "bounty_updated"
    changes = dict(changes)
    if "deadline" in changes:
        changes["deadline"] = _check_deadline(changes["deadline"])
    if "category" in changes:
        changes["category"] = await _category(db, changes["category"])
    if "tags" in changes:
        changes["tags"] = _tags(changes["tags"])
    condition: dict = {"_id": before["_id"]}
    if "status" in changes:
        condition["status"] = {"$ne": "completed"}
    after = await db[COLLECTION].find_one_and_update(
        condition, {"$set": {**changes, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if after is None:
        if await db[COLLECTION].count_documents({"_id": before["_id"]}) == 0:
            raise NotFound("Bounty not found", "BOUNTY_NOT_FOUND")
        raise Conflict("A completed bounty keeps its status", "BOUNTY_COMPLETED")
    await admin_actions.record_after(db, actor, action, "bounty", after["_id"],
                                     {"fields": fields, "previous_status": before["status"]})
    return after


async def delete(db, bounty_id: Any, *, actor: dict) -> dict:
    """Staff deletion of a bounty without a selected winner, with its applications, by
    `actor`; recorded as the admin action `bounty_deleted` ``{title}``.

    Returns the deleted bounty. Raises NotFound, Conflict BOUNTY_HAS_WINNER (a completed
    bounty stays as the record of who won; cancel it instead).
    """
    bounty = await get(db, bounty_id)
    result = await db[COLLECTION].delete_one({"_id": bounty["_id"], "winner_id": None})
    if result.deleted_count == 0:
        if await db[COLLECTION].count_documents({"_id": bounty["_id"]}):
            raise Conflict("A bounty with a selected winner cannot be deleted",
                           "BOUNTY_HAS_WINNER")
        raise NotFound("Bounty not found", "BOUNTY_NOT_FOUND")
    await db[APPLICATIONS].delete_many({"bounty_id": bounty["_id"]})
    await admin_actions.record_after(db, actor, "bounty_deleted", "bounty", bounty["_id"],
                                     {"title": bounty["title"]})
    return bounty


# --------------------------------------------------------------------------- rendering

def render_application(doc: dict, applicants: dict | None = None) -> dict:
    """An application in API form (`price` for `price_cents`, `applicant` card)."""
    out = render(omit(doc, ("applicant_id",)))
    out["applicant_id"] = str(doc["applicant_id"])
    out["applicant"] = users.render_brief((applicants or {}).get(doc["applicant_id"]))
    if doc.get("price_cents") is None:
        out["price"] = None
        out.pop("price_cents", None)
    return out


def render_bounty(doc: dict, people: dict | None = None) -> dict:
    """A bounty in API form: `budget` in dollars, `creator` and `winner` cards,
    `applicants` (= application_count, seed 004), `is_accepting_applications`."""
    people = people or {}
    out = render(doc)
    out["creator"] = users.render_brief(people.get(doc["creator_id"]))
    out["winner"] = users.render_brief(people.get(doc.get("winner_id")))
    out["applicants"] = doc.get("application_count", 0)
    out["is_accepting_applications"] = accepting_applications(doc)
    return out


async def render_bounties(db, docs: list[dict]) -> list[dict]:
    """Bounties in API form with their creator and winner cards (one user query)."""
    people = await users.get_many(db, [d["creator_id"] for d in docs]
                                  + [d.get("winner_id") for d in docs])
    return [render_bounty(d, people) for d in docs]


async def render_detail(db, bounty: dict, viewer: dict | None, *, sees_all: bool) -> dict:
    """The bounty page for `viewer`: everyone sees counts; an applicant sees
    `my_application`; the owner and staff (`sees_all`) see `applications` (the first
    MAX_LISTED_APPLICATIONS, oldest first)."""
    out = (await render_bounties(db, [bounty]))[0]
    mine = await application_of(db, bounty, viewer)
    applicants = await users.get_many(db, [viewer["_id"]]) if mine else {}
    out["my_application"] = render_application(mine, applicants) if mine else None
    if sees_all:
        docs = await applications_of(db, bounty)
        people = await users.get_many(db, [d["applicant_id"] for d in docs])
        out["applications"] = [render_application(d, people) for d in docs]
    return out
