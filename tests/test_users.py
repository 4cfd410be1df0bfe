"""Users: own profile, password change, account deletion, public profiles."""
from __future__ import annotations

import time
import uuid

import jwt
import pytest
from bson import ObjectId
from demo_accounts import BUYER, BUYER2, BUYER2_ID, BUYER_ID, CREATOR, CREATOR_ID, DEMO_PASSWORD

from documents import users


def old_token(services, user_id: str, age_seconds: int = 30) -> str:
    """An access token for `user_id` issued `age_seconds` ago (another device's session)."""
    settings = services.settings
    iat = int(time.time()) - age_seconds
    claims = {"sub": user_id, "roles": ["buyer"], "type": "access", "jti": uuid.uuid4().hex,
              "sid": None, "iat": iat, "exp": iat + 900}
    return jwt.encode(claims, settings.jwt_secret_key, algorithm=settings.jwt_algorithm)


# --------------------------------------------------------------------------- GET/PUT /me

@pytest.mark.gen_test
async def test_get_me_shows_private_fields_but_no_secrets(api, tokens):
    reply = await api("GET", "/api/users/me", token=await tokens(BUYER))
    assert reply.status == 200
    me = reply.json
    assert me["id"] == BUYER_ID and me["email"] == BUYER
    assert me["profile"]["country"] == "Nigeria"
    assert me["roles"] == ["buyer", "user"] and me["has_password"] is True
    for secret in ("password_hash", "totp_secret", "tokens_valid_after", "username_lower"):
        assert secret not in me


@pytest.mark.gen_test
async def test_me_requires_a_token(api):
    for method, path in (("GET", "/api/users/me"), ("PUT", "/api/users/me"),
                         ("PUT", "/api/users/me/password"), ("DELETE", "/api/users/me/account"),
                         ("GET", "/api/users/me/followers"), ("GET", "/api/users/me/following")):
        reply = await api(method, path, json={})
        assert reply.status == 401, (method, path)
        assert reply.json["error_code"] == "UNAUTHORIZED"
    reply = await api("GET", "/api/users/me", token="not-a-jwt")
    assert reply.status == 401 and reply.json["error_code"] == "INVALID_TOKEN"


