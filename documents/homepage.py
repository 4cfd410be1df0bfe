"""Homepage content: testimonials and slides (seed 001 §2, §13; seed 004 homepage).

Documents (collection names and indexes in `documents.content`)::

    testimonials {_id, author_name, author_title, avatar_url, content, rating: 1..5,
                  user_id: ObjectId|None, is_approved, is_featured, order, created_at, updated_at}
    slider_slides {_id, title, subtitle, image_url, link_url, cta_text, order, is_active,
                   starts_at, ends_at (None: open-ended), created_at, updated_at}

Rules: the public sees approved testimonials only (featured first, then `order`); a slide
is shown while active and inside its window (`starts_at` ≤ now < `ends_at`), and a window
must end after it starts (422).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from documents import users
from documents.common import delete_by_id, get_by_id, paginate, search_regex, update_by_id, utcnow
from documents.content import SLIDES, TESTIMONIALS
from documents.errors import Invalid


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


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
    return await update_by_id(db, TESTIMONIALS, testimonial_id, await _check_user(db, changes),
                         "Testimonial")


async def approve_testimonial(db, testimonial_id: Any, approved: bool = True) -> dict:
    """Set `is_approved` (seed 001 §13 "Approve testimonial"); NotFound (404)."""
    return await update_by_id(db, TESTIMONIALS, testimonial_id, {"is_approved": approved},
                         "Testimonial")


async def delete_testimonial(db, testimonial_id: Any) -> None:
    """Remove a testimonial; NotFound (404)."""
    await delete_by_id(db, TESTIMONIALS, testimonial_id, "Testimonial")


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
    current = await get_by_id(db, SLIDES, slide_id, "Slide")
    merged = {**current, **changes}
    _check_window(merged.get("starts_at"), merged.get("ends_at"))
    return await update_by_id(db, SLIDES, slide_id, changes, "Slide")


async def delete_slide(db, slide_id: Any) -> None:
    """Remove a slide; NotFound (404)."""
    await delete_by_id(db, SLIDES, slide_id, "Slide")


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
