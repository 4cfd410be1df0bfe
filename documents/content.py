"""Site content: platform settings, newsletter subscribers, announcements and platform
statistics, with the collection names and indexes of the homepage content
(`documents.homepage`: testimonials and slides). Help and docs are in
`documents.help_topics`, the rule-based tagger in `documents.tagger`.

Documents (seed 001 §2, §13; seed 000 §7; seed 004 homepage)::

    platform_settings  ONE document {_id: "platform", site_name, maintenance_mode,
                   allow_registrations, max_upload_mb, featured_categories: [category name],
                   support_email, updated_at, updated_by}; `platform_fee_percent` (7.5) is shown
                   with it but never stored: it comes from `documents.money.FEE_RATE`.
    newsletter_subscribers {_id, email (unique, lower-case), status: subscribed|unsubscribed,
                   created_at, updated_at}
    announcements {_id, title, message, target: all|creators|buyers, action_url,
                   recipient_count, created_by, created_at}  (the history of sends; each
                   recipient gets an `announcement` notification through `notifications.notify`)

Recipient rules (emails and announcements): a "live" user is not deleted, not banned and not
deactivated. Segment "all" is every live user (staff included); "creators" and "buyers" are
live users of that `user_type` without a staff role. One call reaches at most
`documents.email_admin.EMAIL_RECIPIENT_CAP` (emails) or `ANNOUNCEMENT_RECIPIENT_CAP`
(announcements) users; a larger
audience is refused with 422 before anything is sent.
"""
from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import (
    admin_actions,
    catalog,
    categories,
    communities,
    email_notices,
    model_listing,
    notifications,
    users,
)
from documents.common import upsert_one, utcnow
from documents.errors import Invalid
from documents.money import FEE_RATE
from realtime import channels

TESTIMONIALS = "testimonials"
SLIDES = "slider_slides"
SETTINGS = "platform_settings"
SUBSCRIBERS = "newsletter_subscribers"
ANNOUNCEMENTS = "announcements"

INDEXES = {
    TESTIMONIALS: [IndexModel([("is_approved", ASCENDING), ("is_featured", DESCENDING),
                               ("order", ASCENDING), ("created_at", DESCENDING)])],
    SLIDES: [IndexModel([("is_active", ASCENDING), ("order", ASCENDING)])],
    SUBSCRIBERS: [IndexModel([("email", ASCENDING)], unique=True)],
    ANNOUNCEMENTS: [IndexModel([("created_at", DESCENDING)])],
}

SETTINGS_ID = "platform"
SEGMENTS = ("all", "creators", "buyers")
ANNOUNCEMENT_RECIPIENT_CAP = 5000
MB = 1024 * 1024


# --------------------------------------------------------------------------- settings

def platform_fee_percent() -> float:
    """The platform fee as a percentage (7.5), from `documents.money.FEE_RATE` (read-only)."""
    return float(FEE_RATE * 100)


