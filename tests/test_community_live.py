"""Live community events across instances (issue 4 item 3; DESIGN §4): two server instances
on one real `redis-server`, sharing one document store; members connected to
`/ws/community/{id}` on different instances see each other's posts, comments, reactions,
joins and chat messages, published by the REST writers. A private community's socket is
for its members."""
from __future__ import annotations

import asyncio
import json

import pytest
from bson import ObjectId
from conftest import test_settings as settings_for
from instances import Instance, start_instance, stop_instance
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from documents import sessions, users

GAME, INSIDERS = "653000000000000000000001", "653000000000000000000002"
TIMEOUT = 5.0


# --------------------------------------------------------------------------- instances
# The pattern of tests/test_realtime.py: each instance has its own services, hub and HTTP
# server on its own port; the second one uses the first one's document store.

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


@pytest.fixture
def cluster(io_loop, tmp_path, redis_url):
    """Two instances (A, B) on the session's redis-server sharing one document store."""
    settings = settings_for(tmp_path, redis_url=redis_url)

    async def start():
        a = await start_instance(settings, cls=CommunityInstance)
        return a, await start_instance(settings, db=a.services.db, cls=CommunityInstance)

    a, b = io_loop.run_sync(start, timeout=30)
    yield a, b
    io_loop.run_sync(lambda: asyncio.gather(stop_instance(b), stop_instance(a)), timeout=30)


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


# --------------------------------------------------------------------------- tests

@pytest.mark.gen_test(timeout=60)
async def test_two_members_on_two_instances_see_each_other_live(cluster):
    a, b = cluster
    buyer, buyer2 = await a.sign_in("buyer@hwc3d.com"), await b.sign_in("buyer2@hwc3d.com")
    on_a, on_b = await a.socket(GAME, buyer), await b.socket(GAME, buyer2)
    await ready(on_a)
    await ready(on_b)

    # a post written through instance A reaches the member on B (and A)
    status, post = await a.call("POST", f"/api/communities/{GAME}/posts", buyer,
                                {"content": "Fresh low-poly fox"})
    assert status == 201, post
    for conn in (on_b, on_a):
        event = await next_event(conn, "new_post")
        assert event["channel"] == f"community:{GAME}" and event["offset"] is not None
        assert event["data"]["id"] == post["id"] and event["data"]["content"] == "Fresh low-poly fox"
        assert event["data"]["author"]["username"] == "buyer"
        assert "reacted" not in event["data"] and "comments" not in event["data"]

    async def both(type: str) -> dict:
        """The next `type` event on both sockets: the same event, on both instances."""
        first, second = await next_event(on_a, type), await next_event(on_b, type)
        assert first["offset"] == second["offset"] and first["data"] == second["data"]
        return first

    # a comment through B reaches A
    status, comment = await b.call("POST", f"/api/posts/{post['id']}/comments", buyer2,
                                   {"content": "Love the silhouette"})
    assert status == 201, comment
    event = await both("new_comment")
    assert event["data"]["post_id"] == post["id"] and event["data"]["comment_count"] == 1
    assert event["data"]["comment"]["id"] == comment["id"]
    assert event["data"]["comment"]["author"]["username"] == "buyer2"

    # reactions both ways, including a type change and a removal
    status, _ = await b.call("POST", f"/api/posts/{post['id']}/react", buyer2,
                             {"reaction_type": "fire"})
    assert status == 200
    event = await both("new_reaction")
    assert event["data"]["reaction_type"] == "fire" and event["data"]["user"]["username"] == "buyer2"
    assert event["data"]["reactions"]["fire"] == 1
    status, _ = await a.call("POST", f"/api/posts/{post['id']}/react", buyer,
                             {"reaction_type": "love"})
    event = await both("new_reaction")
    assert event["data"]["reactions"] == {"like": 0, "love": 1, "wow": 0, "fire": 1}
    await b.call("POST", f"/api/posts/{post['id']}/react", buyer2, {"reaction_type": "wow"})
    event = await both("new_reaction")
    assert (event["data"]["previous_type"], event["data"]["reaction_type"]) == ("fire", "wow")
    await a.call("DELETE", f"/api/posts/{post['id']}/react", buyer)
    event = await both("new_reaction")
    assert event["data"]["reaction_type"] is None and event["data"]["reaction_count"] == 1

    # community chat over REST on B, seen on A
    status, message = await b.call("POST", "/api/communities/messages", buyer2,
                                   {"community_id": GAME, "content": "Anyone up for a jam?"})
    assert status == 201, message
    event = await both("message_received")
    assert event["data"]["id"] == message["id"]

    # somebody joins through A: both members hear it
    newcomer = await users.insert(a.services.db, users.new_user("fox@example.com", "foxy", None))
    token = (await sessions.start_session(a.services.db, a.services.settings,
                                          newcomer))["access_token"]
    status, joined = await a.call("POST", f"/api/communities/{GAME}/join", token)
    assert status == 201
    for conn in (on_a, on_b):
        event = await next_event(conn, "member_joined")
        assert event["data"]["user"]["username"] == "foxy"
        assert event["data"]["member_count"] == joined["member_count"] == 6
    on_a.close()
    on_b.close()


