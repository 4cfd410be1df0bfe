"""Staff routes for bounties and courses (seed 001 §13 Bounty Management, Learning Management).

`GET /api/admin/bounties`, `PUT/DELETE /api/admin/bounties/{id}` (`bounties.moderate`: edit
fields, move the status between open, in_progress and cancelled; delete only a bounty with no
selected winner, 409 BOUNTY_HAS_WINNER otherwise), `GET/POST /api/admin/courses`,
`PUT/DELETE /api/admin/courses/{id}` (`courses.manage`; a course with enrollments is not
deleted, 409 COURSE_HAS_ENROLLMENTS). Every change is recorded in `admin_actions`.
"""
from __future__ import annotations

import re

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from documents import bounties, courses
from documents.common import object_id
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff
from handlers.bounties import BountyFields, BountyOut, Tags
from handlers.courses import CourseOut
from handlers.schemas import MoneyAmount, drop_blanks, strip_strings

URL_RE = re.compile(r"^(https?://|/)\S+$")


def _url(**kwargs) -> fields.String:
    return fields.String(allow_none=True, validate=[
        validate.Length(max=500), validate.Regexp(URL_RE, error="Must be an http(s) URL or a path")],
        **kwargs)


# --------------------------------------------------------------------------- schemas

class AdminBountyQuery(PageQuery):
    """`status` (any, cancelled included), `category`, `search`, `creator_id`, `sort`."""

    status = fields.String(validate=validate.OneOf(bounties.STATUSES))
    category = fields.String(validate=validate.Length(min=1, max=60))
    search = fields.String(validate=validate.Length(max=100))
    creator_id = fields.String(validate=validate.Length(min=1, max=64))
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(bounties.SORTS)))

    @pre_load
    def _blanks(self, data, **kwargs):
        return drop_blanks(data)


class BountyChanges(BountyFields):
    """Any editable field of a bounty, plus `status` (open, in_progress, cancelled); at least one."""

    status = fields.String(validate=validate.OneOf(bounties.STAFF_STATUSES))

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Nothing to change", "_schema")


class CourseFields(ApiSchema):
    """A course's editable fields (seed 000 `Course`), all optional (edits)."""

    title = fields.String(validate=validate.Length(min=3, max=200))
    description = fields.String(validate=validate.Length(max=10_000))
    instructor_id = fields.String(validate=validate.Length(min=1, max=64))
    thumbnail_url = _url()
    video_url = _url()
    duration = fields.Integer(strict=True, validate=validate.Range(min=0, max=100_000))
    difficulty = fields.String(validate=validate.OneOf(courses.DIFFICULTIES))
    category = fields.String(allow_none=True, validate=validate.Length(max=60))
    tags = Tags
    is_free = fields.Boolean()
    price_cents = MoneyAmount(min_cents=0, max_cents=courses.MAX_PRICE_CENTS, data_key="price")
    is_published = fields.Boolean()

    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data)


class NewCourseBody(CourseFields):
    """`title` 3–200, `difficulty` (beginner, intermediate, advanced) required; `price`
    (decimal, two places) with `is_free` agreeing; `instructor_id` defaults to the caller;
    `duration` in minutes; `is_published` defaults to true."""

    title = fields.String(required=True, validate=validate.Length(min=3, max=200))
    difficulty = fields.String(required=True, validate=validate.OneOf(courses.DIFFICULTIES))


class CourseChanges(CourseFields):
    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Nothing to change", "_schema")


class AdminCourseQuery(PageQuery):
    """`difficulty`, `category`, `is_free`, `is_published`, `search`, `sort`."""

    difficulty = fields.String(validate=validate.OneOf(courses.DIFFICULTIES))
    category = fields.String(validate=validate.Length(min=1, max=60))
    is_free = fields.Boolean()
    is_published = fields.Boolean()
    search = fields.String(validate=validate.Length(max=100))
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(courses.SORTS)))

    @pre_load
    def _blanks(self, data, **kwargs):
        return drop_blanks(data)


# --------------------------------------------------------------------------- bounties

class AdminBountiesHandler(ApiHandler):
    @staff("bounties.moderate")
    @query(AdminBountyQuery)
    @responds(BountyOut, paginated=True)
    async def get(self) -> None:
        """Every bounty (cancelled included), newest first by default, paginated."""
        filters = dict(self.query)
        if "creator_id" in filters:
            filters["creator_id"] = object_id(filters["creator_id"]) or "-"
        docs, meta = await bounties.list_page(
            self.db, filters, page=filters.pop("page"), limit=filters.pop("limit"),
            sort=filters.pop("sort"), all_statuses=True)
        self.write_page(await bounties.render_bounties(self.db, docs), meta)


class AdminBountyHandler(ApiHandler):
    @staff("bounties.moderate")
    @body(BountyChanges)
    @responds(BountyOut)
    async def put(self, bounty_id: str) -> None:
        """Edit a bounty's fields or status (cancel: ``{"status": "cancelled"}``). 404; 409
        BOUNTY_COMPLETED for a status change of a completed bounty; 422."""
        after = await bounties.moderate(self.db, bounty_id, self.body, actor=self.current_user)
        self.write_json(await bounties.render_detail(self.db, after, self.current_user,
                                                     sees_all=True))

    @staff("bounties.moderate")
    @responds(status=204)
    async def delete(self, bounty_id: str) -> None:
        """Delete a bounty without a selected winner, with its applications. 204; 404; 409
        BOUNTY_HAS_WINNER."""
        await bounties.delete(self.db, bounty_id, actor=self.current_user)
        self.no_content()


# --------------------------------------------------------------------------- courses

class AdminCoursesHandler(ApiHandler):
    @staff("courses.manage")
    @query(AdminCourseQuery)
    @responds(CourseOut, paginated=True)
    async def get(self) -> None:
        """Every course (unpublished included), with `video_url`, paginated."""
        filters = dict(self.query)
        docs, meta = await courses.list_page(self.db, filters, page=filters.pop("page"),
                                             limit=filters.pop("limit"), sort=filters.pop("sort"),
                                             staff=True)
        self.write_page(await courses.render_courses(self.db, docs, with_video=True), meta)

    @staff("courses.manage")
    @body(NewCourseBody)
    @responds(CourseOut, status=201)
    async def post(self) -> None:
        """Create a course: 201 with it. 422 for bad fields, an unknown instructor, or a
        price that disagrees with `is_free`."""
        doc = await courses.create(self.db, self.current_user, self.body)
        self.write_json((await courses.render_courses(self.db, [doc], with_video=True))[0], 201)


class AdminCourseHandler(ApiHandler):
    @staff("courses.manage")
    @body(CourseChanges)
    @responds(CourseOut)
    async def put(self, course_id: str) -> None:
        """Edit a course's fields (publish/unpublish with `is_published`). 404; 422."""
        doc = await courses.update(self.db, course_id, self.body, actor=self.current_user)
        self.write_json((await courses.render_courses(self.db, [doc], with_video=True))[0])

    @staff("courses.manage")
    @responds(status=204)
    async def delete(self, course_id: str) -> None:
        """Delete a course nobody is enrolled in. 204; 404; 409 COURSE_HAS_ENROLLMENTS."""
        await courses.delete(self.db, course_id, actor=self.current_user)
        self.no_content()


routes = [
    (r"/api/admin/bounties", AdminBountiesHandler),
    (r"/api/admin/bounties/([^/]+)", AdminBountyHandler),
    (r"/api/admin/courses", AdminCoursesHandler),
    (r"/api/admin/courses/([^/]+)", AdminCourseHandler),
]
