"""A real Redis Cluster under the real-time hubs (docs/architecture.md §6, README "Redis Cluster").

Every key of a channel lives in one slot; an instance subscribes each channel once, on the
master that owns its slot; events reach subscribers whatever shard their channel lands on;
a channel whose slot moves to another master keeps delivering; posts written while a master
fails over (a cluster with replicas) all arrive; a dead instance's users leave presence;
two `server.py` processes on `REDIS_CLUSTER_URLS` carry a follow and a post from one to the
other.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from conftest import free_port
from conftest import test_settings as settings_for
from demo_accounts import BUYER, BUYER2, CREATOR, CREATOR_ID, GAME_ASSETS, MODERATOR
from instances import start_instance, stop_instance
from processes import Server, clean_env
from realtime_members import (
    Member,
    Recorder,
    communities_on_every_shard,
    log_in,
    move_slot,
    next_event,
    post,
    process_socket,
    ready,
    shard_subscribers,
    until,
)
from redis_cluster import ClusterStartError, RedisClusterProcess
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

pytestmark = pytest.mark.store  # opens instances on the test's store itself


@pytest.fixture
def cluster_pair(io_loop, tmp_path, redis_cluster):
    settings = settings_for(tmp_path, redis_cluster_nodes=redis_cluster.nodes)

    async def start():
        a = await start_instance(settings, cls=Member)
        return a, await start_instance(settings, db=a.services.db, cls=Member)

    a, b = io_loop.run_sync(start, timeout=30)
    yield a, b
    io_loop.run_sync(lambda: asyncio.gather(stop_instance(b), stop_instance(a)), timeout=30)


@pytest.mark.gen_test(timeout=60)
async def test_posts_reach_members_whatever_shard_their_community_lands_on(cluster_pair):
    a, b = cluster_pair
    on_a = await a.token(MODERATOR)   # staff: created communities are active
    communities = await communities_on_every_shard(a, on_a)
    assert len(communities) == 3
    sockets = {c: await a.socket(f"/ws/community/{c}", on_a) for c in communities.values()}
    for conn in sockets.values():
        await ready(conn)
    on_b = await b.token(MODERATOR)
    written = {c: await post(b, c, on_b, f"Hello shard {c}") for c in communities.values()}
    for community, conn in sockets.items():
        event = await next_event(conn, "new_post")
        assert (event["channel"], event["data"]["id"]) == (f"community:{community}",
                                                           written[community])
        conn.close()


@pytest.mark.gen_test(timeout=60)
async def test_an_instance_subscribes_each_channel_once_on_the_master_that_owns_it(
        cluster_pair):
    a, _b = cluster_pair
    token = await a.token(MODERATOR)
    communities = await communities_on_every_shard(a, token)
    sockets = []
    for shard, community in communities.items():
        for _ in range(2):                       # two sockets: still one subscription
            sockets.append(await a.socket(f"/ws/community/{community}", token))
            await ready(sockets[-1])
        assert await shard_subscribers(shard, f"community:{community}") == 1
    for conn in sockets:
        conn.close()
    await until(lambda: a.hub.local_count() == 0)
    for shard, community in communities.items():
        deadline = time.monotonic() + 10
        while await shard_subscribers(shard, f"community:{community}") != 0:
            assert time.monotonic() < deadline, f"community:{community} still subscribed"
            await asyncio.sleep(0.02)


@pytest.mark.gen_test(timeout=60)
async def test_every_key_of_a_channel_lives_in_one_slot(cluster_pair):
    a, b = cluster_pair
    token = await a.token(BUYER2)
    conn = await a.socket(f"/ws/community/{GAME_ASSETS}", token)      # presence keys
    await ready(conn)
    await post(b, GAME_ASSETS, await b.token(BUYER), "Counting slots")  # offset, history
    await next_event(conn, "new_post")
    redis = a.hub.broker.commands
    keys = [key async for key in redis.scan_iter(match=f"*{GAME_ASSETS}*", count=1000)]
    kinds = {key.decode().split("{", 1)[0].rstrip(":") for key in keys}
    assert {"hwc3d:rt:off", "hwc3d:rt:hist", "hwc3d:rt:presence"} <= kinds, keys
    assert len(keys) >= 6, keys
    slots = {await redis.cluster_keyslot(key) for key in keys}
    assert len(slots) == 1, {key: s for key in keys for s in slots}
    conn.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_community_whose_slot_moves_to_another_master_keeps_delivering(
        cluster_pair, redis_cluster):
    a, b = cluster_pair
    member, author = await a.token(BUYER2), await b.token(BUYER)
    conn = await a.socket(f"/ws/community/{GAME_ASSETS}", member)
    await ready(conn)
    first = await post(b, GAME_ASSETS, author, "Before the move")
    before = await next_event(conn, "new_post")
    assert before["data"]["id"] == first

    broker = a.hub.broker
    slot = await broker.commands.cluster_keyslot(f"community:{GAME_ASSETS}")
    source = int(broker.shard_of(f"community:{GAME_ASSETS}").rsplit(":", 1)[1])
    target = next(p for p in redis_cluster.ports if p != source)
    move_slot(slot, source, target, redis_cluster.ports)

    moved = [await post(b, GAME_ASSETS, author, f"After the move {n}") for n in range(3)]
    got = [await next_event(conn, "new_post", 20) for _ in moved]
    assert [e["data"]["id"] for e in got] == moved
    assert [e["offset"] for e in got] == [before["offset"] + n for n in (1, 2, 3)]
    await until(lambda: broker.connected and broker.shard_of(f"community:{GAME_ASSETS}")
                == f"127.0.0.1:{target}", 20)
    conn.close()


@pytest.fixture
def two_processes(tmp_path, redis_cluster, subprocess_store):
    """Two `server.py` processes on the cluster (`REDIS_CLUSTER_URLS`), on one database of
    the wire store, or each on its own in-memory store seeded with the same fixtures."""
    env = clean_env(REDIS_CLUSTER_URLS=",".join(redis_cluster.nodes), SEED_FIXTURES="true",
                    RATE_LIMITS_ENABLED="false", JWT_SECRET_KEY="s" * 40, **subprocess_store())
    started = []
    try:
        for name in ("a", "b"):            # A seeds a shared store before B looks at it
            (tmp_path / name).mkdir()
            started.append(Server(tmp_path / name, free_port(), env))
            started[-1].wait_for("HWC3D server on", timeout=60)
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.mark.gen_test(timeout=90)
async def test_two_server_processes_on_the_cluster_carry_follows_and_posts(two_processes):
    a, b = two_processes
    followed = await process_socket(a, "/ws/notifications", await log_in(a, CREATOR))
    member = await process_socket(a, f"/ws/community/{GAME_ASSETS}", await log_in(a, BUYER2))
    buyer = await log_in(b, BUYER)
    client = AsyncHTTPClient()
    reply = await client.fetch(HTTPRequest(
        f"http://127.0.0.1:{b.port}/api/users/creator/follow", method="POST", body=b"",
        headers={"Authorization": f"Bearer {buyer}"}, request_timeout=20))
    assert reply.code == 201
    event = await next_event(followed, "new_follower", 20)
    assert event["channel"] == f"notifications:{CREATOR_ID}" and event["offset"] is not None
    reply = await client.fetch(HTTPRequest(
        f"http://127.0.0.1:{b.port}/api/communities/{GAME_ASSETS}/posts", method="POST",
        body=json.dumps({"content": "From the other process"}),
        headers={"Authorization": f"Bearer {buyer}", "Content-Type": "application/json"},
        request_timeout=20))
    assert reply.code == 201
    event = await next_event(member, "new_post", 20)
    assert event["data"]["id"] == json.loads(reply.body)["id"] and event["offset"] is not None
    for conn in (followed, member):
        conn.close()


def test_server_starts_on_a_redis_cluster_url(tmp_path, redis_cluster, subprocess_store):
    port = free_port()
    server = Server(Path(tmp_path), port, clean_env(
        REDIS_URL=redis_cluster.url, RATE_LIMITS_ENABLED="true", BCRYPT_ROUNDS="4",
        **subprocess_store()))
    try:
        server.wait_for("Realtime broker: Redis Cluster (3 seed nodes)")
        status, ready_body = server.get("/readyz")
        assert status == 200 and ready_body["checks"]["redis"] is True
    finally:
        server.stop()


@pytest.fixture
def replicated_cluster(tmp_path):
    """A cluster of the test's own: 3 masters, each with a replica."""
    cluster = RedisClusterProcess(tmp_path / "replicated", replicas=1)
    try:
        cluster.start(timeout=60)
    except ClusterStartError as exc:
        pytest.fail(str(exc))
    yield cluster
    cluster.stop()


