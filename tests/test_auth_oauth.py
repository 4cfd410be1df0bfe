"""OAuth sign-in with Google, GitHub and Discord (seed 000 §1 `POST
/api/auth/oauth/{provider}`, seed 001 §1) against a local stand-in provider over real HTTP."""
from dataclasses import replace

import pytest
from auth_support import TOKEN_KEYS
from conftest import free_port
from demo_accounts import ADMIN, BUYER, BUYER2, CREATOR

from tests.oauth_stub import OAuthStub

REDIRECT = "http://localhost:3000/auth/callback"


@pytest.fixture
def stub(io_loop):
    provider = OAuthStub()
    io_loop.run_sync(lambda: _start(provider))
    yield provider
    provider.stop()


async def _start(provider: OAuthStub) -> None:
    provider.start()


@pytest.fixture
def settings_overrides(stub):
    return {"oauth": stub.providers()}


def google_profile(sub="g-1001", email="gina@example.com", verified=True, **extra):
    return {"sub": sub, "email": email, "email_verified": verified, "name": "Gina Google",
            "picture": "https://example.com/gina.png", **extra}


async def sign_in(api, provider, code, path=None, **extra):
    return await api("POST", path or f"/api/auth/oauth/{provider}",
                     json={"code": code, "redirect_uri": REDIRECT, **extra})


@pytest.mark.gen_test
async def test_google_creates_a_verified_account_then_signs_it_in(api, services, stub):
    reply = await sign_in(api, "google", stub.add_code("google", google_profile()))
    assert reply.status == 201, reply.json
    assert set(reply.json) == TOKEN_KEYS | {"created"} and reply.json["created"] is True
    user = reply.json["user"]
    assert user["email"] == "gina@example.com" and user["username"] == "gina"
    assert user["is_verified"] is True and user["has_password"] is False
    assert user["avatar_url"] == "https://example.com/gina.png"
    assert "google_id" not in user
    stored = await services.db.users.find_one({"email": "gina@example.com"})
    assert stored["google_id"] == "g-1001" and stored["password_hash"] is None
    provider, form = stub.token_requests[0]
    assert provider == "google" and form["client_id"] == "google-client"
    assert form["redirect_uri"] == REDIRECT and form["grant_type"] == "authorization_code"
    again = await sign_in(api, "google", stub.add_code("google", google_profile()))
    assert again.status == 200 and again.json["created"] is False
    assert again.json["user"]["id"] == user["id"]
    me = await api("GET", "/api/auth/me", token=again.json["access_token"])
    assert me.status == 200 and me.json["claims"]["sub"] == user["id"]


@pytest.mark.gen_test
async def test_github_links_the_verified_primary_email_to_the_existing_account(api, services, stub):
    code = stub.add_code("github", {"id": 583231, "login": "octo", "name": "Octo Cat",
                                    "email": None, "avatar_url": None},
                         emails=[{"email": "other@example.com", "primary": False,
                                  "verified": True},
                                 {"email": "Buyer@hwc3d.com", "primary": True,
                                  "verified": True}])
    reply = await sign_in(api, "github", code, path="/api/auth/oauth/github")
    assert reply.status == 200 and reply.json["created"] is False
    assert reply.json["user"]["id"] == "650000000000000000000005"
    stored = await services.db.users.find_one({"email": BUYER})
    assert stored["github_id"] == "583231" and stored["password_hash"]
    assert await services.db.users.count_documents({}) == 6


@pytest.mark.gen_test
async def test_github_without_a_verified_primary_email_is_refused(api, services, stub):
    code = stub.add_code("github", {"id": 7, "login": "sneaky", "email": BUYER},
                         emails=[{"email": BUYER, "primary": True,
                                  "verified": False}])
    reply = await sign_in(api, "github", code)
    assert reply.status == 400 and reply.json["error_code"] == "OAUTH_EMAIL_NOT_VERIFIED"
    assert await services.db.users.count_documents({"github_id": {"$ne": None}}) == 0
    assert await services.db.refresh_tokens.count_documents({}) == 0


@pytest.mark.gen_test
async def test_google_unverified_email_never_links(api, services, stub):
    code = stub.add_code("google", google_profile(email=CREATOR, verified=False))
    reply = await sign_in(api, "google", code)
    assert reply.status == 400
    stored = await services.db.users.find_one({"email": CREATOR})
    assert stored.get("google_id") is None


@pytest.mark.gen_test
async def test_discord_new_account_gets_a_free_username(api, services, stub):
    code = stub.add_code("discord", {"id": "80351110224678912", "username": "buyer",
                                     "global_name": "Buyer Two", "email": "dee@example.com",
                                     "verified": True, "avatar": "8342729096ea3675442027381ff50dfe"},
                         redirect_uri=REDIRECT)
    reply = await api("POST", "/api/auth/oauth/discord", json={"code": code,
                                                               "redirect_uri": REDIRECT})
    assert reply.status == 201
    user = reply.json["user"]
    assert user["username"] != "buyer" and user["username"].startswith("buyer_")
    assert user["full_name"] == "Buyer Two"
    assert user["avatar_url"].startswith("https://cdn.discordapp.com/avatars/80351110224678912/")
    stored = await services.db.users.find_one({"email": "dee@example.com"})
    assert stored["discord_id"] == "80351110224678912"


