"""Admin site content (seed 001 §13 Testimonials, Slider, Emails, Settings; seed 000 §7).

Staff routes; the permission of each verb is in its decorator:
- testimonials (`content.manage`): `GET/POST /api/admin/testimonials`,
  `PUT/DELETE /api/admin/testimonials/{id}`, `PUT /api/admin/testimonials/{id}/approve`;
- slider (`content.manage`): `GET/POST /api/admin/slider`, `PUT/DELETE /api/admin/slider/{id}`;
- settings (`settings.manage`): `GET/PUT /api/admin/settings`;
- emails (`content.manage` for templates, `emails.send` for sending and history):
  `GET/POST /api/admin/emails/templates`, `PUT/DELETE /api/admin/emails/templates/{id}`,
  `POST /api/admin/emails/send`, `GET /api/admin/emails/history`;
- announcements (`content.manage`): `POST /api/admin/announcements`.

Sends and settings changes are written to the `admin_actions` audit log.
"""
from __future__ import annotations

from marshmallow import (
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from documents import content, email_admin, homepage, outbox
from documents.common import render
from documents.errors import Invalid
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff
from handlers.schemas import (
    TESTIMONIAL_ALIASES,
    absolute_file_urls,
    strip_strings,
    take_aliases,
    testimonial_out,
)
from handlers.schemas_content import (
    AnnouncementOut,
    EmailRecordOut,
    EmailsQueuedOut,
    EmailTemplateOut,
    SettingsOut,
    SlideOut,
    TestimonialOut,
)

ID = r"([^/]+)"
URL = validate.Regexp(r"^(https?://\S+|/(?!/)\S*)$",
                      error="Must be an http(s) URL or a path starting with /.")
OBJECT_ID = validate.Regexp(r"^[0-9a-fA-F]{24}$", error="Not a valid id.")



class Stripped(ApiSchema):
    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data)


class BlankDroppingQuery(PageQuery):
    @pre_load
    def _blank(self, data, **kwargs):
        return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data


# --------------------------------------------------------------------------- testimonials

class TestimonialBody(Stripped):
    """A testimonial's editable fields (all optional on update); seed 004's `author`,
    `company`, `text` and `featured` are taken for `author_name`, `author_title`, `content`
    and `is_featured`."""

    @pre_load
    def _seed_names(self, data, **kwargs):
        return take_aliases(data, TESTIMONIAL_ALIASES)

    author_name = fields.String(validate=validate.Length(min=1, max=100))
    author_title = fields.String(allow_none=True, validate=validate.Length(max=100))
    avatar_url = fields.String(allow_none=True, validate=[validate.Length(max=500), URL])
    content = fields.String(validate=validate.Length(min=1, max=2000))
    rating = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    user_id = fields.String(allow_none=True, validate=OBJECT_ID)
    is_approved = fields.Boolean()
    is_featured = fields.Boolean()
    order = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000))


class NewTestimonialBody(TestimonialBody):
    author_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    content = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    rating = fields.Integer(strict=True, load_default=5, validate=validate.Range(min=1, max=5))


class ApproveBody(ApiSchema):
    is_approved = fields.Boolean(load_default=True)


class TestimonialsQuery(BlankDroppingQuery):
    status = fields.String(validate=validate.OneOf(("approved", "pending")))
    search = fields.String(validate=validate.Length(max=100))


class AdminTestimonialsHandler(ApiHandler):
    @staff("content.manage")
    @query(TestimonialsQuery)
    @responds(TestimonialOut, paginated=True)
    async def get(self) -> None:
        """Every testimonial, newest first (seed 001 §13), filtered by `status`
        (approved|pending) and `search`; paginated."""
        q = self.query
        docs, meta = await homepage.list_testimonials(
            self.db, page=q["page"], limit=q["limit"], status=q.get("status"),
            search=q.get("search"))
        self.write_page([testimonial_out(render(d)) for d in docs], meta)

    @staff("content.manage")
    @body(NewTestimonialBody)
    @responds(TestimonialOut, status=201)
    async def post(self) -> None:
        """Create a testimonial (author_name, content required; rating 1–5, default 5;
        not approved unless `is_approved`). 201; 422 for bad fields or an unknown user_id."""
        self.write_json(testimonial_out(render(
            await homepage.create_testimonial(self.db, absolute_file_urls(self.body, self.settings_)))), 201)