@pytest.mark.gen_test(timeout=90)
async def test_posts_written_while_a_master_fails_over_all_reach_the_member(
        tmp_path, replicated_cluster):
    settings = settings_for(tmp_path, redis_cluster_nodes=replicated_cluster.nodes)
    a = await start_instance(settings, cls=Member)
    b = await start_instance(settings, db=a.services.db, cls=Member)
    try:
        member, author = await a.token(BUYER2), await b.token(BUYER)
        conn = await a.socket(f"/ws/community/{GAME_ASSETS}", member)
        await ready(conn)
        await post(b, GAME_ASSETS, author, "Before the failover")
        before = await next_event(conn, "new_post")

        master = int(a.hub.broker.shard_of(f"community:{GAME_ASSETS}").rsplit(":", 1)[1])
        replicated_cluster.kill(master)
        written = [await post(b, GAME_ASSETS, author, f"During the failover {n}") for n in range(3)]
        got = [await next_event(conn, "new_post", 45) for _ in written]
        assert [e["data"]["id"] for e in got] == written
        assert all(e["offset"] is not None for e in got)
        assert got[0]["offset"] > before["offset"]
        assert [e["offset"] for e in got] == sorted({e["offset"] for e in got})
        await until(lambda: a.hub.broker.connected and b.hub.broker.connected, 30)
        after = await post(b, GAME_ASSETS, author, "After the failover")
        assert (await next_event(conn, "new_post", 20))["data"]["id"] == after
        # the slot map a node gossips may lag the promotion by a moment; the client's settles
        # on the promoted replica
        await until(lambda: a.hub.broker.shard_of(f"community:{GAME_ASSETS}") != f"127.0.0.1:{master}",
                    30)
        settled = await post(b, GAME_ASSETS, author, "Once the slot map settled")
        assert (await next_event(conn, "new_post", 20))["data"]["id"] == settled
        conn.close()
    finally:
        await stop_instance(b)
        await stop_instance(a)


