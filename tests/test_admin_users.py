"""User administration: /api/users (list, create, patch, delete) and /api/admin/users/*."""
from __future__ import annotations

import time
import uuid

import jwt
import pytest
from bson import ObjectId
from demo_accounts import (
    ADMIN,
    ADMIN_ID,
    BUYER,
    BUYER2_ID,
    BUYER_ID,
    CREATOR2,
    CREATOR2_ID,
    CREATOR_ID,
    DEMO_PASSWORD,
    MODERATOR,
)


async def make_admin(api, tokens) -> str:
    """A plain admin (not superadmin) created by the superadmin; returns its access token."""
    reply = await api("POST", "/api/users", token=await tokens(ADMIN), json={
        "email": "ops@hwc3d.com", "username": "ops", "password": "OpsPass123",
        "full_name": "Ops Admin", "staff_role": "admin", "is_verified": True})
    assert reply.status == 201, reply.json
    return await tokens("ops@hwc3d.com")


def token_issued_before(services, user_id: str, seconds: int = 30) -> str:
    settings = services.settings
    iat = int(time.time()) - seconds
    return jwt.encode({"sub": user_id, "roles": ["buyer"], "type": "access",
                       "jti": uuid.uuid4().hex, "sid": None, "iat": iat, "exp": iat + 900},
                      settings.jwt_secret_key, algorithm=settings.jwt_algorithm)


# --------------------------------------------------------------------------- list

@pytest.mark.gen_test
async def test_admin_list_with_filters(api, tokens):
    path = "/api/admin/users"
    token = await tokens(ADMIN)
    reply = await api("GET", path, token=token)
    assert reply.status == 200
    page = reply.json
    assert page["total"] == 6 and page["page"] == 1 and page["limit"] == 20 and page["pages"] == 1
    assert "email" in page["items"][0] and "password_hash" not in page["items"][0]
    assert page["items"][0]["username"] == "buyer2"  # newest first

    reply = await api("GET", f"{path}?search=CREATOR", token=token)
    assert sorted(u["username"] for u in reply.json["items"]) == ["creator", "creator2"]
    reply = await api("GET", f"{path}?search=hwc3d.com&user_type=buyer&limit=2", token=token)
    assert reply.json["total"] == 4 and len(reply.json["items"]) == 2
    reply = await api("GET", f"{path}?search=Ada", token=token)
    assert [u["id"] for u in reply.json["items"]] == [ADMIN_ID]
    reply = await api("GET", f"{path}?search=.*", token=token)  # literal, not a regex
    assert reply.json["total"] == 0
    reply = await api("GET", f"{path}?is_verified=false", token=token)
    assert reply.json["total"] == 0  # every demo account is verified
    reply = await api("GET", f"{path}?is_verified=true&user_type=creator", token=token)
    assert reply.json["total"] == 2


@pytest.mark.gen_test
async def test_users_list_is_a_bare_array_with_paging_headers(api, tokens):
    token = await tokens(ADMIN)
    reply = await api("GET", "/api/users", token=token)
    assert reply.status == 200 and isinstance(reply.json, list)
    assert reply.headers["X-Total-Count"] == "6" and len(reply.json) == 6
    assert reply.json[0]["username"] == "buyer2" and "email" in reply.json[0]
    assert reply.headers["Link"] == ('</api/users?page=1&limit=20>; rel="first", '
                                     '</api/users?page=1&limit=20>; rel="last"')
    reply = await api("GET", "/api/users?limit=2&page=2&search=hwc3d.com", token=token)
    assert [u["username"] for u in reply.json] == ["creator2", "creator"]
    assert reply.headers["X-Total-Count"] == "6"
    links = dict((rel.split('"')[1], url.strip("<> ")) for url, rel in
                 (part.split(";") for part in reply.headers["Link"].split(", ")))
    assert links == {"first": "/api/users?page=1&limit=2&search=hwc3d.com",
                     "prev": "/api/users?page=1&limit=2&search=hwc3d.com",
                     "next": "/api/users?page=3&limit=2&search=hwc3d.com",
                     "last": "/api/users?page=3&limit=2&search=hwc3d.com"}
    reply = await api("GET", "/api/users?search=Ada", token=token)
    assert [u["id"] for u in reply.json] == [ADMIN_ID] and reply.headers["X-Total-Count"] == "1"


