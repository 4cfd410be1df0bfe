"""Every email of the product (README "Emails"), triggered the way a user or staff member
does over HTTP: both bodies present, every link absolute under FRONTEND_URL and on a route
of README "Frontend routes that emails link to", tokens in links that work on the API, the
opt-out of non-transactional emails, and admin templates that do not parse refused."""
from __future__ import annotations

import re
from email import message_from_bytes
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from bson import ObjectId
from conftest import free_port
from demo_accounts import ADMIN, BUYER, BUYER2, CREATOR, CREATOR_ID, DEMO_PASSWORD, ROBOT
from socket_support import join, next_of, send, ws_url

from tests.earnings_builders import add_bank, give_available, make_model, uid
from tests.mail_support import Inbox, email_status, frontend_routes, links_of, plain_text, wait_email

FRONTEND = "https://app.hwc3d.test"
NEW_PASSWORD = "Brand-New-Pass-42"
ROUTES = frontend_routes((Path(__file__).parents[1] / "README.md").read_text())


@pytest.fixture
def settings_overrides():
    return {"frontend_url": FRONTEND}


async def checked(db, to: str, category: str, count: int = 1) -> dict:
    """The newest email of `category` to `to`, delivered, with both bodies and every link
    absolute under FRONTEND_URL on a README-listed route."""
    record = await wait_email(db, to, category, count)
    record = await email_status(db, record["_id"], "sent")
    assert record["text"] and record["html"], record["subject"]
    assert record["html"].lstrip().lower().startswith("<!doctype html>")
    links = links_of(record)
    assert links, record["subject"]
    for link in links:
        assert link.startswith(FRONTEND + "/"), link
        path = urlsplit(link).path
        assert any(route.match(path) for route in ROUTES), f"{path} is not a listed route"
    return record


def token_of(record: dict, route: str) -> str:
    """The `token` of the email's link to `route` (the same in the text and the HTML)."""
    tokens = {parse_qs(urlsplit(link).query)["token"][0] for link in links_of(record)
              if urlsplit(link).path == route}
    assert len(tokens) == 1, tokens
    return tokens.pop()


def paths(record: dict) -> set[str]:
    return {urlsplit(link).path for link in links_of(record)}


# --------------------------------------------------------------------------- account

@pytest.mark.gen_test
async def test_verification_link_verifies_and_a_welcome_follows(api, services):
    reply = await api("POST", "/api/auth/register", json={
        "email": "newbie@example.com", "username": "newbie", "password": "Secret123!x"})
    assert reply.status == 201, reply.json
    mail = await checked(services.db, "newbie@example.com", "verification")
    token = token_of(mail, "/verify-email")
    assert re.search(r"verification code is \d{6}", mail["text"])
    verified = await api("POST", "/api/auth/verify-email", json={"token": token})
    assert verified.status == 200 and verified.json["is_verified"] is True
    welcome = await checked(services.db, "newbie@example.com", "account")
    assert welcome["subject"] == "Welcome to HWC3D"
    assert {"/marketplace", "/upload", "/dashboard/settings"} <= paths(welcome)


@pytest.mark.gen_test
async def test_password_reset_link_sets_a_new_password(api, services):
    await api("POST", "/api/auth/forgot-password", json={"email": BUYER})
    mail = await checked(services.db, BUYER, "password_reset")
    reply = await api("POST", "/api/auth/reset-password", json={
        "token": token_of(mail, "/reset-password"), "new_password": NEW_PASSWORD})
    assert reply.status == 200, reply.json
    login = await api("POST", "/api/auth/login", json={"email": BUYER, "password": NEW_PASSWORD})
    assert login.status == 200


@pytest.mark.gen_test
async def test_admin_reset_link_sets_a_new_staff_password(api, services):
    await api("POST", "/api/auth/admin/forgot-password", json={"email": ADMIN})
    mail = await checked(services.db, ADMIN, "password_reset")
    assert mail["subject"] == "Reset your HWC3D admin password"
    token = token_of(mail, "/admin/reset-password")
    reply = await api("POST", "/api/auth/admin/reset-password",
                      json={"token": token, "new_password": NEW_PASSWORD})
    assert reply.status == 200, reply.json
    old = await api("POST", "/api/auth/login", json={"email": ADMIN, "password": DEMO_PASSWORD})
    assert old.status == 401


# --------------------------------------------------------------------------- sales

