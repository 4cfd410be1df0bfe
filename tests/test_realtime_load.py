"""The hub under load (benchmark findings): bursts of joins never run out of Redis
connections, presence stays exact through many joins and leaves on two instances at O(1)
per change, snapshots are capped, and an idle socket costs no task of its own.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
import uuid

import pytest
from bson import ObjectId
from conftest import test_settings as settings_for

from handlers.metrics import Metrics
from realtime.broker import MemoryBroker, RedisBroker
from realtime.hub import Hub
from realtime.presence import SNAPSHOT_LIMIT, MemoryPresence, RedisPresence

pytestmark = pytest.mark.store  # opens instances on the test's store itself


class Sink:
    """A socket stand-in whose writes complete at once (or never, when `stalled`)."""

    def __init__(self, stalled: bool = False):
        self.frames: list[dict] = []
        self.closed_with = None
        self.stalled = stalled
        self.pending: list[asyncio.Future] = []

    def send(self, text: str) -> asyncio.Future:
        self.frames.append(json.loads(text))
        future = asyncio.get_running_loop().create_future()
        if self.stalled:
            self.pending.append(future)
        else:
            future.set_result(None)
        return future

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)

    def of(self, type: str) -> list[dict]:
        return [f for f in self.frames if f["type"] == type]


def redis_hub(settings, redis_url: str, prefix: str, **pool) -> Hub:
    broker = RedisBroker(redis_url, 100, 60, prefix=prefix, **pool)
    presence = RedisPresence(broker.commands, uuid.uuid4().hex[:12], prefix=prefix,
                             heartbeat=0.2)
    return Hub(settings, broker, presence, Metrics(), instance_id=presence.instance_id,
               heartbeat=0.2)


def info(n: int, staff: bool = False) -> dict:
    return {"user_id": f"u{n}", "username": f"user{n}", "avatar_url": None, "is_staff": staff}


async def until(predicate, timeout: float = 5.0) -> None:
    async def wait():
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


@pytest.mark.gen_test(timeout=60)
async def test_300_concurrent_joins_wait_for_a_connection_instead_of_failing(tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url=redis_url)
    hub = redis_hub(settings, redis_url, f"test:{uuid.uuid4().hex[:8]}:", max_connections=10)
    await hub.start()
    try:
        channel = f"support:{ObjectId()}"
        first = await hub.publish(channel, "announcement", {"n": 0})
        await hub.publish(channel, "announcement", {"n": 1})
        sinks = [Sink() for _ in range(300)]
        conns = [hub.connection(s.send, s.close, info(i % 7)) for i, s in enumerate(sinks)]
        await asyncio.gather(*(hub.join(c, channel, since=first["offset"], recover=True)
                               for c in conns))
        for sink in sinks:
            assert sink.closed_with is None
            (recovered,) = sink.of("recovered")
            assert recovered["data"]["recovered"] is True, recovered["data"]
            assert [f["data"]["n"] for f in sink.of("announcement")] == [1]
            assert sink.of("presence")[0]["data"]["count"] >= 1
        snapshot = await hub.presence_snapshot(channel)
        assert snapshot["count"] == 7
        assert sorted(u["user_id"] for u in snapshot["users"]) == [f"u{i}" for i in range(7)]
        live = await hub.publish(channel, "announcement", {"n": 2})
        await until(lambda: all(s.frames[-1]["offset"] == live["offset"] for s in sinks))
        await asyncio.gather(*(hub.leave(c) for c in conns))
        assert (await hub.presence_snapshot(channel))["count"] == 0
    finally:
        await hub.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_busy_pool_is_not_reported_as_history_unavailable(tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url=redis_url)
    hub = redis_hub(settings, redis_url, f"test:{uuid.uuid4().hex[:8]}:", max_connections=1,
                    pool_timeout=0.05)
    await hub.start()
    try:
        channel = f"notifications:{ObjectId()}"
        first = await hub.publish(channel, "announcement", {"n": 0})
        held = await hub.broker.commands.connection_pool.get_connection()
        sink = Sink()
        await hub.join(hub.connection(sink.send, sink.close, info(1)), channel,
                       since=first["offset"], recover=True, presence=False)
        (recovered,) = sink.of("recovered")
        assert recovered["data"]["recovered"] is False
        assert recovered["data"]["reason"] == "history_busy"
        await hub.broker.commands.connection_pool.release(held)
    finally:
        await hub.close()


@pytest.mark.gen_test(timeout=60)
async def test_presence_stays_exact_through_many_joins_and_leaves_on_two_instances(
        tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url=redis_url)
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    hubs = [redis_hub(settings, redis_url, prefix) for _ in range(2)]
    for hub in hubs:
        await hub.start()
    try:
        channel = f"community:{ObjectId()}"
        watcher = Sink()
        await hubs[0].join(hubs[0].connection(watcher.send, watcher.close, info(0)), channel)
        rng = random.Random(7)
        open_conns = []
        for _round in range(4):
            batch = []
            for i in range(60):
                hub = hubs[i % 2]
                user = 1 + rng.randrange(12)
                sink = Sink()
                batch.append((hub, hub.connection(sink.send, sink.close,
                                                  info(user, staff=user == 12))))
            await asyncio.gather(*(h.join(c, channel) for h, c in batch))
            open_conns += batch
            rng.shuffle(open_conns)
            leaving, open_conns = open_conns[:40], open_conns[40:]
            await asyncio.gather(*(h.leave(c) for h, c in leaving))

        present = {c.info["user_id"] for _h, c in open_conns} | {"u0"}
        snapshot = await hubs[1].presence_snapshot(channel)
        assert snapshot["count"] == len(present)
        assert {u["user_id"] for u in snapshot["users"]} == present
        assert snapshot["staff_online"] == ("u12" in present)

        # Each user was announced joined on a first socket and left on a last one: what
        # the watcher saw adds up to who is there now.
        def balance() -> dict[str, int]:
            out: dict[str, int] = {}
            for f in watcher.frames:
                if f["type"] in ("presence_joined", "presence_left"):
                    step = 1 if f["type"] == "presence_joined" else -1
                    out[f["data"]["user_id"]] = out.get(f["data"]["user_id"], 0) + step
            return out

        deadline = time.monotonic() + 10  # cross-instance events arrive through Redis
        while {u for u, n in balance().items() if n == 1} != present:
            assert time.monotonic() < deadline, balance()
            await asyncio.sleep(0.02)
        assert all(n in (0, 1) for n in balance().values())

        await asyncio.gather(*(h.leave(c) for h, c in open_conns))
        snapshot = await hubs[0].presence_snapshot(channel)
        assert (snapshot["count"], [u["user_id"] for u in snapshot["users"]]) == (1, ["u0"])
        assert snapshot["staff_online"] is False
    finally:
        for hub in hubs:
            await hub.close()


@pytest.mark.gen_test(timeout=120)
async def test_presence_snapshot_is_capped_with_the_exact_count(tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url=redis_url)
    memory_hub = Hub(settings, MemoryBroker(100, 60), MemoryPresence(), Metrics())
    hubs = [memory_hub, redis_hub(settings, redis_url, f"test:{uuid.uuid4().hex[:8]}:")]
    for hub in hubs:
        await hub.start()
        try:
            channel = f"community:{ObjectId()}"
            total = SNAPSHOT_LIMIT + 50
            sinks = [Sink() for _ in range(total)]
            await asyncio.gather(*(hub.join(hub.connection(s.send, s.close, info(i, i == 3)),
                                            channel) for i, s in enumerate(sinks)))
            snapshot = await hub.presence_snapshot(channel)
            assert snapshot["count"] == total
            assert len(snapshot["users"]) == SNAPSHOT_LIMIT
            assert snapshot["staff_online"] is True
        finally:
            await hub.close()


@pytest.mark.gen_test
async def test_an_idle_socket_has_no_task_and_a_stalled_one_is_closed_as_slow():
    hub = Hub(Limits(ws_queue_size=4), MemoryBroker(100, 60), MemoryPresence(), Metrics())
    await hub.start()
    channel = "notifications:x"
    try:
        before = len(asyncio.all_tasks())
        sinks = [Sink() for _ in range(50)]
        conns = [hub.connection(s.send, s.close, info(i)) for i, s in enumerate(sinks)]
        for conn in conns:
            await hub.join(conn, channel, presence=False)
        assert len(asyncio.all_tasks()) == before     # no writer task per socket
        stalled = Sink()
        await hub.join(hub.connection(stalled.send, stalled.close, info(99)), channel,
                       presence=False)
        stalled.stalled = True                        # the client stops reading
        for n in range(4):
            await hub.publish(channel, "announcement", {"n": n})
        assert stalled.closed_with is None            # 4 unflushed frames: the limit
        stalled.pending.pop(0).set_result(None)       # one flushed: room for one more
        await asyncio.sleep(0)                        # (done callbacks run on the loop)
        await hub.publish(channel, "announcement", {"n": 4})
        assert stalled.closed_with is None
        await hub.publish(channel, "announcement", {"n": 5})
        assert stalled.closed_with == (4008, "slow consumer")
        await until(lambda: hub.local_count(channel) == 50)
        assert hub.metrics.slow_consumers.labels("notifications")._value.get() == 1
        for sink in sinks:
            assert [f["data"]["n"] for f in sink.of("announcement")] == list(range(6))
    finally:
        await hub.close()


class Limits:
    """The settings a hub reads."""

    def __init__(self, ws_queue_size: int):
        self.ws_queue_size = ws_queue_size


# --------------------------------------------------------------------------- large channels

async def crowd(hub, channel: str, users: int) -> tuple[list[Sink], float]:
    """`users` distinct users join `channel` at once; (their sinks, seconds it took until the
    last presence_count says all are there)."""
    started = time.monotonic()
    sinks = [Sink() for _ in range(users)]
    await asyncio.gather(*(hub.join(hub.connection(s.send, s.close, info(i)), channel)
                           for i, s in enumerate(sinks)))
    await until(lambda: any(f["data"]["count"] == users for f in sinks[0].of("presence_count")),
                10)
    return sinks, time.monotonic() - started


@pytest.mark.gen_test(timeout=240)
async def test_presence_frames_grow_linearly_in_a_large_community(tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url=redis_url, presence_coalesce_above=20)
    frames = {}
    for users in (80, 240):
        hub = redis_hub(settings, redis_url, f"test:{uuid.uuid4().hex[:8]}:")
        await hub.start()
        try:
            channel = f"community:{ObjectId()}"
            sinks, seconds = await crowd(hub, channel, users)
            per_socket = [len(s.frames) for s in sinks]
            frames[users] = sum(per_socket)
            for sink in sinks:
                counts = sink.of("presence_count")
                assert len(counts) <= seconds + 2          # at most one a second
                assert len(sink.of("presence")) == 1
                assert len(sink.of("presence")[0]["data"]["users"]) <= SNAPSHOT_LIMIT
            # per-user events only while the channel was small: a socket hears of 20 at most
            assert max(len(s.of("presence_joined")) for s in sinks) <= 20
            assert sinks[0].of("presence_count")[-1]["data"] == {"count": users,
                                                                 "staff_online": False}
        finally:
            await hub.close()
    # three times the users: about three times the frames (n² would be nine times)
    assert frames[240] < 4.5 * frames[80], frames
