"""Live community events across instances (docs/architecture.md §6): two server instances
on one real `redis-server`, sharing one document store; members connected to
`/ws/community/{id}` on different instances see each other's posts, comments, reactions,
joins and chat messages, published by the REST writers. A private community's socket is
for its members."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from community_support import GAME, INSIDERS, CommunityInstance, next_event, read, ready
from conftest import test_settings as settings_for
from demo_accounts import BUYER, BUYER2, CREATOR2
from instances import start_instance, stop_instance
from tornado.websocket import websocket_connect

from documents import sessions, users

pytestmark = pytest.mark.store  # opens instances on the test's store itself


# --------------------------------------------------------------------------- instances
# The pattern of tests/test_realtime.py: each instance has its own services, hub and HTTP
# server on its own port; the second one uses the first one's document store.


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


# --------------------------------------------------------------------------- tests

@pytest.mark.gen_test(timeout=60)
async def test_two_members_on_two_instances_see_each_other_live(cluster):
    a, b = cluster
    buyer, buyer2 = await a.sign_in(BUYER), await b.sign_in(BUYER2)
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
    outsider = await b.sign_in(BUYER2)            # only a pending request
    url = b.base_url.replace("http", "ws", 1) + f"/ws/community/{INSIDERS}?token={outsider}"
    conn = await websocket_connect(url)
    assert await read(conn) is None and conn.close_code == 4403

    member = await a.socket(INSIDERS, await a.sign_in(BUYER))
    await ready(member)
    author = await b.sign_in(CREATOR2)
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
    watcher = await b.socket(GAME, await b.sign_in(BUYER))
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


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("crowd", [150])
async def test_a_crowd_joining_a_large_community_costs_linear_frames(tmp_path, redis_url, crowd):
    """`crowd` distinct users open the community on two instances: above
    PRESENCE_COALESCE_ABOVE (30 here) nobody gets per-user presence events any more, only a
    presence_count at most once a second; frames sent grow with the crowd, not its square."""
    settings = settings_for(tmp_path, redis_url=redis_url, presence_coalesce_above=30)
    a = await start_instance(settings, cls=CommunityInstance)
    b = await start_instance(settings, db=a.services.db, cls=CommunityInstance)
    conns = []
    try:
        db = a.services.db
        people = []
        for i in range(crowd):
            user = await users.insert(db, users.new_user(f"c{i}@example.com", f"crowd{i}", None))
            people.append((await sessions.start_session(db, settings, user))["access_token"])
        watcher = await a.socket(GAME, await a.sign_in(BUYER))
        await ready(watcher)
        seen, started = [], asyncio.get_running_loop().time()
        for i, token in enumerate(people):
            conns.append(await (a if i % 2 else b).socket(GAME, token))
        while not (seen and seen[-1]["type"] == "presence_count"
                   and seen[-1]["data"]["count"] == crowd + 1):
            got = await read(watcher, 15)
            assert got is not None
            seen.append(got)
        seconds = asyncio.get_running_loop().time() - started
        kinds = [f["type"] for f in seen]
        assert kinds.count("presence_joined") <= 30              # while it was small
        assert 1 <= kinds.count("presence_count") <= seconds + 2    # once a second at most
        sent = sum(a.services.metrics.events_delivered.labels("community")._value.get()
                   for a in (a, b))
        assert sent < 12 * crowd, sent                         # n² would be ≥ 11,000
    finally:
        for conn in conns:
            conn.close()
        await stop_instance(b)
        await stop_instance(a)
