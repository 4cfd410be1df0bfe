"""Auth core (seed 000 §1, seed 001 §19-20): register, login, refresh, logout, me,
and bad input on every credential route."""
import json

import jwt
import pytest
from auth_support import PASSWORD, TOKEN_KEYS, register
from demo_accounts import ADMIN, BUYER, CREATOR, DEMO_PASSWORD, MODERATOR


def cookie_of(reply) -> str:
    """The Set-Cookie header of the refresh token."""
    return reply.headers.get("Set-Cookie", "")


# --------------------------------------------------------------------------- register

@pytest.mark.gen_test
async def test_register_returns_201_tokens_and_stores_hashed_password(api, services):
    reply = await register(api, "Maker_1", "Maker@Example.com", full_name="Mia Maker",
                           user_type="creator")
    assert reply.status == 201, reply.json
    assert set(reply.json) == TOKEN_KEYS
    assert reply.json["token_type"] == "bearer" and reply.json["expires_in"] == 900
    assert reply.json["accessToken"] == reply.json["access_token"]
    assert reply.json["refreshToken"] == reply.json["refresh_token"]
    user = reply.json["user"]
    assert user["email"] == "maker@example.com" and user["username"] == "Maker_1"
    assert user["user_type"] == "creator" and user["is_verified"] is False
    assert "password_hash" not in user and "totp_secret" not in user
    stored = await services.db.users.find_one({"email": "maker@example.com"})
    assert stored["password_hash"].startswith("$2b$") and PASSWORD not in str(stored)
    cookie = cookie_of(reply)
    assert f"refresh_token={reply.json['refresh_token']}" in cookie
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/api/auth"):
        assert attribute in cookie
    me = await api("GET", "/api/auth/me", token=reply.json["access_token"])
    assert me.status == 200 and me.json["user"]["username"] == "Maker_1"


@pytest.mark.gen_test
async def test_register_defaults_to_buyer_and_never_gives_staff(api, services):
    reply = await register(api, "plainbuyer")
    assert reply.status == 201 and reply.json["user"]["user_type"] == "buyer"
    for user_type in ("admin", "superadmin", "moderator"):
        bad = await register(api, f"sneaky{user_type}", user_type=user_type)
        assert bad.status == 422 and "user_type" in bad.json["field_errors"]
    staff = await register(api, "sneaky", staff_role="superadmin")
    assert staff.status == 422 and "staff_role" in staff.json["field_errors"]
    assert await services.db.users.count_documents({"username_lower": {"$regex": "^sneaky"}}) == 0


@pytest.mark.gen_test
async def test_register_duplicate_email_and_username_are_409(api, services):
    email_taken = await register(api, "someoneelse", "BUYER@hwc3d.com")
    assert email_taken.status == 409 and email_taken.json["error_code"] == "EMAIL_ALREADY_EXISTS"
    name_taken = await register(api, "Buyer", "fresh@example.com")
    assert name_taken.status == 409
    assert name_taken.json["error_code"] == "USERNAME_ALREADY_EXISTS"
    assert await services.db.users.count_documents({}) == 6


@pytest.mark.gen_test
@pytest.mark.parametrize("field,value", [
    ("username", "ab"), ("username", "x" * 31), ("username", "bad name"), ("username", "bad@x"),
    ("password", "short1"), ("password", "nodigitshere"), ("password", "12345678901"),
    ("password", "é1" * 25),  # 25 letters of 2 bytes + 25 digits = 75 bytes > 72
    ("email", "not-an-email"), ("email", 42), ("full_name", "x" * 101),
])
async def test_register_rejects_bad_fields_with_422(api, services, field, value):
    payload = {"email": "ok@example.com", "username": "okname", "password": PASSWORD,
               field: value}
    reply = await api("POST", "/api/auth/register", json=payload)
    assert reply.status == 422, reply.json
    assert reply.json["error_code"] == "VALIDATION_ERROR" and field in reply.json["field_errors"]
    assert await services.db.users.count_documents({"email": "ok@example.com"}) == 0


@pytest.mark.gen_test
async def test_register_password_limit_is_bytes_not_characters(api):
    ok = await register(api, "bytes72", password="a1" + "b" * 70)  # exactly 72 bytes
    assert ok.status == 201
    too_long = await register(api, "bytes73", password="a1" + "b" * 71)
    assert too_long.status == 422 and "password" in too_long.json["field_errors"]