@pytest.mark.gen_test
@pytest.mark.usefixtures("no_past_sales")
async def test_order_confirmation_has_download_links_and_the_seller_hears_of_the_sale(
        api, services, tokens):
    reply = await api("POST", "/api/checkout", token=await tokens(BUYER), json={
        "model_ids": [ROBOT], "payment_details": {"card_token": "tok_visa"}})
    assert reply.status == 200, reply.json
    receipt = await checked(services.db, BUYER, "purchase")
    assert "19.99" in receipt["text"] and "19.99" in receipt["html"]
    downloads = [link for link in links_of(receipt)
                 if parse_qs(urlsplit(link).query).get("model") == [ROBOT]]
    assert downloads and all(urlsplit(d).path == "/dashboard/purchases" for d in downloads)
    sale = await checked(services.db, CREATOR, "sales")
    assert "bought" in sale["text"] and "18.49" in sale["text"]
    assert paths(sale) >= {"/dashboard/financials"}


# --------------------------------------------------------------------------- moderation

@pytest.mark.gen_test
async def test_model_approved_and_rejected_with_the_reason(api, services, tokens):
    db = services.db
    creator = await uid(db, CREATOR)
    first = await make_model(db, creator, status="pending", title="Approved Teapot")
    second = await make_model(db, creator, status="pending", title="Rejected Teapot")
    admin = await tokens(ADMIN)
    ok = await api("PUT", f"/api/admin/models/{first['_id']}/approve", token=admin, json={})
    assert ok.status == 200, ok.json
    approved = await checked(db, CREATOR, "moderation")
    assert "Approved Teapot" in approved["subject"]
    assert f"/model/{first['_id']}" in paths(approved)
    no = await api("PUT", f"/api/admin/models/{second['_id']}/reject", token=admin,
                   json={"reason": "The textures are missing"})
    assert no.status == 200, no.json
    rejected = await checked(db, CREATOR, "moderation", count=2)
    assert "Rejected Teapot" in rejected["subject"]
    assert "The textures are missing" in rejected["text"]
    assert "The textures are missing" in rejected["html"]


# --------------------------------------------------------------------------- social

@pytest.mark.gen_test
async def test_new_follower_and_new_comment_carry_an_unsubscribe_link(api, services, tokens):
    buyer = await tokens(BUYER)
    assert (await api("POST", f"/api/users/{CREATOR_ID}/follow", token=buyer)).status == 201
    follower = await checked(services.db, CREATOR, "social")
    assert "started following you" in follower["subject"]
    assert "/dashboard/settings" in paths(follower)
    assert follower["headers"]["List-Unsubscribe"] == f"<{FRONTEND}/dashboard/settings>"
    reply = await api("POST", f"/api/models/{ROBOT}/comments", token=buyer,
                      json={"content": "Lovely <b>topology</b>"})
    assert reply.status == 201, reply.json
    comment = await checked(services.db, CREATOR, "social", count=2)
    assert "Lovely <b>topology</b>" in comment["text"]
    assert "Lovely &lt;b&gt;topology&lt;/b&gt;" in comment["html"]
    assert {f"/model/{ROBOT}", "/dashboard/settings"} <= paths(comment)


@pytest.mark.gen_test
async def test_a_creator_commenting_on_their_own_model_gets_no_email(api, services, tokens):
    own = await api("POST", f"/api/models/{ROBOT}/comments", token=await tokens(CREATOR),
                    json={"content": "Thanks for the feedback"})
    assert own.status == 201, own.json
    other = await api("POST", f"/api/models/{ROBOT}/comments", token=await tokens(BUYER),
                      json={"content": "Great model"})
    assert other.status == 201, other.json
    mail = await checked(services.db, CREATOR, "social")
    assert "Great model" in mail["text"]
    assert await services.db.emails.count_documents({"to": CREATOR, "category": "social"}) == 1


@pytest.mark.gen_test
async def test_opting_out_stops_follower_emails_but_not_a_password_reset(api, services, tokens):
    creator = await tokens(CREATOR)
    off = await api("PUT", "/api/users/me", token=creator, json={"email_notifications": False})
    assert off.status == 200, off.json
    me = await api("GET", "/api/users/me", token=creator)
    assert me.json["email_notifications"] is False
    assert (await api("POST", f"/api/users/{CREATOR_ID}/follow",
                      token=await tokens(BUYER))).status == 201
    await api("POST", "/api/auth/forgot-password", json={"email": CREATOR})
    await checked(services.db, CREATOR, "password_reset")
    assert await services.db.notifications.count_documents({"type": "new_follower"}) == 1
    assert await services.db.emails.count_documents({"to": CREATOR,
                                                     "category": "social"}) == 0


