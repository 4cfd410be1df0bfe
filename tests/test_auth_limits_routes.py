"""Every credential route is limited twice (docs/architecture.md §3, seed 001 §21): 5 a minute
per client address AND 5 a minute per account, whichever comes first.

For each route: six requests from ONE loopback address, each naming a different account,
get 429 on the sixth (per client); six requests from SIX addresses, all naming the same
account, get 429 on the sixth (per account). Requests before the sixth are never 429, and
the 429 is RATE_LIMIT_EXCEEDED with `retry_after` and `Retry-After`.
"""
from __future__ import annotations

import inspect
import secrets
import time
import uuid

import pyotp
import pytest
from auth_support import fresh_window
from demo_accounts import ADMIN, ADMIN_TOTP_SECRET, BUYER

from documents import accounts, users
from tests.oauth_stub import OAuthStub

pytestmark = pytest.mark.usefixtures("fast_demo_passwords")

REDIRECT = "http://localhost:3000/auth/callback"
NEW_PASSWORD = "NewPass12345"


@pytest.fixture
def stub(io_loop):
    provider = OAuthStub()
    io_loop.run_sync(lambda: _start(provider))
    yield provider
    provider.stop()


async def _start(provider: OAuthStub) -> None:
    provider.start()


@pytest.fixture
def send(request):
    """POST JSON from a chosen loopback address: ``await send(source, path, payload)``."""
    return request.getfixturevalue("post_from")


@pytest.fixture
def settings_overrides(stub):
    return {"rate_limits_enabled": True, "oauth": stub.providers()}


def wrong_admin_code() -> str:
    """A 6-digit code that is none of the admin's accepted codes (previous, current, next)."""
    totp = pyotp.TOTP(ADMIN_TOTP_SECRET)
    now = time.time()
    accepted = {totp.at(now, counter_offset=offset) for offset in (-2, -1, 0, 1, 2)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in accepted)


def oauth_profile(provider: str, ident: str) -> dict:
    """The provider's raw profile JSON for the identity `ident` (a verified email)."""
    email = f"{ident}@example.com"
    if provider == "google":
        return {"sub": ident, "email": email, "email_verified": True, "name": ident}
    if provider == "github":
        return {"id": sum(ord(c) * 31**i for i, c in enumerate(ident)) % 10**9, "login": ident,
                "name": ident}
    return {"id": ident, "username": ident, "email": email, "verified": True}


def github_emails(ident: str) -> list:
    return [{"email": f"{ident}@example.com", "primary": True, "verified": True}]


class Route:
    """How to name account `n` (per client) or the one shared account (per account)."""

    def __init__(self, path: str, *, distinct, same, provider: str | None = None):
        self.path, self.distinct, self.same, self.provider = path, distinct, same, provider

    def __repr__(self) -> str:
        return self.path


def _oauth(provider: str) -> Route:
    def payload(ident: str):
        def build(ctx):
            emails = github_emails(ident) if provider == "github" else None
            return {"code": ctx["stub"].add_code(provider, oauth_profile(provider, ident),
                                                 emails=emails), "redirect_uri": REDIRECT}
        return build

    return Route(f"/api/auth/oauth/{provider}",
                 distinct=lambda n: payload(f"person{n}x"), same=lambda n: payload("sameperson"))


def _fixed(payload: dict):
    return lambda ctx: payload