@pytest.mark.gen_test
async def test_admin_list_status_filter(api, tokens):
    token = await tokens(ADMIN)
    await api("POST", "/api/admin/users/buyer/ban", token=token, json={"reason": "spam"})
    await api("PATCH", "/api/users/buyer2", token=token, json={"is_active": False})
    banned = await api("GET", "/api/admin/users?status=banned", token=token)
    assert [u["username"] for u in banned.json["items"]] == ["buyer"]
    inactive = await api("GET", "/api/admin/users?status=inactive", token=token)
    assert [u["username"] for u in inactive.json["items"]] == ["buyer2"]
    active = await api("GET", "/api/admin/users?status=active", token=token)
    assert active.json["total"] == 4


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/api/users", "/api/admin/users"])
async def test_admin_list_auth_and_bad_query(api, tokens, path):
    assert (await api("GET", path)).status == 401
    reply = await api("GET", path, token=await tokens(BUYER))
    assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN"
    reply = await api("GET", path, token=await tokens(MODERATOR))
    assert reply.status == 403  # moderators lack users.manage
    token = await tokens(ADMIN)
    for bad, field in (("status=gone", "status"), ("user_type=admin", "user_type"),
                       ("limit=0", "limit"), ("is_verified=maybe", "is_verified"),
                       ("search=" + "x" * 101, "search")):
        reply = await api("GET", f"{path}?{bad}", token=token)
        assert reply.status == 422 and field in reply.json["field_errors"], bad


# --------------------------------------------------------------------------- create

@pytest.mark.gen_test
async def test_superadmin_creates_staff_and_admin_creates_users(api, tokens, services):
    admin = await make_admin(api, tokens)
    stored = await services.db.users.find_one({"email": "ops@hwc3d.com"})
    assert stored["staff_role"] == "admin" and stored["password_hash"].startswith("$2")
    action = await services.db.admin_actions.find_one({"action_type": "user_created"})
    assert action["admin_id"] == ObjectId(ADMIN_ID) and action["target_id"] == stored["_id"]

    reply = await api("POST", "/api/users", token=admin, json={
        "email": "New@Example.com", "username": "newbie", "password": "Newbie123",
        "user_type": "creator"})
    assert reply.status == 201
    assert reply.json["email"] == "new@example.com" and reply.json["user_type"] == "creator"
    assert reply.json["staff_role"] is None

    reply = await api("POST", "/api/users", token=admin, json={
        "email": "mod2@example.com", "username": "mod2", "password": "Mod2pass123",
        "staff_role": "moderator"})
    assert reply.status == 403
    assert await services.db.users.count_documents({"username": "mod2"}) == 0


