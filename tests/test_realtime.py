"""The hubs across instances with a real `redis-server` (docs/architecture.md §6).

Two instances run in the test process, each with its own services, Hub and HTTP server on
its own port, sharing one document store and one Redis: events cross instances, recovery
with `since` works across them, presence is shared, slow consumers are closed, and Redis
going away and coming back never stops local delivery nor crashes a server.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from bson import ObjectId
from conftest import test_settings as settings_for
from demo_accounts import BUYER, BUYER_ID, MODERATOR
from instances import Instance, start_instance, stop_instance
from socket_support import connect, frame, join, new_community, next_of, send, sign_in, until, ws_url

from realtime.broker import MemoryBroker, RedisBroker
from realtime.hub import Hub
from realtime.presence import RedisPresence

pytestmark = pytest.mark.store  # opens instances on the test's store itself

# --------------------------------------------------------------------------- instances

@pytest.fixture
def cluster_settings(tmp_path, redis_url, settings_overrides):
    return settings_for(tmp_path, redis_url=redis_url, **settings_overrides)


@pytest.fixture
def cluster(io_loop, cluster_settings):
    """Two instances (A, B) on the session's redis-server sharing one document store."""
    async def start():
        a = await start_instance(cluster_settings)
        return a, await start_instance(cluster_settings, db=a.services.db)

    a, b = io_loop.run_sync(start, timeout=30)
    yield a, b
    io_loop.run_sync(lambda: asyncio.gather(stop_instance(b), stop_instance(a)), timeout=30)


async def new_ticket(instance: Instance, token: str) -> str:
    status, body = await instance.call("POST", "/api/support/tickets", token, {
        "subject": "Render is broken", "category": "Technical", "message": "Help"})
    assert status == 201, body
    return body["id"]


# --------------------------------------------------------------------------- across instances

@pytest.mark.gen_test(timeout=30)
async def test_event_on_b_reaches_client_on_a(cluster):
    a, b = cluster
    buyer = await sign_in(a.services, BUYER)
    ticket = await new_ticket(a, buyer)
    owner, _ = await join(ws_url(a.base_url, f"/ws/support/{ticket}", buyer))

    published = await b.hub.publish(f"support:{ticket}", "ticket_status_changed",
                                    {"ticket_id": ticket, "status": "active",
                                     "previous_status": "pending"})
    got = await next_of(owner, "ticket_status_changed")
    assert got["offset"] == published["offset"] and got["data"]["status"] == "active"

    staff = await sign_in(b.services, MODERATOR)
    status, message = await b.call("POST", f"/api/admin/support/tickets/{ticket}/messages",
                                   staff, {"content": "Looking into it"})
    assert status == 201, message
    got = await next_of(owner, "message_received")
    assert got["data"]["id"] == message["id"] and got["data"]["content"] == "Looking into it"
    assert got["offset"] > published["offset"]
    owner.close()


@pytest.mark.gen_test(timeout=30)
async def test_presence_shows_who_is_in_a_ticket_across_instances(cluster):
    a, b = cluster
    buyer = await sign_in(a.services, BUYER)
    ticket = await new_ticket(a, buyer)
    owner, opening = await join(ws_url(a.base_url, f"/ws/support/{ticket}", buyer))
    assert opening["presence"]["data"]["staff_online"] is False

    agent, opening = await join(ws_url(b.base_url, f"/ws/support/{ticket}",
                                       await sign_in(b.services, MODERATOR)))
    presence = opening["presence"]["data"]
    assert {(u["username"], u["is_staff"]) for u in presence["users"]} == {
        ("buyer", False), ("moderator", True)}
    assert presence["staff_online"] is True
    joined = await next_of(owner, "presence_joined",
                           where=lambda f: f["data"]["username"] == "moderator")
    assert joined["offset"] is None and joined["data"]["is_staff"] is True

    await send(agent, {"type": "typing"})
    typing = await next_of(owner, "typing_indicator")
    assert typing["data"]["username"] == "moderator" and typing["offset"] is None

    agent.close()
    left = await next_of(owner, "presence_left")
    assert left["data"]["username"] == "moderator"
    assert (await a.hub.presence_snapshot(f"support:{ticket}"))["staff_online"] is False
    owner.close()


@pytest.mark.gen_test(timeout=30)
async def test_reconnect_elsewhere_recovers_exactly_the_missed_events(cluster):
    a, b = cluster
    community = await new_community(a.services.db, members=(BUYER_ID,))
    channel, token = f"community:{community}", await sign_in(a.services, BUYER)
    conn, _ = await join(ws_url(a.base_url, f"/ws/community/{community}", token))
    seen = await a.hub.publish(channel, "new_post", {"n": 0})
    assert (await next_of(conn, "new_post"))["offset"] == seen["offset"]
    conn.close()
    await until(lambda: a.hub.local_count(channel) == 0)

    missed = [await b.hub.publish(channel, "new_comment", {"n": n}) for n in (1, 2, 3)]
    conn = await connect(ws_url(b.base_url, f"/ws/community/{community}", token,
                                since=seen["offset"]))
    recovered = await next_of(conn, "recovered")
    assert recovered["data"]["recovered"] is True and recovered["data"]["missed"] == 3
    got = [await next_of(conn, "new_comment") for _ in missed]
    assert [(f["offset"], f["data"]) for f in got] == [(m["offset"], m["data"]) for m in missed]
    live = await a.hub.publish(channel, "new_reaction", {"n": 4})
    after = await frame(conn)
    while after["type"].startswith("presence"):
        after = await frame(conn)
    assert (after["type"], after["offset"]) == ("new_reaction", live["offset"])
    conn.close()