class AdminTestimonialHandler(ApiHandler):
    @staff("content.manage")
    @body(TestimonialBody)
    @responds(TestimonialOut)
    async def put(self, testimonial_id: str) -> None:
        """Update a testimonial's fields; 404 unknown, 422 bad fields or nothing to update."""
        if not self.body:
            raise Invalid({"_schema": ["Nothing to update."]})
        doc = await homepage.update_testimonial(
            self.db, testimonial_id, absolute_file_urls(self.body, self.settings_))
        self.write_json(testimonial_out(render(doc)))

    @staff("content.manage")
    @responds(status=204)
    async def delete(self, testimonial_id: str) -> None:
        """Delete a testimonial; 204, or 404."""
        await homepage.delete_testimonial(self.db, testimonial_id)
        self.no_content()


class AdminTestimonialApproveHandler(ApiHandler):
    @staff("content.manage")
    @body(ApproveBody)
    @responds(TestimonialOut)
    async def put(self, testimonial_id: str) -> None:
        """Approve a testimonial (or withdraw approval with ``{"is_approved": false}``), so
        it shows (or stops showing) on `GET /api/testimonials`. 200 with it; 404."""
        doc = await homepage.approve_testimonial(self.db, testimonial_id, self.body["is_approved"])
        self.write_json(testimonial_out(render(doc)))


# --------------------------------------------------------------------------- slider

class SlideBody(Stripped):
    title = fields.String(validate=validate.Length(min=1, max=120))
    subtitle = fields.String(allow_none=True, validate=validate.Length(max=300))
    image_url = fields.String(validate=[validate.Length(max=500), URL])
    link_url = fields.String(allow_none=True, validate=[validate.Length(max=500), URL])
    cta_text = fields.String(allow_none=True, validate=validate.Length(max=40))
    order = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000))
    is_active = fields.Boolean()
    starts_at = fields.AwareDateTime(allow_none=True, default_timezone=None)
    ends_at = fields.AwareDateTime(allow_none=True, default_timezone=None)


class NewSlideBody(SlideBody):
    title = fields.String(required=True, validate=validate.Length(min=1, max=120))
    image_url = fields.String(required=True, validate=[validate.Length(max=500), URL])


class AdminSlidesHandler(ApiHandler):
    @staff("content.manage")
    @responds(SlideOut, items=True)
    async def get(self) -> None:
        """Every slide in display order (seed 001 §13 Slider): ``{"items": [...]}``."""
        self.write_json({"items": [render(s) for s in await homepage.list_slides(self.db)]})

    @staff("content.manage")
    @body(NewSlideBody)
    @responds(SlideOut, status=201)
    async def post(self) -> None:
        """Create a slide (title and image_url required; image_url from `POST
        /api/upload/image`). Times are ISO 8601 with a zone; 422 when ends_at ≤ starts_at."""
        slide = await homepage.create_slide(self.db, absolute_file_urls(self.body, self.settings_))
        self.write_json(render(slide), 201)


class AdminSlideHandler(ApiHandler):
    @staff("content.manage")
    @body(SlideBody)
    @responds(SlideOut)
    async def put(self, slide_id: str) -> None:
        """Update a slide; 404 unknown, 422 bad fields, inverted window or nothing to update."""
        if not self.body:
            raise Invalid({"_schema": ["Nothing to update."]})
        slide = await homepage.update_slide(self.db, slide_id,
                                            absolute_file_urls(self.body, self.settings_))
        self.write_json(render(slide))

    @staff("content.manage")
    @responds(status=204)
    async def delete(self, slide_id: str) -> None:
        """Delete a slide; 204, or 404."""
        await homepage.delete_slide(self.db, slide_id)
        self.no_content()


# --------------------------------------------------------------------------- settings

class SettingsBody(Stripped):
    """A partial update of the platform settings. `platform_fee_percent` is read-only: it
    may be sent back unchanged (7.5) and is ignored; any other value is a 422."""

    site_name = fields.String(validate=validate.Length(min=1, max=80))
    maintenance_mode = fields.Boolean()
    allow_registrations = fields.Boolean()
    max_upload_mb = fields.Integer(strict=True, validate=validate.Range(min=1, max=100_000))
    featured_categories = fields.List(fields.String(validate=validate.Length(min=1, max=60)),
                                      validate=validate.Length(max=20))
    support_email = fields.Email(validate=validate.Length(max=254))
    platform_fee_percent = fields.Float()

    @validates_schema
    def _read_only(self, data, **kwargs):
        fee = data.get("platform_fee_percent")
        if fee is not None and fee != content.platform_fee_percent():
            raise ValidationError(
                f"Read-only: the platform fee is {content.platform_fee_percent()}%.",
                "platform_fee_percent")
        if not set(data) - {"platform_fee_percent"}:
            raise ValidationError("Nothing to update.", "_schema")

    @post_load
    def _drop_read_only(self, data, **kwargs):
        data.pop("platform_fee_percent", None)
        return data