@pytest.mark.gen_test
async def test_create_user_bad_input(api, tokens, services):
    token = await tokens(ADMIN)
    base = {"email": "x@example.com", "username": "xuser", "password": "Xpass1234"}
    cases = [
        ({**base, "password": "weak"}, 422, "password"),
        ({**base, "email": "not-an-email"}, 422, "email"),
        ({**base, "username": "no spaces"}, 422, "username"),
        ({**base, "staff_role": "god"}, 422, "staff_role"),
        ({**base, "is_admin": True}, 422, "is_admin"),
        ({"email": "x@example.com"}, 422, "username"),
        ({**base, "email": BUYER}, 409, None),
        ({**base, "username": "Creator"}, 409, None),
    ]
    for payload, status, field in cases:
        reply = await api("POST", "/api/users", token=token, json=payload)
        assert reply.status == status, (payload, reply.json)
        if field:
            assert field in reply.json["field_errors"]
    assert await services.db.users.count_documents({}) == 6
    reply = await api("POST", "/api/users", token=await tokens(BUYER), json=base)
    assert reply.status == 403
    reply = await api("POST", "/api/users", token=token, body="{oops",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400


# --------------------------------------------------------------------------- PATCH /api/users/{ref}

@pytest.mark.gen_test
async def test_user_patches_own_profile_but_not_account_fields(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("PATCH", f"/api/users/{BUYER_ID}", token=token, json={"bio": "Hello"})
    assert reply.status == 200 and reply.json["bio"] == "Hello"
    for fields in ({"is_verified": True}, {"is_verified_creator": True}, {"is_active": True},
                   {"staff_role": "admin"}):
        reply = await api("PATCH", "/api/users/buyer", token=token, json=fields)
        assert reply.status == 403, fields
    stored = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    assert stored["is_verified_creator"] is False and stored["staff_role"] is None
    assert await services.db.admin_actions.count_documents({}) == 0


@pytest.mark.gen_test
async def test_buyer_cannot_patch_another_user(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("PATCH", "/api/users/buyer2", token=token, json={"bio": "pwned"})
    assert reply.status == 403
    reply = await api("PATCH", f"/api/users/{CREATOR_ID}", token=await tokens(MODERATOR),
                      json={"bio": "pwned"})
    assert reply.status == 403
    assert (await services.db.users.find_one({"_id": ObjectId(BUYER2_ID)}))["bio"] is None
    assert (await api("PATCH", "/api/users/buyer2", json={"bio": "x"})).status == 401
    reply = await api("PATCH", "/api/users/ffffffffffffffffffffffff", token=token, json={})
    assert reply.status == 404
    reply = await api("PATCH", "/api/users/nobody-here", token=token, json={"bio": "x"})
    assert reply.status == 404


@pytest.mark.gen_test
async def test_admin_patches_account_fields_and_deactivation_locks_out(api, tokens, services):
    admin = await make_admin(api, tokens)
    buyer = await tokens(BUYER)
    reply = await api("PATCH", "/api/users/buyer", token=admin,
                      json={"user_type": "creator", "is_verified_creator": True,
                            "is_verified": True, "full_name": "Made Creator"})
    assert reply.status == 200, reply.json
    assert reply.json["user_type"] == "creator" and reply.json["is_verified_creator"] is True
    reply = await api("PATCH", "/api/users/buyer", token=admin, json={"is_active": False})
    assert reply.status == 200 and reply.json["is_active"] is False
    reply = await api("GET", "/api/users/me", token=buyer)
    assert reply.status == 403 and reply.json["error_code"] == "ACCOUNT_DISABLED"
    assert await services.db.refresh_tokens.count_documents(
        {"user_id": ObjectId(BUYER_ID), "status": "active"}) == 0
    actions = await services.db.admin_actions.count_documents(
        {"action_type": "user_updated", "target_id": ObjectId(BUYER_ID)})
    assert actions == 2

    # staff roles and staff accounts are the superadmin's
    reply = await api("PATCH", "/api/users/creator", token=admin, json={"staff_role": "moderator"})
    assert reply.status == 403
    reply = await api("PATCH", "/api/users/moderator", token=admin, json={"bio": "x"})
    assert reply.status == 403
    reply = await api("PATCH", "/api/users/ops", token=admin, json={"is_active": False})
    assert reply.status == 403  # not yourself
    superadmin = await tokens(ADMIN)
    reply = await api("PATCH", "/api/users/creator", token=superadmin,
                      json={"staff_role": "moderator"})
    assert reply.status == 200 and reply.json["staff_role"] == "moderator"
    reply = await api("PATCH", "/api/users/admin", token=superadmin, json={"staff_role": None})
    assert reply.status == 403


# --------------------------------------------------------------------------- DELETE /api/users/{ref}

@pytest.mark.gen_test
@pytest.mark.parametrize("prefix", ["/api/users", "/api/admin/users"])
async def test_only_superadmin_deletes_users(api, tokens, services, prefix):
    admin = await make_admin(api, tokens)
    buyer = await tokens(BUYER)
    assert (await api("DELETE", f"{prefix}/buyer2", token=buyer)).status == 403
    assert (await api("DELETE", f"{prefix}/buyer2", token=admin)).status == 403
    assert (await api("DELETE", f"{prefix}/buyer2")).status == 401
    superadmin = await tokens(ADMIN)
    reply = await api("DELETE", f"{prefix}/admin", token=superadmin)
    assert reply.status == 400 and reply.json["error_code"] == "CANNOT_DELETE_SELF"
    assert (await api("DELETE", f"{prefix}/not-a-user", token=superadmin)).status == 404
    assert (await api("DELETE", f"{prefix}/{'0' * 24}", token=superadmin)).status == 404

    reply = await api("DELETE", f"{prefix}/{BUYER_ID}", token=superadmin)
    if prefix == "/api/users":  # the camelCase contract's answer
        assert reply.status == 200 and reply.json == {"message": "User deleted"}
    else:
        assert reply.status == 204
    assert (await api("GET", "/api/users/me", token=buyer)).status == 401
    stored = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    assert stored["email"].startswith("deleted-") and stored["password_hash"] is None
    assert await services.db.admin_actions.count_documents({"action_type": "user_deleted"}) == 1
    assert (await api("DELETE", f"{prefix}/{BUYER_ID}", token=superadmin)).status == 404


# --------------------------------------------------------------------------- /api/admin/users/{ref}

@pytest.mark.gen_test
async def test_admin_user_detail_and_put(api, tokens, services):
    token = await tokens(ADMIN)
    reply = await api("PUT", f"/api/admin/users/{CREATOR2_ID}", token=token,
                      json={"is_verified_creator": True, "bio": "Verified"})
    assert reply.status == 200 and reply.json["is_verified_creator"] is True
    reply = await api("GET", "/api/admin/users/creator2", token=token)
    assert reply.status == 200
    detail = reply.json
    assert detail["email"] == CREATOR2 and detail["bio"] == "Verified"
    assert detail["recent_actions"][0]["action_type"] == "user_updated"
    assert detail["recent_actions"][0]["details"]["fields"] == ["bio", "is_verified_creator"]
    assert "password_hash" not in detail and "totp_secret" not in detail

    for bad in ("ffffffffffffffffffffffff", "nobody-here"):
        assert (await api("GET", f"/api/admin/users/{bad}", token=token)).status == 404
    reply = await api("PUT", "/api/admin/users/creator2", token=token, json={"is_banned": True})
    assert reply.status == 422 and "is_banned" in reply.json["field_errors"]
    reply = await api("PUT", "/api/admin/users/creator2", token=token, json={"bio": "x" * 501})
    assert reply.status == 422
    moderator = await tokens(MODERATOR)
    assert (await api("GET", "/api/admin/users/creator2", token=moderator)).status == 403
    reply = await api("PUT", "/api/admin/users/creator2", token=moderator, json={"bio": "m"})
    assert reply.status == 403
    assert (await api("GET", "/api/admin/users/creator2")).status == 401


@pytest.mark.gen_test
async def test_ban_and_unban(api, tokens, services):
    token = await tokens(ADMIN)
    buyer = await tokens(BUYER)
    reply = await api("POST", "/api/admin/users/buyer/ban", token=token,
                      json={"reason": "Repeated spam"})
    assert reply.status == 200
    assert reply.json["is_banned"] is True and reply.json["ban_reason"] == "Repeated spam"
    reply = await api("GET", "/api/users/me", token=buyer)
    assert reply.status == 403 and reply.json["error_code"] == "ACCOUNT_DISABLED"
    assert await services.db.refresh_tokens.count_documents(
        {"user_id": ObjectId(BUYER_ID), "status": "active"}) == 0
    assert (await api("GET", "/api/users/buyer")).status == 404
    reply = await api("POST", f"/api/admin/users/{BUYER_ID}/ban", token=token, json={"reason": "x"})
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_BANNED"

    reply = await api("POST", "/api/admin/users/buyer/unban", token=token)
    assert reply.status == 200 and reply.json["is_banned"] is False
    assert reply.json["ban_reason"] is None
    # tokens issued before the ban do not come back; a new sign-in works
    assert (await api("GET", "/api/users/me",
                      token=token_issued_before(services, BUYER_ID))).status == 401
    assert (await api("GET", "/api/users/me", token=await tokens(BUYER))).status == 200
    reply = await api("POST", "/api/admin/users/buyer/unban", token=token)
    assert reply.status == 409 and reply.json["error_code"] == "NOT_BANNED"
    kinds = [a["action_type"] async for a in services.db.admin_actions.find(
        {"target_id": ObjectId(BUYER_ID)}).sort("created_at", 1)]
    assert kinds == ["user_banned", "user_unbanned"]


@pytest.mark.gen_test
async def test_ban_rules(api, tokens, services):
    moderator = await tokens(MODERATOR)
    reply = await api("POST", "/api/admin/users/buyer/ban", token=moderator, json={"reason": "x"})
    assert reply.status == 403
    buyer = await tokens(BUYER)
    reply = await api("POST", "/api/admin/users/buyer2/ban", token=buyer, json={"reason": "x"})
    assert reply.status == 403
    assert (await api("POST", "/api/admin/users/buyer2/ban", json={"reason": "x"})).status == 401
    admin = await make_admin(api, tokens)
    reply = await api("POST", "/api/admin/users/buyer2/ban", token=admin, json={})
    assert reply.status == 422 and "reason" in reply.json["field_errors"]
    reply = await api("POST", "/api/admin/users/buyer2/ban", token=admin,
                      json={"reason": "r" * 501})
    assert reply.status == 422
    reply = await api("POST", "/api/admin/users/buyer2/ban", token=admin, body="[",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400
    reply = await api("POST", "/api/admin/users/ops/ban", token=admin, json={"reason": "me"})
    assert reply.status == 400 and reply.json["error_code"] == "CANNOT_TARGET_SELF"
    reply = await api("POST", "/api/admin/users/moderator/ban", token=admin, json={"reason": "x"})
    assert reply.status == 403  # staff accounts: superadmin only
    reply = await api("POST", "/api/admin/users/ffffffffffffffffffffffff/ban", token=admin,
                      json={"reason": "x"})
    assert reply.status == 404
    assert await services.db.users.count_documents({"is_banned": True}) == 0


@pytest.mark.gen_test
async def test_verify_creator(api, tokens, services):
    token = await tokens(ADMIN)
    reply = await api("PUT", "/api/admin/users/creator", token=token,
                      json={"is_verified_creator": False})
    assert reply.status == 200 and reply.json["is_verified_creator"] is False
    assert (await api("GET", "/api/users/creator")).json["is_verified_creator"] is False
    reply = await api("POST", "/api/admin/users/creator/verify", token=token)
    assert reply.status == 200 and reply.json["is_verified_creator"] is True
    again = await api("POST", f"/api/admin/users/{CREATOR_ID}/verify", token=token)
    assert again.status == 200 and again.json["is_verified_creator"] is True
    assert await services.db.admin_actions.count_documents({"action_type": "user_verified"}) == 1
    profile = await api("GET", "/api/users/creator")
    assert profile.json["is_verified_creator"] is True

    reply = await api("POST", "/api/admin/users/buyer/verify", token=token)
    assert reply.status == 400 and reply.json["error_code"] == "NOT_A_CREATOR"
    reply = await api("POST", "/api/admin/users/creator2/verify", token=token, json={"x": 1})
    assert reply.status == 422
    moderator = await tokens(MODERATOR)
    assert (await api("POST", "/api/admin/users/creator2/verify", token=moderator)).status == 403
    assert (await api("POST", "/api/admin/users/nobody-here/verify", token=token)).status == 404


@pytest.mark.gen_test
async def test_admin_created_account_can_sign_in_with_its_password(services, api, tokens):
    """The password set by the admin is stored as a bcrypt hash that verifies."""
    from documents import users

    reply = await api("POST", "/api/users", token=await tokens(ADMIN), json={
        "email": "pw@example.com", "username": "pwuser", "password": DEMO_PASSWORD})
    assert reply.status == 201
    stored = await users.get_by_login(services.db, "pwuser")
    assert await users.check_password(DEMO_PASSWORD, stored["password_hash"])
