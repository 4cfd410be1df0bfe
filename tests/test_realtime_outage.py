"""No acknowledged event is lost to a Redis outage (README "WebSocket protocol", Outages).

Two instances on one redis-server of the test's own, sharing one document store, members
connected to a community on both. Posts are written over REST through instance A while
Redis is SIGKILLed and restarted with no data: every post acknowledged with 201 reaches the
member on instance B, once, in order, with an offset, and a member who was away recovers
them all with `since`. When the outage outlasts the outbox, the subscribers get a `resync`
frame instead of a silent gap.
"""
from __future__ import annotations

import asyncio
import uuid

import pytest
from community_support import GAME, CommunityInstance, next_event, read, ready
from conftest import test_settings as settings_for
from demo_accounts import BUYER, BUYER2, CREATOR2
from instances import start_instance, stop_instance
from socket_support import until

from realtime.broker import RedisBroker

pytestmark = pytest.mark.store  # opens instances on the test's store itself

CHANNEL = f"community:{GAME}"


async def two_instances(tmp_path, redis, **overrides):
    settings = settings_for(tmp_path, redis_url=redis.url, **overrides)
    a = await start_instance(settings, cls=CommunityInstance)
    return a, await start_instance(settings, db=a.services.db, cls=CommunityInstance)


async def post(instance, token: str, n: int) -> str:
    status, body = await instance.call("POST", f"/api/communities/{GAME}/posts", token,
                                       {"content": f"Post number {n}"})
    assert status == 201, body
    return body["id"]


async def collect(conn, want: set[str], timeout: float = 20.0) -> tuple[list[dict], list[dict]]:
    """`new_post` frames until every id of `want` was seen or a resync came; (posts, resyncs)."""
    posts, resyncs = [], []

    async def run():
        while not want <= {p["data"]["id"] for p in posts} and not resyncs:
            got = await read(conn, timeout)
            assert got is not None, f"socket closed ({conn.close_code})"
            if got["type"] == "new_post":
                posts.append(got)
            elif got["type"] == "resync":
                resyncs.append(got)
    await asyncio.wait_for(run(), timeout)
    return posts, resyncs


@pytest.mark.gen_test(timeout=90)
async def test_posts_acknowledged_while_redis_restarts_empty_all_reach_the_other_instance(
        tmp_path, own_redis):
    a, b = await two_instances(tmp_path, own_redis)
    try:
        author = await a.sign_in(BUYER)
        on_a = await a.socket(GAME, author)
        on_b = await b.socket(GAME, await b.sign_in(BUYER2))
        away = await b.socket(GAME, await b.sign_in(CREATOR2))
        for conn in (on_a, on_b, away):
            await ready(conn)

        acked = [await post(a, author, n) for n in range(3)]
        seen = await next_event(away, "new_post")
        while seen["data"]["id"] != acked[-1]:
            seen = await next_event(away, "new_post")
        away.close()                                  # will come back with `since`

        # a stream of posts; Redis is killed after the 6th and restarted empty after the 12th
        for n in range(3, 20):
            if n == 6:
                own_redis.kill()
                await until(lambda: not a.hub.broker.connected, 10)
            if n == 12:
                own_redis.start()
            acked.append(await post(a, author, n))
        await until(lambda: a.hub.broker.connected and b.hub.broker.connected, 20)
        acked.append(await post(a, author, 20))

        posts, resyncs = await collect(on_b, set(acked))
        assert resyncs == []
        assert [p["data"]["id"] for p in posts] == acked          # once each, in order
        offsets = [p["offset"] for p in posts]
        assert None not in offsets and offsets == sorted(offsets)
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))   # no jump

        # the author's own instance delivered each post once (the outage ones at once; an
        # event that its pub/sub connection missed when Redis died comes after those)
        mine, resyncs = await collect(on_a, set(acked))
        assert resyncs == [] and sorted(p["data"]["id"] for p in mine) == sorted(acked)

        # Redis lost its history; the instances wrote it back: `since` recovers everything
        back = await b.socket(GAME, await b.sign_in(CREATOR2) +
                              f"&since={seen['offset']}")
        recovered = await next_event(back, "recovered")
        assert recovered["data"]["recovered"] is True, recovered["data"]
        assert recovered["data"]["missed"] == len(acked) - 3
        replay, resyncs = await collect(back, set(acked[3:]))
        assert resyncs == [] and [p["data"]["id"] for p in replay] == acked[3:]
        assert [p["offset"] for p in replay] == offsets[3:]
        for conn in (on_a, on_b, back):
            conn.close()
    finally:
        await stop_instance(b)
        await stop_instance(a)


