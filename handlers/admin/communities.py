"""Community management and content reports for staff (seed 000 §7, seed 001 §13 "Community
Management").

    GET/POST       /api/admin/communities                every status (filters) / create
                                                          (active at once)
    GET/PUT/DELETE /api/admin/communities/{id}           details / edit (also `status`) / delete
    PUT            /api/admin/communities/{id}/approve   pending → active (409 otherwise)
    GET            /api/admin/reports                    content reports (status, content_type)
    PUT            /api/admin/reports/{id}/resolve       `action` remove|dismiss, `notes`

Community routes need `communities.moderate`, report routes `reports.resolve`. Each change
is recorded in the admin action log.
"""
from __future__ import annotations

from marshmallow import fields, validate

from documents import admin_actions, communities, community_staff, reports
from handlers.base import ApiSchema, PageQuery, body, query, responds, staff
from handlers.communities import (
    CommunityBase,
    CommunityChangesBody,
    CommunityOut,
    NewCommunityBody,
)

COMMUNITY_ID = r"(?P<community_id>[^/]+)"


# --------------------------------------------------------------------------- schemas

class AdminCommunityQuery(PageQuery):
    """`status` pending|active|suspended|all (default all), `search`, `category`, `sort`
    newest (default)|popular|name."""

    status = fields.String(load_default="all",
                           validate=validate.OneOf(communities.STATUSES + ("all",)))
    search = fields.String(validate=validate.Length(max=100))
    category = fields.String(validate=validate.Length(max=50))
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(communities.SORTS)))


class AdminCommunityChangesBody(CommunityChangesBody):
    """Any field of a community, plus `status` (active or suspended; pending → active goes
    through approve)."""

    status = fields.String(validate=validate.OneOf(("active", "suspended")))


class AdminCommunityOut(CommunityOut):
    pending_requests = fields.Integer()
    pending_reports = fields.Integer()
    recent_actions = fields.List(fields.Dict())
    approved_at = fields.String(allow_none=True)
    approved_by = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    creator_id = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class ContentReportQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(reports.STATUSES))
    content_type = fields.String(validate=validate.OneOf(reports.CONTENT_TYPES))


class ResolveReportBody(ApiSchema):
    """`action` remove (hide the content) or dismiss; `notes` ≤ 1000 characters."""

    action = fields.String(required=True, validate=validate.OneOf(reports.ACTIONS))
    notes = fields.String(allow_none=True, validate=validate.Length(max=reports.MAX_NOTES))


class AdminContentReportOut(ApiSchema):
    id = fields.String()
    reporter = fields.Dict()
    content_type = fields.String()
    content_id = fields.String()
    community_id = fields.String(allow_none=True)
    reason = fields.String()
    details = fields.String(allow_none=True)
    status = fields.String()
    action = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    resolver = fields.Dict(allow_none=True)
    resolved_at = fields.String(allow_none=True)
    content = fields.Dict(allow_none=True)
    created_at = fields.String()
    post_id = fields.String(allow_none=True)
    reporter_id = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)


# --------------------------------------------------------------------------- communities

class AdminCommunitiesHandler(CommunityBase):
    @staff(communities.MODERATE)
    @query(AdminCommunityQuery)
    @responds(AdminCommunityOut, paginated=True)
    async def get(self) -> None:
        """Every community (seed 001 §13: `status` all|pending|active|suspended), newest
        first, with search and category."""
        q = self.query
        docs, meta = await communities.list_page(
            self.db, self.current_user, page=q["page"], limit=q["limit"],
            search=q.get("search"), category=q.get("category"),
            status=None if q["status"] == "all" else q["status"], sort=q["sort"],
            staff_view=True)
        self.write_page(await communities.render_many(self.db, docs, self.current_user), meta)

    @staff(communities.MODERATE)
    @body(NewCommunityBody)
    @responds(AdminCommunityOut, status=201)
    async def post(self) -> None:
        """Create a community that is active at once, with the caller as its admin. 409
        COMMUNITY_NAME_TAKEN."""
        doc = await community_staff.create(self.db, self.current_user, self.body)
        await self.reply_community(doc, 201)


class AdminCommunityHandler(CommunityBase):
    async def reply_details(self, community: dict) -> None:
        out = await communities.render_one(self.db, community, self.current_user)
        out["pending_requests"] = await communities.count_pending_requests(self.db, community["_id"])
        out["pending_reports"] = await reports.count_pending(self.db, community_id=community["_id"])
        out["recent_actions"] = await admin_actions.recent_for(self.db, "community",
                                                               community["_id"])
        self.write_json(out)

    @staff(communities.MODERATE)
    @responds(AdminCommunityOut)
    async def get(self, community_id: str) -> None:
        """One community, any status, with its pending join requests and reports counts."""
        await self.reply_details(await communities.require(self.db, community_id))

    @staff(communities.MODERATE)
    @body(AdminCommunityChangesBody)
    @responds(AdminCommunityOut)
    async def put(self, community_id: str) -> None:
        """Edit any field, or suspend/reactivate (`status`). 409 COMMUNITY_NAME_TAKEN;
        a pending community is activated through approve (409 COMMUNITY_NOT_PENDING there)."""
        await self.reply_details(await community_staff.update(
            self.db, self.current_user, community_id, self.body))

    @staff(communities.MODERATE)
    @responds(None, status=204)
    async def delete(self, community_id: str) -> None:
        """Delete a community with its members, posts and chat. 204."""
        await community_staff.remove(self.db, self.current_user, community_id)
        self.no_content()


class AdminApproveCommunityHandler(CommunityBase):
    @staff(communities.MODERATE)
    @responds(AdminCommunityOut)
    async def put(self, community_id: str) -> None:
        """Approve a pending community (conditional; 409 COMMUNITY_NOT_PENDING otherwise);
        its creator is notified."""
        doc = await communities.approve(self.db, self.services.hub, community_id,
                                        self.current_user)
        await self.reply_community(doc)


# --------------------------------------------------------------------------- reports

class AdminReportsHandler(CommunityBase):
    @staff(reports.PERMISSION)
    @query(ContentReportQuery)
    @responds(AdminContentReportOut, paginated=True)
    async def get(self) -> None:
        """Content reports, newest first (seed 000 §7), filtered by `status` and
        `content_type`, each with the reporter and a preview of the content."""
        items, meta = await reports.list_page(
            self.db, page=self.query["page"], limit=self.query["limit"],
            status=self.query.get("status"), content_type=self.query.get("content_type"))
        self.write_page(items, meta)


class AdminResolveReportHandler(CommunityBase):
    @staff(reports.PERMISSION)
    @body(ResolveReportBody)
    @responds(AdminContentReportOut)
    async def put(self, report_id: str) -> None:
        """Resolve a pending report (seed 000 §7): `remove` hides the content and resolves
        every pending report of it; `dismiss` closes this one. 409 REPORT_NOT_PENDING."""
        report = await reports.resolve(self.db, report_id, self.current_user,
                                       self.body["action"], self.body.get("notes"))
        self.write_json(report)


routes = [
    (r"/api/admin/communities", AdminCommunitiesHandler),
    (rf"/api/admin/communities/{COMMUNITY_ID}", AdminCommunityHandler),
    (rf"/api/admin/communities/{COMMUNITY_ID}/approve", AdminApproveCommunityHandler),
    (r"/api/admin/reports", AdminReportsHandler),
    (r"/api/admin/reports/(?P<report_id>[^/]+)/resolve", AdminResolveReportHandler),
]