class AdminSettingsHandler(ApiHandler):
    @staff("settings.manage")
    @responds(SettingsOut)
    async def get(self) -> None:
        """The platform settings.

        Seed 001 §13: ``{id: "platform", site_name,
        maintenance_mode, allow_registrations, platform_fee_percent (7.5, read-only),
        max_upload_mb, featured_categories, support_email, updated_at, updated_by}``."""
        self.write_json(render(await content.get_settings(self.db, self.settings_)))

    @staff("settings.manage")
    @body(SettingsBody)
    @responds(SettingsOut)
    async def put(self) -> None:
        """Change some settings (partial update); 422 for unknown fields, bad values,
        unknown categories or max_upload_mb above the server's limit. 200 with all settings."""
        doc = await content.update_settings(self.db, self.settings_, self.body,
                                            self.current_user)
        self.write_json(render(doc))


# --------------------------------------------------------------------------- email templates

class TemplateBody(Stripped):
    name = fields.String(validate=validate.Length(min=1, max=100))
    subject = fields.String(validate=validate.Length(min=1, max=200))
    body = fields.String(validate=validate.Length(min=1, max=50_000))
    category = fields.String(validate=validate.OneOf(email_admin.TEMPLATE_CATEGORIES))


class NewTemplateBody(TemplateBody):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(required=True, validate=validate.Length(min=1, max=50_000))


class TemplatesQuery(BlankDroppingQuery):
    category = fields.String(validate=validate.OneOf(email_admin.TEMPLATE_CATEGORIES))


class AdminTemplatesHandler(ApiHandler):
    @staff("content.manage")
    @query(TemplatesQuery)
    @responds(EmailTemplateOut, paginated=True)
    async def get(self) -> None:
        """Email templates by name, with the `placeholders` each uses; paginated."""
        q = self.query
        docs, meta = await email_admin.list_templates(
            self.db, page=q["page"], limit=q["limit"], category=q.get("category"))
        self.write_page([email_admin.render_template(d) for d in docs], meta)

    @staff("content.manage")
    @body(NewTemplateBody)
    @responds(EmailTemplateOut, status=201)
    async def post(self) -> None:
        """Create a template: subject and body in Liquid (README "Emails"). Placeholders:
        {{username}}, {{full_name}}, {{email}}, {{site_name}} (422 for others); 422 naming
        the field and the error for Liquid that does not parse; 409 TEMPLATE_EXISTS for a
        taken name."""
        doc = await email_admin.create_template(self.db, self.body)
        self.write_json(email_admin.render_template(doc), 201)


class AdminTemplateHandler(ApiHandler):
    @staff("content.manage")
    @body(TemplateBody)
    @responds(EmailTemplateOut)
    async def put(self, template_id: str) -> None:
        """Update a template; 404, 409 TEMPLATE_EXISTS, 422."""
        if not self.body:
            raise Invalid({"_schema": ["Nothing to update."]})
        doc = await email_admin.update_template(self.db, template_id, self.body)
        self.write_json(email_admin.render_template(doc))

    @staff("content.manage")
    @responds(status=204)
    async def delete(self, template_id: str) -> None:
        """Delete a template; 204, or 404."""
        await email_admin.delete_template(self.db, template_id)
        self.no_content()


# --------------------------------------------------------------------------- sending