ROUTES = [
    Route("/api/auth/register",
          distinct=lambda n: _fixed({"email": f"new{n}@example.com", "username": f"new{n}x",
                                     "password": NEW_PASSWORD}),
          same=lambda n: _fixed({"email": "same@example.com", "username": f"same{n}x",
                                 "password": NEW_PASSWORD})),
    Route("/api/auth/login",
          distinct=lambda n: _fixed({"email": f"nobody{n}@example.com", "password": "Wrong1234"}),
          same=lambda n: _fixed({"usernameOrEmail": "buyer", "password": "Wrong1234"})),
    Route("/api/auth/admin/login",
          distinct=lambda n: _fixed({"email": f"staff{n}@example.com", "password": "Wrong1234"}),
          same=lambda n: _fixed({"email": ADMIN, "password": "Wrong1234"})),
    Route("/api/auth/admin/verify-otp",
          distinct=lambda n: _fixed({"challenge_token": secrets.token_urlsafe(24),
                                     "otp_code": "123456"}),
          same=lambda n: lambda ctx: _challenge_reply(ctx, n)),
    Route("/api/auth/verify-email",
          distinct=lambda n: _fixed({"email": f"nobody{n}@example.com", "code": "123456"}),
          same=lambda n: _fixed({"email": BUYER, "code": "123456"})),
    Route("/api/auth/resend-verification",
          distinct=lambda n: _fixed({"email": f"nobody{n}@example.com"}),
          same=lambda n: _fixed({"email": BUYER})),
    Route("/api/auth/forgot-password",
          distinct=lambda n: _fixed({"email": f"nobody{n}@example.com"}),
          same=lambda n: _fixed({"email": BUYER})),
    Route("/api/auth/admin/forgot-password",
          distinct=lambda n: _fixed({"email": f"nobody{n}@example.com"}),
          same=lambda n: _fixed({"email": ADMIN})),
    Route("/api/auth/reset-password",
          distinct=lambda n: _fixed({"token": uuid.uuid4().hex, "new_password": NEW_PASSWORD}),
          same=lambda n: _fixed({"token": "one-guessed-token", "new_password": NEW_PASSWORD})),
    Route("/api/auth/admin/reset-password",
          distinct=lambda n: _fixed({"token": uuid.uuid4().hex, "new_password": NEW_PASSWORD}),
          same=lambda n: _fixed({"token": "one-guessed-token", "new_password": NEW_PASSWORD})),
    _oauth("google"),
    _oauth("github"),
    _oauth("discord"),
]


async def _challenge_reply(ctx: dict, n: int) -> dict:
    """A wrong code for a live admin challenge. A new challenge supersedes the old one and
    five wrong codes burn it, so requests 0-3 share one, 4 and 5 get a fresh one each."""
    if n in (0, 4, 5):
        admin = await users.get_by_email(ctx["db"], ADMIN)
        ctx["challenge"] = (await accounts.issue_challenge(ctx["db"], admin))[0]
    return {"challenge_token": ctx["challenge"], "otp_code": ctx["wrong_code"]}


async def context(services, stub) -> dict:
    """What the payload builders need: the store and the OAuth stub."""
    return {"db": services.db, "stub": stub, "wrong_code": wrong_admin_code()}


async def payload_of(build, ctx: dict) -> dict:
    result = build(ctx)
    return await result if inspect.isawaitable(result) else result


def assert_limited(status: int, body: dict, headers) -> None:
    assert status == 429, body
    assert body["error_code"] == "RATE_LIMIT_EXCEEDED" and 1 <= body["retry_after"] <= 60
    assert headers["Retry-After"] == str(body["retry_after"])


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("route", ROUTES, ids=repr)
async def test_sixth_request_from_one_client_is_429(route, send, services, stub):
    ctx = await context(services, stub)
    await fresh_window()
    for n in range(5):
        status, body, _ = await send("127.0.0.1", route.path, await payload_of(route.distinct(n), ctx))
        assert status != 429 and status < 500, (n, body)
    assert_limited(*await send("127.0.0.1", route.path, await payload_of(route.distinct(5), ctx)))
    # another client may still use the route
    status, body, _ = await send("127.0.0.2", route.path, await payload_of(route.distinct(6), ctx))
    assert status != 429 and status < 500, body


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("route", ROUTES, ids=repr)
async def test_sixth_request_for_one_account_is_429_whatever_the_client(route, send, services,
                                                                        stub):
    ctx = await context(services, stub)
    await fresh_window()
    for n in range(5):
        payload = await payload_of(route.same(n), ctx)
        status, body, _ = await send(f"127.0.0.{n + 1}", route.path, payload)
        assert status != 429 and status < 500, (n, body)
    assert_limited(*await send("127.0.0.6", route.path, await payload_of(route.same(5), ctx)))
