"""Cross-instance real-time on one Redis and on a real 3-master Redis Cluster (docs/architecture.md §6).

Each test runs twice: with two instances on the session's `redis-server`
(`REDIS_URL`) and with two instances on the session's 3-master Redis Cluster
(`REDIS_CLUSTER_URLS`). Each instance has its own services, hub, Redis connections and
HTTP server on its own port; they share one document store. What is checked is what a user
sees on a socket: a follow made through B reaches the followed user's socket on A, a post
through B reaches members on A, a reconnect with ``since`` recovers exactly what was
missed, a slow consumer is closed with 4008 while the others keep reading.

The cluster itself (slots, shards, resharding, failover, `server.py` processes) is checked
in `tests/test_redis_cluster_mode.py`.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from conftest import test_settings as settings_for
from demo_accounts import BUYER, BUYER2, CREATOR, CREATOR_ID, GAME_ASSETS
from instances import start_instance, stop_instance
from realtime_members import Member, next_event, post, read, ready, until

pytestmark = pytest.mark.store  # opens instances on the test's store itself

SLOW_CONSUMER = 4008


# --------------------------------------------------------------------------- across instances

@pytest.fixture(params=["redis", "redis_cluster"])
def redis_settings(request) -> dict:
    """The Redis of the instances: one redis-server, or the 3-master cluster."""
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {"redis_cluster_nodes": request.getfixturevalue("redis_cluster").nodes}


@pytest.fixture
def settings_overrides(request):
    return getattr(request, "param", {})


@pytest.fixture
def pair(io_loop, tmp_path, redis_settings, settings_overrides):
    """Two instances (A, B) on the same Redis (or cluster) and one document store."""
    settings = settings_for(tmp_path, **redis_settings, **settings_overrides)

    async def start():
        a = await start_instance(settings, cls=Member)
        return a, await start_instance(settings, db=a.services.db, cls=Member)

    a, b = io_loop.run_sync(start, timeout=30)
    yield a, b
    io_loop.run_sync(lambda: asyncio.gather(stop_instance(b), stop_instance(a)), timeout=30)


@pytest.mark.gen_test(timeout=40)
async def test_a_follow_through_b_reaches_the_followed_users_socket_on_a(pair):
    a, b = pair
    followed = await a.socket("/ws/notifications", await a.token(CREATOR))
    await ready(followed)
    status, _ = await b.call("POST", "/api/users/creator/follow", await b.token(BUYER))
    assert status == 201
    event = await next_event(followed, "new_follower")
    assert event["channel"] == f"notifications:{CREATOR_ID}" and event["offset"] is not None
    assert "buyer" in json.dumps(event["data"]), event
    followed.close()


@pytest.mark.gen_test(timeout=40)
async def test_a_post_through_b_reaches_members_on_both_instances(pair):
    a, b = pair
    on_a = await a.socket(f"/ws/community/{GAME_ASSETS}", await a.token(BUYER2))
    on_b = await b.socket(f"/ws/community/{GAME_ASSETS}", await b.token(BUYER2))
    for conn in (on_a, on_b):
        await ready(conn)
    written = await post(b, GAME_ASSETS, await b.token(BUYER), "Fresh low-poly fox")
    seen = [await next_event(conn, "new_post") for conn in (on_a, on_b)]
    assert {e["data"]["id"] for e in seen} == {written}
    assert seen[0]["offset"] == seen[1]["offset"] is not None
    for conn in (on_a, on_b):
        conn.close()


@pytest.mark.gen_test(timeout=40)
async def test_since_recovers_exactly_the_events_missed_meanwhile(pair):
    a, b = pair
    member, author = await a.token(BUYER2), await b.token(BUYER)
    conn = await a.socket(f"/ws/community/{GAME_ASSETS}", member)
    await ready(conn)
    await post(b, GAME_ASSETS, author, "Before")
    seen = await next_event(conn, "new_post")
    conn.close()
    await until(lambda: a.hub.local_count(f"community:{GAME_ASSETS}") == 0)

    missed = [await post(b, GAME_ASSETS, author, f"Missed {n}") for n in range(3)]
    conn = await a.socket(f"/ws/community/{GAME_ASSETS}", member, since=seen["offset"])
    recovered = await next_event(conn, "recovered")
    assert recovered["data"]["recovered"] is True and recovered["data"]["missed"] == 3
    got = [await next_event(conn, "new_post") for _ in missed]
    assert [e["data"]["id"] for e in got] == missed
    assert [e["offset"] for e in got] == [seen["offset"] + n for n in (1, 2, 3)]
    live = await post(b, GAME_ASSETS, author, "Live")
    after = await next_event(conn, "new_post")
    assert (after["data"]["id"], after["offset"]) == (live, seen["offset"] + 4)
    conn.close()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings_overrides", [{"ws_queue_size": 8, "history_size": 10}],
                         indirect=True)
async def test_a_slow_consumer_on_a_is_closed_while_others_receive_everything(pair):
    a, b = pair
    token = await a.token(BUYER)
    channel = "notifications:650000000000000000000005"
    slow = await a.socket("/ws/notifications", token)             # never reads again
    readers = [await i.socket("/ws/notifications", token) for i in (a, b)]
    for conn in readers:
        await ready(conn)
    counts = [0, 0]

    async def drain(index, conn):
        while counts[index] < 200:
            got = await read(conn)
            assert got is not None, f"reader closed ({conn.close_code})"
            if got["type"] == "announcement":
                assert got["data"]["n"] == counts[index]
                counts[index] += 1

    reading = asyncio.gather(*(drain(i, c) for i, c in enumerate(readers)))
    blob = "x" * 100_000
    for n in range(200):                         # 20 MB through Redis
        await b.hub.publish(channel, "announcement", {"n": n, "blob": blob})
        await until(lambda n=n: min(counts) >= n - 2)
    await asyncio.wait_for(reading, 30)

    async def closed_code():
        while await slow.read_message() is not None:
            pass
        return slow.close_code
    assert await asyncio.wait_for(closed_code(), 20) == SLOW_CONSUMER
    for conn in readers:
        conn.close()