@pytest.mark.gen_test
async def test_state_and_pkce_verifier_are_accepted(api, stub):
    code = stub.add_code("google", google_profile(sub="g-2", email="gg@example.com"))
    reply = await sign_in(api, "google", code, state="xyz", code_verifier="v" * 43)
    assert reply.status == 201
    assert stub.token_requests[0][1]["code_verifier"] == "v" * 43


@pytest.mark.gen_test
async def test_account_linked_to_another_identity_is_409(api, services, stub):
    await services.db.users.update_one({"email": BUYER2},
                                       {"$set": {"google_id": "g-original"}})
    code = stub.add_code("google", google_profile(sub="g-intruder", email=BUYER2))
    reply = await sign_in(api, "google", code)
    assert reply.status == 409 and reply.json["error_code"] == "OAUTH_ACCOUNT_CONFLICT"
    stored = await services.db.users.find_one({"email": BUYER2})
    assert stored["google_id"] == "g-original"


@pytest.mark.gen_test
async def test_refused_code_is_401(api, services, stub):
    google = await sign_in(api, "google", "never-issued")
    github = await sign_in(api, "github", "never-issued")  # GitHub answers 200 {"error": ...}
    for reply in (google, github):
        assert reply.status == 401 and reply.json["error_code"] == "OAUTH_FAILED"
    code = stub.add_code("google", google_profile(), redirect_uri="https://elsewhere.example/cb")
    mismatch = await sign_in(api, "google", code)
    assert mismatch.status == 401
    code = stub.add_code("google", google_profile())
    assert (await sign_in(api, "google", code)).status == 201
    replayed = await sign_in(api, "google", code)
    assert replayed.status == 401
    assert await services.db.users.count_documents({}) == 7


@pytest.mark.gen_test
async def test_broken_provider_is_502(api, services, stub):
    for code in ("boom", "garbage"):
        reply = await sign_in(api, "google", code)
        assert reply.status == 502 and reply.json["error_code"] == "OAUTH_PROVIDER_ERROR"
        assert "stub" not in reply.json["detail"] and "127.0.0.1" not in reply.json["detail"]


class TestProviderDown:
    @pytest.fixture
    def settings_overrides(self, stub):
        dead = f"http://127.0.0.1:{free_port()}"
        providers = dict(stub.providers())
        providers["google"] = replace(providers["google"], token_url=f"{dead}/token")
        providers["discord"] = replace(providers["discord"], userinfo_url=f"{dead}/userinfo")
        return {"oauth": providers}

    @pytest.mark.gen_test
    async def test_unreachable_provider_is_502(self, api, stub, services):
        token_step = await sign_in(api, "google", "anything")
        code = stub.add_code("discord", {"id": "1", "username": "d", "email": "d@example.com",
                                         "verified": True})
        profile_step = await sign_in(api, "discord", code)
        for reply in (token_step, profile_step):
            assert reply.status == 502 and reply.json["error_code"] == "OAUTH_PROVIDER_ERROR"
            assert "127.0.0.1" not in reply.json["detail"]
        assert await services.db.users.count_documents({}) == 6


class TestNotConfigured:
    @pytest.fixture
    def settings_overrides(self, stub):
        return {"oauth": stub.providers(configured=("google",))}

    @pytest.mark.gen_test
    async def test_provider_without_client_id_is_503(self, api, stub):
        for provider in ("github", "discord"):
            reply = await sign_in(api, provider, "whatever")
            assert reply.status == 503 and reply.json["error_code"] == "OAUTH_NOT_CONFIGURED"
        assert stub.token_requests == []


@pytest.mark.gen_test
async def test_unknown_provider_is_404(api, stub):
    reply = await sign_in(api, "myspace", "whatever")
    assert reply.status == 404 and reply.json["reason"] == "UNKNOWN_PROVIDER"
    assert stub.token_requests == []


@pytest.mark.gen_test
async def test_banned_account_cannot_sign_in_with_oauth(api, services, stub):
    await services.db.users.update_one({"email": BUYER},
                                       {"$set": {"is_banned": True, "google_id": "g-b"}})
    code = stub.add_code("google", google_profile(sub="g-b", email=BUYER))
    reply = await sign_in(api, "google", code)
    assert reply.status == 403 and reply.json["error_code"] == "ACCOUNT_DISABLED"


@pytest.mark.gen_test
async def test_admin_with_totp_still_needs_the_second_factor(api, stub):
    code = stub.add_code("google", google_profile(sub="g-admin", email=ADMIN))
    reply = await sign_in(api, "google", code)
    assert reply.status == 200 and reply.json["otp_required"] is True
    assert "access_token" not in reply.json


@pytest.mark.gen_test
@pytest.mark.parametrize("payload,field", [
    ({"redirect_uri": REDIRECT}, "code"),
    ({"code": ""}, "code"),
    ({"code": 5}, "code"),
    ({"code": "abc", "redirect_uri": "not a url"}, "redirect_uri"),
    ({"code": "abc", "provider": "google"}, "provider"),
    ({"code": "abc", "code_verifier": "short"}, "code_verifier"),
])
async def test_oauth_bad_input_is_422(api, stub, payload, field):
    reply = await api("POST", "/api/auth/oauth/google", json=payload)
    assert reply.status == 422 and field in reply.json["field_errors"]
    assert stub.token_requests == []
