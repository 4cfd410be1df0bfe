"""Emails that staff write (seed 001 §13 "Email Management"): templates, sending to a user,
an address or a segment, and the history of every email the mailer recorded.

Documents::

    email_templates {_id, name (unique, case-insensitive via name_lower), subject, body
                     (Liquid, README "Emails": placeholders {{username}}, {{full_name}},
                     {{email}}, {{site_name}}), category, created_at, updated_at}
    emails           the outbox of `documents.outbox` (written there; read here)

Recipients follow the rules of `documents.content` (live users, segments); one send reaches
at most EMAIL_RECIPIENT_CAP users; each send is recorded as the admin action `emails_sent`.
Templates render through the sandboxed Liquid of
`documents.emails`; one that does not parse is refused with 422 naming the error.
"""
from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import admin_actions, emails, users
from documents.common import (
    delete_by_id,
    get_by_id,
    paginate,
    render,
    require_id,
    update_by_id,
    utcnow,
)
from documents.content import get_settings, segment_users
from documents.errors import Conflict, Invalid, NotFound

TEMPLATES = "email_templates"
INDEXES = {TEMPLATES: [IndexModel([("name_lower", ASCENDING)], unique=True)]}

EMAIL_RECIPIENT_CAP = 1000
TEMPLATE_CATEGORIES = ("marketing", "announcement", "newsletter", "transactional", "system")
PLACEHOLDERS = ("username", "full_name", "email", "site_name")
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def placeholders_in(*texts: str | None) -> list[str]:
    """The placeholder names used in `texts` (``{{ name }}``), in order of first use."""
    found: list[str] = []
    for text in texts:
        for name in PLACEHOLDER_RE.findall(text or ""):
            if name not in found:
                found.append(name)
    return found


def check_placeholders(**texts: str | None) -> None:
    """Raise Invalid (422) naming each field that uses a placeholder outside PLACEHOLDERS
    or whose Liquid does not work (`documents.emails.check_admin_template`)."""
    errors = {}
    for field, text in texts.items():
        unknown = [n for n in placeholders_in(text) if n not in PLACEHOLDERS]
        if unknown:
            errors[field] = [(f"Unknown placeholder(s): {', '.join(unknown)}; "
                              f"allowed: {', '.join(PLACEHOLDERS)}.")]
    if errors:
        raise Invalid(errors)
    emails.check_admin_template(**texts)  # Liquid that does not parse: 422 naming the error


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
        return await update_by_id(db, TEMPLATES, template_id, changes, "Template")
    except DuplicateKeyError:
        raise Conflict("A template with this name exists", "TEMPLATE_EXISTS") from None


async def get_template(db, template_id: Any) -> dict:
    """The template `template_id`; NotFound (404)."""
    return await get_by_id(db, TEMPLATES, template_id, "Template")


async def delete_template(db, template_id: Any) -> None:
    """Remove a template; NotFound (404)."""
    await delete_by_id(db, TEMPLATES, template_id, "Template")


async def list_templates(db, *, page: int, limit: int,
                         category: str | None = None) -> tuple[list[dict], dict]:
    """One page of templates by name."""
    query = {"category": category} if category else {}
    return await paginate(db[TEMPLATES], query, page=page, limit=limit,
                          sort=[("name_lower", ASCENDING)])



# --------------------------------------------------------------------------- sending

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
    """Queue one email per recipient through `mailer.send_many` (recorded in `emails`,
    delivered by the job queue in batches over one SMTP connection each), the Liquid of
    `subject` and `body` rendered per recipient (`documents.emails`). A marketing,
    announcement or newsletter email skips users who turned emails off and carries the
    unsubscribe link. Returns ``{queued, recipients, email_ids}``."""
    optional, out = category in emails.OPTIONAL_CATEGORIES, []
    for person in recipients:
        if optional and person.get("email_notifications", True) is False:
            continue
        values = {"username": person.get("username"), "full_name": person.get("full_name"),
                  "email": person.get("email"), "site_name": site_name}
        made = mailer.renderer.render_admin(subject, body, values, optional=optional)
        out.append({"to": person["email"], "subject": made.subject, "text": made.text,
                    "html": made.html, "headers": emails.unsubscribe_headers(
                        mailer.renderer, not optional)})
    records = await mailer.send_many(out, category)
    return {"queued": len(records), "recipients": len(recipients),
            "email_ids": [str(r["_id"]) for r in records]}


async def send_message(db, mailer, server_settings, admin: dict, data: dict) -> dict:
    """Send an email that staff wrote (seed 001 §13 "Send email") and record it.

    `data`: exactly one of `user_id`, `email` or `segment` (see `email_recipients`), and
    either `template_id` or `subject` and `body`; `category` defaults to the template's,
    else "marketing". Placeholders are checked (Invalid 422) before anything is sent, the
    site name comes from the platform settings, the emails are queued by `send_emails`,
    then the admin action `emails_sent` ``{recipients, subject, segment, template_id}`` is
    recorded (a failure is logged). Returns ``{queued, recipients, email_ids}``. Raises
    NotFound for an unknown `template_id` or `user_id`, Invalid past EMAIL_RECIPIENT_CAP.
    """
    if "template_id" in data:
        template = await get_template(db, data["template_id"])
        subject, body = template["subject"], template["body"]
        category = data.get("category") or template.get("category") or "marketing"
    else:
        subject, body = data["subject"], data["body"]
        category = data.get("category") or "marketing"
    check_placeholders(subject=subject, body=body)
    recipients = await email_recipients(db, user_id=data.get("user_id"),
                                        email=data.get("email"), segment=data.get("segment"))
    site = await get_settings(db, server_settings)
    result = await send_emails(mailer, recipients, subject=subject, body=body,
                               category=category, site_name=site["site_name"])
    await admin_actions.record_after(
        db, admin, "emails_sent", "email", None,
        {"recipients": result["recipients"], "subject": subject[:200],
         "segment": data.get("segment"), "template_id": data.get("template_id")})
    return result


SECRET_EMAIL_CATEGORIES = ("verification", "password_reset")


def render_email(doc: dict) -> dict:
    """An `emails` record in API form. Emails that carry a secret (verification codes,
    password-reset links: SECRET_EMAIL_CATEGORIES) never show their text or HTML here, even
    when the embedded outbox kept them, so that the history cannot take over an account."""
    out = render({k: v for k, v in doc.items() if k != "redact_when_done"})
    if doc.get("redacted") or doc.get("category") in SECRET_EMAIL_CATEGORIES:
        out.update(text=None, html=None, redacted=True)
    return out