@pytest.mark.gen_test(timeout=60)
async def test_a_dead_instances_users_leave_the_presence_of_a_channel_on_the_cluster(
        tmp_path, redis_cluster):
    from handlers.metrics import Metrics
    from realtime.cluster import ClusterBroker
    from realtime.hub import Hub
    from realtime.presence import RedisPresence

    settings = settings_for(tmp_path, redis_cluster_nodes=redis_cluster.nodes)

    def hub() -> Hub:
        broker = ClusterBroker(redis_cluster.nodes, 100, 60)
        presence = RedisPresence(broker.commands, f"i{time.monotonic_ns()}", heartbeat=0.2,
                                 cluster=True)
        return Hub(settings, broker, presence, Metrics(), instance_id=presence.instance_id,
                   heartbeat=0.2)

    alive, doomed = hub(), hub()
    await alive.start()
    await doomed.start()
    channel = f"support:{time.monotonic_ns():024x}"
    watcher, ghost = Recorder(), Recorder()
    watcher_conn = alive.connection(watcher.send, watcher.close,
                                    {"user_id": "u1", "username": "buyer", "is_staff": False})
    await alive.join(watcher_conn, channel)
    await doomed.join(doomed.connection(ghost.send, ghost.close,
                                        {"user_id": "u2", "username": "agent", "is_staff": True}),
                      channel)
    while (await watcher.next("presence_joined"))["data"]["username"] != "agent":
        pass
    assert (await alive.presence_snapshot(channel))["staff_online"] is True

    for task in doomed._tasks:                  # the instance dies: no cleanup at all
        task.cancel()
    await asyncio.gather(*doomed._tasks, return_exceptions=True)
    left = await watcher.next("presence_left", timeout=15)
    assert left["data"]["username"] == "agent"
    assert (await alive.presence_snapshot(channel))["users"] == [watcher_conn.info]
    await alive.close()
    await doomed.close()