@pytest.mark.gen_test(timeout=90)
async def test_an_outage_longer_than_the_outbox_sends_resync_not_a_gap(tmp_path, own_redis):
    a, b = await two_instances(tmp_path, own_redis, outbox_size=3)
    try:
        author = await a.sign_in(BUYER)
        on_b = await b.socket(GAME, await b.sign_in(BUYER2))
        await ready(on_b)
        before = await post(a, author, 0)
        first = await next_event(on_b, "new_post")
        assert first["data"]["id"] == before

        own_redis.kill()
        await until(lambda: not a.hub.broker.connected, 10)
        during = [await post(a, author, n) for n in range(1, 9)]      # 8 posts, room for 3
        assert len(a.hub.outbox) == 3
        own_redis.start()

        posts, resyncs = [], []
        while not resyncs:
            got = await read(on_b, 20)
            assert got is not None, on_b.close_code
            (posts if got["type"] == "new_post" else resyncs if got["type"] == "resync"
             else []).append(got)
        assert [p["data"]["id"] for p in posts] == during[:3]
        (resync,) = resyncs
        assert (resync["channel"], resync["reason"]) == (CHANNEL, "outbox_overflow")
        assert resync["data"] == {"reason": "outbox_overflow"}
        assert resync["offset"] > posts[-1]["offset"]
        assert a.services.metrics.resyncs.labels("community", "outbox_overflow")._value.get() == 1

        # live delivery goes on; a client that recovers across the outage is told too
        after = await post(a, author, 9)
        assert (await next_event(on_b, "new_post", 20))["data"]["id"] == after
        late = await b.socket(GAME, await b.sign_in(CREATOR2) +
                              f"&since={first['offset']}")
        recovered = await next_event(late, "recovered")
        assert recovered["data"]["recovered"] is True
        replay = []
        while len(replay) < 5:
            got = await read(late)
            if got["type"] in ("new_post", "resync"):
                replay.append(got)
        assert [f["type"] for f in replay] == ["new_post"] * 3 + ["resync", "new_post"]
        on_b.close()
        late.close()
    finally:
        await stop_instance(b)
        await stop_instance(a)


# --------------------------------------------------------------------------- history rebuild

def head(n: int) -> str:
    return f'{{"type":"announcement","data":{{"n":{n}}},"offset":'


@pytest.fixture
def brokers(io_loop, redis_url):
    """Two instances' brokers on the session's Redis (keys under a prefix of their own) and
    a function that makes Redis lose every key of theirs, as a restart without data does."""
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    a, b = (RedisBroker(redis_url, 100, 60, prefix=prefix) for _ in range(2))

    async def lose_everything():
        await a.commands.eval(f"for _, k in ipairs(redis.call('KEYS', '{prefix}*')) do "
                              "redis.call('DEL', k) end", 0)

    yield a, b, lose_everything
    io_loop.run_sync(lambda: asyncio.gather(a.close(), b.close()))


@pytest.mark.gen_test(timeout=30)
async def test_lost_history_is_rebuilt_from_what_the_instances_saw(brokers):
    a, b, lose_everything = brokers
    channel = "notifications:rebuilt"
    received = []
    await a.start(lambda c, o, f: received.append(o))
    assert await a.subscribe(channel)                # a has a subscriber: sees them all
    published = [await a.publish(channel, head(n)) for n in range(4)]
    last, _ = await b.publish(channel, head(4))      # b saw only its own event
    await until(lambda: last in received)
    await lose_everything()
    assert await b.restore_history() == []           # first back: rebuilds from one event
    assert await a.restore_history() == []           # a knew more: its copy wins
    frames, complete, top = await a.history(channel, published[0][0])
    assert complete is True and top == published[0][0] + 4
    assert [o for o, _f in frames] == [published[0][0] + n for n in range(1, 5)]
    assert frames[0][1] == published[1][1]
    offset, _frame = await b.publish(channel, head(5))
    assert offset == top + 1                          # no jump, no reuse


@pytest.mark.gen_test(timeout=30)
async def test_history_that_cannot_be_bridged_is_reported(brokers):
    a, b, lose_everything = brokers
    channel = "notifications:lost"
    last = (await a.publish(channel, head(0)))[0]
    await lose_everything()
    fresh, _ = await b.publish(channel, head(1))     # b never saw the channel
    assert fresh > last + 1                           # a fresh counter: offsets jumped
    assert await a.restore_history() == [channel]    # the hub then publishes resync
    frames, complete, _top = await a.history(channel, last)
    assert complete is False and [o for o, _f in frames] == [fresh]