@pytest.fixture
def settings_overrides(request):
    return getattr(request, "param", {})


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings_overrides", [{"history_size": 10}], indirect=True)
async def test_since_older_than_the_kept_history_is_not_recovered(cluster):
    a, b = cluster
    channel, token = f"notifications:{BUYER_ID}", await sign_in(a.services, BUYER)
    first = await b.hub.publish(channel, "announcement", {"n": 0})
    for n in range(250):          # MAXLEN ~ trims whole stream nodes (100 entries each)
        await b.hub.publish(channel, "announcement", {"n": n + 1})
    conn = await connect(ws_url(a.base_url, "/ws/notifications", token, since=first["offset"]))
    recovered = await next_of(conn, "recovered")
    assert recovered["data"]["recovered"] is False
    assert recovered["data"]["reason"] == "history_expired"
    live = await b.hub.publish(channel, "announcement", {"n": "live"})
    assert (await frame(conn))["offset"] == live["offset"]
    conn.close()
    redis = a.hub.broker.commands
    assert await redis.xlen(f"hwc3d:rt:hist:{channel}") < 252
    assert 0 < await redis.ttl(f"hwc3d:rt:hist:{channel}") <= a.services.settings.history_ttl_seconds


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings_overrides", [{"ws_queue_size": 8, "history_size": 10}],
                         indirect=True)
async def test_slow_consumer_on_a_is_closed_while_others_receive(cluster):
    a, b = cluster
    channel, token = f"notifications:{BUYER_ID}", await sign_in(a.services, BUYER)
    slow, _ = await join(ws_url(a.base_url, "/ws/notifications", token), presence=False)
    readers = [(await join(ws_url(i.base_url, "/ws/notifications", token), presence=False))[0]
               for i in (a, b)]
    counts = [0, 0]

    async def read(index, conn):
        while counts[index] < 200:
            got = await frame(conn, 10)
            assert got["data"]["n"] == counts[index]
            counts[index] += 1

    reading = asyncio.gather(*(read(i, c) for i, c in enumerate(readers)))
    blob = "x" * 100_000
    for n in range(200):                         # 20 MB through Redis
        await b.hub.publish(channel, "announcement", {"n": n, "blob": blob})
        await until(lambda n=n: min(counts) >= n - 2, 10)
    await asyncio.wait_for(reading, 20)
    await until(lambda: a.hub.local_count(channel) == 1)
    assert a.services.metrics.slow_consumers.labels("notifications")._value.get() == 1
    for conn in [slow, *readers]:
        conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_redis_subscribes_only_to_channels_with_local_subscribers(cluster):
    a, b = cluster
    token = await sign_in(a.services, BUYER)
    channel = f"hwc3d:rt:ch:notifications:{BUYER_ID}"
    redis = a.hub.broker.commands

    async def subscribers() -> int:
        return dict(await redis.pubsub_numsub(channel))[channel.encode()]

    assert await subscribers() == 0
    conns = [(await join(ws_url(a.base_url, "/ws/notifications", token), presence=False))[0]
             for _ in range(3)]
    assert await subscribers() == 1               # one pub/sub connection for the process
    other, _ = await join(ws_url(b.base_url, "/ws/notifications", token), presence=False)
    assert await subscribers() == 2
    for conn in conns:
        conn.close()
    await until(lambda: a.hub.local_count() == 0)
    deadline = time.monotonic() + 5
    while await subscribers() != 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    other.close()


# --------------------------------------------------------------------------- Redis outage

