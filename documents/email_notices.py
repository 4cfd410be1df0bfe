"""The product's emails, one function per occasion (README "Emails"): each builds the
values and the absolute links of its kind (`documents.emails`, routes of README "Frontend
routes that emails link to") and records the email through the mailer's outbox
(`documents.outbox.Mailer`). Each returns the stored `emails` record, or None when the
recipient has no address or turned non-transactional emails off (`email_notifications`).

Callers are the `documents/` functions that make the write (docs/architecture.md §4 "Side
effects beside the write": accounts, follows, comments, support, orders, moderation) and
jobs; they decide who gets an email and when, these functions only what it says. `mailer`
may be None (nothing is sent). A write sends its email through `after_write`, so that a
failure to record the email is logged and never undoes or fails the stored write.
"""
from __future__ import annotations

import logging

from documents import users
from documents.common import from_cents
from documents.emails import send

log = logging.getLogger("hwc3d.email_notices")


async def after_write(notice, *args, **kwargs) -> dict | None:
    """`await notice(*args, **kwargs)` (one of this module's functions) as the follow-up of a
    stored write: returns its result, or None after logging the exception when it fails."""
    try:
        return await notice(*args, **kwargs)
    except Exception:
        log.exception("could not send the %s email", notice.__name__)
        return None


def _link(mailer, route: str, **query) -> str:
    return mailer.renderer.link(route, **query)


def _money(cents: int) -> str:
    return f"{from_cents(cents):.2f}"


async def verification(mailer, user: dict, token: str, code: str) -> dict | None:
    """The verification email: the 6-digit `code` and ``/verify-email?token=``."""
    return await send(mailer, "verify_email", user, {
        "code": code, "url": _link(mailer, "/verify-email", token=token)}, sensitive=True)


async def welcome(mailer, user: dict) -> dict | None:
    """Welcome, once the address is verified: links to the marketplace and the upload page."""
    if mailer is None:
        return None
    return await send(mailer, "welcome", user, {
        "marketplace_url": _link(mailer, "/marketplace"),
        "upload_url": _link(mailer, "/upload")})


async def password_reset(mailer, user: dict, token: str, *, admin: bool) -> dict | None:
    """A reset link, ``/reset-password?token=`` or for staff ``/admin/reset-password?token=``
    (seed 001 §1); valid 1 hour, once."""
    kind, route = (("admin_password_reset", "/admin/reset-password") if admin
                   else ("password_reset", "/reset-password"))
    return await send(mailer, kind, user, {"url": _link(mailer, route, token=token)},
                      sensitive=True)


async def order_confirmation(mailer, order: dict, buyer: dict | None) -> dict | None:
    """The receipt of a paid order: each line with its download link
    (``/dashboard/purchases?model=<id>``), the total, the purchases page."""
    if mailer is None:
        return None
    lines = [{"title": line["title"], "price": _money(line["amount_cents"]),
              "transaction_id": line["transaction_id"],
              "download_url": _link(mailer, "/dashboard/purchases", model=str(line["model_id"]))}
             for line in order["lines"]]
    return await send(mailer, "order_confirmation", buyer, {
        "number": order["number"], "lines": lines, "total": _money(order["total_cents"]),
        "purchases_url": _link(mailer, "/dashboard/purchases")})


async def sale_made(db, mailer, seller_id, sold: list[dict], buyer: dict | None) -> dict | None:
    """To a seller: what of theirs `buyer` bought (`sold`: order lines) and their share."""
    if mailer is None:
        return None
    seller = await users.get(db, seller_id)
    return await send(mailer, "sale_made", seller, {
        "buyer": (buyer or {}).get("username") or "Someone",
        "titles": ", ".join(line["title"] for line in sold),
        "amount": _money(sum(line["seller_amount_cents"] for line in sold)),
        "url": _link(mailer, "/dashboard/financials")})


async def model_decision(db, mailer, model: dict, *, approved: bool, reason: str | None = None,
                         note: str | None = None, file: bool = False) -> dict | None:
    """Model approved (``/model/<id>``) or rejected with the `reason`
    (``/dashboard/inventory``) to its creator; `file` when only a new file was decided."""
    creator = await users.get(db, model["creator_id"])
    values = {"title": model["title"], "reason": reason, "note": note, "file": file}
    if approved:
        values["url"] = _link(mailer, f"/model/{model['_id']}")
    else:
        values["url"] = _link(mailer, "/dashboard/inventory")
    return await send(mailer, "model_approved" if approved else "model_rejected", creator,
                      values)


