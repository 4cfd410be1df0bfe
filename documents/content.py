"""Site content: testimonials, homepage slides, platform settings, email templates, newsletter
subscribers, announcements, help and docs, platform statistics, and the rule-based tagger.

Documents (seed 001 §2, §13; seed 000 §7; seed 004 homepage, help and docs)::

    testimonials {_id, author_name, author_title, avatar_url, content, rating: 1..5,
                  user_id: ObjectId|None, is_approved, is_featured, order, created_at, updated_at}
    slider_slides {_id, title, subtitle, image_url, link_url, cta_text, order, is_active,
                   starts_at, ends_at (None: open-ended), created_at, updated_at}
    platform_settings  ONE document {_id: "platform", site_name, maintenance_mode,
                   allow_registrations, max_upload_mb, featured_categories: [category name],
                   support_email, updated_at, updated_by}; `platform_fee_percent` (7.5) is shown
                   with it but never stored: it comes from `documents.money.FEE_RATE`.
    email_templates {_id, name (unique, case-insensitive via name_lower), subject, body
                   (text with {{placeholders}}), category, created_at, updated_at}
    newsletter_subscribers {_id, email (unique, lower-case), status: subscribed|unsubscribed,
                   created_at, updated_at}
    announcements {_id, title, message, target: all|creators|buyers, action_url,
                   recipient_count, created_by, created_at}  (the history of sends; each
                   recipient gets an `announcement` notification through `notifications.notify`)

Help FAQs, help categories and docs sections are constants of this module (tuples of plain
dicts, never mutated: readers get copies), so they need no collection and no seeding.

Recipient rules (emails and announcements): a "live" user is not deleted, not banned and not
deactivated. Segment "all" is every live user (staff included); "creators" and "buyers" are
live users of that `user_type` without a staff role. One call reaches at most
`EMAIL_RECIPIENT_CAP` (emails) or `ANNOUNCEMENT_RECIPIENT_CAP` (announcements) users; a larger
audience is refused with 422 before anything is sent.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import catalog, categories, communities, notifications, users
from documents.common import paginate, render, require_id, search_regex, utcnow
from documents.errors import Conflict, Invalid, NotFound
from documents.money import FEE_RATE

TESTIMONIALS = "testimonials"
SLIDES = "slider_slides"
SETTINGS = "platform_settings"
TEMPLATES = "email_templates"
SUBSCRIBERS = "newsletter_subscribers"
ANNOUNCEMENTS = "announcements"
EMAILS = "emails"  # written by `documents.outbox` (the mailer); read here for the history

INDEXES = {
    TESTIMONIALS: [IndexModel([("is_approved", ASCENDING), ("is_featured", DESCENDING),
                               ("order", ASCENDING), ("created_at", DESCENDING)])],
    SLIDES: [IndexModel([("is_active", ASCENDING), ("order", ASCENDING)])],
    TEMPLATES: [IndexModel([("name_lower", ASCENDING)], unique=True)],
    SUBSCRIBERS: [IndexModel([("email", ASCENDING)], unique=True)],
    ANNOUNCEMENTS: [IndexModel([("created_at", DESCENDING)])],
}

SETTINGS_ID = "platform"
SEGMENTS = ("all", "creators", "buyers")
EMAIL_RECIPIENT_CAP = 1000
ANNOUNCEMENT_RECIPIENT_CAP = 5000
TEMPLATE_CATEGORIES = ("marketing", "announcement", "newsletter", "transactional", "system")
PLACEHOLDERS = ("username", "full_name", "email", "site_name")
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MB = 1024 * 1024


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def _get(db, collection: str, doc_id: Any, what: str) -> dict:
    oid = require_id(doc_id, what)
    doc = await db[collection].find_one({"_id": oid})
    if doc is None:
        raise NotFound(f"{what} not found")
    return doc


async def _update(db, collection: str, doc_id: Any, changes: dict, what: str) -> dict:
    oid = require_id(doc_id, what)
    doc = await db[collection].find_one_and_update(
        {"_id": oid}, {"$set": {**changes, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if doc is None:
        raise NotFound(f"{what} not found")
    return doc


async def _delete(db, collection: str, doc_id: Any, what: str) -> None:
    oid = require_id(doc_id, what)
    if (await db[collection].delete_one({"_id": oid})).deleted_count != 1:
        raise NotFound(f"{what} not found")


# --------------------------------------------------------------------------- testimonials

async def _check_user(db, data: dict) -> dict:
    """`data` with `user_id` as an ObjectId; Invalid (422) when it names no user."""
    if data.get("user_id") is None:
        return data
    user = await users.get(db, data["user_id"])
    if user is None:
        raise Invalid({"user_id": ["Unknown user."]})
    return {**data, "user_id": user["_id"]}


async def create_testimonial(db, data: dict) -> dict:
    """Store a testimonial from validated `data` (author_name, content, rating 1..5 required).

    Defaults: not approved, not featured, order 0. Raises Invalid (422) for an unknown user_id.
    """
    now = utcnow()
    doc = {"author_name": None, "author_title": None, "avatar_url": None, "user_id": None,
           "is_approved": False, "is_featured": False, "order": 0, **await _check_user(db, data),
           "created_at": now, "updated_at": now}
    doc["_id"] = (await db[TESTIMONIALS].insert_one(doc)).inserted_id
    return doc


async def update_testimonial(db, testimonial_id: Any, changes: dict) -> dict:
    """Apply validated `changes`; NotFound (404), Invalid (422) for an unknown user_id."""
    return await _update(db, TESTIMONIALS, testimonial_id, await _check_user(db, changes),
                         "Testimonial")


async def approve_testimonial(db, testimonial_id: Any, approved: bool = True) -> dict:
    """Set `is_approved` (seed 001 §13 "Approve testimonial"); NotFound (404)."""
    return await _update(db, TESTIMONIALS, testimonial_id, {"is_approved": approved},
                         "Testimonial")


async def delete_testimonial(db, testimonial_id: Any) -> None:
    """Remove a testimonial; NotFound (404)."""
    await _delete(db, TESTIMONIALS, testimonial_id, "Testimonial")


PUBLIC_TESTIMONIAL_ORDER = [("is_featured", DESCENDING), ("order", ASCENDING),
                            ("created_at", DESCENDING), ("_id", DESCENDING)]


async def list_public_testimonials(db, limit: int, featured: bool | None = None) -> list[dict]:
    """Approved testimonials, featured first, then `order`, newest first (seed 001 §2)."""
    query: dict = {"is_approved": True}
    if featured is not None:
        query["is_featured"] = featured
    cursor = db[TESTIMONIALS].find(query).sort(PUBLIC_TESTIMONIAL_ORDER).limit(limit)
    return await cursor.to_list(length=limit)


async def list_testimonials(db, *, page: int, limit: int, status: str | None = None,
                            search: str | None = None) -> tuple[list[dict], dict]:
    """One page of every testimonial for staff; `status` "approved"|"pending", `search` in
    author name or content."""
    query: dict = {}
    if status:
        query["is_approved"] = status == "approved"
    if search:
        query["$or"] = [{"author_name": search_regex(search)}, {"content": search_regex(search)}]
    return await paginate(db[TESTIMONIALS], query, page=page, limit=limit,
                          sort=[("created_at", DESCENDING), ("_id", DESCENDING)])


# --------------------------------------------------------------------------- slides

def _check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at and ends_at and _aware(ends_at) <= _aware(starts_at):
        raise Invalid({"ends_at": ["Must be later than starts_at."]})


async def create_slide(db, data: dict) -> dict:
    """Store a homepage slide from validated `data` (title and image_url required).

    Raises Invalid (422) when `ends_at` is not after `starts_at`.
    """
    _check_window(data.get("starts_at"), data.get("ends_at"))
    now = utcnow()
    doc = {"subtitle": None, "link_url": None, "cta_text": None, "order": 0, "is_active": True,
           "starts_at": None, "ends_at": None, **data, "created_at": now, "updated_at": now}
    doc["_id"] = (await db[SLIDES].insert_one(doc)).inserted_id
    return doc


async def update_slide(db, slide_id: Any, changes: dict) -> dict:
    """Apply validated `changes`; NotFound (404); Invalid (422) for an inverted window."""
    current = await _get(db, SLIDES, slide_id, "Slide")
    merged = {**current, **changes}
    _check_window(merged.get("starts_at"), merged.get("ends_at"))
    return await _update(db, SLIDES, slide_id, changes, "Slide")


async def delete_slide(db, slide_id: Any) -> None:
    """Remove a slide; NotFound (404)."""
    await _delete(db, SLIDES, slide_id, "Slide")


SLIDE_ORDER = [("order", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]


async def list_slides(db) -> list[dict]:
    """Every slide in display order (at most 500), for staff."""
    return await db[SLIDES].find({}).sort(SLIDE_ORDER).to_list(length=500)


async def active_slides(db, now: datetime | None = None) -> list[dict]:
    """Slides shown now: active, started (or no start), not ended (or no end)."""
    now = now or utcnow()
    query = {"is_active": True, "$and": [
        {"$or": [{"starts_at": None}, {"starts_at": {"$lte": now}}]},
        {"$or": [{"ends_at": None}, {"ends_at": {"$gt": now}}]}]}
    return await db[SLIDES].find(query).sort(SLIDE_ORDER).to_list(length=50)


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
    """Apply validated partial `changes` to the one settings document (created on first
    write) and return the result as `get_settings` does.

    Raises Invalid (422) for categories that do not exist or an upload limit above the server's.
    """
    changes = await _check_settings(db, server_settings, changes)
    await db[SETTINGS].update_one(
        {"_id": SETTINGS_ID},
        {"$set": {**changes, "updated_at": utcnow(), "updated_by": actor["_id"]}}, upsert=True)
    return await get_settings(db, server_settings)


# --------------------------------------------------------------------------- email templates

def placeholders_in(*texts: str | None) -> list[str]:
    """The placeholder names used in `texts` (``{{ name }}``), in order of first use."""
    found: list[str] = []
    for text in texts:
        for name in PLACEHOLDER_RE.findall(text or ""):
            if name not in found:
                found.append(name)
    return found


def check_placeholders(**texts: str | None) -> None:
    """Raise Invalid (422) naming each field that uses a placeholder outside PLACEHOLDERS."""
    errors = {}
    for field, text in texts.items():
        unknown = [n for n in placeholders_in(text) if n not in PLACEHOLDERS]
        if unknown:
            errors[field] = [(f"Unknown placeholder(s): {', '.join(unknown)}; "
                              f"allowed: {', '.join(PLACEHOLDERS)}.")]
    if errors:
        raise Invalid(errors)


def fill(text: str, values: dict) -> str:
    """`text` with each ``{{name}}`` replaced by ``values[name]`` (empty when missing)."""
    return PLACEHOLDER_RE.sub(lambda m: str(values.get(m.group(1)) or ""), text)


def render_template(doc: dict) -> dict:
    """A template in API form, with the `placeholders` it uses."""
    out = render({k: v for k, v in doc.items() if k != "name_lower"})
    out["placeholders"] = placeholders_in(doc.get("subject"), doc.get("body"))
    return out


async def create_template(db, data: dict) -> dict:
    """Store an email template (name, subject, body, category). Raises Invalid (422) for an
    unknown placeholder, Conflict (409 TEMPLATE_EXISTS) for a taken name."""
    check_placeholders(subject=data["subject"], body=data["body"])
    now = utcnow()
    doc = {"category": "marketing", **data, "name_lower": data["name"].lower(),
           "created_at": now, "updated_at": now}
    try:
        doc["_id"] = (await db[TEMPLATES].insert_one(doc)).inserted_id
    except DuplicateKeyError:
        raise Conflict("A template with this name exists", "TEMPLATE_EXISTS") from None
    return doc


async def update_template(db, template_id: Any, changes: dict) -> dict:
    """Apply validated `changes`; NotFound (404), Invalid (422), Conflict (409)."""
    check_placeholders(subject=changes.get("subject"), body=changes.get("body"))
    if "name" in changes:
        changes = {**changes, "name_lower": changes["name"].lower()}
    try:
        return await _update(db, TEMPLATES, template_id, changes, "Template")
    except DuplicateKeyError:
        raise Conflict("A template with this name exists", "TEMPLATE_EXISTS") from None


async def get_template(db, template_id: Any) -> dict:
    """The template `template_id`; NotFound (404)."""
    return await _get(db, TEMPLATES, template_id, "Template")


async def delete_template(db, template_id: Any) -> None:
    """Remove a template; NotFound (404)."""
    await _delete(db, TEMPLATES, template_id, "Template")


async def list_templates(db, *, page: int, limit: int,
                         category: str | None = None) -> tuple[list[dict], dict]:
    """One page of templates by name."""
    query = {"category": category} if category else {}
    return await paginate(db[TEMPLATES], query, page=page, limit=limit,
                          sort=[("name_lower", ASCENDING)])


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
    total = await db[users.COLLECTION].count_documents(query)
    if total > cap:
        raise Invalid({field: [f"{total} recipients; at most {cap} per request."]})
    cursor = db[users.COLLECTION].find(query, {"email": 1, "username": 1, "full_name": 1})
    return await cursor.sort("_id", ASCENDING).to_list(length=cap)


async def email_recipients(db, *, user_id: str | None = None, email: str | None = None,
                           segment: str | None = None) -> list[dict]:
    """Who an admin email goes to: ``[{email, username, full_name}]``.

    One of `user_id` (NotFound 404 when unknown), `email` (any address; its account, if any,
    fills the placeholders) or `segment` (Invalid 422 past EMAIL_RECIPIENT_CAP).
    """
    if user_id is not None:
        user = await users.get(db, require_id(user_id, "User"))
        if user is None or user.get("deleted_at"):
            raise NotFound("User not found", "USER_NOT_FOUND")
        return [user]
    if email is not None:
        return [await users.get_by_email(db, email) or {"email": email.strip().lower()}]
    return await segment_users(db, segment, EMAIL_RECIPIENT_CAP)


async def send_emails(mailer, recipients: list[dict], *, subject: str, body: str,
                      category: str, site_name: str) -> dict:
    """Send one email per recipient through `mailer.send` (which records it in `emails`),
    placeholders filled per recipient. Returns ``{sent, failed, recipients, email_ids}``."""
    sent = failed = 0
    ids = []
    for person in recipients:
        values = {"username": person.get("username"), "full_name": person.get("full_name"),
                  "email": person.get("email"), "site_name": site_name}
        record = await mailer.send(person["email"], fill(subject, values).strip()[:300],
                                   fill(body, values), category=category)
        ids.append(str(record["_id"]))
        sent, failed = (sent + 1, failed) if record["status"] == "sent" else (sent, failed + 1)
    return {"sent": sent, "failed": failed, "recipients": len(recipients), "email_ids": ids}


SECRET_EMAIL_CATEGORIES = ("verification", "password_reset")


def render_email(doc: dict) -> dict:
    """An `emails` record in API form. Emails that carry a secret (verification codes,
    password-reset links: SECRET_EMAIL_CATEGORIES) never show their text or HTML here, even
    when the embedded outbox kept them, so that the history cannot take over an account."""
    out = render(doc)
    if doc.get("redacted") or doc.get("category") in SECRET_EMAIL_CATEGORIES:
        out.update(text=None, html=None, redacted=True)
    return out


async def email_history(db, *, page: int, limit: int, to: str | None = None,
                        status: str | None = None,
                        category: str | None = None) -> tuple[list[dict], dict]:
    """One page of the `emails` collection (every email the mailer recorded), newest first."""
    query: dict = {}
    if to:
        query["to"] = to.strip().lower()
    if status:
        query["status"] = status
    if category:
        query["category"] = category
    return await paginate(db[EMAILS], query, page=page, limit=limit,
                          sort=[("created_at", DESCENDING), ("_id", DESCENDING)])


# --------------------------------------------------------------------------- announcements

async def announce(db, hub, actor: dict, *, title: str, message: str, target: str,
                   action_url: str | None = None) -> dict:
    """Send an announcement (seed 000 §7): one `announcement` notification per user of
    `target` through `notifications.notify` (stored, then published live), and one history
    document. Returns the stored announcement with `recipient_count`.

    Raises Invalid (422) past ANNOUNCEMENT_RECIPIENT_CAP, before anything is written.
    """
    people = await segment_users(db, target, ANNOUNCEMENT_RECIPIENT_CAP, "target")
    doc = {"title": title, "message": message, "target": target, "action_url": action_url,
           "recipient_count": 0, "created_by": actor["_id"], "created_at": utcnow()}
    doc["_id"] = (await db[ANNOUNCEMENTS].insert_one(doc)).inserted_id
    for person in people:
        await notifications.notify(db, hub, person["_id"], "announcement", title, message,
                                   data={"announcement_id": str(doc["_id"])},
                                   action_url=action_url)
    doc["recipient_count"] = len(people)
    await db[ANNOUNCEMENTS].update_one({"_id": doc["_id"]},
                                       {"$set": {"recipient_count": len(people)}})
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

async def _sum(db, collection: str, match: dict, field: str) -> int:
    rows = await db[collection].aggregate([
        {"$match": match}, {"$group": {"_id": None, "total": {"$sum": f"${field}"}}}]).to_list(1)
    return int(rows[0]["total"]) if rows else 0


async def platform_stats(db) -> dict:
    """Platform counts (seed 001 §2 "platform stats"), all read from the store:
    ``{total_users (live accounts), total_creators (live creators), total_models (approved and
    published), total_downloads (sum of every model's downloads counter), total_communities
    (active), total_categories (active)}``."""
    live = {"deleted_at": None}
    return {
        "total_users": await db[users.COLLECTION].count_documents(live),
        "total_creators": await db[users.COLLECTION].count_documents(
            {**live, "user_type": "creator"}),
        "total_models": await db[catalog.COLLECTION].count_documents(catalog.PUBLIC_QUERY),
        "total_downloads": await _sum(db, catalog.COLLECTION, {}, "downloads"),
        "total_communities": await db[communities.COMMUNITIES].count_documents(
            {"status": "active"}),
        "total_categories": await db[categories.COLLECTION].count_documents({"is_active": True}),
    }


async def trending_models(db, limit: int) -> list[dict]:
    """Public models by views then likes (the catalog's "popular" order)."""
    docs, _ = await catalog.list_public(db, {}, page=1, limit=limit, sort="popular")
    return docs


# --------------------------------------------------------------------------- help and docs

HELP_CATEGORIES = (
    {"slug": "getting-started", "name": "Getting Started", "icon": "rocket", "order": 1,
     "description": "Accounts, profiles and finding your way around."},
    {"slug": "buying", "name": "Buying & Downloads", "icon": "cart", "order": 2,
     "description": "Checkout, payments, downloads and refunds."},
    {"slug": "selling", "name": "Selling & Payouts", "icon": "wallet", "order": 3,
     "description": "Uploading models, fees, earnings and payouts."},
    {"slug": "files", "name": "Files & Formats", "icon": "cube", "order": 4,
     "description": "Supported formats, limits and model analysis."},
    {"slug": "community", "name": "Community", "icon": "users", "order": 5,
     "description": "Communities, posts, messages and conduct."},
    {"slug": "account", "name": "Account & Security", "icon": "shield", "order": 6,
     "description": "Passwords, sign-in and account settings."},
)

HELP_FAQS = (
    {"id": "create-account", "category": "getting-started", "order": 1,
     "question": "How do I create an account?",
     "answer": "Choose Sign up, enter your email, a username and a password of at least 8 "
               "characters, or continue with Google, GitHub or Discord."},
    {"id": "become-creator", "category": "getting-started", "order": 2,
     "question": "How do I start selling my models?",
     "answer": "Switch your account type to creator in Dashboard → Settings, then upload a "
               "model from the Upload page."},
    {"id": "payment-methods", "category": "buying", "order": 1,
     "question": "Which payment methods are accepted?",
     "answer": "Card payments are processed by Stripe. Your card details never reach our "
               "servers."},
    {"id": "download-limit", "category": "buying", "order": 2,
     "question": "How many times can I download a purchased model?",
     "answer": "Each purchase can be downloaded 10 times through short-lived signed links "
               "from your Purchases page."},
    {"id": "refunds", "category": "buying", "order": 3,
     "question": "Can I get a refund?",
     "answer": "Refunds are possible within 14 days of purchase; open a support ticket in the "
               "Refund category. A refunded purchase can no longer be downloaded."},
    {"id": "platform-fee", "category": "selling", "order": 1,
     "question": "What fee does the platform take?",
     "answer": "The platform fee is 7.5% of each sale, rounded to the cent. The rest is your "
               "earning."},
    {"id": "payout-timing", "category": "selling", "order": 2,
     "question": "When can I withdraw my earnings?",
     "answer": "Earnings stay pending for the 14-day refund window, then become available "
               "for a payout to your bank account or PayPal."},
    {"id": "model-review", "category": "selling", "order": 3,
     "question": "Why is my model pending?",
     "answer": "Every new model is reviewed by a moderator before it appears in the "
               "marketplace. You are notified when it is approved or rejected."},
    {"id": "formats", "category": "files", "order": 1,
     "question": "Which 3D file formats can I upload?",
     "answer": "GLB, GLTF, OBJ, STL, PLY, FBX and BLEND, up to 100 MB. GLB, GLTF, OBJ, STL and "
               "PLY files are analysed for polygon count, animations, rigging and materials."},
    {"id": "image-limits", "category": "files", "order": 2,
     "question": "What are the image limits?",
     "answer": "Thumbnails and previews: JPEG, PNG or WEBP up to 10 MB. Avatars: up to 2 MB, "
               "resized to 256×256."},
    {"id": "ai-tags", "category": "files", "order": 3,
     "question": "How are suggested tags chosen?",
     "answer": "Suggested tags come from a transparent rule-based keyword tagger: words of your "
               "title and description matched against a vocabulary of 3D terms, plus facts "
               "from the file analysis (animated, rigged, low-poly, PBR, format)."},
    {"id": "join-community", "category": "community", "order": 1,
     "question": "How do I join a community?",
     "answer": "Open the community and choose Join. Private communities may ask a moderator "
               "to approve your request."},
    {"id": "report-content", "category": "community", "order": 2,
     "question": "How do I report inappropriate content?",
     "answer": "Use Report on the post or model; moderators review every report."},
    {"id": "reset-password", "category": "account", "order": 1,
     "question": "I forgot my password. What now?",
     "answer": "Choose Forgot password on the sign-in page; we email you a link that is valid "
               "for a limited time."},
    {"id": "delete-account", "category": "account", "order": 2,
     "question": "Can I delete my account?",
     "answer": "Yes, in Dashboard → Settings. Your personal data is removed; purchases made by "
               "others keep working."},
)

DOCS_SECTIONS = (
    {"slug": "getting-started", "title": "Getting Started", "order": 1,
     "summary": "Create an account and find your way around HWC3D.",
     "content": "# Getting Started\n\nHWC3D is a marketplace and community for 3D models. "
                "Sign up with email or an OAuth provider, complete your profile, then browse "
                "the marketplace, follow creators and join communities."},
    {"slug": "uploading-models", "title": "Uploading Models", "order": 2,
     "summary": "Formats, limits, analysis and review.",
     "content": "# Uploading Models\n\nUpload GLB, GLTF, OBJ, STL, PLY, FBX or BLEND files up "
                "to 100 MB. Files are checked by content, analysed (polygons, vertices, "
                "animations, rigging, materials, textures) and reviewed by a moderator before "
                "they are published. Use suggested tags and the safety scan before you submit."},
    {"slug": "selling", "title": "Selling & Payouts", "order": 3,
     "summary": "Prices, the platform fee, earnings and payouts.",
     "content": "# Selling & Payouts\n\nYou set the price; the platform fee is 7.5% of each "
                "sale. Earnings are pending during the 14-day refund window, then available "
                "for a payout request, which an administrator approves."},
    {"slug": "buying", "title": "Buying & Downloads", "order": 4,
     "summary": "Cart, checkout, coupons and downloads.",
     "content": "# Buying & Downloads\n\nAdd models to your cart, apply a coupon, and pay by "
                "card. Purchased models appear under Purchases with 10 downloads each through "
                "short-lived signed links."},
    {"slug": "api", "title": "API", "order": 5,
     "summary": "Authentication, errors, pagination and rate limits.",
     "content": "# API\n\nSend the access token as `Authorization: Bearer <token>`. Errors are "
                "`{detail, error_code, field_errors}`. Lists are paginated with `page` and "
                "`limit` (max 100). Rate limits: 100 requests/min signed in, 20/min anonymous, "
                "5/min for auth routes, 10 uploads/hour. The OpenAPI document is at "
                "`/openapi.json`."},
    {"slug": "community-guidelines", "title": "Community Guidelines", "order": 6,
     "summary": "How we keep communities friendly.",
     "content": "# Community Guidelines\n\nBe respectful, share only work you have the right "
                "to share, and report content that breaks the rules. Moderators may remove "
                "content and suspend accounts that do not follow these guidelines."},
)


def help_categories() -> list[dict]:
    """The help categories in display order, each with its `faq_count`."""
    counts = {c["slug"]: 0 for c in HELP_CATEGORIES}
    for faq in HELP_FAQS:
        counts[faq["category"]] += 1
    return [{**c, "faq_count": counts[c["slug"]]} for c in HELP_CATEGORIES]


def help_faqs(category: str | None = None, search: str | None = None) -> list[dict]:
    """FAQs (copies) of `category` (a slug) whose question or answer contains `search`
    (case-insensitive), by category order then their own order."""
    rank = {c["slug"]: c["order"] for c in HELP_CATEGORIES}
    needle = (search or "").strip().lower()
    found = [dict(f) for f in HELP_FAQS
             if (not category or f["category"] == category)
             and (not needle or needle in f["question"].lower() or needle in f["answer"].lower())]
    return sorted(found, key=lambda f: (rank[f["category"]], f["order"]))


def docs_sections() -> list[dict]:
    """The docs sections without their content: ``[{slug, title, summary, order}]``."""
    return [{k: v for k, v in s.items() if k != "content"} for s in DOCS_SECTIONS]


def docs_section(slug: str) -> dict:
    """One docs section with its markdown `content`; NotFound (404) for an unknown slug."""
    for section in DOCS_SECTIONS:
        if section["slug"] == slug:
            return dict(section)
    raise NotFound("Docs section not found")


# --------------------------------------------------------------------------- tag suggestions

STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "into",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "with", "without", "very",
    "my", "your", "our", "their", "made", "make", "new", "high", "low", "quality", "model",
    "models", "3d", "file", "files", "ready", "use", "used", "using"))

