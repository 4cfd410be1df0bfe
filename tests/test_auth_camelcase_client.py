"""The camelCase JWT auth contract's own client flow, and the snake_case frontend beside it.

A client of that contract registers with `{email, password, username, firstName, lastName}`,
reads the token claims at the top level of `GET /api/auth/me`, logs in by
`usernameOrEmail`, refreshes with the refresh token as `Authorization: Bearer`, reads
`statusCode`/`message`/`error` in error bodies, and administers users under `/api/users`
(bare arrays, `X-Total-Count`, `roles`, `isActive`, delete → 200 `{message}`).
"""
from __future__ import annotations

import pytest
from demo_accounts import ADMIN, BUYER

PASSWORD = "Secret123!"
CAMEL_USER = {"email": "nest@example.com", "password": PASSWORD, "username": "nestuser",
              "firstName": "Nest", "lastName": "Client"}


async def camel_login(api, login: str, password: str = PASSWORD) -> dict:
    reply = await api("POST", "/api/auth/login",
                      json={"usernameOrEmail": login, "password": password})
    assert reply.status == 200, reply.json
    assert reply.json["accessToken"] and reply.json["refreshToken"]
    return reply.json


def assert_error(reply, status: int, error: str) -> None:
    """The camelCase contract's error fields beside ours."""
    assert reply.status == status, reply.json
    body = reply.json
    assert body["statusCode"] == status and body["error"] == error
    assert body["message"] and body["detail"] and body["error_code"]


@pytest.mark.gen_test
async def test_register_me_logout_login_refresh(api):
    reply = await api("POST", "/api/auth/register", json=CAMEL_USER)
    assert reply.status == 201, reply.json
    access = reply.json["accessToken"]
    assert reply.json["refreshToken"] == reply.json["refresh_token"]
    user = reply.json["user"]
    assert user["firstName"] == "Nest" and user["lastName"] == "Client"
    assert user["full_name"] == "Nest Client" and user["isActive"] is True
    assert user["createdAt"] and user["updatedAt"]

    me = await api("GET", "/api/auth/me", token=access)
    assert me.status == 200
    assert me.json["sub"] == user["id"] and me.json["email"] == "nest@example.com"
    assert me.json["username"] == "nestuser" and "user" in me.json["roles"]
    assert isinstance(me.json["iat"], int) and me.json["exp"] > me.json["iat"]

    out = await api("POST", "/api/auth/logout", token=access)
    assert out.status == 200
    assert_error(await api("GET", "/api/auth/me", token=access), 401, "Unauthorized")

    by_email = await camel_login(api, "nest@example.com")
    by_username = await camel_login(api, "nestuser")
    assert by_email["user"]["id"] == by_username["user"]["id"] == user["id"]

    old = by_username["refreshToken"]
    refreshed = await api("POST", "/api/auth/refresh", headers={"Authorization": f"Bearer {old}"})
    assert refreshed.status == 200, refreshed.json
    assert refreshed.json["accessToken"] and refreshed.json["refreshToken"] != old
    me = await api("GET", "/api/auth/me", token=refreshed.json["accessToken"])
    assert me.status == 200 and me.json["username"] == "nestuser"

    reused = await api("POST", "/api/auth/refresh", headers={"Authorization": f"Bearer {old}"})
    assert_error(reused, 403, "Forbidden")
    assert reused.json["error_code"] == "REFRESH_TOKEN_REUSED"
    revoked = await api("POST", "/api/auth/refresh",
                        headers={"Authorization": f"Bearer {refreshed.json['refreshToken']}"})
    assert_error(revoked, 403, "Forbidden")  # the reuse revoked the whole family
    assert_error(await api("POST", "/api/auth/refresh",
                           headers={"Authorization": "Bearer not-a-token"}), 403, "Forbidden")
    assert_error(await api("POST", "/api/auth/refresh"), 401, "Unauthorized")