@pytest.mark.gen_test(timeout=60)
async def test_private_community_socket_is_for_members(cluster):
    a, b = cluster
    outsider = await b.sign_in("buyer2@hwc3d.com")            # only a pending request
    url = b.base_url.replace("http", "ws", 1) + f"/ws/community/{INSIDERS}?token={outsider}"
    conn = await websocket_connect(url)
    assert await read(conn) is None and conn.close_code == 4403

    member = await a.socket(INSIDERS, await a.sign_in("buyer@hwc3d.com"))
    await ready(member)
    author = await b.sign_in("creator2@hwc3d.com")
    status, post = await b.call("POST", f"/api/communities/{INSIDERS}/posts", author,
                                {"content": "Draft preview"})
    assert status == 201
    event = await next_event(member, "new_post")
    assert event["data"]["id"] == post["id"]

    # the approval of a pending request is announced as a join
    status, _ = await b.call("PUT", f"/api/communities/{INSIDERS}/members/"
                             "650000000000000000000006/approve", author)
    assert status == 200
    event = await next_event(member, "member_joined")
    assert event["data"]["user"]["username"] == "buyer2" and event["data"]["member_count"] == 4
    member.close()


@pytest.mark.gen_test(timeout=60)
async def test_many_reactions_through_both_instances_stay_exact(cluster):
    a, b = cluster
    db = a.services.db
    people = []
    for i in range(12):
        user = await users.insert(db, users.new_user(f"r{i}@example.com", f"reactor{i}", None))
        await db["community_members"].insert_one({
            "community_id": ObjectId(GAME), "user_id": user["_id"],
            "role": "member", "status": "active", "joined_at": user["created_at"]})
        people.append((await sessions.start_session(db, a.services.settings, user))["access_token"])
    watcher = await b.socket(GAME, await b.sign_in("buyer@hwc3d.com"))
    await ready(watcher)
    post = "655000000000000000000003"
    kinds = ("like", "love", "wow", "fire")
    replies = await asyncio.gather(*(
        (a if i % 2 else b).call("POST", f"/api/posts/{post}/react", token,
                                 {"reaction_type": kinds[(i + step) % 4]})
        for i, token in enumerate(people) for step in range(3)))
    assert all(status == 200 for status, _ in replies)
    stored = await db["posts"].find_one({"_id": ObjectId(post)})
    tally = dict.fromkeys(kinds, 0)
    for entry in stored["reacted"]:
        tally[entry["type"]] += 1
    assert stored["reactions"] == tally and sum(tally.values()) == 1 + 12
    # each user's three types differ, so every request changed something and was announced
    events = [await next_event(watcher, "new_reaction") for _ in range(36)]
    assert {e["data"]["post_id"] for e in events} == {post}
    watcher.close()