# Word (or hyphenated pair) → tag. A rule-based vocabulary of 3D terms, not a learned model.
TAG_VOCABULARY = {
    **{w: "character" for w in ("character", "characters", "hero", "npc", "humanoid", "human",
                                "person", "avatar")},
    **{w: "vehicle" for w in ("vehicle", "vehicles", "car", "cars", "truck", "bike",
                              "motorcycle", "tank", "spaceship", "ship", "boat", "aircraft",
                              "plane")},
    **{w: "weapon" for w in ("weapon", "weapons", "sword", "axe", "gun", "rifle", "pistol",
                             "bow", "dagger", "spear", "shield")},
    **{w: "architecture" for w in ("building", "buildings", "house", "architecture", "tower",
                                   "castle", "interior", "room")},
    **{w: "nature" for w in ("tree", "trees", "plant", "plants", "rock", "rocks", "flower",
                             "grass", "nature", "forest")},
    **{w: "animal" for w in ("animal", "animals", "dog", "cat", "horse", "bird", "dragon",
                             "creature", "fish")},
    **{w: "furniture" for w in ("furniture", "chair", "table", "sofa", "desk", "bed", "lamp",
                                "shelf")},
    **{w: "prop" for w in ("prop", "props", "mug", "cup", "bottle", "barrel", "crate", "box")},
    **{w: "sci-fi" for w in ("sci-fi", "scifi", "futuristic", "cyberpunk", "space", "robot",
                             "mech")},
    **{w: "fantasy" for w in ("fantasy", "magic", "medieval", "elf", "orc", "wizard")},
    **{w: "low-poly" for w in ("low-poly", "lowpoly")},
    **{w: "high-poly" for w in ("high-poly", "highpoly")},
    **{w: "stylized" for w in ("stylized", "stylised", "cartoon", "toon")},
    **{w: "realistic" for w in ("realistic", "photorealistic", "photoscan", "scan", "scanned")},
    **{w: "game-ready" for w in ("game-ready", "gameready", "game", "games", "unity", "unreal")},
    **{w: "pbr" for w in ("pbr",)},
    **{w: "animated" for w in ("animated", "animation", "animations")},
    **{w: "rigged" for w in ("rigged", "rig", "rigging", "skinned")},
    **{w: "3d-print" for w in ("printable", "3d-print", "print", "printing")},
    **{w: "chess" for w in ("chess", "pawn", "knight", "rook", "bishop")},
}
LOW_POLY_BELOW = 5_000
HIGH_POLY_ABOVE = 100_000
MAX_SUGGESTED = 20
TOKEN_RE = re.compile(r"[a-z0-9]+")
TAGGER_METHOD = ("rule-based keyword tagger (not a machine-learning model): title and "
                 "description words matched against a fixed 3D vocabulary, plus the category "
                 "and facts from the stored file analysis")


