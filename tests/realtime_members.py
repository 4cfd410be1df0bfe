"""Helpers of the real-time tests on Redis and on a Redis Cluster (not a test module).

`Member`: an instance (`tests/instances.py`) that signs users in and opens sockets; frame
readers that wait with a deadline; `Recorder`, a socket stand-in for hub-level tests;
`communities_on_every_shard`, `shard_subscribers` and `move_slot` for a Redis Cluster
(`tests/redis_cluster.py`); `log_in` and `process_socket` for `server.py` processes.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import time

import community_support
import pytest
from community_support import ready
from demo_accounts import DEMO_PASSWORD
from instances import Instance
from processes import Server
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from documents import sessions, users


class Member(Instance):
    async def token(self, email: str) -> str:
        user = await users.get_by_email(self.services.db, email)
        return (await sessions.start_session(self.services.db, self.services.settings,
                                             user))["access_token"]

    async def socket(self, path: str, token: str, **params):
        query = "&".join(f"{k}={v}" for k, v in {"token": token, **params}.items())
        url = self.base_url.replace("http", "ws", 1) + f"{path}?{query}"
        conn = await websocket_connect(HTTPRequest(url, connect_timeout=5, request_timeout=5))
        opening = await read(conn)
        assert opening and opening["type"] == "connected", (conn.close_code, conn.close_reason)
        return conn


async def read(conn, timeout: float = 10.0) -> dict | None:
    raw = await asyncio.wait_for(conn.read_message(), timeout)
    return None if raw is None else json.loads(raw)


async def next_event(conn, type: str, timeout: float = 10.0) -> dict:
    """The next frame of `type`, skipping others; fails on timeout or a closed socket (a
    longer default wait than `community_support.next_event`: a cluster's shards reconnect)."""
    return await community_support.next_event(conn, type, timeout)


async def post(instance: Member, community: str, token: str, text: str) -> str:
    status, body = await instance.call("POST", f"/api/communities/{community}/posts", token,
                                       {"content": text})
    assert status == 201, body
    return body["id"]


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def communities_on_every_shard(instance: Member, token: str) -> dict[str, str]:
    """{shard: community id}: communities created by `token`'s user until every master of
    the cluster owns the channel of one of them."""
    broker = instance.hub.broker
    shards = {node.name for node in broker.commands.get_primaries()}
    found: dict[str, str] = {}
    for n in range(60):
        status, body = await instance.call("POST", "/api/communities", token, {
            "name": f"Shard guild {n} {time.monotonic_ns() % 10**6}",
            "description": "Sculpting together"})
        assert status == 201, body
        found.setdefault(broker.shard_of(f"community:{body['id']}"), body["id"])
        if set(found) == shards:
            return found
    pytest.fail(f"no community channel on every shard: {found}")


async def shard_subscribers(node: str, channel: str) -> int:
    """PUBSUB SHARDNUMSUB of `channel`'s shard channel on the master `node` (host:port)."""
    import redis.asyncio as aioredis

    host, port = node.rsplit(":", 1)
    async with aioredis.Redis(host=host, port=int(port)) as direct:
        name = f"hwc3d:rt:ch:{{{channel}}}"
        reply = await direct.execute_command("PUBSUB", "SHARDNUMSUB", name)
        return int(reply[1])


def cli(port: int, *command: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *command], capture_output=True,
                          text=True, timeout=10, check=True).stdout.strip()


def move_slot(slot: int, source: int, target: int, all_ports: list[int]) -> None:
    """Reshard: move `slot` with its keys from the master on port `source` to `target`."""
    source_id, target_id = cli(source, "CLUSTER", "MYID"), cli(target, "CLUSTER", "MYID")
    cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    while keys := cli(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "100").split():
        cli(source, "MIGRATE", "127.0.0.1", str(target), "", "0", "5000", "KEYS", *keys)
    for port in (target, source, *all_ports):
        cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)


async def log_in(server: Server, email: str) -> str:
    reply = await AsyncHTTPClient().fetch(HTTPRequest(
        f"http://127.0.0.1:{server.port}/api/auth/login", method="POST",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": email, "password": DEMO_PASSWORD}), request_timeout=20))
    return json.loads(reply.body)["access_token"]


async def process_socket(server: Server, path: str, token: str):
    conn = await websocket_connect(HTTPRequest(
        f"ws://127.0.0.1:{server.port}{path}?token={token}", connect_timeout=5,
        request_timeout=5))
    assert (await read(conn))["type"] == "connected"
    await ready(conn)
    return conn


class Recorder:
    """A socket stand-in for a hub `Connection`: keeps the frames written to it."""

    def __init__(self):
        self.frames: asyncio.Queue = asyncio.Queue()

    async def send(self, text: str) -> None:
        await self.frames.put(json.loads(text))

    def close(self, code: int, reason: str) -> None:
        pass

    async def next(self, type: str, timeout: float = 10.0) -> dict:
        while True:
            got = await asyncio.wait_for(self.frames.get(), timeout)
            if got["type"] == type:
                return got