# --------------------------------------------------------------------------- support

@pytest.mark.gen_test
async def test_support_reply_and_status_change_reach_the_owner(api, services, tokens):
    ticket = await api("POST", "/api/support/tickets", token=await tokens(BUYER2), json={
        "subject": "Cannot download", "category": "Technical", "priority": "high",
        "message": "The link expired"})
    assert ticket.status == 201, ticket.json
    ticket_id, admin = ticket.json["id"], await tokens(ADMIN)
    base = f"/api/admin/support/tickets/{ticket_id}"
    answer = await api("POST", f"{base}/messages", token=admin,
                       json={"content": "Here is a fresh link."})
    assert answer.status == 201, answer.json
    reply = await checked(services.db, BUYER2, "support")
    assert "Here is a fresh link." in reply["text"]
    moved = await api("PUT", f"{base}/status", token=admin, json={"status": "resolved"})
    assert moved.status == 200, moved.json
    status = await checked(services.db, BUYER2, "support", count=2)
    assert "resolved" in status["subject"]
    for mail in (reply, status):
        assert {parse_qs(urlsplit(link).query).get("ticket", [None])[0]
                for link in links_of(mail) if urlsplit(link).path == "/support"} == {ticket_id}


@pytest.mark.gen_test
async def test_the_owners_own_messages_send_no_support_email(api, services, tokens):
    owner = await tokens(BUYER2)
    ticket = await api("POST", "/api/support/tickets", token=owner, json={
        "subject": "Cannot download", "category": "Technical", "message": "The link expired"})
    assert ticket.status == 201, ticket.json
    ticket_id = ticket.json["id"]
    more = await api("POST", f"/api/support/tickets/{ticket_id}/messages", token=owner,
                     json={"content": "Still broken"})
    assert more.status == 201, more.json
    answer = await api("POST", f"/api/admin/support/tickets/{ticket_id}/messages",
                       token=await tokens(ADMIN), json={"content": "Here is a fresh link."})
    assert answer.status == 201, answer.json
    reply = await checked(services.db, BUYER2, "support")
    assert "Here is a fresh link." in reply["text"]
    assert await services.db.emails.count_documents({"to": BUYER2, "category": "support"}) == 1


@pytest.mark.gen_test
async def test_a_staff_reply_over_the_socket_emails_the_owner_like_rest(api, services, tokens,
                                                                        base_url):
    owner = await tokens(BUYER2)
    ticket = await api("POST", "/api/support/tickets", token=owner, json={
        "subject": "Cannot download", "category": "Technical", "message": "The link expired"})
    assert ticket.status == 201, ticket.json
    ticket_id, admin = ticket.json["id"], await tokens(ADMIN)
    agent, _ = await join(ws_url(base_url, f"/ws/support/{ticket_id}", admin), presence=False)
    await send(agent, {"type": "message", "content": "A fresh link is on its way.", "ref": "r1"})
    assert (await next_of(agent, "ack"))["data"]["ref"] == "r1"
    agent.close()
    reply = await checked(services.db, BUYER2, "support")
    assert "A fresh link is on its way." in reply["text"]
    # the reply made the ticket active; asking for active again moves nothing and emails nothing
    again = await api("PUT", f"/api/admin/support/tickets/{ticket_id}/status", token=admin,
                      json={"status": "active"})
    assert again.status == 200 and again.json["status"] == "active", again.json
    resolved = await api("PUT", f"/api/admin/support/tickets/{ticket_id}/status", token=admin,
                         json={"status": "resolved"})
    assert resolved.status == 200, resolved.json
    status = await checked(services.db, BUYER2, "support", count=2)
    assert "resolved" in status["subject"]
    assert await services.db.emails.count_documents({"to": BUYER2, "category": "support"}) == 2


# --------------------------------------------------------------------------- payouts