def _tokens(*texts: str | None) -> list[str]:
    """Lower-case words without stop-words, followed by each adjacent pair joined by '-'."""
    words = [w for text in texts for w in TOKEN_RE.findall((text or "").lower())]
    pairs = [f"{a}-{b}" for a, b in pairwise(words)]
    return [w for w in words if w not in STOP_WORDS] + pairs


def _analysis_tags(analysis: dict | None) -> list[tuple[str, str]]:
    if not analysis:
        return []
    polys = analysis.get("poly_count")
    rules = (("animated", analysis.get("has_animations"), "the file has animations"),
             ("rigged", analysis.get("has_rigging"), "the file has a skin (rig)"),
             ("low-poly", polys is not None and polys < LOW_POLY_BELOW,
              f"{polys} faces (< {LOW_POLY_BELOW})"),
             ("high-poly", polys is not None and polys > HIGH_POLY_ABOVE,
              f"{polys} faces (> {HIGH_POLY_ABOVE})"),
             ("pbr", analysis.get("has_materials") and analysis.get("has_textures"),
              "the file has materials and textures"))
    out = [(tag, reason) for tag, hit, reason in rules if hit]
    if analysis.get("format"):
        out.append((str(analysis["format"]).lower(), "the file format"))
    return out


def suggest_tags(title: str, description: str | None, category: str | None,
                 analysis: dict | None = None) -> dict:
    """Suggested tags for a model (seed 001 §6 "Get AI tags"), deterministic:

    1. vocabulary matches of the title and description words (stop-words dropped; adjacent
       word pairs also tried, so "low poly" → "low-poly"), in order of appearance;
    2. the category's slug;
    3. from `analysis` (the stored file analysis): "animated", "rigged", "low-poly"
       (< 5,000 faces), "high-poly" (> 100,000), "pbr" (materials and textures), the format;
       with a measured poly count, a "low-poly"/"high-poly" claimed by the text is dropped
       unless the count supports it.

    Returns ``{tags: [str] (≤ 20, unique), reasons: {tag: why}, method}``.
    """
    reasons: dict[str, str] = {}
    for token in _tokens(title, description):
        tag = TAG_VOCABULARY.get(token)
        if tag and tag not in reasons:
            reasons[tag] = f'keyword "{token}"'
    if analysis and analysis.get("poly_count") is not None:
        for claim in ("low-poly", "high-poly"):  # the measured face count decides
            reasons.pop(claim, None)
    if category:
        reasons.setdefault(categories.slugify(category), "the category")
    for tag, reason in _analysis_tags(analysis):
        reasons.setdefault(tag, reason)
    tags = [t[:catalog.MAX_TAG_LENGTH] for t in reasons][:MAX_SUGGESTED]
    return {"tags": tags, "reasons": {t: reasons[t] for t in tags}, "method": TAGGER_METHOD}
