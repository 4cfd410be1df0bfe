"""Learning center routes (seed 000 "Additional Features" Learning Center, seed 001 §11).

`GET /api/courses` (published courses, filters, paginated), `GET /api/courses/{id}`,
`POST /api/courses/{id}/enroll` (free at once; paid through the payment provider with a
`payment_method_token`), `GET /api/users/me/courses` (enrolled courses with progress).
Rules live in `documents.courses`.
"""
from __future__ import annotations

from marshmallow import fields, pre_load, validate

from documents import courses
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    public,
    query,
    responds,
)
from handlers.schemas import drop_blanks
from handlers.schemas_out import UserBriefOut


class CourseListQuery(PageQuery):
    """Filters of seed 001 §11: `difficulty`, `category`, `is_free`, `search`; `sort`
    (newest, popular)."""

    difficulty = fields.String(validate=validate.OneOf(courses.DIFFICULTIES))
    category = fields.String(validate=validate.Length(min=1, max=60))
    is_free = fields.Boolean()
    search = fields.String(validate=validate.Length(max=100))
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(courses.SORTS)))

    @pre_load
    def _blanks(self, data, **kwargs):
        return drop_blanks(data)


class EnrollBody(ApiSchema):
    """For a paid course: `payment_method_token` (a card token `tok_...` or PaymentMethod
    `pm_...`), or `payment_intent_id` after a 3-D Secure challenge. Empty for a free course."""

    payment_method_token = fields.String(validate=validate.Length(min=1, max=255))
    payment_intent_id = fields.String(validate=validate.Length(min=1, max=255))


class CourseOut(ApiSchema):
    id = fields.String()
    title = fields.String()
    difficulty = fields.String()
    duration = fields.Integer()
    is_free = fields.Boolean()
    price = fields.Float()
    enrollment_count = fields.Integer()
    instructor = fields.Nested(UserBriefOut, allow_none=True)
    is_enrolled = fields.Boolean()
    progress = fields.Integer()
    category = fields.String(allow_none=True)
    completed_at = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    enrolled_at = fields.String(allow_none=True)
    instructor_id = fields.String(allow_none=True)
    is_published = fields.Boolean(allow_none=True)
    tags = fields.List(fields.String(), allow_none=True)
    thumbnail_url = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    video_url = fields.String(allow_none=True)


class CoursesHandler(ApiHandler):
    @public
    @query(CourseListQuery)
    @responds(CourseOut, paginated=True)
    async def get(self) -> None:
        """Published courses, newest first by default, paginated, without `video_url`."""
        filters = dict(self.query)
        docs, meta = await courses.list_page(self.db, filters, page=filters.pop("page"),
                                             limit=filters.pop("limit"), sort=filters.pop("sort"))
        self.write_page(await courses.render_courses(self.db, docs), meta)


class CourseHandler(ApiHandler):
    @public
    @responds(CourseOut)
    async def get(self, course_id: str) -> None:
        """One course with `is_enrolled` (and `progress`, `video_url` for the enrolled).
        404 COURSE_NOT_FOUND, also for an unpublished course (except its instructor, staff)."""
        course = await courses.get_visible(self.db, course_id, self.current_user)
        self.write_json(await courses.render_detail(self.db, course, self.current_user))


class EnrollHandler(ApiHandler):
    @body(EnrollBody)
    @responds(CourseOut, status=201)
    async def post(self, course_id: str) -> None:
        """Enroll in a published course: 201 with the course (with `video_url`, `progress`
        0). A paid course charges `price` first: 402 PAYMENT_REQUIRED without a token, 402
        PAYMENT_FAILED when declined (nothing stored), 402 PAYMENT_REQUIRES_ACTION for 3-D
        Secure. 409 ALREADY_ENROLLED. An `Idempotency-Key` header makes retries charge once."""
        user = self.require_user()
        key = (self.request.headers.get("Idempotency-Key") or "")[:200] or None
        _, course = await courses.enroll(
            self.db, self.services.payments, course_id, user, idempotency_key=key,
            payment_method_token=self.body.get("payment_method_token"),
            payment_intent_id=self.body.get("payment_intent_id"))
        self.write_json(await courses.render_detail(self.db, course, user), 201)


class MyCoursesHandler(ApiHandler):
    @query(PageQuery)
    @responds(CourseOut, paginated=True)
    async def get(self) -> None:
        """The caller's enrolled courses, latest enrollment first, each with `progress`,
        `enrolled_at`, `completed_at` and `video_url` (seed 001 §11)."""
        items, meta = await courses.enrolled_page(self.db, self.require_user(),
                                                  page=self.query["page"],
                                                  limit=self.query["limit"])
        self.write_page(items, meta)


routes = [
    (r"/api/courses", CoursesHandler),
    (r"/api/courses/([^/]+)", CourseHandler),
    (r"/api/courses/([^/]+)/enroll", EnrollHandler),
    (r"/api/users/me/courses", MyCoursesHandler),
]