@pytest.mark.gen_test
async def test_register_missing_unknown_and_malformed(api):
    missing = await api("POST", "/api/auth/register", json={})
    assert missing.status == 422
    assert set(missing.json["field_errors"]) == {"email", "username", "password"}
    unknown = await register(api, "unknownfield", is_verified=True)
    assert unknown.status == 422 and "is_verified" in unknown.json["field_errors"]
    malformed = await api("POST", "/api/auth/register", body=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400 and malformed.json["error_code"] == "BAD_REQUEST"
    not_object = await api("POST", "/api/auth/register", json=["a", "b"])
    assert not_object.status == 422


# --------------------------------------------------------------------------- login

@pytest.mark.gen_test
@pytest.mark.parametrize("field,login", [
    ("email", "Newbie@Example.com"), ("username", "NEWBIE"), ("usernameOrEmail", "newbie"),
    ("usernameOrEmail", "newbie@example.com"),
])
async def test_login_by_email_username_or_either(api, services, field, login):
    await register(api)
    reply = await api("POST", "/api/auth/login", json={field: login, "password": PASSWORD})
    assert reply.status == 200, reply.json
    assert set(reply.json) == TOKEN_KEYS and reply.json["user"]["username"] == "newbie"
    claims = jwt.decode(reply.json["access_token"], options={"verify_signature": False})
    assert claims["sub"] == reply.json["user"]["id"] and claims["roles"] == ["buyer", "user"]
    assert claims["exp"] - claims["iat"] == 900 and claims["type"] == "access"
    stored = await services.db.users.find_one({"username": "newbie"})
    assert stored["last_login"] is not None


@pytest.mark.gen_test
async def test_demo_account_logs_in_with_demo_password(api):
    reply = await api("POST", "/api/auth/login",
                      json={"email": CREATOR, "password": DEMO_PASSWORD})
    assert reply.status == 200 and reply.json["user"]["user_type"] == "creator"


@pytest.mark.gen_test
async def test_wrong_password_and_unknown_account_look_the_same(api):
    await register(api)
    wrong = await api("POST", "/api/auth/login", json={"email": "newbie@example.com",
                                                       "password": "Wrong12345"})
    unknown = await api("POST", "/api/auth/login", json={"email": "ghost@example.com",
                                                         "password": "Wrong12345"})
    too_long = await api("POST", "/api/auth/login", json={"username": "newbie",
                                                          "password": "a1" * 50})
    for reply in (wrong, unknown, too_long):
        assert reply.status == 401
        assert reply.json["error_code"] == "INVALID_CREDENTIALS"
        assert reply.json["detail"] == wrong.json["detail"]
        assert "access_token" not in reply.json


@pytest.mark.gen_test
async def test_banned_or_inactive_account_is_403_only_with_the_right_password(api, services):
    await register(api, "troll")
    await register(api, "sleeper")
    await services.db.users.update_one({"username": "troll"}, {"$set": {"is_banned": True}})
    await services.db.users.update_one({"username": "sleeper"}, {"$set": {"is_active": False}})
    for name in ("troll", "sleeper"):
        right = await api("POST", "/api/auth/login", json={"username": name, "password": PASSWORD})
        assert right.status == 403 and right.json["error_code"] == "ACCOUNT_DISABLED"
        wrong = await api("POST", "/api/auth/login", json={"username": name,
                                                           "password": "Wrong12345"})
        assert wrong.status == 401


@pytest.mark.gen_test
async def test_oauth_only_account_cannot_log_in_with_a_password(api, services):
    await register(api, "oauthonly")
    await services.db.users.update_one({"username": "oauthonly"},
                                       {"$set": {"password_hash": None}})
    reply = await api("POST", "/api/auth/login", json={"username": "oauthonly",
                                                       "password": PASSWORD})
    assert reply.status == 401 and reply.json["error_code"] == "INVALID_CREDENTIALS"


@pytest.mark.gen_test
@pytest.mark.parametrize("payload,field", [
    ({"password": PASSWORD}, "email"),
    ({"email": "", "password": PASSWORD}, "email"),
    ({"email": BUYER}, "password"),
    ({"email": BUYER, "password": 12345678}, "password"),
    ({"email": BUYER, "password": PASSWORD, "remember": True}, "remember"),
])
async def test_login_bad_input_is_422(api, payload, field):
    reply = await api("POST", "/api/auth/login", json=payload)
    assert reply.status == 422 and field in reply.json["field_errors"]


@pytest.mark.gen_test
async def test_staff_with_totp_gets_a_challenge_not_tokens_from_plain_login(api):
    reply = await api("POST", "/api/auth/login", json={"email": ADMIN,
                                                       "password": DEMO_PASSWORD})
    assert reply.status == 200
    assert reply.json["otp_required"] is True and reply.json["challenge_token"]
    assert "access_token" not in reply.json and "Set-Cookie" not in reply.headers


# --------------------------------------------------------------------------- refresh

@pytest.mark.gen_test
async def test_refresh_rotates_from_body_bearer_and_cookie(api):
    first = (await register(api)).json["refresh_token"]
    by_body = await api("POST", "/api/auth/refresh", json={"refresh_token": first})
    assert by_body.status == 200 and set(by_body.json) == TOKEN_KEYS
    second = by_body.json["refresh_token"]
    assert second != first and f"refresh_token={second}" in cookie_of(by_body)
    by_camel = await api("POST", "/api/auth/refresh", json={"refreshToken": second})
    assert by_camel.status == 200
    third = by_camel.json["refresh_token"]
    by_bearer = await api("POST", "/api/auth/refresh", token=third)
    assert by_bearer.status == 200
    fourth = by_bearer.json["refresh_token"]
    by_cookie = await api("POST", "/api/auth/refresh",
                          headers={"Cookie": f"refresh_token={fourth}"})
    assert by_cookie.status == 200
    me = await api("GET", "/api/auth/me", token=by_cookie.json["access_token"])
    assert me.status == 200 and me.json["user"]["username"] == "newbie"


@pytest.mark.gen_test
async def test_reused_refresh_token_is_403_and_revokes_the_family(api, services):
    old = (await register(api)).json["refresh_token"]
    rotated = await api("POST", "/api/auth/refresh", json={"refresh_token": old})
    current = rotated.json["refresh_token"]
    reuse = await api("POST", "/api/auth/refresh", json={"refresh_token": old})
    assert reuse.status == 403 and reuse.json["error_code"] == "REFRESH_TOKEN_REUSED"
    after = await api("POST", "/api/auth/refresh", json={"refresh_token": current})
    assert after.status == 403 and after.json["error_code"] == "INVALID_REFRESH_TOKEN"
    assert await services.db.refresh_tokens.count_documents({"status": "active"}) == 0


@pytest.mark.gen_test
async def test_refresh_with_nothing_is_401_and_garbage_403(api):
    nothing = await api("POST", "/api/auth/refresh")
    assert nothing.status == 401 and nothing.json["error_code"] == "INVALID_REFRESH_TOKEN"
    assert nothing.headers["Www-Authenticate"] == "Bearer"
    garbage = await api("POST", "/api/auth/refresh", json={"refresh_token": "not-a-token"})
    assert garbage.status == 403
    access = (await register(api)).json["access_token"]
    access_as_refresh = await api("POST", "/api/auth/refresh", json={"refresh_token": access})
    assert access_as_refresh.status == 403
    wrong_type = await api("POST", "/api/auth/refresh", json={"refresh_token": 5})
    assert wrong_type.status == 422
    malformed = await api("POST", "/api/auth/refresh", body=b"[",
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400


@pytest.mark.gen_test
async def test_refresh_of_a_banned_account_is_403(api, services):
    refresh = (await register(api, "later_banned")).json["refresh_token"]
    await services.db.users.update_one({"username": "later_banned"},
                                       {"$set": {"is_banned": True}})
    reply = await api("POST", "/api/auth/refresh", json={"refresh_token": refresh})
    assert reply.status == 403 and reply.json["error_code"] == "ACCOUNT_DISABLED"


# --------------------------------------------------------------------------- logout

@pytest.mark.gen_test
async def test_logout_kills_access_and_refresh_tokens_and_clears_cookie(api):
    session = (await register(api)).json
    other = (await api("POST", "/api/auth/login", json={"username": "newbie",
                                                        "password": PASSWORD})).json
    reply = await api("POST", "/api/auth/logout", token=session["access_token"],
                      json={"refresh_token": session["refresh_token"]})
    assert reply.status == 200 and reply.json == {"message": "Logged out"}
    assert 'refresh_token=""' in cookie_of(reply) and "Path=/api/auth" in cookie_of(reply)
    me = await api("GET", "/api/auth/me", token=session["access_token"])
    assert me.status == 401 and me.json["error_code"] == "TOKEN_REVOKED"
    refresh = await api("POST", "/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status == 403
    # the other device's session is untouched
    assert (await api("GET", "/api/auth/me", token=other["access_token"])).status == 200
    assert (await api("POST", "/api/auth/refresh",
                      json={"refresh_token": other["refresh_token"]})).status == 200


@pytest.mark.gen_test
async def test_logout_with_access_token_alone_ends_that_session(api):
    session = (await register(api)).json
    reply = await api("POST", "/api/auth/logout", token=session["access_token"])
    assert reply.status == 200
    refresh = await api("POST", "/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status == 403


@pytest.mark.gen_test
async def test_logout_with_refresh_cookie_alone(api):
    session = (await register(api)).json
    reply = await api("POST", "/api/auth/logout",
                      headers={"Cookie": f"refresh_token={session['refresh_token']}"})
    assert reply.status == 200
    refresh = await api("POST", "/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status == 403


@pytest.mark.gen_test
async def test_logout_without_credentials_is_401(api):
    reply = await api("POST", "/api/auth/logout")
    assert reply.status == 401 and reply.json["error_code"] == "UNAUTHORIZED"
    unknown = await api("POST", "/api/auth/logout", json={"logout_everywhere": True})
    assert unknown.status == 422


# --------------------------------------------------------------------------- me

@pytest.mark.gen_test
async def test_me_returns_user_and_claims(api, tokens):
    token = await tokens(CREATOR)
    reply = await api("GET", "/api/auth/me", token=token)
    assert reply.status == 200
    assert reply.json["user"]["email"] == CREATOR
    assert "password_hash" not in reply.json["user"]
    claims = reply.json["claims"]
    assert claims["sub"] == "650000000000000000000003" and claims["roles"] == ["creator", "user"]
    assert isinstance(claims["iat"], int) and claims["exp"] == claims["iat"] + 900


@pytest.mark.gen_test
async def test_me_needs_a_valid_access_token(api, services):
    assert (await api("GET", "/api/auth/me")).status == 401
    bad = await api("GET", "/api/auth/me", token="nonsense")
    assert bad.status == 401 and bad.json["error_code"] == "INVALID_TOKEN"
    forged = jwt.encode({"sub": "650000000000000000000001", "roles": ["superadmin"],
                         "type": "access", "jti": "x", "iat": 1, "exp": 9999999999},
                        "a-wrong-secret-that-is-long-enough-for-hs256", algorithm="HS256")
    assert (await api("GET", "/api/auth/me", token=forged)).status == 401
    refresh = (await register(api)).json["refresh_token"]
    assert (await api("GET", "/api/auth/me", token=refresh)).status == 401


@pytest.mark.gen_test
async def test_me_for_staff_lists_the_staff_role(api, tokens):
    reply = await api("GET", "/api/auth/me", token=await tokens(MODERATOR))
    assert reply.json["claims"]["roles"] == ["buyer", "user", "moderator"]
    assert reply.json["user"]["is_staff"] is True


@pytest.mark.gen_test
async def test_every_auth_route_answers_json_errors_not_500(api):
    routes = ["register", "login", "refresh", "logout", "verify-email", "resend-verification",
              "forgot-password", "reset-password", "admin/login", "admin/verify-otp",
              "admin/forgot-password", "admin/reset-password", "oauth/google", "oauth/github",
              "oauth/discord", "oauth/myspace"]
    for route in routes:
        reply = await api("POST", f"/api/auth/{route}", body=b"\xff\xfe",
                          headers={"Content-Type": "application/json"})
        assert reply.status == 400, route
        assert json.loads(reply.body)["error_code"] == "BAD_REQUEST"
        wrong_type = await api("POST", f"/api/auth/{route}", json={"email": ["x"], "code": 1,
                                                                  "token": {}, "password": None})
        assert wrong_type.status in (401, 422), route
        assert wrong_type.json["error_code"] in ("VALIDATION_ERROR", "UNAUTHORIZED"), route