@pytest.mark.gen_test
async def test_user_administration_by_superadmin_admin_and_user(api, tokens):
    superadmin = await tokens(ADMIN)
    me = await api("GET", "/api/auth/me", token=superadmin)
    assert {"user", "superadmin", "super_admin"} <= set(me.json["roles"])

    created = await api("POST", "/api/users", token=superadmin, json={
        "email": "boss@example.com", "username": "boss", "password": PASSWORD,
        "firstName": "Grace", "lastName": "Hopper", "roles": ["user", "admin"]})
    assert created.status == 201, created.json
    assert created.json["staff_role"] == "admin" and "admin" in created.json["roles"]
    assert created.json["firstName"] == "Grace" and created.json["full_name"] == "Grace Hopper"
    admin = (await camel_login(api, "boss"))["accessToken"]  # staff without TOTP: tokens

    listing = await api("GET", "/api/users", token=admin)
    assert listing.status == 200 and isinstance(listing.json, list)
    assert int(listing.headers["X-Total-Count"]) == len(listing.json) == 7
    assert 'rel="first"' in listing.headers["Link"]
    assert all({"firstName", "lastName", "isActive", "createdAt", "updatedAt", "email",
                "roles"} <= set(u) for u in listing.json)

    plain = await api("POST", "/api/users", token=admin, json={
        "email": "plain@example.com", "username": "plain", "password": PASSWORD,
        "firstName": "Plain", "roles": ["user"]})
    assert plain.status == 201 and plain.json["staff_role"] is None
    assert plain.json["roles"] == ["buyer", "user"] and plain.json["full_name"] == "Plain"
    assert_error(await api("POST", "/api/users", token=admin, json={
        "email": "x@example.com", "username": "xx1", "password": PASSWORD,
        "roles": ["admin"]}), 403, "Forbidden")
    unknown = await api("POST", "/api/users", token=superadmin, json={
        "email": "y@example.com", "username": "yy1", "password": PASSWORD,
        "roles": ["user", "wizard"]})
    assert_error(unknown, 422, "Unprocessable Entity")
    assert unknown.json["message"] == ["roles: Unknown role: wizard"]

    user_id = plain.json["id"]
    got = await api("GET", f"/api/users/{user_id}", token=admin)
    assert got.status == 200
    assert got.json["email"] == "plain@example.com" and got.json["isActive"] is True
    assert "user" in got.json["roles"]
    patched = await api("PATCH", f"/api/users/{user_id}", token=admin,
                        json={"firstName": "Ada", "lastName": "Byron", "isActive": False})
    assert patched.status == 200, patched.json
    assert patched.json["firstName"] == "Ada" and patched.json["lastName"] == "Byron"
    assert patched.json["full_name"] == "Ada Byron" and patched.json["isActive"] is False
    assert patched.json["is_active"] is False

    buyer = await tokens(BUYER)
    for method, path, payload in (("GET", "/api/users", None),
                                  ("POST", "/api/users", {"email": "z@example.com",
                                                          "username": "zz1", "password": PASSWORD}),
                                  ("DELETE", f"/api/users/{user_id}", None)):
        assert_error(await api(method, path, token=buyer, json=payload), 403, "Forbidden")
    assert_error(await api("PATCH", "/api/users/buyer", token=buyer, json={"isActive": False}),
                 403, "Forbidden")  # isActive is for admins
    own = await api("PATCH", "/api/users/buyer", token=buyer, json={"firstName": "Bea"})
    assert own.status == 200 and own.json["firstName"] == "Bea"
    public = await api("GET", f"/api/users/{own.json['id']}", token=buyer)
    assert "email" not in public.json and "isActive" not in public.json

    assert_error(await api("DELETE", f"/api/users/{user_id}", token=admin), 403, "Forbidden")
    deleted = await api("DELETE", f"/api/users/{user_id}", token=superadmin)
    assert deleted.status == 200 and deleted.json == {"message": "User deleted"}
    assert_error(await api("GET", f"/api/users/{user_id}", token=admin), 404, "Not Found")


@pytest.mark.gen_test
async def test_duplicates_are_409_with_status_code_and_message(api, tokens):
    assert (await api("POST", "/api/auth/register", json=CAMEL_USER)).status == 201
    again = await api("POST", "/api/auth/register", json=CAMEL_USER)
    assert_error(again, 409, "Conflict")
    assert again.json["error_code"] == "EMAIL_ALREADY_EXISTS"
    assert again.json["message"] == again.json["detail"]
    taken = await api("POST", "/api/auth/register", json={**CAMEL_USER, "email": "n2@example.com"})
    assert_error(taken, 409, "Conflict")
    assert taken.json["error_code"] == "USERNAME_ALREADY_EXISTS"
    superadmin = await tokens(ADMIN)
    dup = await api("POST", "/api/users", token=superadmin, json={
        "email": "nest@example.com", "username": "other", "password": PASSWORD})
    assert_error(dup, 409, "Conflict")

    bad = await api("POST", "/api/auth/register", json={**CAMEL_USER, "email": "nope",
                                                         "firstName": 5})
    assert_error(bad, 422, "Unprocessable Entity")
    assert sorted(bad.json["message"]) == ["email: Not a valid email address.",
                                           "firstName: Not a valid string."]
    assert set(bad.json["field_errors"]) == {"email", "firstName"}


@pytest.mark.gen_test
async def test_snake_case_frontend_flow_unchanged_on_the_same_server(api):
    assert (await api("POST", "/api/auth/register", json=CAMEL_USER)).status == 201
    reply = await api("POST", "/api/auth/register", json={
        "email": "front@example.com", "username": "front3d", "password": PASSWORD,
        "full_name": "Front End", "user_type": "creator"})
    assert reply.status == 201
    session = reply.json
    assert {"user", "access_token", "refresh_token", "token_type", "expires_in"} <= set(session)
    assert session["token_type"] == "bearer" and session["user"]["user_type"] == "creator"
    assert session["user"]["full_name"] == "Front End"

    login = await api("POST", "/api/auth/login",
                      json={"email": "front@example.com", "password": PASSWORD})
    assert login.status == 200 and login.json["user"]["username"] == "front3d"
    token = login.json["access_token"]
    me = await api("GET", "/api/users/me", token=token)
    assert me.status == 200 and me.json["email"] == "front@example.com"
    assert me.json["user_type"] == "creator" and "creator" in me.json["roles"]
    put = await api("PUT", "/api/users/me", token=token, json={"bio": "Hi", "full_name": "F E"})
    assert put.status == 200 and put.json["full_name"] == "F E" and put.json["bio"] == "Hi"

    refreshed = await api("POST", "/api/auth/refresh",
                          json={"refresh_token": login.json["refresh_token"]})
    assert refreshed.status == 200 and refreshed.json["access_token"] != token
    auth_me = await api("GET", "/api/auth/me", token=refreshed.json["access_token"])
    assert auth_me.json["user"]["username"] == "front3d" and auth_me.json["claims"]["sub"]

    invalid = await api("PUT", "/api/users/me", token=token, json={"website": "nope"})
    assert invalid.status == 422 and invalid.json["error_code"] == "VALIDATION_ERROR"
    assert "website" in invalid.json["field_errors"] and invalid.json["detail"]

    out = await api("POST", "/api/auth/logout", token=refreshed.json["access_token"],
                    json={"refresh_token": refreshed.json["refresh_token"]})
    assert out.status == 200
    assert (await api("GET", "/api/users/me", token=refreshed.json["access_token"])).status == 401
