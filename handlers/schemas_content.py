"""Response shapes of the site content and its administration.

Like every response schema (`handlers.schemas_out`), each lists every field of its answer
and renders it (`handlers.rendering`).

- public pages: `TestimonialOut`, `SlideOut`, `PlatformStatsOut`, `HomepageOut`,
  `HelpCategoryOut`, `FaqListOut`, `DocsSectionOut`, `NewsletterOut`;
- administration: `SettingsOut`, `EmailTemplateOut`, `EmailRecordOut`, `EmailsQueuedOut`,
  `AnnouncementOut`, `JobsOut`.
"""
from __future__ import annotations

from marshmallow import fields

from handlers.schemas_money import RankedCreatorOut
from handlers.schemas_out import OpenOut


def _text() -> fields.String:
    return fields.String(allow_none=True)


class TestimonialOut(OpenOut):
    """``{id, author_name, author_title, avatar_url, content, rating, is_approved,
    is_featured, order, user_id, created_at, updated_at}``."""

    id = fields.String(required=True)
    author_name = fields.String()
    author_title = _text()
    avatar_url = _text()
    content = fields.String()
    rating = fields.Integer(allow_none=True)
    is_approved = fields.Boolean()
    is_featured = fields.Boolean()
    order = fields.Integer(allow_none=True)
    user_id = _text()
    created_at = _text()
    updated_at = _text()
    author = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    featured = fields.Boolean(allow_none=True)
    text = fields.String(allow_none=True)
    verified = fields.Boolean(allow_none=True)


class SlideOut(OpenOut):
    """``{id, title, subtitle, image_url, link_url, cta_text, order, is_active, starts_at,
    ends_at, created_at, updated_at}``."""

    id = fields.String(required=True)
    title = fields.String()
    subtitle = _text()
    image_url = _text()
    link_url = _text()
    cta_text = _text()
    order = fields.Integer(allow_none=True)
    is_active = fields.Boolean()
    starts_at = _text()
    ends_at = _text()
    created_at = _text()
    updated_at = _text()


class PlatformStatsOut(OpenOut):
    """``{total_users, total_creators, total_models, total_downloads, total_communities,
    total_categories}``."""

    total_users = fields.Integer()
    total_creators = fields.Integer()
    total_models = fields.Integer()
    total_downloads = fields.Integer()
    total_communities = fields.Integer()
    total_categories = fields.Integer()


class HomepageOut(OpenOut):
    """``{stats, featured_models, trending_models, top_creators, testimonials, slides}``."""

    stats = fields.Nested(PlatformStatsOut)
    featured_models = fields.List(fields.Dict())
    trending_models = fields.List(fields.Dict())
    top_creators = fields.List(fields.Nested(RankedCreatorOut))
    testimonials = fields.List(fields.Nested(TestimonialOut))
    slides = fields.List(fields.Nested(SlideOut))


class HelpCategoryOut(OpenOut):
    """``{slug, name, icon, description, order, faq_count}``."""

    slug = fields.String(required=True)
    name = fields.String()
    icon = _text()
    description = _text()
    order = fields.Integer()
    faq_count = fields.Integer()


class FaqOut(OpenOut):
    """``{id, category, question, answer, order}``."""

    id = fields.String(required=True)
    category = fields.String()
    question = fields.String()
    answer = fields.String()
    order = fields.Integer()


class FaqListOut(OpenOut):
    """``{items: [faq], total}``."""

    items = fields.List(fields.Nested(FaqOut), required=True)
    total = fields.Integer()


class DocsSectionOut(OpenOut):
    """``{slug, title, summary, order}``; one section also has its markdown `content`."""

    slug = fields.String(required=True)
    title = fields.String()
    summary = _text()
    order = fields.Integer()
    content = fields.String()


class NewsletterOut(OpenOut):
    """``{id, email, status, created_at}``."""

    id = fields.String(required=True)
    email = fields.String()
    status = fields.String()
    created_at = _text()
    updated_at = fields.String(allow_none=True)


class SettingsOut(OpenOut):
    """``{id: "platform", site_name, maintenance_mode, allow_registrations,
    platform_fee_percent, max_upload_mb, featured_categories, support_email, updated_at,
    updated_by}``."""

    id = fields.String()
    site_name = fields.String()
    maintenance_mode = fields.Boolean()
    allow_registrations = fields.Boolean()
    platform_fee_percent = fields.Float()
    max_upload_mb = fields.Integer()
    featured_categories = fields.List(fields.String())
    support_email = _text()
    updated_at = _text()
    updated_by = _text()


class EmailTemplateOut(OpenOut):
    """``{id, name, subject, body, category, placeholders, created_at, updated_at}``."""

    id = fields.String(required=True)
    name = fields.String()
    subject = fields.String()
    body = fields.String()
    category = _text()
    placeholders = fields.List(fields.String())
    created_at = _text()
    updated_at = _text()


class EmailRecordOut(OpenOut):
    """An email the mailer recorded: ``{id, to, subject, text, html, category, status,
    attempts, error, redacted, created_at, sent_at}``."""

    id = fields.String(required=True)
    to = fields.String()
    subject = _text()
    text = _text()
    html = _text()
    category = _text()
    status = fields.String()
    attempts = fields.Integer()
    error = _text()
    redacted = fields.Boolean()
    created_at = _text()
    sent_at = _text()
    headers = fields.Dict(allow_none=True)
    sent_by = fields.String(allow_none=True)
    ticket_id = fields.String(allow_none=True)


class EmailsQueuedOut(OpenOut):
    """``{queued, recipients, email_ids}``."""

    queued = fields.Integer()
    recipients = fields.Integer()
    email_ids = fields.List(fields.String())


class AnnouncementOut(OpenOut):
    """``{id, title, message, target, action_url, recipient_count, count, created_by,
    created_at}``."""

    id = fields.String(required=True)
    title = fields.String()
    message = fields.String()
    target = fields.String()
    action_url = _text()
    recipient_count = fields.Integer()
    count = fields.Integer()
    created_by = _text()
    created_at = _text()


class DeadLetterOut(OpenOut):
    """``{function, key, kwargs, attempts, error, failed_at}`` (unix seconds)."""

    function = fields.String()
    key = _text()
    kwargs = fields.Dict(allow_none=True)
    attempts = fields.Integer(allow_none=True)
    error = _text()
    failed_at = fields.Float(allow_none=True)


class JobsOut(OpenOut):
    """``{queue: {queued, active, scheduled}, dead_letters: [...]}``."""

    queue = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    dead_letters = fields.List(fields.Nested(DeadLetterOut))