class SendEmailBody(Stripped):
    """Exactly one recipient (`user_id`, `email` or `segment`), and either `template_id` or
    `subject` and `body`. `category` defaults to the template's, else "marketing"."""

    user_id = fields.String(validate=validate.Length(min=1, max=64))
    email = fields.Email(validate=validate.Length(max=254))
    segment = fields.String(validate=validate.OneOf(content.SEGMENTS))
    template_id = fields.String(validate=validate.Length(min=1, max=64))
    subject = fields.String(validate=validate.Length(min=1, max=200))
    body = fields.String(validate=validate.Length(min=1, max=50_000))
    category = fields.String(validate=validate.OneOf(email_admin.TEMPLATE_CATEGORIES))

    @validates_schema
    def _shape(self, data, **kwargs):
        chosen = [k for k in ("user_id", "email", "segment") if k in data]
        if len(chosen) != 1:
            raise ValidationError("Give exactly one of user_id, email or segment.", "_schema")
        if "template_id" in data and ("subject" in data or "body" in data):
            raise ValidationError("Give template_id or subject and body, not both.", "_schema")
        if "template_id" not in data:
            missing = {k: ["Required without template_id."] for k in ("subject", "body")
                       if k not in data}
            if missing:
                raise ValidationError(missing)


class EmailHistoryQuery(BlankDroppingQuery):
    to = fields.String(validate=validate.Length(max=254))
    status = fields.String(validate=validate.OneOf(("sent", "failed")))
    category = fields.String(validate=validate.Length(max=50))


class SendEmailHandler(ApiHandler):
    @staff("emails.send")
    @body(SendEmailBody)
    @responds(EmailsQueuedOut)
    async def post(self) -> None:
        """Send an email to one user, one address or a segment of users.

        Seed 001 §13 "Send email": one user, one address or a segment
        ("all", "creators", "buyers"; at most 1,000 recipients, else 422 before anything is
        sent), through the mailer, which records each email in `emails` (see the history).
        Placeholders are filled per recipient; the emails are queued and go out in batches
        over one SMTP connection each. 200 ``{queued, recipients, email_ids}``;
        404 for an unknown user_id or template_id."""
        self.write_json(await email_admin.send_message(
            self.db, self.services.mailer, self.settings_, self.current_user, self.body))


class EmailHistoryHandler(ApiHandler):
    @staff("emails.send")
    @query(EmailHistoryQuery)
    @responds(EmailRecordOut, paginated=True)
    async def get(self) -> None:
        """Every email the mailer recorded, newest first (seed 001 §13 "View history"),
        filtered by `to`, `status` (sent|failed) and `category`; paginated. Verification and
        password-reset emails are listed without their text (`redacted: true`)."""
        q = self.query
        docs, meta = await outbox.email_history(
            self.db, page=q["page"], limit=q["limit"], to=q.get("to"), status=q.get("status"),
            category=q.get("category"))
        self.write_page([email_admin.render_email(d) for d in docs], meta)


# --------------------------------------------------------------------------- announcements

class AnnouncementBody(Stripped):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    message = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    target = fields.String(load_default="all", validate=validate.OneOf(content.SEGMENTS))
    action_url = fields.String(allow_none=True, validate=[validate.Length(max=500), URL])


class AnnouncementsHandler(ApiHandler):
    @staff("content.manage")
    @body(AnnouncementBody)
    @responds(AnnouncementOut, status=201)
    async def post(self) -> None:
        """Send an announcement notification to every user of a target group.

        Seed 000 §7: an `announcement` notification, stored and
        pushed live on `notifications:<user_id>`, for each user of `target` (all | creators |
        buyers; at most 5,000, else 422 before anything is written). 201 ``{id, title,
        message, target, action_url, recipient_count, count, created_by, created_at}``."""
        data = self.body
        doc = await content.announce(self.db, self.services.hub, self.current_user,
                                     title=data["title"], message=data["message"],
                                     target=data["target"], action_url=data.get("action_url"),
                                     mailer=self.services.mailer)
        self.write_json({**render(doc), "count": doc["recipient_count"]}, 201)


routes = [
    (r"/api/admin/testimonials", AdminTestimonialsHandler),
    (rf"/api/admin/testimonials/{ID}/approve", AdminTestimonialApproveHandler),
    (rf"/api/admin/testimonials/{ID}", AdminTestimonialHandler),
    (r"/api/admin/slider", AdminSlidesHandler),
    (rf"/api/admin/slider/{ID}", AdminSlideHandler),
    (r"/api/admin/settings", AdminSettingsHandler),
    (r"/api/admin/emails/templates", AdminTemplatesHandler),
    (rf"/api/admin/emails/templates/{ID}", AdminTemplateHandler),
    (r"/api/admin/emails/send", SendEmailHandler),
    (r"/api/admin/emails/history", EmailHistoryHandler),
    (r"/api/admin/announcements", AnnouncementsHandler),
]
