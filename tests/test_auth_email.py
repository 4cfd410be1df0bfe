"""Email verification and password reset (seed 000 §1, seed 001 §1), through the
outbox (the `emails` collection, embedded default) and through a real SMTP server (aiosmtpd)."""
import asyncio
import re
import time
from datetime import timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from auth_support import NEW_PASSWORD, PASSWORD, register, token_in, wait_for_email
from conftest import free_port
from demo_accounts import BUYER, BUYER2, CREATOR, DEMO_PASSWORD, MODERATOR

from documents.common import utcnow
from tests.mail_support import email_status, plain_text


def code_in(text: str) -> str:
    return re.search(r"code is (\d{6})", text).group(1)


# --------------------------------------------------------------------------- verification (outbox)

@pytest.mark.gen_test
async def test_register_sends_code_and_link_and_the_code_verifies(api, services):
    session = (await register(api, "verifyme")).json
    mail = await wait_for_email(services, "verifyme@example.com", "verification")
    mail = await email_status(services.db, mail["_id"], "sent")
    assert mail["subject"] == "Verify your HWC3D email address"
    code, link_token = code_in(mail["text"]), token_in(mail["text"])
    assert f"{services.settings.frontend_url}/verify-email?token={link_token}" in mail["text"]
    reply = await api("POST", "/api/auth/verify-email",
                      json={"email": "VerifyMe@example.com", "code": code})
    assert reply.status == 200, reply.json
    assert reply.json == {"message": "Email verified", "email": "verifyme@example.com",
                          "is_verified": True}
    me = await api("GET", "/api/auth/me", token=session["access_token"])
    assert me.json["user"]["is_verified"] is True
    again = await api("POST", "/api/auth/verify-email", json={"token": link_token})
    assert again.status == 401 and again.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
async def test_link_token_verifies_once(api, services):
    await register(api, "linkuser")
    mail = await wait_for_email(services, "linkuser@example.com", "verification")
    token = token_in(mail["text"])
    reply = await api("POST", "/api/auth/verify-email", json={"token": token})
    assert reply.status == 200
    assert (await services.db.users.find_one({"username": "linkuser"}))["is_verified"] is True
    reuse = await api("POST", "/api/auth/verify-email", json={"token": token})
    assert reuse.status == 401 and reuse.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
async def test_five_wrong_codes_burn_the_code_and_resend_gives_a_new_one(api, services):
    await register(api, "fumbler")
    code = code_in((await wait_for_email(services, "fumbler@example.com", "verification"))["text"])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        reply = await api("POST", "/api/auth/verify-email",
                          json={"email": "fumbler@example.com", "code": wrong})
        assert reply.status == 401 and reply.json["error_code"] == "INVALID_TOKEN"
    burnt = await api("POST", "/api/auth/verify-email",
                      json={"email": "fumbler@example.com", "code": code})
    assert burnt.status == 401
    resend = await api("POST", "/api/auth/resend-verification",
                       json={"email": "fumbler@example.com"})
    assert resend.status == 200
    fresh = await wait_for_email(services, "fumbler@example.com", "verification", count=2)
    new_code = code_in(fresh["text"])
    ok = await api("POST", "/api/auth/verify-email",
                   json={"email": "fumbler@example.com", "code": new_code})
    assert ok.status == 200


@pytest.mark.gen_test
async def test_resend_supersedes_the_old_link(api, services):
    await register(api, "resender")
    old = token_in((await wait_for_email(services, "resender@example.com", "verification"))["text"])
    await api("POST", "/api/auth/resend-verification", json={"email": "resender@example.com"})
    new = token_in((await wait_for_email(services, "resender@example.com", "verification",
                                         count=2))["text"])
    assert (await api("POST", "/api/auth/verify-email", json={"token": old})).status == 401
    assert (await api("POST", "/api/auth/verify-email", json={"token": new})).status == 200


@pytest.mark.gen_test
async def test_resend_is_200_and_silent_for_unknown_or_verified_accounts(api, services):
    unknown = await api("POST", "/api/auth/resend-verification", json={"email": "no@example.com"})
    verified = await api("POST", "/api/auth/resend-verification",
                         json={"email": BUYER})
    assert unknown.status == verified.status == 200
    assert unknown.json == verified.json
    # a later request that does send: once its email is there, the earlier ones are done
    await register(api, "marker")
    await api("POST", "/api/auth/resend-verification", json={"email": "marker@example.com"})
    await wait_for_email(services, "marker@example.com", "verification", count=2)
    assert await services.db.emails.count_documents({}) == 2