@pytest.mark.gen_test
@pytest.mark.usefixtures("no_past_sales")
async def test_payout_approved_then_paid(api, services, tokens):
    db = services.db
    await give_available(db, await uid(db, CREATOR), 5000)
    creator = await tokens(CREATOR)
    await add_bank(api, creator)
    asked = await api("POST", "/api/users/me/payout-request", token=creator, json={"amount": 30})
    assert asked.status == 201, asked.json
    admin, payout_id = await tokens(ADMIN), asked.json["payout"]["id"]
    step = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve", token=admin,
                     json={"paid": False})
    assert step.status == 200 and step.json["status"] == "approved", step.json
    approved = await checked(db, CREATOR, "earnings")
    assert "approved" in approved["subject"] and "30.00" in approved["subject"]
    paid = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/mark-paid", token=admin,
                     json={})
    assert paid.status == 200 and paid.json["status"] == "paid", paid.json
    sent = await checked(db, CREATOR, "earnings", count=2)
    assert "paid" in sent["subject"]
    assert "/dashboard/financials" in paths(sent)


# --------------------------------------------------------------------------- admin

@pytest.mark.gen_test
async def test_announcement_reaches_users_by_email(api, services, tokens):
    reply = await api("POST", "/api/admin/announcements", token=await tokens(ADMIN), json={
        "title": "New viewer", "message": "Models now open in 3D.", "target": "buyers"})
    assert reply.status == 201, reply.json
    mail = await checked(services.db, BUYER, "announcement")
    assert mail["subject"] == "New viewer" and "Models now open in 3D." in mail["text"]
    assert {"/notifications", "/dashboard/settings"} <= paths(mail)


@pytest.mark.gen_test
async def test_admin_templates_render_with_liquid_and_broken_ones_are_refused(
        api, services, tokens):
    admin = await tokens(ADMIN)
    broken = await api("POST", "/api/admin/emails/templates", token=admin, json={
        "name": "Broken", "subject": "Hi", "body": "{% if username %}Hello"})
    assert broken.status == 422
    assert "body" in broken.json["field_errors"]
    assert "endif" in broken.json["field_errors"]["body"][0]
    unknown_filter = await api("POST", "/api/admin/emails/templates", token=admin, json={
        "name": "Filter", "subject": "{{ username | shout }}", "body": "b"})
    assert unknown_filter.status == 422 and "subject" in unknown_filter.json["field_errors"]
    made = await api("POST", "/api/admin/emails/templates", token=admin, json={
        "name": "Digest", "subject": "Picks for {{ username | upcase }}",
        "body": "{% if full_name %}Dear {{ full_name }},{% endif %}\nnew models await.",
        "category": "newsletter"})
    assert made.status == 201, made.json
    edit = await api("PUT", f"/api/admin/emails/templates/{made.json['id']}", token=admin,
                     json={"body": "{{ username"})
    assert edit.status == 422 and "body" in edit.json["field_errors"]
    sent = await api("POST", "/api/admin/emails/send", token=admin,
                     json={"email": BUYER, "template_id": made.json["id"]})
    assert sent.status == 200, sent.json
    mail = await checked(services.db, BUYER, "newsletter")
    buyer = await services.db.users.find_one({"email": BUYER})
    assert mail["subject"] == f"Picks for {buyer['username'].upper()}"
    assert mail["text"].startswith("Dear ")
    assert "/dashboard/settings" in paths(mail)


# --------------------------------------------------------------------------- over SMTP

class TestOverSmtp:
    @pytest.fixture
    def inbox(self):
        handler = Inbox()
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        handler.port = controller.port
        yield handler
        controller.stop()

    @pytest.fixture
    def settings_overrides(self, inbox):
        return {"frontend_url": FRONTEND, "smtp_host": "127.0.0.1", "smtp_port": inbox.port,
                "smtp_starttls": False}

    @pytest.mark.gen_test
    async def test_a_follower_email_arrives_with_both_bodies_and_list_unsubscribe(
            self, api, services, tokens, inbox):
        await api("POST", f"/api/users/{CREATOR_ID}/follow", token=await tokens(BUYER))
        record = await wait_email(services.db, CREATOR, "social")
        await email_status(services.db, ObjectId(record["_id"]), "sent")
        [envelope] = inbox.messages
        mail = message_from_bytes(envelope.content)
        assert mail.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in mail.get_payload()] == ["text/plain", "text/html"]
        assert mail["List-Unsubscribe"] == f"<{FRONTEND}/dashboard/settings>"
        assert f"{FRONTEND}/profile/" in plain_text(mail)