async def new_follower(mailer, follower: dict, target: dict) -> dict | None:
    """Non-transactional: `follower` follows `target` (``/profile/<username>``)."""
    return await send(mailer, "new_follower", target, {
        "follower": follower["username"],
        "url": _link(mailer, f"/profile/{follower['username']}")})


async def new_comment(db, mailer, model: dict, author: dict, comment: str) -> dict | None:
    """Non-transactional: `author`'s comment on `model`, to its creator (``/model/<id>``).
    Who gets one is decided by the comment write (`engagement.add_comment`)."""
    creator = await users.get(db, model["creator_id"])
    return await send(mailer, "new_comment", creator, {
        "author": author["username"], "title": model["title"], "comment": comment[:1000],
        "url": _link(mailer, f"/model/{model['_id']}")})


def _ticket_link(mailer, ticket: dict) -> str:
    return _link(mailer, "/support", ticket=str(ticket["_id"]))


async def support_reply(db, mailer, ticket: dict, sender: dict, message: str) -> dict | None:
    """`sender`'s reply on a ticket, to its owner (``/support?ticket=<id>``). Which messages
    send one (staff replies) is decided by the message write (`support.add_message`)."""
    owner = await users.get(db, ticket["user_id"])
    return await send(mailer, "support_reply", owner, {
        "subject": ticket["subject"], "message": message[:2000],
        "author": sender.get("full_name") or sender["username"],
        "url": _ticket_link(mailer, ticket)})


async def support_status(db, mailer, ticket: dict) -> dict | None:
    """The ticket's new status, to its owner."""
    owner = await users.get(db, ticket["user_id"])
    return await send(mailer, "support_status", owner, {
        "subject": ticket["subject"], "status": ticket["status"],
        "url": _ticket_link(mailer, ticket)})


async def support_message(mailer, ticket: dict, owner: dict, subject: str,
                          message: str) -> dict | None:
    """The support "Email user" action (seed 001 §13): staff's own subject and message."""
    return await send(mailer, "support_message", owner, {
        "subject": subject, "message": message, "url": _ticket_link(mailer, ticket)})


async def payout_decision(db, mailer, payout: dict) -> dict | None:
    """Payout approved, paid or rejected (with its note as reason), to the seller
    (``/dashboard/financials``)."""
    kind = {"approved": "payout_approved", "paid": "payout_paid",
            "rejected": "payout_rejected"}.get(payout["status"])
    if kind is None:
        return None
    seller = await users.get(db, payout["seller_id"])
    return await send(mailer, kind, seller, {
        "amount": _money(payout["amount_cents"]),
        "reason": payout.get("reason") or payout.get("note") or "",
        "url": _link(mailer, "/dashboard/financials")})


async def funds_available(mailer, seller: dict | None, amount: str) -> dict | None:
    """Earnings past the refund window (`amount`, e.g. "12.50 USD")."""
    return await send(mailer, "funds_available", seller, {
        "amount": amount, "url": _link(mailer, "/dashboard/financials")})


async def billing(mailer, user: dict | None, subject: str, message: str) -> dict | None:
    """A subscription renewal, failed payment or cancellation (``/pricing``)."""
    if mailer is None:
        return None
    return await send(mailer, "billing", user, {
        "subject": subject, "message": message, "url": _link(mailer, "/pricing")})


async def announcement(mailer, recipients: list[dict], title: str, message: str) -> int:
    """Non-transactional: an admin announcement to each of `recipients` (user documents)
    who did not turn emails off (``/notifications``); returns how many were queued."""
    emails = []
    for user in recipients:
        if not user.get("email") or user.get("email_notifications", True) is False:
            continue
        rendered = mailer.renderer.render("announcement", user, {
            "title": title, "message": message, "url": _link(mailer, "/notifications")})
        emails.append({"to": user["email"], "subject": rendered.subject,
                       "text": rendered.text, "html": rendered.html,
                       "headers": {"List-Unsubscribe":
                                   f"<{_link(mailer, '/dashboard/settings')}>"}})
    return len(await mailer.send_many(emails, "announcement"))
