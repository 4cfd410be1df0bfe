"""Admin sign-in with a TOTP second factor, and the admin password reset
(seed 000 §1 `admin/login` with `otp_code`, seed 001 §1 `admin/verify-otp`)."""
import asyncio
import time
from datetime import timedelta

import pyotp
import pytest
from auth_support import NEW_PASSWORD, TOKEN_KEYS, token_in, wait_for_email
from demo_accounts import ADMIN, ADMIN_TOTP_SECRET, BUYER, DEMO_PASSWORD, MODERATOR

from documents.common import utcnow

pytestmark = pytest.mark.usefixtures("fast_demo_passwords")

ADMIN_LOGIN = {"email": ADMIN, "password": DEMO_PASSWORD}
TOTP = pyotp.TOTP(ADMIN_TOTP_SECRET)


async def otp(step_offset: int = 0) -> str:
    """The admin's TOTP code `step_offset` steps from now (±1 is accepted by the server).

    Waits out the last second of a 30-second step, so the server sees the same step.
    """
    remaining = TOTP.interval - time.time() % TOTP.interval
    if remaining < 1.5:
        await asyncio.sleep(remaining + 0.05)
    return TOTP.at(time.time(), counter_offset=step_offset)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.mark.gen_test
async def test_admin_login_with_otp_code_in_the_body(api):
    reply = await api("POST", "/api/auth/admin/login", json={**ADMIN_LOGIN, "otp_code": await otp()})
    assert reply.status == 200, reply.json
    assert set(reply.json) == TOKEN_KEYS | {"two_factor_enabled"}
    assert reply.json["two_factor_enabled"] is True
    assert "refresh_token=" in reply.headers["Set-Cookie"]
    me = await api("GET", "/api/auth/me", token=reply.json["access_token"])
    assert me.json["claims"]["roles"] == ["buyer", "user", "superadmin", "super_admin"]


@pytest.mark.gen_test
async def test_admin_login_challenge_then_verify_otp(api):
    first = await api("POST", "/api/auth/admin/login", json=ADMIN_LOGIN)
    assert first.status == 200
    assert first.json["otp_required"] is True and first.json["expires_in"] == 300
    assert "access_token" not in first.json
    challenge = first.json["challenge_token"]
    done = await api("POST", "/api/auth/admin/verify-otp",
                     json={"challenge_token": challenge, "otp_code": await otp()})
    assert done.status == 200 and set(done.json) == TOKEN_KEYS | {"two_factor_enabled"}
    assert done.json["user"]["email"] == ADMIN
    again = await api("POST", "/api/auth/admin/verify-otp",
                      json={"challenge_token": challenge, "otp_code": await otp(-1)})
    assert again.status == 401 and again.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
async def test_plain_login_challenge_is_completed_at_verify_otp(api):
    first = await api("POST", "/api/auth/login", json=ADMIN_LOGIN)
    done = await api("POST", "/api/auth/admin/verify-otp",
                     json={"challenge_token": first.json["challenge_token"],
                           "otp_code": await otp()})
    assert done.status == 200 and done.json["user"]["is_staff"] is True


@pytest.mark.gen_test
async def test_wrong_otp_and_replayed_otp_are_401(api, services):
    code = await otp()
    wrong = await api("POST", "/api/auth/admin/login", json={**ADMIN_LOGIN, "otp_code": other_code(code)})
    assert wrong.status == 401 and wrong.json["error_code"] == "INVALID_OTP"
    old = await api("POST", "/api/auth/admin/login",
                    json={**ADMIN_LOGIN, "otp_code": TOTP.at(time.time() - 300)})
    assert old.status == 401 and old.json["error_code"] == "INVALID_OTP"
    ok = await api("POST", "/api/auth/admin/login", json={**ADMIN_LOGIN, "otp_code": code})
    assert ok.status == 200
    replay = await api("POST", "/api/auth/admin/login", json={**ADMIN_LOGIN, "otp_code": code})
    assert replay.status == 401 and replay.json["error_code"] == "OTP_ALREADY_USED"
    assert await services.db.refresh_tokens.count_documents({}) == 1


@pytest.mark.gen_test
async def test_five_wrong_codes_burn_the_challenge(api):
    challenge = (await api("POST", "/api/auth/admin/login", json=ADMIN_LOGIN)).json["challenge_token"]
    code = await otp()
    for _ in range(5):
        reply = await api("POST", "/api/auth/admin/verify-otp",
                          json={"challenge_token": challenge, "otp_code": other_code(code)})
        assert reply.status == 401 and reply.json["error_code"] == "INVALID_OTP"
    burnt = await api("POST", "/api/auth/admin/verify-otp",
                      json={"challenge_token": challenge, "otp_code": code})
    assert burnt.status == 401 and burnt.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
