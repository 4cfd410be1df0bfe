"""Support routes: users' tickets (seed 000 §6, seed 001 §9) and staff's support desk
(seed 001 §13 "Support Management"). The rules live in `documents.support`.

A ticket that is not the caller's is a 404 to non-staff (it does not exist for them); staff
need the `support.manage` permission.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from documents import support
from documents.common import omit, render
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff
from handlers.schemas_content import EmailRecordOut
from handlers.schemas_out import TicketMessageOut, TicketOut, TicketPageOut

PERMISSION = support.PERMISSION
_TEXT = fields.String  # short alias for schema declarations


class CreateTicketSchema(ApiSchema):
    subject = _TEXT(required=True, validate=validate.Length(min=3, max=200))
    category = _TEXT(required=True, validate=validate.OneOf(support.CATEGORIES))
    priority = _TEXT(load_default="medium", validate=validate.OneOf(support.PRIORITIES))
    message = _TEXT(required=True, validate=validate.Length(min=1, max=support.MAX_CONTENT + 100))
    attachments = fields.List(_TEXT(), load_default=list,
                              validate=validate.Length(max=support.MAX_ATTACHMENTS))


class MessageSchema(ApiSchema):
    content = _TEXT(required=True, validate=validate.Length(min=1, max=support.MAX_CONTENT + 100))
    attachments = fields.List(_TEXT(), load_default=list,
                              validate=validate.Length(max=support.MAX_ATTACHMENTS))


class StatusSchema(ApiSchema):
    status = _TEXT(required=True, validate=validate.OneOf(support.STATUSES))


class AssignSchema(ApiSchema):
    assigned_to = _TEXT(allow_none=True, validate=validate.Length(max=100))
    assignee_id = _TEXT(allow_none=True, validate=validate.Length(max=24))

    @validates_schema
    def _one_of(self, data, **_):
        if "assigned_to" not in data and "assignee_id" not in data:
            raise ValidationError("Give assigned_to and/or assignee_id.", "_schema")


class EmailSchema(ApiSchema):
    subject = _TEXT(required=True, validate=validate.Length(min=1, max=200))
    message = _TEXT(required=True, validate=validate.Length(min=1, max=20_000))


class OwnTicketsQuery(PageQuery):
    status = _TEXT(validate=validate.OneOf(support.STATUSES))


class StaffTicketsQuery(PageQuery):
    status = _TEXT(validate=validate.OneOf(support.STATUSES))
    priority = _TEXT(validate=validate.OneOf(support.PRIORITIES))
    category = _TEXT(validate=validate.OneOf(support.CATEGORIES))
    assignee = _TEXT(validate=validate.Length(min=1, max=100))
    search = _TEXT(validate=validate.Length(max=100))


class _TicketHandler(ApiHandler):
    """Shared lookups: the ticket the caller may access, rendered for the caller."""

    async def ticket(self, ticket_id: str) -> dict:
        return await support.ticket_for(self.db, ticket_id, self.require_user())

    def staff_view(self) -> bool:
        return support.is_support_staff(self.current_user)

    async def write_ticket(self, ticket: dict, status: int = 200) -> None:
        rendered = await support.render_tickets(self.db, [ticket], staff_view=self.staff_view())
        self.write_json(rendered[0], status)


class TicketsHandler(_TicketHandler):
    @query(OwnTicketsQuery)
    @responds(TicketOut, paginated=True)
    async def get(self) -> None:
        """The caller's tickets, latest activity first (seed 000 §6); filter `status`."""
        q = self.query
        docs, meta = await support.list_own(self.db, self.current_user["_id"],
                                            status=q.get("status"), page=q["page"],
                                            limit=q["limit"])
        self.write_page(await support.render_tickets(self.db, docs), meta)

    @body(CreateTicketSchema)
    @responds(TicketOut, status=201)
    async def post(self) -> None:
        """Open a ticket with its first message: 201 with the ticket and ``messages: [first]``.

        422 on bad subject, category (Payment|Technical|Account|Refund|Other), priority,
        empty/oversized message or foreign attachments (seed 000 §6).
        """
        b = self.body
        ticket, first = await support.create_ticket(
            self.db, self.services.hub, self.current_user, subject=b["subject"],
            category=b["category"], priority=b["priority"], message=b["message"],
            attachments=b["attachments"], settings=self.settings_)
        out = support.render_ticket(ticket, self.current_user)
        out["messages"] = [first]
        self.write_json(out, 201)


class TicketHandler(_TicketHandler):
    @responds(TicketOut)
    async def get(self, ticket_id: str) -> None:
        """The ticket with its messages, oldest first (owner or support staff; else 404)."""
        ticket = await self.ticket(ticket_id)
        self.write_json(await support.ticket_detail(self.db, ticket, staff_view=self.staff_view()))


class TicketMessagesHandler(_TicketHandler):
    @body(MessageSchema)
    @responds(TicketMessageOut, status=201)
    async def post(self, ticket_id: str) -> None:
        """Add a message (owner or support staff): 201 with the message; publishes
        `message_received` on ``support:<id>`` (seed 000 §6)."""
        ticket = await self.ticket(ticket_id)
        message = await support.add_message(
            self.db, self.services.hub, ticket, self.current_user, self.body["content"],
            self.body["attachments"], settings=self.settings_, mailer=self.services.mailer)
        self.write_json(message, 201)