@pytest.mark.gen_test(timeout=40)
async def test_redis_going_away_and_coming_back(tmp_path, own_redis):
    settings = settings_for(tmp_path, redis_url=own_redis.url)
    a = await start_instance(settings)
    b = await start_instance(settings, db=a.services.db)
    try:
        channel, token = f"notifications:{BUYER_ID}", await sign_in(a.services, BUYER)
        on_a, _ = await join(ws_url(a.base_url, "/ws/notifications", token), presence=False)
        on_b, _ = await join(ws_url(b.base_url, "/ws/notifications", token), presence=False)
        before = await b.hub.publish(channel, "announcement", {"n": "before"})
        assert (await frame(on_a))["offset"] == before["offset"]
        assert (await frame(on_b))["offset"] == before["offset"]

        own_redis.kill()
        await until(lambda: not a.hub.broker.connected and not b.hub.broker.connected)
        during = await a.hub.publish(channel, "announcement", {"n": "during"})
        assert during["offset"] is None
        got = await frame(on_a)
        assert (got["data"], got["offset"]) == ({"n": "during"}, None)
        assert (await a.call("GET", "/healthz"))[0] == 200
        late, _ = await join(ws_url(a.base_url, "/ws/notifications", token), presence=False)
        await a.hub.publish(channel, "announcement", {"n": "local"})
        assert (await frame(late))["data"] == {"n": "local"}
        assert (await frame(on_a))["data"] == {"n": "local"}

        own_redis.start()
        await until(lambda: a.hub.broker.connected and b.hub.broker.connected, 15)
        # A's outbox is published in order once Redis is back: B's socket gets both events
        # with offsets; A's sockets do not get again what they had (`late` joined after
        # "during" was written: it gets that one now)
        queued = [await frame(on_b, 10) for _ in range(2)]
        assert [f["data"] for f in queued] == [{"n": "during"}, {"n": "local"}]
        assert queued[0]["offset"] < queued[1]["offset"] and queued[0]["offset"] > before["offset"]
        got = await frame(late, 10)
        assert (got["data"], got["offset"]) == ({"n": "during"}, queued[0]["offset"])
        after = await b.hub.publish(channel, "announcement", {"n": "after"})
        assert after["offset"] == queued[1]["offset"] + 1
        for conn in (on_a, late, on_b):
            got = await frame(conn, 10)
            assert (got["data"], got["offset"]) == ({"n": "after"}, after["offset"])
        back = await a.hub.publish(channel, "announcement", {"n": "back"})
        assert (await frame(on_b, 10))["offset"] == back["offset"]
        assert (await a.call("GET", "/readyz"))[0] == 200
        for conn in (on_a, on_b, late):
            conn.close()
    finally:
        await stop_instance(b)
        await stop_instance(a)


# --------------------------------------------------------------------------- hub level

class Recorder:
    """A socket stand-in for a `Connection`: keeps what the hub writes."""

    def __init__(self):
        self.frames: asyncio.Queue = asyncio.Queue()
        self.closed_with = None

    async def send(self, text: str) -> None:
        await self.frames.put(json.loads(text))

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)

    async def next(self, type: str, timeout: float = 5.0) -> dict:
        while True:
            got = await asyncio.wait_for(self.frames.get(), timeout)
            if got["type"] == type:
                return got


def redis_hub(settings, redis_url: str, prefix: str, heartbeat: float) -> Hub:
    broker = RedisBroker(redis_url, 100, 60, prefix=prefix)
    presence = RedisPresence(broker.commands, uuid.uuid4().hex[:12], prefix=prefix,
                             heartbeat=heartbeat)
    from handlers.metrics import Metrics
    return Hub(settings, broker, presence, Metrics(), instance_id=presence.instance_id,
               heartbeat=heartbeat)


@pytest.mark.gen_test(timeout=30)
async def test_presence_of_a_dead_instance_expires(tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url=redis_url)
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    alive, doomed = (redis_hub(settings, redis_url, prefix, 0.2) for _ in range(2))
    await alive.start()
    await doomed.start()
    channel = f"support:{ObjectId()}"
    watcher, ghost = Recorder(), Recorder()
    watcher_conn = alive.connection(watcher.send, watcher.close,
                                    {"user_id": "u1", "username": "buyer", "is_staff": False})
    await alive.join(watcher_conn, channel)
    ghost_conn = doomed.connection(ghost.send, ghost.close,
                                   {"user_id": "u2", "username": "agent", "is_staff": True})
    await doomed.join(ghost_conn, channel)
    while (await watcher.next("presence_joined"))["data"]["username"] != "agent":
        pass
    assert (await alive.presence_snapshot(channel))["staff_online"] is True

    for task in doomed._tasks:                  # the instance dies: no cleanup at all
        task.cancel()
    await asyncio.gather(*doomed._tasks, return_exceptions=True)
    left = await watcher.next("presence_left", timeout=10)
    assert left["data"]["username"] == "agent"
    assert (await alive.presence_snapshot(channel))["users"] == [watcher_conn.info]
    await alive.close()
    await doomed.close()


@pytest.mark.gen_test
async def test_memory_broker_history_ring():
    broker = MemoryBroker(history_size=3, history_ttl=60)
    delivered = []
    await broker.start(lambda c, o, f: delivered.append((c, o)))
    await broker.subscribe("c")
    offsets = [(await broker.publish("c", '{"type":"t","offset":'))[0] for _ in range(5)]
    assert offsets == list(range(offsets[0], offsets[0] + 5))
    transient, frame_text = await broker.publish("c", '{"type":"typing","offset":', history=False)
    assert transient is None and json.loads(frame_text) == {"type": "typing", "offset": None}
    assert [o for _c, o in delivered] == [*offsets, None]
    frames, complete, top = await broker.history("c", offsets[1])
    assert ([o for o, _f in frames], complete, top) == (offsets[2:], True, offsets[-1])
    frames, complete, _top = await broker.history("c", offsets[0])
    assert complete is False
    assert await broker.history("c", offsets[-1]) == ([], True, offsets[-1])
    assert await broker.history("other", 0) == ([], True, 0)
    await broker.unsubscribe("c")
    await broker.publish("c", '{"type":"t","offset":')
    assert len(delivered) == 6
