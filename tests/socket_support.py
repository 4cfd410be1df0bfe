"""WebSocket helpers shared by the socket tests: URLs, connecting, reading frames of a type,
joining a channel with its opening frames, signing in, and the demo users' ids."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

from bson import ObjectId
from demo_accounts import CREATOR_ID
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from documents import communities, sessions, users
from documents.common import utcnow


def ws_url(base_url: str, path: str, token: str | None = None, **params) -> str:
    """`path` on the server of `base_url` as a ws:// URL with `token` and query `params`."""
    if token is not None:
        params["token"] = token
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return base_url.replace("http", "ws", 1) + path + (f"?{query}" if query else "")


async def connect(url: str, headers: dict | None = None):
    return await websocket_connect(HTTPRequest(url, headers=headers or {}, connect_timeout=5,
                                               request_timeout=5))


async def frame(conn, timeout: float = 5.0) -> dict | None:
    """The next frame as a dict; None once the socket is closed."""
    raw = await asyncio.wait_for(conn.read_message(), timeout)
    return None if raw is None else json.loads(raw)


async def next_of(conn, type: str, timeout: float = 5.0, where=None) -> dict:
    """The next frame of `type` (for which `where(frame)` holds), skipping the others."""
    async def read():
        while True:
            got = await frame(conn, timeout)
            assert got is not None, f"socket closed ({conn.close_code}) waiting for {type}"
            if got["type"] == type and (where is None or where(got)):
                return got
    return await asyncio.wait_for(read(), timeout)


async def join(url: str, headers: dict | None = None, presence: bool = True):
    """Connect and read the opening frames; returns (conn, {type: frame})."""
    conn = await connect(url, headers)
    opening = {"connected": await frame(conn)}
    assert opening["connected"]["type"] == "connected", opening
    if presence:
        opening["presence"] = await next_of(conn, "presence")
    return conn, opening


async def refused(url: str, headers: dict | None = None) -> tuple[int, str]:
    """Connect to a socket that must be refused: no frame at all, then a close code."""
    conn = await connect(url, headers)
    assert await frame(conn) is None, "an event was sent before authorization"
    return conn.close_code, conn.close_reason


async def send(conn, payload) -> None:
    await conn.write_message(payload if isinstance(payload, (str, bytes)) else json.dumps(payload),
                             binary=isinstance(payload, bytes))


async def sign_in(services, email: str) -> str:
    user = await users.get_by_email(services.db, email)
    return (await sessions.start_session(services.db, services.settings, user))["access_token"]


async def new_ticket(api, token: str, subject: str = "Cannot download") -> str:
    reply = await api("POST", "/api/support/tickets", token=token,
                      json={"subject": subject, "category": "Technical", "message": "Help"})
    assert reply.status == 201, reply.json
    return reply.json["id"]


async def new_community(db, *, private: bool = False, status: str = "active",
                        members: tuple[str, ...] = ()) -> str:
    now = utcnow()
    name = f"Sculptors {uuid.uuid4().hex[:8]}"
    result = await db[communities.COMMUNITIES].insert_one({
        "name": name, "name_lower": name.lower(), "slug": name.lower().replace(" ", "-"),
        "description": "", "creator_id": ObjectId(CREATOR_ID), "member_count": len(members),
        "post_count": 0, "status": status, "is_private": private, "require_approval": False,
        "rules": [], "created_at": now, "updated_at": now})
    for user_id in members:
        await db[communities.MEMBERS].insert_one({
            "community_id": result.inserted_id, "user_id": ObjectId(user_id), "role": "member",
            "status": "active", "joined_at": now})
    return str(result.inserted_id)


async def until(predicate, timeout: float = 5.0) -> None:
    """Wait until `predicate()` is true (polling the server's own state), or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