class StaffTicketMessagesHandler(TicketMessagesHandler):
    @staff(PERMISSION)
    @body(MessageSchema)
    @responds(TicketMessageOut, status=201)
    async def post(self, ticket_id: str) -> None:
        """Staff reply (seed 001 §13): as the user route; a pending ticket becomes active and
        the owner gets a `ticket_reply` notification."""
        await super().post(ticket_id)


class TicketReadHandler(_TicketHandler):
    @responds(TicketOut)
    async def put(self, ticket_id: str) -> None:
        """The caller (owner or support staff) has read the ticket: 200 with the ticket,
        `unread_count` 0 for the caller's side; the owner's `ticket_reply` notifications of
        it are marked read too. 404 for a ticket the caller may not access. The same as a
        `read` frame on ``/ws/support/{id}``."""
        ticket = await support.mark_read(self.db, ticket_id, self.require_user())
        await self.write_ticket(ticket)


class StaffTicketReadHandler(TicketReadHandler):
    @staff(PERMISSION)
    @responds(TicketOut)
    async def put(self, ticket_id: str) -> None:
        """Staff have read the ticket: as ``PUT /api/support/tickets/{id}/read``."""
        await super().put(ticket_id)


class TicketStatusHandler(_TicketHandler):
    @staff(PERMISSION)
    @body(StatusSchema)
    @responds(TicketOut)
    async def put(self, ticket_id: str) -> None:
        """Move the ticket's status (staff): pending → active → resolved, resolved → active.

        409 INVALID_STATUS_TRANSITION otherwise, also for the loser of two racing updates.
        Publishes `ticket_status_changed` and emails the owner.
        """
        ticket = await self.ticket(ticket_id)
        updated = await support.set_status(self.db, self.services.hub, ticket, self.body["status"],
                                           mailer=self.services.mailer)
        await self.write_ticket(updated)


class TicketAssignHandler(_TicketHandler):
    @staff(PERMISSION)
    @body(AssignSchema)
    @responds(TicketOut)
    async def put(self, ticket_id: str) -> None:
        """Assign the ticket (staff): `assigned_to` team name and/or `assignee_id` of a
        support staff user; null clears. 422 when `assignee_id` is not support staff."""
        ticket = await self.ticket(ticket_id)
        await self.write_ticket(await support.assign(self.db, ticket, self.body))


class StaffTicketsHandler(_TicketHandler):
    @staff(PERMISSION)
    @query(StaffTicketsQuery)
    @responds(TicketPageOut)
    async def get(self) -> None:
        """Every ticket for the support desk, latest activity first, with its status counts.

        Filters status, priority, category,
        assignee ("me", "unassigned", staff id or team name) and search (subject); the body
        adds ``status_counts`` for the desk's tabs (seed 001 §13)."""
        q = self.query
        docs, meta = await support.list_all(self.db, self.current_user, filters=q,
                                            page=q["page"], limit=q["limit"])
        items = await support.render_tickets(self.db, docs, staff_view=True)
        self.write_page(items, meta, status_counts=await support.status_counts(self.db))


class StaffTicketHandler(TicketHandler):
    @staff(PERMISSION)
    @responds(TicketOut)
    async def get(self, ticket_id: str) -> None:
        """The ticket with its messages and the owner's email (staff)."""
        await super().get(ticket_id)


class StaffTicketEmailHandler(_TicketHandler):
    @staff(PERMISSION)
    @body(EmailSchema)
    @responds(EmailRecordOut)
    async def post(self, ticket_id: str) -> None:
        """Email the ticket's owner through the job queue.

        Seed 001 §13 "Email user": 200 with the email record
        (`emails` collection), status "queued": the job queue delivers it with retries
        (status "sent", or "failed" after the last try, in the email history)."""
        ticket = await self.ticket(ticket_id)
        record = await support.record_email(self.db, self.services.mailer, ticket,
                                            self.current_user, self.body["subject"],
                                            self.body["message"])
        self.write_json(render(omit(record, ("redact_when_done",))))


_ID = r"([^/]+)"
routes = [
    (r"/api/support/tickets", TicketsHandler),
    (rf"/api/support/tickets/{_ID}", TicketHandler),
    (rf"/api/support/tickets/{_ID}/messages", TicketMessagesHandler),
    (rf"/api/support/tickets/{_ID}/read", TicketReadHandler),
    (rf"/api/support/tickets/{_ID}/status", TicketStatusHandler),
    (rf"/api/support/tickets/{_ID}/assign", TicketAssignHandler),
    (r"/api/admin/support/tickets", StaffTicketsHandler),
    (rf"/api/admin/support/tickets/{_ID}", StaffTicketHandler),
    (rf"/api/admin/support/tickets/{_ID}/messages", StaffTicketMessagesHandler),
    (rf"/api/admin/support/tickets/{_ID}/read", StaffTicketReadHandler),
    (rf"/api/admin/support/tickets/{_ID}/status", TicketStatusHandler),
    (rf"/api/admin/support/tickets/{_ID}/assign", TicketAssignHandler),
    (rf"/api/admin/support/tickets/{_ID}/email", StaffTicketEmailHandler),
]
