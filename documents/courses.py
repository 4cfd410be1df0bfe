"""The learning center: courses and enrollments (seed 000 "Additional Features" `Course`,
seed 001 §11 and §13 Learning Management, seed 004 `Course`).

A course document (collection `courses`)::

    {_id, title, description, instructor_id: ObjectId, thumbnail_url, video_url,
     duration: int (minutes), difficulty: "beginner"|"intermediate"|"advanced", category: str,
     tags: [str], is_free: bool, price_cents: int (0 when free), is_published: bool,
     enrollment_count: int, created_at, updated_at}

An enrollment document (collection `course_enrollments`), one per (course, user)::

    {_id, course_id, user_id, progress: int 0..100, enrolled_at, completed_at,
     price_paid_cents: int, payment_intent_id: str|None}

Rules:
- Only published courses are listed and enrolled in; an unpublished course is a 404 for
  everyone but its instructor and staff. `video_url` is shown to the enrolled, the
  instructor and staff only.
- A free course is enrolled in at once. A paid course needs a payment through the payment
  provider (`providers.payments`, docs/architecture.md §5): the body's `payment_method_token` creates and
  confirms a PaymentIntent for `price_cents` in usd. Declined → 402 PAYMENT_FAILED and
  nothing stored; no token → 402 PAYMENT_REQUIRED; 3-D Secure → 402
  PAYMENT_REQUIRES_ACTION with the intent's `payment_intent_id`, `client_secret` and
  `next_action`: after the challenge the client sends `payment_intent_id` and the
  enrollment completes when the intent succeeded for this course, this user and this price.
- Enrolling twice is 409 ALREADY_ENROLLED (unique index; checked before charging, and a
  racing second charge is refunded). `enrollment_count` moves by one in the conditional
  update that re-checks the course is still published right after the insert; when that
  fails the enrollment is undone (and refunded), so the count equals the stored enrollments.
- Staff with `courses.manage` create, edit and delete courses. `is_free` and `price_cents`
  agree (free ⇔ price 0). A course with enrollments is not deleted (409
  COURSE_HAS_ENROLLMENTS: people paid for or started it; unpublish it instead). Each of
  these changes is recorded as an admin action on target `course` once stored
  (`course_created`, `course_updated`, `course_deleted`).
- Course revenue is not entered in the seller ledger (`documents.money`); progress is stored
  but no route of the seeds changes it yet.
"""
from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import admin_actions, charges, users
from documents.common import omit, paginate, render, require_id, search_regex, utcnow
from documents.errors import Conflict, DomainError, Invalid, NotFound, PaymentFailed

log = logging.getLogger(__name__)

COLLECTION = "courses"
ENROLLMENTS = "course_enrollments"