@pytest.mark.gen_test
async def test_expired_verification_code_is_refused(api, services):
    await register(api, "latecomer")
    code = code_in((await wait_for_email(services, "latecomer@example.com", "verification"))["text"])
    await services.db.one_time_tokens.update_many(
        {"purpose": "verify_email"}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    reply = await api("POST", "/api/auth/verify-email",
                      json={"email": "latecomer@example.com", "code": code})
    assert reply.status == 401


@pytest.mark.gen_test
@pytest.mark.parametrize("payload,field", [
    ({}, "email"),
    ({"email": "a@example.com"}, "code"),
    ({"code": "123456"}, "email"),
    ({"token": "abc", "code": "123456"}, "token"),
    ({"email": "a@example.com", "code": "12345"}, "code"),
    ({"email": "a@example.com", "code": 123456}, "code"),
    ({"email": "nope", "code": "123456"}, "email"),
    ({"token": ""}, "token"),
    ({"token": "x" * 600}, "token"),
    ({"token": "abc", "extra": 1}, "extra"),
])
async def test_verify_email_bad_input_is_422(api, payload, field):
    reply = await api("POST", "/api/auth/verify-email", json=payload)
    assert reply.status == 422 and field in reply.json["field_errors"], reply.json


@pytest.mark.gen_test
async def test_code_for_unknown_email_is_the_same_401(api):
    reply = await api("POST", "/api/auth/verify-email",
                      json={"email": "ghost@example.com", "code": "123456"})
    assert reply.status == 401 and reply.json["error_code"] == "INVALID_TOKEN"


# --------------------------------------------------------------------------- password reset

@pytest.mark.gen_test
async def test_forgot_password_does_not_reveal_accounts(api, services):
    unknown = await api("POST", "/api/auth/forgot-password", json={"email": "ghost@example.com"})
    known = await api("POST", "/api/auth/forgot-password", json={"email": "Buyer@hwc3d.com"})
    assert known.status == unknown.status == 200 and known.json == unknown.json
    mail = await wait_for_email(services, BUYER, "password_reset")
    assert mail["subject"] == "Reset your HWC3D password"
    assert f"{services.settings.frontend_url}/reset-password?token=" in mail["text"]
    assert await services.db.emails.count_documents({}) == 1


@pytest.mark.gen_test
async def test_reset_password_sets_it_and_ends_every_session(api, services):
    session = (await register(api, "forgetful")).json
    await api("POST", "/api/auth/forgot-password", json={"email": "forgetful@example.com"})
    token = token_in((await wait_for_email(services, "forgetful@example.com",
                                           "password_reset"))["text"])
    reply = await api("POST", "/api/auth/reset-password",
                      json={"token": token, "new_password": NEW_PASSWORD})
    assert reply.status == 200 and "refresh_token=\"\"" in reply.headers["Set-Cookie"]
    old_access = await api("GET", "/api/auth/me", token=session["access_token"])
    assert old_access.status == 401 and old_access.json["error_code"] == "TOKEN_REVOKED"
    old_refresh = await api("POST", "/api/auth/refresh",
                            json={"refresh_token": session["refresh_token"]})
    assert old_refresh.status == 403
    old_password = await api("POST", "/api/auth/login",
                             json={"username": "forgetful", "password": PASSWORD})
    assert old_password.status == 401
    new_login = await api("POST", "/api/auth/login",
                          json={"username": "forgetful", "password": NEW_PASSWORD})
    assert new_login.status == 200 and new_login.json["user"]["is_verified"] is True
    assert (await api("GET", "/api/auth/me", token=new_login.json["access_token"])).status == 200
    reuse = await api("POST", "/api/auth/reset-password",
                      json={"token": token, "new_password": "Another-Pass-43"})
    assert reuse.status == 401 and reuse.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
async def test_weak_new_password_changes_nothing_and_keeps_the_token(api, services):
    await api("POST", "/api/auth/forgot-password", json={"email": BUYER2})
    token = token_in((await wait_for_email(services, BUYER2, "password_reset"))["text"])
    before = (await services.db.users.find_one({"email": BUYER2}))["password_hash"]
    weak = await api("POST", "/api/auth/reset-password",
                     json={"token": token, "new_password": "password"})
    assert weak.status == 422 and "new_password" in weak.json["field_errors"]
    after = (await services.db.users.find_one({"email": BUYER2}))["password_hash"]
    assert after == before
    ok = await api("POST", "/api/auth/reset-password",
                   json={"token": token, "new_password": NEW_PASSWORD})
    assert ok.status == 200


@pytest.mark.gen_test
async def test_reset_token_expires_after_an_hour(api, services):
    await api("POST", "/api/auth/forgot-password", json={"email": BUYER})
    token = token_in((await wait_for_email(services, BUYER, "password_reset"))["text"])
    record = await services.db.one_time_tokens.find_one({"purpose": "password_reset"})
    assert timedelta(minutes=59) < record["expires_at"] - record["created_at"] <= timedelta(hours=1)
    await services.db.one_time_tokens.update_one(
        {"_id": record["_id"]}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    reply = await api("POST", "/api/auth/reset-password",
                      json={"token": token, "new_password": NEW_PASSWORD})
    assert reply.status == 401
    login = await api("POST", "/api/auth/login",
                      json={"email": BUYER, "password": DEMO_PASSWORD})
    assert login.status == 200


@pytest.mark.gen_test
async def test_user_reset_token_does_not_work_on_the_admin_route(api, services):
    await api("POST", "/api/auth/forgot-password", json={"email": MODERATOR})
    token = token_in((await wait_for_email(services, MODERATOR,
                                           "password_reset"))["text"])
    admin_route = await api("POST", "/api/auth/admin/reset-password",
                            json={"token": token, "new_password": NEW_PASSWORD})
    assert admin_route.status == 401
    user_route = await api("POST", "/api/auth/reset-password",
                           json={"token": token, "new_password": NEW_PASSWORD})
    assert user_route.status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("route", ["forgot-password", "admin/forgot-password",
                                   "resend-verification"])
@pytest.mark.parametrize("payload,field", [
    ({}, "email"), ({"email": "nope"}, "email"), ({"email": None}, "email"),
    ({"email": "a@example.com", "username": "a"}, "username"),
])
async def test_email_routes_bad_input_is_422(api, route, payload, field):
    reply = await api("POST", f"/api/auth/{route}", json=payload)
    assert reply.status == 422 and field in reply.json["field_errors"]


@pytest.mark.gen_test
@pytest.mark.parametrize("payload,field", [
    ({"new_password": NEW_PASSWORD}, "token"), ({"token": "abc"}, "new_password"),
    ({"token": "abc", "new_password": "short1"}, "new_password"),
    ({"token": "abc", "new_password": NEW_PASSWORD, "password": "x"}, "password"),
])
async def test_reset_password_bad_input_is_422(api, payload, field):
    for route in ("reset-password", "admin/reset-password"):
        reply = await api("POST", f"/api/auth/{route}", json=payload)
        assert reply.status == 422 and field in reply.json["field_errors"]


@pytest.mark.gen_test
async def test_unknown_reset_token_is_401(api):
    for route in ("reset-password", "admin/reset-password"):
        reply = await api("POST", f"/api/auth/{route}",
                          json={"token": "made-up", "new_password": NEW_PASSWORD})
        assert reply.status == 401 and reply.json["error_code"] == "INVALID_TOKEN"


# --------------------------------------------------------------------------- SMTP

class Inbox:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted"

    async def wait(self, count: int = 1):
        deadline = time.monotonic() + 5
        while len(self.messages) < count:
            assert time.monotonic() < deadline, "no email arrived over SMTP"
            await asyncio.sleep(0.01)
        return message_from_bytes(self.messages[count - 1].content)


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


class TestOverSmtp:
    @pytest.fixture
    def settings_overrides(self, inbox):
        return {"smtp_host": "127.0.0.1", "smtp_port": inbox.port, "smtp_starttls": False}

    @pytest.mark.gen_test
    async def test_verification_code_arrives_by_smtp_and_verifies(self, api, services, inbox):
        await register(api, "smtpuser")
        mail = await inbox.wait()
        assert inbox.messages[0].rcpt_tos == ["smtpuser@example.com"]
        assert mail["Subject"] == "Verify your HWC3D email address"
        assert mail["From"] == services.settings.smtp_from
        text = plain_text(mail)
        reply = await api("POST", "/api/auth/verify-email",
                          json={"email": "smtpuser@example.com", "code": code_in(text)})
        assert reply.status == 200
        record = await services.db.emails.find_one({"to": "smtpuser@example.com",
                                                    "category": "verification"})
        record = await email_status(services.db, record["_id"], "sent")
        assert record["redacted"] is True
        assert record["text"] is None  # the code is not kept in the email history

    @pytest.mark.gen_test
    async def test_reset_link_arrives_by_smtp_and_resets(self, api, services, inbox):
        await api("POST", "/api/auth/forgot-password", json={"email": CREATOR})
        mail = await inbox.wait()
        token = token_in(plain_text(mail))
        reply = await api("POST", "/api/auth/reset-password",
                          json={"token": token, "new_password": NEW_PASSWORD})
        assert reply.status == 200
        login = await api("POST", "/api/auth/login",
                          json={"email": CREATOR, "password": NEW_PASSWORD})
        assert login.status == 200


class TestSmtpDown:
    @pytest.fixture
    def settings_overrides(self):
        return {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False}

    @pytest.mark.gen_test
    async def test_registration_succeeds_and_the_email_waits_for_a_retry(self, api, services):
        reply = await register(api, "nomail")
        assert reply.status == 201
        record = await wait_for_email(services, "nomail@example.com", "verification")
        record = await email_status(services.db, record["_id"], "retrying")
        assert record["error"] == "SMTPConnectError" and record["attempts"] == 1
        resend = await api("POST", "/api/auth/resend-verification",
                           json={"email": "nomail@example.com"})
        assert resend.status == 200
