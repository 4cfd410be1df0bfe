"""Every email of the product, rendered from Liquid templates (README "Emails").

Each kind of email (KINDS) has one file `documents/email_templates/<kind>.liquid` with three
parts, each after a line `--- subject`, `--- text` or `--- html`: a Liquid template of the
subject, of the plain-text body, and of an MJML fragment that goes into
`_layout.mjml` (the responsive frame: header, content, footer with the unsubscribe link). The
MJML of each kind is compiled to HTML once, when the renderer is built, with its Liquid tags
kept; the compiled HTML is then parsed as a Liquid template and cached, so an email costs one
Liquid render per part and no MJML compile. Liquid (python-liquid) cannot run code, and the
environment of admin-written templates (seed 001 §13, `documents.email_admin`) has no loader (no
file access) and output and loop limits.

Every link is built by `EmailRenderer.link`: `FRONTEND_URL` + a route of README "Frontend
routes that emails link to" (the suite parses that list). Emails of a non-transactional kind
(KINDS[kind][1] is False: new follower, new comment, announcement, admin marketing sends)
are not sent to a user whose `email_notifications` is false, and carry an unsubscribe link
to the settings page and a `List-Unsubscribe` header. Transactional emails (account security,
receipts, sales, moderation outcomes, support, payouts, billing) always go out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from liquid import DictLoader, Environment
from liquid.exceptions import LiquidError
from mjml import mjml2html

from config import Settings
from documents.errors import Invalid

TEMPLATES_DIR = Path(__file__).with_name("email_templates")
SETTINGS_ROUTE = "/dashboard/settings"
SITE_NAME = "HWC3D"

# kind: (outbox category, transactional)
KINDS = {
    "verify_email": ("verification", True),
    "welcome": ("account", True),
    "password_reset": ("password_reset", True),
    "admin_password_reset": ("password_reset", True),
    "order_confirmation": ("purchase", True),
    "sale_made": ("sales", True),
    "model_approved": ("moderation", True),
    "model_rejected": ("moderation", True),
    "support_reply": ("support", True),
    "support_status": ("support", True),
    "support_message": ("support", True),
    "payout_approved": ("earnings", True),
    "payout_paid": ("earnings", True),
    "payout_rejected": ("earnings", True),
    "funds_available": ("earnings", True),
    "billing": ("billing", True),
    "new_follower": ("social", False),
    "new_comment": ("social", False),
    "announcement": ("announcement", False),
    "admin_message": ("marketing", False),
}
# categories of admin sends (`documents.email_admin.TEMPLATE_CATEGORIES`) that a user may opt out of
OPTIONAL_CATEGORIES = ("marketing", "announcement", "newsletter")


class SandboxEnvironment(Environment):
    """Liquid for templates that admins write: no loader, bounded loops and output."""

    loop_iteration_limit = 10_000
    output_stream_limit = 200_000
    context_depth_limit = 30


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def wants(user: dict | None, transactional: bool) -> bool:
    """Whether `user` gets an email of this kind: always when `transactional`, else unless
    they turned `email_notifications` off (PUT /api/users/me)."""
    return transactional or (user or {}).get("email_notifications", True) is not False


class EmailRenderer:
    """Renders every kind of KINDS (compiled at construction; a broken template file stops
    start-up) and admin-written templates. Built by `documents.outbox.Mailer`."""

    def __init__(self, settings: Settings, directory: Path = TEMPLATES_DIR):
        self.frontend_url = settings.frontend_url.rstrip("/")
        self.text_env = Environment(loader=DictLoader({}))
        self.html_env = Environment(loader=DictLoader({}), autoescape=True)
        self.sandbox = SandboxEnvironment(loader=DictLoader({}))
        layout = (directory / "_layout.mjml").read_text()
        self.templates = {}
        for kind in KINDS:
            parts = _parts((directory / f"{kind}.liquid").read_text(), kind)
            html = mjml2html(layout.replace("<!-- content -->", parts["html"]))
            self.templates[kind] = (self.text_env.from_string(parts["subject"].strip()),
                                    self.text_env.from_string(parts["text"]),
                                    self.html_env.from_string(html))

    def link(self, route: str, **query) -> str:
        """``FRONTEND_URL + route`` (a README-listed route, e.g. "/verify-email") with the
        non-empty `query` parameters, e.g. ``link("/reset-password", token=t)``."""
        params = {k: v for k, v in query.items() if v not in (None, "")}
        return self.frontend_url + route + (f"?{urlencode(params)}" if params else "")

    def context(self, kind: str, user: dict | None, values: dict) -> dict:
        """What every template sees beside `values`: site_name, name (full name or
        username), username, settings_url, and unsubscribe_url for a non-transactional kind."""
        user = user or {}
        out = {"site_name": SITE_NAME, "username": user.get("username") or "",
               "name": user.get("full_name") or user.get("username") or "there",
               "settings_url": self.link(SETTINGS_ROUTE), "unsubscribe_url": None, **values}
        if not KINDS[kind][1]:
            out["unsubscribe_url"] = self.link(SETTINGS_ROUTE)
        return out

    def render(self, kind: str, user: dict | None, values: dict) -> Rendered:
        """Subject (one line, at most 300 characters), text and HTML of `kind` for `user`."""
        subject, text, html = self.templates[kind]
        context = self.context(kind, user, values)
        return Rendered(" ".join(subject.render(**context).split())[:300],
                        text.render(**context).strip() + "\n", html.render(**context))

    def render_admin(self, subject: str, body: str, values: dict, *,
                     optional: bool) -> Rendered:
        """An admin-written email (seed 001 §13): `subject` and `body` are Liquid templates
        of the sandbox filled with `values` (username, full_name, email, site_name), wrapped
        in the `admin_message` layout; with the unsubscribe link when `optional`. Raises
        Invalid (422) naming the field whose template fails."""
        filled = {}
        for field, source in (("subject", subject), ("body", body)):
            try:
                filled[field] = self.sandbox.from_string(source).render(**values)
            except LiquidError as exc:
                raise Invalid({field: [_problem(exc)]}) from None
        context = self.context("admin_message", values, {
            "subject": filled["subject"], "body": filled["body"].strip()})
        if not optional:
            context["unsubscribe_url"] = None
        _, text, html = self.templates["admin_message"]
        return Rendered(" ".join(filled["subject"].split())[:300],
                        text.render(**context).strip() + "\n", html.render(**context))



def check_admin_template(**sources: str | None) -> None:
    """Raise Invalid (422) naming each field whose Liquid (an admin-written template, seed
    001 §13) does not parse or fails on sample values (an unknown filter, a loop past the
    limit), e.g. ``{"body": ["The template does not work: expected tag endif, ..."]}``."""
    errors = {}
    sandbox = SandboxEnvironment(loader=DictLoader({}))
    sample = {"username": "user", "full_name": "User", "email": "user@example.com",
              "site_name": SITE_NAME}
    for field, source in sources.items():
        if source is None:
            continue
        try:
            sandbox.from_string(source).render(**sample)
        except LiquidError as exc:
            errors[field] = [_problem(exc)]
    if errors:
        raise Invalid(errors)


def _problem(exc: LiquidError) -> str:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"The template does not work: {first}"


def _parts(source: str, kind: str) -> dict:
    parts, name = {}, None
    for line in source.splitlines(keepends=True):
        if line.startswith("--- "):
            name = line[4:].strip()
            parts[name] = ""
        elif name is not None:
            parts[name] += line
    missing = {"subject", "text", "html"} - parts.keys()
    if missing:
        raise ValueError(f"email template {kind} lacks {', '.join(sorted(missing))}")
    return parts


async def send(mailer, kind: str, user: dict | None, values: dict, *,
               sensitive: bool = False) -> dict | None:
    """Render `kind` for `user` ({email, username, full_name, email_notifications?}) with
    `values` and record it in the outbox (`Mailer.send`); returns the record, or None when
    the user has no address or opted out of a non-transactional kind."""
    category, transactional = KINDS[kind]
    if mailer is None or not user or not user.get("email") or not wants(user, transactional):
        return None
    rendered = mailer.renderer.render(kind, user, values)
    return await mailer.send(user["email"], rendered.subject, rendered.text, rendered.html,
                             category=category, sensitive=sensitive,
                             headers=unsubscribe_headers(mailer.renderer, transactional))


def unsubscribe_headers(renderer: EmailRenderer, transactional: bool) -> dict | None:
    """``List-Unsubscribe`` pointing at the settings page, for a non-transactional email."""
    return None if transactional else {"List-Unsubscribe": f"<{renderer.link(SETTINGS_ROUTE)}>"}