async def test_expired_challenge_is_401(api, services):
    challenge = (await api("POST", "/api/auth/admin/login", json=ADMIN_LOGIN)).json["challenge_token"]
    await services.db.one_time_tokens.update_many(
        {"purpose": "admin_otp"}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    reply = await api("POST", "/api/auth/admin/verify-otp",
                      json={"challenge_token": challenge, "otp_code": await otp()})
    assert reply.status == 401 and reply.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
async def test_admin_login_wrong_password_unknown_and_non_staff(api):
    wrong = await api("POST", "/api/auth/admin/login",
                      json={"email": ADMIN, "password": "Wrong12345"})
    unknown = await api("POST", "/api/auth/admin/login",
                        json={"email": "nobody@hwc3d.com", "password": "Wrong12345"})
    assert wrong.status == unknown.status == 401
    assert wrong.json["error_code"] == unknown.json["error_code"] == "INVALID_CREDENTIALS"
    buyer = await api("POST", "/api/auth/admin/login",
                      json={"email": BUYER, "password": DEMO_PASSWORD})
    assert buyer.status == 403 and buyer.json["error_code"] == "NOT_STAFF"


@pytest.mark.gen_test
async def test_staff_without_totp_gets_tokens_with_two_factor_disabled(api):
    reply = await api("POST", "/api/auth/admin/login",
                      json={"usernameOrEmail": "moderator", "password": DEMO_PASSWORD})
    assert reply.status == 200 and reply.json["two_factor_enabled"] is False
    assert reply.json["user"]["staff_role"] == "moderator"


@pytest.mark.gen_test
async def test_disabled_admin_cannot_complete_a_challenge(api, services):
    challenge = (await api("POST", "/api/auth/admin/login", json=ADMIN_LOGIN)).json["challenge_token"]
    await services.db.users.update_one({"email": ADMIN}, {"$set": {"is_banned": True}})
    reply = await api("POST", "/api/auth/admin/verify-otp",
                      json={"challenge_token": challenge, "otp_code": await otp()})
    assert reply.status == 403


@pytest.mark.gen_test
@pytest.mark.parametrize("payload,field", [
    ({"otp_code": "123456"}, "challenge_token"),
    ({"challenge_token": "abc"}, "otp_code"),
    ({"challenge_token": "abc", "otp_code": "12ab56"}, "otp_code"),
    ({"challenge_token": "abc", "otp_code": 123456}, "otp_code"),
    ({"challenge_token": "abc", "otp_code": "123456", "email": "x"}, "email"),
])
async def test_verify_otp_bad_input_is_422(api, payload, field):
    reply = await api("POST", "/api/auth/admin/verify-otp", json=payload)
    assert reply.status == 422 and field in reply.json["field_errors"]


@pytest.mark.gen_test
async def test_verify_otp_with_an_unknown_challenge_is_401(api):
    reply = await api("POST", "/api/auth/admin/verify-otp",
                      json={"challenge_token": "made-up", "otp_code": "123456"})
    assert reply.status == 401 and reply.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
@pytest.mark.parametrize("payload,field", [
    ({"password": DEMO_PASSWORD}, "email"), ({"email": ADMIN}, "password"),
    ({**ADMIN_LOGIN, "otp_code": "1234"}, "otp_code"), ({**ADMIN_LOGIN, "otp": "123456"}, "otp"),
])
async def test_admin_login_bad_input_is_422(api, payload, field):
    reply = await api("POST", "/api/auth/admin/login", json=payload)
    assert reply.status == 422 and field in reply.json["field_errors"]


@pytest.mark.gen_test
async def test_admin_forgot_and_reset_password(api, services):
    ignored = await api("POST", "/api/auth/admin/forgot-password",
                        json={"email": BUYER})
    reply = await api("POST", "/api/auth/admin/forgot-password", json={"email": ADMIN})
    assert reply.status == ignored.status == 200 and reply.json == ignored.json
    mail = await wait_for_email(services, ADMIN, "password_reset")
    assert "/admin/reset-password?token=" in mail["text"]
    assert await services.db.emails.count_documents({"to": BUYER}) == 0
    token = token_in(mail["text"])
    user_route = await api("POST", "/api/auth/reset-password",
                           json={"token": token, "new_password": NEW_PASSWORD})
    assert user_route.status == 401
    done = await api("POST", "/api/auth/admin/reset-password",
                     json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status == 200
    login = await api("POST", "/api/auth/admin/login",
                      json={"email": ADMIN, "password": NEW_PASSWORD,
                            "otp_code": await otp()})
    assert login.status == 200
    old = await api("POST", "/api/auth/admin/login",
                    json={**ADMIN_LOGIN, "otp_code": await otp(1)})
    assert old.status == 401 and old.json["error_code"] == "INVALID_CREDENTIALS"


@pytest.mark.gen_test
async def test_admin_reset_refused_once_the_account_is_no_longer_staff(api, services):
    await api("POST", "/api/auth/admin/forgot-password", json={"email": MODERATOR})
    token = token_in((await wait_for_email(services, MODERATOR,
                                           "password_reset"))["text"])
    await services.db.users.update_one({"email": MODERATOR},
                                       {"$set": {"staff_role": None}})
    reply = await api("POST", "/api/auth/admin/reset-password",
                      json={"token": token, "new_password": NEW_PASSWORD})
    assert reply.status == 403 and reply.json["error_code"] == "NOT_STAFF"
