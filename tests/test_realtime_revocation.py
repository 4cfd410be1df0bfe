"""Ending a session closes its open sockets on every instance (README "WebSocket protocol").

Two instances on one redis-server sharing one document store: the user's sockets are open
on instance B, the session ends through a REST call on instance A (logout, ban, refresh-token
reuse, password change), and B closes exactly the sockets concerned with 4401 and a reason,
through the broker's control channel.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from community_support import GAME
from conftest import test_settings as settings_for
from demo_accounts import ADMIN, BUYER, BUYER2, BUYER_ID, DEMO_PASSWORD
from instances import start_instance, stop_instance
from socket_support import connect, frame, join, sign_in, ws_url

from documents import sessions, users

pytestmark = pytest.mark.store  # opens instances on the test's store itself


@pytest.fixture
def cluster(io_loop, tmp_path, redis_url):
    """Instances A and B: one document store, the session's redis-server."""
    settings = settings_for(tmp_path, redis_url=redis_url)
    first = io_loop.run_sync(lambda: start_instance(settings), timeout=30)
    second = io_loop.run_sync(lambda: start_instance(settings, db=first.services.db),
                              timeout=30)
    yield first, second
    for instance in (second, first):
        io_loop.run_sync(lambda i=instance: stop_instance(i), timeout=30)


async def pair_for(instance, email: str) -> dict:
    user = await users.get_by_email(instance.services.db, email)
    return await sessions.start_session(instance.services.db, instance.services.settings, user)


async def open_sockets(instance, token: str) -> list:
    """The user's notifications and community sockets on `instance`."""
    notes, _ = await join(ws_url(instance.base_url, "/ws/notifications", token), presence=False)
    community, _ = await join(ws_url(instance.base_url, f"/ws/community/{GAME}", token))
    return [notes, community]


async def closed_with(conn, timeout: float = 10.0) -> tuple[int, str]:
    """Read until the server closes `conn`; its close code and reason."""
    async def wait():
        while await frame(conn, timeout) is not None:
            pass
    await asyncio.wait_for(wait(), timeout)
    return conn.close_code, conn.close_reason


async def still_open(conn) -> bool:
    await conn.write_message(json.dumps({"type": "ping", "ref": "alive"}))
    while True:
        got = await frame(conn)
        if got is None:
            return False
        if got["type"] == "pong":
            return True


@pytest.mark.gen_test(timeout=60)
async def test_logout_closes_that_sessions_sockets_on_the_other_instance(cluster):
    a, b = cluster
    ending, staying = await pair_for(a, BUYER), await pair_for(a, BUYER)
    doomed = await open_sockets(b, ending["access_token"])
    other, _ = await join(ws_url(b.base_url, "/ws/notifications", staying["access_token"]),
                          presence=False)

    status, body = await a.call("POST", "/api/auth/logout", ending["access_token"])
    assert status == 200, body
    for conn in doomed:
        assert await closed_with(conn) == (4401, "Signed out")
    assert await still_open(other)                      # another session of the same user
    code, reason = await refused_now(b, ending["access_token"])
    assert (code, reason) == (4401, "Access token revoked")
    other.close()


async def refused_now(instance, token: str) -> tuple[int, str]:
    conn = await connect(ws_url(instance.base_url, "/ws/notifications", token))
    assert await frame(conn) is None
    return conn.close_code, conn.close_reason


@pytest.mark.gen_test(timeout=60)
async def test_a_ban_closes_every_socket_of_the_user_on_the_other_instance(cluster):
    a, b = cluster
    doomed = [*await open_sockets(b, await sign_in(b.services, BUYER)),
              *await open_sockets(a, await sign_in(a.services, BUYER))]
    bystander, _ = await join(ws_url(b.base_url, "/ws/notifications",
                                     await sign_in(b.services, BUYER2)),
                              presence=False)
    admin = await sign_in(a.services, ADMIN)
    status, body = await a.call("POST", f"/api/admin/users/{BUYER_ID}/ban", admin,
                                {"reason": "Fraudulent chargebacks"})
    assert status == 200, body
    for conn in doomed:
        assert await closed_with(conn) == (4401, "Account banned")
    assert await still_open(bystander)
    bystander.close()


@pytest.mark.gen_test(timeout=60)
async def test_refresh_token_reuse_revokes_the_family_on_rest_and_its_sockets(cluster):
    a, b = cluster
    first = await pair_for(a, BUYER)
    status, second = await a.call("POST", "/api/auth/refresh", None,
                                  {"refresh_token": first["refresh_token"]})
    assert status == 200, second
    doomed = await open_sockets(b, second["access_token"])
    assert (await b.call("GET", "/api/auth/me", second["access_token"]))[0] == 200

    status, body = await a.call("POST", "/api/auth/refresh", None,      # replayed
                                {"refresh_token": first["refresh_token"]})
    assert status in (401, 403) and body["error_code"] == "REFRESH_TOKEN_REUSED", body
    for conn in doomed:
        assert await closed_with(conn) == (4401, "Session revoked: refresh token reused")
    for token in (first["access_token"], second["access_token"]):
        status, body = await b.call("GET", "/api/auth/me", token)
        assert (status, body["error_code"]) == (401, "TOKEN_REVOKED"), body
    status, body = await a.call("POST", "/api/auth/refresh", None,
                                {"refresh_token": second["refresh_token"]})
    assert status in (401, 403), body


@pytest.mark.gen_test(timeout=60)
async def test_a_password_change_closes_the_users_sockets_everywhere(cluster):
    a, b = cluster
    token = await sign_in(a.services, BUYER2)
    doomed = await open_sockets(b, token)
    status, body = await a.call("PUT", "/api/users/me/password", token, {
        "current_password": DEMO_PASSWORD, "new_password": "An0ther-Secret"})
    assert status == 200, body
    for conn in doomed:
        assert await closed_with(conn) == (4401, "Password changed")
    fresh, _ = await join(ws_url(b.base_url, "/ws/notifications", body["access_token"]),
                          presence=False)                    # the new session works
    assert await still_open(fresh)
    fresh.close()