def default_settings(server_settings) -> dict:
    """The platform settings before an admin changed any: limits from the server config."""
    return {"site_name": "HWC3D", "maintenance_mode": False, "allow_registrations": True,
            "max_upload_mb": max(1, server_settings.max_model_bytes // MB),
            "featured_categories": [], "support_email": "support@hwc3d.com",
            "updated_at": None, "updated_by": None}


async def registrations_open(db) -> bool:
    """False once an admin turned `allow_registrations` off in the platform settings."""
    stored = await db[SETTINGS].find_one({"_id": SETTINGS_ID}, {"allow_registrations": 1}) or {}
    return stored.get("allow_registrations", True) is not False


async def get_settings(db, server_settings) -> dict:
    """The platform settings document (defaults for fields never set), plus the read-only
    `platform_fee_percent`."""
    stored = await db[SETTINGS].find_one({"_id": SETTINGS_ID}) or {}
    return {"_id": SETTINGS_ID, **default_settings(server_settings), **stored,
            "platform_fee_percent": platform_fee_percent()}


async def _check_settings(db, server_settings, changes: dict) -> dict:
    errors: dict[str, list[str]] = {}
    hard_limit = max(1, server_settings.max_model_bytes // MB)
    if "max_upload_mb" in changes and changes["max_upload_mb"] > hard_limit:
        errors["max_upload_mb"] = [f"Must be at most {hard_limit} (the server's limit)."]
    if "featured_categories" in changes:
        names = []
        for ref in changes["featured_categories"]:
            category = await categories.find_by_name_or_slug(db, ref)
            if category is None:
                errors.setdefault("featured_categories", []).append(f"Unknown category: {ref}")
            elif category["name"] not in names:
                names.append(category["name"])
        changes = {**changes, "featured_categories": names}
    if errors:
        raise Invalid(errors)
    return changes


async def update_settings(db, server_settings, changes: dict, actor: dict) -> dict:
    """Apply validated partial `changes` by staff `actor` to the one settings document
    (created on first write), record the admin action `settings_updated` ``{changes: [the
    names changed]}`` (a failure is logged) and return the result as `get_settings` does.

    Raises Invalid (422) for categories that do not exist or an upload limit above the server's.
    """
    names = sorted(changes)
    changes = await _check_settings(db, server_settings, changes)
    await upsert_one(db[SETTINGS], {"_id": SETTINGS_ID},
                     {"$set": {**changes, "updated_at": utcnow(), "updated_by": actor["_id"]}},
                     reread=False)
    await admin_actions.record_after(db, actor, "settings_updated", "settings", SETTINGS_ID,
                                     {"changes": names})
    return await get_settings(db, server_settings)


# --------------------------------------------------------------------------- recipients

LIVE_USER = {"deleted_at": None, "is_banned": {"$ne": True}, "is_active": {"$ne": False}}


def segment_query(segment: str) -> dict:
    """The users of `segment` (all | creators | buyers), see the module docstring."""
    if segment == "all":
        return dict(LIVE_USER)
    user_type = {"creators": "creator", "buyers": "buyer"}[segment]
    return {**LIVE_USER, "user_type": user_type, "staff_role": None}


async def segment_users(db, segment: str, cap: int, field: str = "segment") -> list[dict]:
    """The users of `segment` (at most `cap`); Invalid (422) when there are more than `cap`."""
    query = segment_query(segment)
    total = await users.count(db, query)
    if total > cap:
        raise Invalid({field: [f"{total} recipients; at most {cap} per request."]})
    return await users.find_where(db, query, {"email": 1, "username": 1, "full_name": 1,
                                              "email_notifications": 1}, limit=cap)


# --------------------------------------------------------------------------- announcements

async def announce(db, hub, actor: dict, *, title: str, message: str, target: str,
                   action_url: str | None = None, mailer=None) -> dict:
    """Send an announcement (seed 000 §7): one `announcement` notification per user of
    `target` through `notifications.notify` (stored, then published live), an email to each
    who did not turn emails off (through `mailer`), and one history document; then the admin
    action `announcement_sent` ``{target, count}`` by `actor` is recorded (a failure is
    logged). Returns the stored announcement with `recipient_count`.

    Raises Invalid (422) past ANNOUNCEMENT_RECIPIENT_CAP, before anything is written.
    """
    people = await segment_users(db, target, ANNOUNCEMENT_RECIPIENT_CAP, "target")
    doc = {"title": title, "message": message, "target": target, "action_url": action_url,
           "recipient_count": 0, "created_by": actor["_id"], "created_at": utcnow()}
    doc["_id"] = (await db[ANNOUNCEMENTS].insert_one(doc)).inserted_id
    for person in people:
        await notifications.notify(db, hub, person["_id"], channels.ANNOUNCEMENT, title, message,
                                   data={"announcement_id": str(doc["_id"])},
                                   action_url=action_url)
    doc["recipient_count"] = len(people)
    if mailer is not None:
        await email_notices.announcement(mailer, people, title, message)
    await db[ANNOUNCEMENTS].update_one({"_id": doc["_id"]},
                                       {"$set": {"recipient_count": len(people)}})
    await admin_actions.record_after(db, actor, "announcement_sent", "announcement", doc["_id"],
                                     {"target": doc["target"], "count": doc["recipient_count"]})
    return doc


# --------------------------------------------------------------------------- newsletter

async def subscribe(db, email: str) -> tuple[dict, bool]:
    """Subscribe `email` (stored lower-case). Idempotent: returns (subscriber, created) —
    created is False when the address was already there (re-subscribed if it had left)."""
    email = email.strip().lower()
    now = utcnow()
    update = {"$set": {"status": "subscribed", "updated_at": now},
              "$setOnInsert": {"email": email, "created_at": now}}
    try:
        result = await db[SUBSCRIBERS].update_one({"email": email}, update, upsert=True)
        created = result.upserted_id is not None
    except DuplicateKeyError:  # a concurrent first subscription won the insert
        await db[SUBSCRIBERS].update_one({"email": email}, {"$set": update["$set"]})
        created = False
    return await db[SUBSCRIBERS].find_one({"email": email}), created


# --------------------------------------------------------------------------- statistics

async def platform_stats(db) -> dict:
    """Platform counts (seed 001 §2 "platform stats"), all read from the store:
    ``{total_users (live accounts), total_creators (live creators), total_models (approved and
    published), total_downloads (sum of every model's downloads counter), total_communities
    (active), total_categories (active)}``."""
    live = {"deleted_at": None}
    return {
        "total_users": await users.count(db, live),
        "total_creators": await users.count(db, {**live, "user_type": "creator"}),
        "total_models": await catalog.count(db, catalog.PUBLIC_QUERY),
        "total_downloads": await catalog.total_downloads(db),
        "total_communities": await communities.count(db, {"status": "active"}),
        "total_categories": await categories.count_active(db),
    }


async def trending_models(db, limit: int) -> list[dict]:
    """Public models by views then likes (the catalog's "popular" order)."""
    docs, _ = await model_listing.list_public(db, {}, page=1, limit=limit, sort="popular")
    return docs
