"""Community socket helpers shared by the cross-instance tests: an instance serving
`/ws/community/{id}` (`CommunityInstance`), reading frames and events, and the demo
communities' ids."""
from __future__ import annotations

import asyncio
import json

from instances import Instance
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from documents import sessions, users

GAME, INSIDERS = "653000000000000000000001", "653000000000000000000002"


TIMEOUT = 5.0


class CommunityInstance(Instance):
    async def sign_in(self, email: str) -> str:
        user = await users.get_by_email(self.services.db, email)
        pair = await sessions.start_session(self.services.db, self.services.settings, user)
        return pair["access_token"]

    async def socket(self, community_id: str, token: str):
        """A socket joined to the community's channel (its opening frames read)."""
        url = self.base_url.replace("http", "ws", 1) + f"/ws/community/{community_id}?token={token}"
        conn = await websocket_connect(HTTPRequest(url, connect_timeout=5, request_timeout=5))
        first = await read(conn)
        assert first is not None and first["type"] == "connected", (first, conn.close_code)
        return conn


async def read(conn, timeout: float = TIMEOUT) -> dict | None:
    raw = await asyncio.wait_for(conn.read_message(), timeout)
    return None if raw is None else json.loads(raw)


async def next_event(conn, type: str, timeout: float = TIMEOUT) -> dict:
    """The next frame of `type`, skipping presence and other events; fails on timeout."""
    async def wait():
        while True:
            got = await read(conn, timeout)
            assert got is not None, f"socket closed ({conn.close_code}) waiting for {type}"
            if got["type"] == type:
                return got
    return await asyncio.wait_for(wait(), timeout)


async def ready(conn) -> None:
    """Ping/pong: once answered, the socket has joined its channel on its instance."""
    await conn.write_message(json.dumps({"type": "ping"}))
    await next_event(conn, "pong")
