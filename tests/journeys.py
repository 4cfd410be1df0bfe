"""Helpers of the journey suite (`tests/test_journey_*.py`): a visitor's browser tab, sign-in
as the pages do it (the admin with a TOTP code), and the WebSocket client the pages open.

- `open_tab(http_client, base_url, url, headers=None)` — GET a URL the API handed out as a
  browser tab would: no Authorization header, no redirects followed; the URL's host (the
  demo PUBLIC_URL) is pointed at the test's server.
- `sign_in(api, email)` — `POST /api/auth/login` with the demo password; the access token.
- `admin_sign_in(api)` — `POST /api/auth/admin/login` with the demo admin's TOTP code.
- `Socket` — a page's WebSocket: `await Socket.open(base_url, path, token)`, then
  `await sock.next("type")` (skipping other frames, with a deadline) and `await sock.send({})`.
- `eventually_equal(probe, expected)` — poll an async `probe()` until it answers `expected`.
"""
from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit, urlunsplit

import pyotp
from demo_accounts import ADMIN, ADMIN_TOTP_SECRET, DEMO_PASSWORD
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

EXPLORER = "652000000000000000000003"    # Space Explorer, 24.99, by creator@hwc3d.com
TRUCK = "652000000000000000000006"       # Cargo Truck, 29.99, by creator2@hwc3d.com

ABSOLUTE = ("http://", "https://")


async def open_tab(http_client, base_url: str, url: str, headers: dict | None = None):
    """GET `url` as a browser tab: no Authorization header, redirects not followed."""
    parts = urlsplit(url)
    target = base_url + urlunsplit(("", "", parts.path, parts.query, ""))
    request = HTTPRequest(target, headers=headers or {}, follow_redirects=False,
                          request_timeout=60)
    return await http_client.fetch(request, raise_error=False)


async def sign_in(api, email: str) -> str:
    """Sign in on the auth page (seed 001 §1); the access token."""
    reply = await api("POST", "/api/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert reply.status == 200, reply.json
    assert reply.json["user"]["email"] == email
    return reply.json["access_token"]


async def admin_sign_in(api) -> str:
    """Sign in on the admin login page with the demo admin's TOTP code (README "Demo
    accounts"); waits out the last second of a 30-second step. The access token."""
    totp = pyotp.TOTP(ADMIN_TOTP_SECRET)
    remaining = totp.interval - time.time() % totp.interval
    if remaining < 1.5:
        await asyncio.sleep(remaining + 0.05)
    reply = await api("POST", "/api/auth/admin/login",
                      json={"email": ADMIN, "password": DEMO_PASSWORD, "otp_code": totp.now()})
    assert reply.status == 200, reply.json
    return reply.json["access_token"]


class Socket:
    """One WebSocket a page opens (`/ws/community/{id}`, `/ws/notifications`, ...)."""

    def __init__(self, conn):
        self.conn = conn

    @classmethod
    async def open(cls, base_url: str, path: str, token: str) -> Socket:
        url = base_url.replace("http", "ws", 1) + f"{path}?token={token}"
        conn = await websocket_connect(HTTPRequest(url, connect_timeout=5, request_timeout=5))
        sock = cls(conn)
        assert (await sock.next("connected"))["type"] == "connected"
        return sock

    async def next(self, kind: str, where=None, timeout: float = 10.0) -> dict:
        """The next frame of type `kind` (for which `where(frame)` holds), others skipped."""
        async def read() -> dict:
            while True:
                raw = await self.conn.read_message()
                assert raw is not None, f"socket closed ({self.conn.close_code}) before {kind}"
                got = json.loads(raw)
                if got["type"] == kind and (where is None or where(got)):
                    return got
        return await asyncio.wait_for(read(), timeout)

    async def send(self, payload: dict) -> None:
        await self.conn.write_message(json.dumps(payload))

    def close(self) -> None:
        self.conn.close()


async def eventually_equal(probe, expected, timeout: float = 10.0):
    """Poll `await probe()` until it equals `expected`; fails with the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = await probe()
        if got == expected:
            return got
        assert time.monotonic() < deadline, f"{got!r} != {expected!r}"
        await asyncio.sleep(0.05)