@pytest.mark.gen_test
async def test_put_me_updates_profile_fields(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("PUT", "/api/users/me", token=token, json={
        "full_name": "Bea Buyer", "bio": "3D Artist specializing in game assets",
        "avatar_url": "https://cdn.hwc3d.com/avatars/user1.jpg", "country": "Ghana",
        "city": "Accra", "phone": "+233 20 123 4567", "website": "https://bea.example.com",
        "twitter": "@bea_3d", "instagram": "https://instagram.com/bea", "portfolio_url": None,
        "skills": ["Blender", "Substance Painter", "ZBrush"], "software": ["Maya"],
        "username": "bea.buyer"})
    assert reply.status == 200, reply.json
    me = reply.json
    assert me["full_name"] == "Bea Buyer" and me["username"] == "bea.buyer"
    assert me["profile"]["skills"] == ["Blender", "Substance Painter", "ZBrush"]
    assert me["profile"]["country"] == "Ghana" and me["profile"]["phone"] == "+233 20 123 4567"
    stored = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    assert stored["username_lower"] == "bea.buyer"
    assert stored["profile"]["website"] == "https://bea.example.com"
    assert stored["profile"]["software"] == ["Maya"]
    # the profile is now found under the new name, not the old one
    assert (await api("GET", "/api/users/bea.buyer")).status == 200
    assert (await api("GET", "/api/users/buyer")).status == 404


@pytest.mark.gen_test
async def test_put_me_empty_string_clears_an_optional_field(api, tokens, services):
    token = await tokens(CREATOR)
    reply = await api("PUT", "/api/users/me", token=token, json={"country": "", "bio": "  "})
    assert reply.status == 200
    stored = await services.db.users.find_one({"_id": ObjectId(CREATOR_ID)})
    assert stored["profile"]["country"] is None and stored["bio"] is None
    assert stored["profile"]["skills"] == ["Blender"]


@pytest.mark.gen_test
async def test_put_me_buyer_may_become_creator_but_never_staff_or_back(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("PUT", "/api/users/me", token=token, json={"user_type": "admin"})
    assert reply.status == 422 and "user_type" in reply.json["field_errors"]
    reply = await api("PUT", "/api/users/me", token=token, json={"staff_role": "admin"})
    assert reply.status == 422 and "staff_role" in reply.json["field_errors"]
    reply = await api("PUT", "/api/users/me", token=token, json={"user_type": "creator"})
    assert reply.status == 200 and reply.json["user_type"] == "creator"
    assert reply.json["roles"] == ["creator", "user"]
    reply = await api("PUT", "/api/users/me", token=token, json={"user_type": "buyer"})
    assert reply.status == 403
    stored = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    assert stored["user_type"] == "creator" and stored["staff_role"] is None


@pytest.mark.gen_test
async def test_put_me_taken_username_is_409(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("PUT", "/api/users/me", token=token, json={"username": "Creator2"})
    assert reply.status == 409 and reply.json["error_code"] == "USERNAME_ALREADY_EXISTS"
    # own name in another case is fine
    reply = await api("PUT", "/api/users/me", token=token, json={"username": "Buyer"})
    assert reply.status == 200 and reply.json["username"] == "Buyer"


@pytest.mark.gen_test
@pytest.mark.parametrize("payload, field", [
    ({"bio": "x" * 501}, "bio"),
    ({"full_name": "y" * 101}, "full_name"),
    ({"website": "not a url"}, "website"),
    ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
    ({"portfolio_url": "ftp://files.example.com/x"}, "portfolio_url"),
    ({"skills": "Blender"}, "skills"),
    ({"skills": ["ok"] * 31}, "skills"),
    ({"software": ["z" * 51]}, "software.0"),
    ({"phone": "call me"}, "phone"),
    ({"twitter": "has spaces in it"}, "twitter"),
    ({"username": "a b"}, "username"),
    ({"username": "ab"}, "username"),
    ({"email": "new@example.com"}, "email"),
    ({"is_verified": True}, "is_verified"),
    ({"bio": 42}, "bio"),
])
async def test_put_me_rejects_bad_input(api, tokens, services, payload, field):
    before = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    reply = await api("PUT", "/api/users/me", token=await tokens(BUYER), json=payload)
    assert reply.status == 422, reply.json
    assert reply.json["error_code"] == "VALIDATION_ERROR"
    assert field in reply.json["field_errors"], reply.json
    after = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    assert after == before


@pytest.mark.gen_test
async def test_put_me_malformed_json_is_400(api, tokens):
    token = await tokens(BUYER)
    reply = await api("PUT", "/api/users/me", token=token, body="{not json",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    reply = await api("PUT", "/api/users/me", token=token, json=["a", "list"])
    assert reply.status == 422


# --------------------------------------------------------------------------- public profile

@pytest.mark.gen_test
async def test_public_profile_by_id_and_username_hides_private_fields(api, tokens):
    by_id = await api("GET", f"/api/users/{CREATOR_ID}")
    by_name = await api("GET", "/api/users/CREATOR")
    assert by_id.status == by_name.status == 200
    assert by_id.json["id"] == by_name.json["id"] == CREATOR_ID
    profile = by_id.json
    assert profile["username"] == "creator" and profile["user_type"] == "creator"
    assert profile["profile"]["skills"] == ["Blender"]
    for private in ("email", "password_hash", "is_banned", "is_active", "staff_role",
                    "last_login", "totp_secret", "tokens_valid_after", "permissions"):
        assert private not in profile, private
    assert profile["is_following"] is None
    signed_in = await api("GET", f"/api/users/{CREATOR_ID}", token=await tokens(BUYER))
    assert signed_in.json["is_following"] is False


@pytest.mark.gen_test
async def test_public_profile_hides_phone(api, tokens):
    token = await tokens(CREATOR)
    await api("PUT", "/api/users/me", token=token, json={"phone": "+234 801 234 5678"})
    profile = (await api("GET", "/api/users/creator")).json
    assert "phone" not in profile["profile"]


@pytest.mark.gen_test
@pytest.mark.parametrize("ref", ["nobody-here", "ffffffffffffffffffffffff", "12345",
                                 "650000000000000000000001zz", "%24where"])
async def test_unknown_or_invalid_profile_is_404(api, ref):
    reply = await api("GET", f"/api/users/{ref}")
    assert reply.status == 404
    assert reply.json["error_code"] in ("USER_NOT_FOUND", "NOT_FOUND")


# --------------------------------------------------------------------------- password

@pytest.mark.gen_test
async def test_change_password_ends_other_sessions_and_returns_fresh_tokens(api, tokens, services):
    token = await tokens(BUYER)
    other_device = old_token(services, BUYER_ID)
    assert (await api("GET", "/api/users/me", token=other_device)).status == 200
    refresh_before = await services.db.refresh_tokens.count_documents(
        {"user_id": ObjectId(BUYER_ID), "status": "active"})
    assert refresh_before == 1

    reply = await api("PUT", "/api/users/me/password", token=token,
                      json={"current_password": DEMO_PASSWORD, "new_password": "BrandNew9pass"})
    assert reply.status == 200, reply.json
    body = reply.json
    assert body["token_type"] == "bearer" and body["access_token"] and body["refresh_token"]
    assert body["user"]["id"] == BUYER_ID

    assert (await api("GET", "/api/users/me", token=token)).status == 401
    assert (await api("GET", "/api/users/me", token=other_device)).status == 401
    assert (await api("GET", "/api/users/me", token=body["access_token"])).status == 200
    active = await services.db.refresh_tokens.find(
        {"user_id": ObjectId(BUYER_ID), "status": "active"}).to_list(None)
    assert len(active) == 1  # only the fresh session
    stored = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    assert await users.check_password("BrandNew9pass", stored["password_hash"])
    assert not await users.check_password(DEMO_PASSWORD, stored["password_hash"])


@pytest.mark.gen_test
@pytest.mark.parametrize("new_password, status, code", [
    ("short1", 422, "VALIDATION_ERROR"),
    ("nodigitshere", 422, "VALIDATION_ERROR"),
    ("1234567890", 422, "VALIDATION_ERROR"),
    ("é" * 36 + "a1", 422, "VALIDATION_ERROR"),  # 74 bytes
    (DEMO_PASSWORD, 422, "VALIDATION_ERROR"),  # unchanged
])
async def test_change_password_policy(api, tokens, services, new_password, status, code):
    before = (await services.db.users.find_one({"_id": ObjectId(BUYER_ID)}))["password_hash"]
    reply = await api("PUT", "/api/users/me/password", token=await tokens(BUYER),
                      json={"current_password": DEMO_PASSWORD, "new_password": new_password})
    assert reply.status == status and reply.json["error_code"] == code
    assert "new_password" in reply.json["field_errors"]
    after = (await services.db.users.find_one({"_id": ObjectId(BUYER_ID)}))["password_hash"]
    assert after == before


@pytest.mark.gen_test
async def test_change_password_wrong_current_and_bad_bodies(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("PUT", "/api/users/me/password", token=token,
                      json={"current_password": "WrongPass123", "new_password": "BrandNew9pass"})
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_PASSWORD"
    assert "current_password" in reply.json["field_errors"]
    reply = await api("PUT", "/api/users/me/password", token=token,
                      json={"new_password": "BrandNew9pass"})
    assert reply.status == 422 and "current_password" in reply.json["field_errors"]
    reply = await api("PUT", "/api/users/me/password", token=token,
                      json={"current_password": DEMO_PASSWORD, "new_password": "BrandNew9pass",
                            "extra": 1})
    assert reply.status == 422 and "extra" in reply.json["field_errors"]
    reply = await api("PUT", "/api/users/me/password", token=token, body="{{",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert (await api("GET", "/api/users/me", token=token)).status == 200


@pytest.mark.gen_test
async def test_oauth_only_account_cannot_change_password(api, tokens, services):
    await services.db.users.update_one({"_id": ObjectId(BUYER2_ID)},
                                       {"$set": {"password_hash": None, "google_id": "g-1"}})
    reply = await api("PUT", "/api/users/me/password", token=await tokens(BUYER2),
                      json={"current_password": "anything1", "new_password": "BrandNew9pass"})
    assert reply.status == 400 and reply.json["error_code"] == "NO_PASSWORD"


# --------------------------------------------------------------------------- account deletion

async def _follow(api, token, ref):
    reply = await api("POST", f"/api/users/{ref}/follow", token=token)
    assert reply.status == 201, reply.json
    return reply


@pytest.mark.gen_test
async def test_delete_account_removes_personal_data_and_ends_sessions(api, tokens, services):
    token = await tokens(CREATOR)
    second_session = await tokens(CREATOR)
    older = old_token(services, CREATOR_ID)
    await api("PUT", "/api/users/me", token=token,
              json={"bio": "About me", "phone": "+234 801 234 5678", "full_name": "Cree Ator"})
    await _follow(api, token, "buyer")
    await _follow(api, await tokens(BUYER2), "creator")

    reply = await api("DELETE", "/api/users/me/account", token=token,
                      json={"password": DEMO_PASSWORD})
    assert reply.status == 204

    for old in (token, second_session, older):
        assert (await api("GET", "/api/users/me", token=old)).status == 401
    stored = await services.db.users.find_one({"_id": ObjectId(CREATOR_ID)})
    assert stored["email"] != CREATOR and "creator" not in stored["username_lower"]
    assert stored["full_name"] is None and stored["bio"] is None and stored["avatar_url"] is None
    assert stored["password_hash"] is None and stored["is_active"] is False
    assert stored["profile"] == {"skills": [], "software": []}
    assert stored["deleted_at"] is not None
    assert await services.db.users.count_documents({"email": CREATOR}) == 0
    assert await services.db.follows.count_documents(
        {"$or": [{"follower_id": ObjectId(CREATOR_ID)}, {"following_id": ObjectId(CREATOR_ID)}]}) == 0
    assert await services.db.refresh_tokens.count_documents(
        {"user_id": ObjectId(CREATOR_ID), "status": "active"}) == 0
    buyer = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    buyer2 = await services.db.users.find_one({"_id": ObjectId(BUYER2_ID)})
    assert buyer["followers_count"] == 0 and buyer2["following_count"] == 0
    assert (await api("GET", f"/api/users/{CREATOR_ID}")).status == 404
    assert (await api("GET", "/api/users/creator")).status == 404
    # the name and the email are free again
    reply = await api("PUT", "/api/users/me", token=await tokens(BUYER),
                      json={"username": "creator"})
    assert reply.status == 200


@pytest.mark.gen_test
async def test_delete_account_needs_the_right_confirmation(api, tokens, services):
    token = await tokens(BUYER)
    for payload in ({}, {"password": "WrongPass123"}, {"confirm": "DELETE"}):
        reply = await api("DELETE", "/api/users/me/account", token=token, json=payload)
        assert reply.status == 400, payload
        assert reply.json["error_code"] == "INVALID_PASSWORD"
    reply = await api("DELETE", "/api/users/me/account", token=token,
                      json={"password": DEMO_PASSWORD, "reason": "bye"})
    assert reply.status == 422 and "reason" in reply.json["field_errors"]
    reply = await api("DELETE", "/api/users/me/account", token=token, body="nope",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400
    stored = await services.db.users.find_one({"_id": ObjectId(BUYER_ID)})
    assert stored["email"] == BUYER and stored["is_active"] is True
    assert (await api("GET", "/api/users/me", token=token)).status == 200


@pytest.mark.gen_test
async def test_oauth_only_account_deletes_with_confirm_word(api, tokens, services):
    await services.db.users.update_one({"_id": ObjectId(BUYER2_ID)},
                                       {"$set": {"password_hash": None, "google_id": "g-2"}})
    token = await tokens(BUYER2)
    reply = await api("DELETE", "/api/users/me/account", token=token, json={"confirm": "yes"})
    assert reply.status == 400 and reply.json["error_code"] == "CONFIRMATION_REQUIRED"
    reply = await api("DELETE", "/api/users/me/account", token=token, json={"confirm": "DELETE"})
    assert reply.status == 204
    stored = await services.db.users.find_one({"_id": ObjectId(BUYER2_ID)})
    assert "google_id" not in stored and stored["is_active"] is False
    assert (await api("GET", "/api/users/me", token=token)).status == 401