INDEXES = {
    COLLECTION: [
        IndexModel([("is_published", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("difficulty", ASCENDING), ("category", ASCENDING)]),
        IndexModel([("instructor_id", ASCENDING)]),
    ],
    ENROLLMENTS: [
        IndexModel([("course_id", ASCENDING), ("user_id", ASCENDING)], unique=True),
        IndexModel([("user_id", ASCENDING), ("enrolled_at", DESCENDING)]),
    ],
}

DIFFICULTIES = ("beginner", "intermediate", "advanced")
MAX_PRICE_CENTS = 1_000_000            # 10,000.00 USD
PAYABLE = ("requires_action", "requires_confirmation")
SORTS = {
    "newest": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "popular": [("enrollment_count", DESCENDING), ("_id", DESCENDING)],
}


# --------------------------------------------------------------------------- reads

def can_manage(user: dict | None, course: dict) -> bool:
    """True for the course's instructor and for staff with `courses.manage`."""
    return bool(user) and (user["_id"] == course.get("instructor_id")
                           or users.has_permission(user, "courses.manage"))


async def get(db, course_id: Any) -> dict:
    """The course with id `course_id`; raises NotFound COURSE_NOT_FOUND (also for a bad id)."""
    doc = await db[COLLECTION].find_one({"_id": require_id(course_id, "Course")})
    if doc is None:
        raise NotFound("Course not found", "COURSE_NOT_FOUND")
    return doc


async def get_visible(db, course_id: Any, viewer: dict | None) -> dict:
    """The course if `viewer` may see it (published, or they manage it); else NotFound."""
    doc = await get(db, course_id)
    if not doc.get("is_published") and not can_manage(viewer, doc):
        raise NotFound("Course not found", "COURSE_NOT_FOUND")
    return doc


def list_query(filters: dict, *, staff: bool = False) -> dict:
    """The filter of a course listing. `filters`: difficulty, category, is_free, search,
    is_published (staff only; the public listing shows published courses alone)."""
    query: dict = {} if staff else {"is_published": True}
    if staff and filters.get("is_published") is not None:
        query["is_published"] = filters["is_published"]
    if filters.get("difficulty"):
        query["difficulty"] = filters["difficulty"]
    if filters.get("category"):
        query["category"] = {"$regex": f"^{re.escape(filters['category'].strip())}$",
                             "$options": "i"}
    if filters.get("is_free") is not None:
        query["is_free"] = filters["is_free"]
    if filters.get("search"):
        regex = search_regex(filters["search"])
        query["$or"] = [{"title": regex}, {"description": regex}, {"tags": regex}]
    return query


async def list_page(db, filters: dict, *, page: int, limit: int, sort: str = "newest",
                    staff: bool = False) -> tuple[list[dict], dict]:
    """One page of courses matching `filters` (see `list_query`). Returns (docs, meta)."""
    return await paginate(db[COLLECTION], list_query(filters, staff=staff), page=page,
                          limit=limit, sort=SORTS[sort])


async def enrollment_of(db, course: dict, user: dict | None) -> dict | None:
    """The enrollment of `user` in `course`, or None."""
    if not user:
        return None
    return await db[ENROLLMENTS].find_one({"course_id": course["_id"], "user_id": user["_id"]})


async def enrolled_page(db, user: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """The courses `user` is enrolled in, latest enrollment first, each as the course in API
    form (with `video_url`) plus `progress`, `enrolled_at`, `completed_at`."""
    docs, meta = await paginate(db[ENROLLMENTS], {"user_id": user["_id"]}, page=page,
                                limit=limit, sort=[("enrolled_at", DESCENDING), ("_id", DESCENDING)])
    found = {c["_id"]: c async for c in db[COLLECTION].find(
        {"_id": {"$in": [d["course_id"] for d in docs]}})}
    instructors = await users.get_many(db, [c.get("instructor_id") for c in found.values()])
    items = []
    for enrollment in docs:
        course = found.get(enrollment["course_id"])
        if course is not None:
            items.append(render_course(course, instructors, enrollment=enrollment,
                                       with_video=True))
    return items, meta


# --------------------------------------------------------------------------- enrollment

async def enroll(db, provider, course_id: Any, user: dict, *,
                 payment_method_token: str | None = None, payment_intent_id: str | None = None,
                 idempotency_key: str | None = None) -> tuple[dict, dict]:
    """Enroll `user` in a published course, paying first when it is not free.

    Returns (enrollment, course after the count moved). Raises NotFound COURSE_NOT_FOUND,
    Conflict COURSE_NOT_PUBLISHED / ALREADY_ENROLLED, PaymentFailed (402: PAYMENT_REQUIRED,
    PAYMENT_FAILED, PAYMENT_REQUIRES_ACTION, PAYMENT_MISMATCH), ProviderUnavailable (503).
    """
    course = await get_visible(db, course_id, user)
    if not course.get("is_published"):
        raise Conflict("This course is not published", "COURSE_NOT_PUBLISHED")
    if await enrollment_of(db, course, user):
        raise Conflict("You are already enrolled in this course", "ALREADY_ENROLLED")
    intent = None
    if not course.get("is_free") and course.get("price_cents", 0) > 0:
        intent = await _charge(provider, course, user, payment_method_token, payment_intent_id,
                               idempotency_key)
    doc = {"course_id": course["_id"], "user_id": user["_id"], "progress": 0,
           "enrolled_at": utcnow(), "completed_at": None,
           "price_paid_cents": intent.amount_cents if intent else 0,
           "payment_intent_id": intent.id if intent else None}
    try:
        result = await db[ENROLLMENTS].insert_one(doc)
    except DuplicateKeyError:
        await _refund(provider, intent)
        raise Conflict("You are already enrolled in this course", "ALREADY_ENROLLED") from None
    doc["_id"] = result.inserted_id
    course = await db[COLLECTION].find_one_and_update(
        {"_id": course["_id"], "is_published": True}, {"$inc": {"enrollment_count": 1}},
        return_document=ReturnDocument.AFTER)
    if course is None:  # unpublished or deleted meanwhile
        await db[ENROLLMENTS].delete_one({"_id": doc["_id"]})
        await _refund(provider, intent)
        raise NotFound("Course not found", "COURSE_NOT_FOUND")
    return doc, course


async def _charge(provider, course: dict, user: dict, token: str | None,
                  intent_id: str | None, idempotency_key: str | None):
    """A succeeded PaymentIntent for the course's price, paid by `user`; raises PaymentFailed."""
    metadata = {"kind": "course_enrollment", "course_id": str(course["_id"]),
                "user_id": str(user["_id"])}
    if intent_id:
        intent = await provider.retrieve_payment_intent(intent_id)
        if {k: intent.metadata.get(k) for k in metadata} != metadata:
            raise PaymentFailed("This payment is not for this course", "PAYMENT_MISMATCH")
        if intent.status in PAYABLE:
            intent = await provider.confirm_payment_intent(intent_id)
    elif token:
        key = f"course-enroll:{user['_id']}:{course['_id']}:{idempotency_key or uuid.uuid4().hex}"
        intent = await provider.create_payment_intent(
            course["price_cents"], charges.CURRENCY, idempotency_key=key, metadata=metadata,
            payment_method_token=token)
    else:
        raise PaymentFailed("This course must be paid for: send a payment_method_token",
                            "PAYMENT_REQUIRED")
    if intent.status == "succeeded" and not charges.payment_matches(
            intent, course["price_cents"], metadata=metadata):
        await _refund(provider, intent)
        raise PaymentFailed("The payment does not match the course price", "PAYMENT_MISMATCH")
    charges.require_payment(intent, course["price_cents"], metadata=metadata)
    return intent


async def _refund(provider, intent) -> None:
    """Give back a payment whose enrollment could not be stored; failures are logged."""
    if intent is None:
        return
    try:
        await provider.refund(intent.id, intent.amount_cents,
                              idempotency_key=f"course-refund:{intent.id}")
    except DomainError:
        log.exception("refund of course payment %s failed", intent.id)


# --------------------------------------------------------------------------- staff writes

def _pricing(is_free: bool | None, price_cents: int | None) -> dict:
    """`is_free` and `price_cents` made to agree (free ⇔ 0); Invalid (422) when they cannot."""
    if is_free is None:
        is_free = not price_cents
    price_cents = price_cents or 0
    if is_free and price_cents:
        raise Invalid({"price": ["A free course has no price"]})
    if not is_free and not price_cents:
        raise Invalid({"price": ["A paid course needs a price"]})
    return {"is_free": is_free, "price_cents": price_cents}


async def _instructor_id(db, value: Any):
    user = await users.get(db, value)
    if user is None or user.get("deleted_at"):
        raise Invalid({"instructor_id": ["Unknown user"]})
    return user["_id"]


def _tags(tags: list[str] | None) -> list[str]:
    return list(dict.fromkeys(t.strip().lower() for t in tags or () if t.strip()))


async def create(db, staff_user: dict, data: dict) -> dict:
    """Store a new course (`courses.manage`). `data`: title, description, instructor_id
    (default: `staff_user`), thumbnail_url, video_url, duration, difficulty, category, tags,
    is_free, price_cents, is_published (default true). Records `course_created` ``{title}``
    by `staff_user`. Raises Invalid (422)."""
    now = utcnow()
    instructor = data.get("instructor_id") or staff_user["_id"]
    doc = {"title": data["title"], "description": data.get("description") or "",
           "instructor_id": await _instructor_id(db, instructor),
           "thumbnail_url": data.get("thumbnail_url"), "video_url": data.get("video_url"),
           "duration": data.get("duration", 0), "difficulty": data["difficulty"],
           "category": data.get("category"), "tags": _tags(data.get("tags")),
           **_pricing(data.get("is_free"), data.get("price_cents")),
           "is_published": data.get("is_published", True), "enrollment_count": 0,
           "created_at": now, "updated_at": now}
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    await admin_actions.record_after(db, staff_user, "course_created", "course", doc["_id"],
                                     {"title": doc["title"]})
    return doc


async def update(db, course_id: Any, changes: dict, *, actor: dict) -> dict:
    """Change a course's fields (`courses.manage`) for staff `actor`, recorded as
    `course_updated` ``{fields}``; returns it. Raises NotFound, Invalid."""
    course = await get(db, course_id)
    fields = sorted(changes)
    changes = dict(changes)
    if "instructor_id" in changes:
        changes["instructor_id"] = await _instructor_id(db, changes["instructor_id"])
    if "tags" in changes:
        changes["tags"] = _tags(changes["tags"])
    if "is_free" in changes or "price_cents" in changes:
        price = changes.get("price_cents", 0 if changes.get("is_free") else course["price_cents"])
        changes.update(_pricing(changes.get("is_free"), price))
    after = await db[COLLECTION].find_one_and_update(
        {"_id": course["_id"]}, {"$set": {**changes, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound("Course not found", "COURSE_NOT_FOUND")
    await admin_actions.record_after(db, actor, "course_updated", "course", after["_id"],
                                     {"fields": fields})
    return after


async def delete(db, course_id: Any, *, actor: dict) -> dict:
    """Delete a course nobody is enrolled in, recorded as `course_deleted` ``{title}`` by
    staff `actor`; returns it. Raises NotFound, Conflict COURSE_HAS_ENROLLMENTS (unpublish
    it instead)."""
    course = await get(db, course_id)
    result = await db[COLLECTION].delete_one({"_id": course["_id"], "enrollment_count": 0})
    if result.deleted_count == 0:
        if await db[COLLECTION].count_documents({"_id": course["_id"]}):
            raise Conflict("People are enrolled in this course; unpublish it instead",
                           "COURSE_HAS_ENROLLMENTS")
        raise NotFound("Course not found", "COURSE_NOT_FOUND")
    await admin_actions.record_after(db, actor, "course_deleted", "course", course["_id"],
                                     {"title": course["title"]})
    return course


# --------------------------------------------------------------------------- rendering

def render_course(doc: dict, instructors: dict | None = None, *, enrollment: dict | None = None,
                  with_video: bool = False) -> dict:
    """A course in API form: `price` in dollars, `instructor` card, `is_enrolled`, and for
    the enrolled `progress`, `enrolled_at`, `completed_at`; `video_url` only `with_video`."""
    out = render(doc if with_video else omit(doc, ("video_url",)))
    out["instructor"] = users.render_brief((instructors or {}).get(doc.get("instructor_id")))
    out["is_enrolled"] = enrollment is not None
    if enrollment is not None:
        out.update(progress=enrollment.get("progress", 0),
                   enrolled_at=render(enrollment.get("enrolled_at")),
                   completed_at=render(enrollment.get("completed_at")))
    return out


async def render_courses(db, docs: list[dict], *, with_video: bool = False) -> list[dict]:
    """Courses in API form with their instructor cards (one user query)."""
    instructors = await users.get_many(db, [d.get("instructor_id") for d in docs])
    return [render_course(d, instructors, with_video=with_video) for d in docs]


async def render_detail(db, course: dict, viewer: dict | None) -> dict:
    """The course page for `viewer`: with `video_url` when enrolled or managing it."""
    enrollment = await enrollment_of(db, course, viewer)
    instructors = await users.get_many(db, [course.get("instructor_id")])
    return render_course(course, instructors, enrollment=enrollment,
                         with_video=enrollment is not None or can_manage(viewer, course))


async def any_stored(db) -> bool:
    """Whether the `courses` collection holds any course at all (any state)."""
    return await db[COLLECTION].find_one({}, {"_id": 1}) is not None


async def newest_page(db, query: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of the courses matching `query` (a `courses` filter), newest first (newest
    id on a tie): (stored documents, pagination meta ``{total, page, limit, pages}``)."""
    return await paginate(db[COLLECTION], query, page=page, limit=limit,
                          sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
