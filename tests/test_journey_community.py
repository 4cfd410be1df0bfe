"""A community member's pages of seeds 001/004 played in order over real HTTP and the real
`/ws/community/{id}` and `/ws/notifications` sockets: a newcomer joins a community, posts,
gets a reaction and a comment, chats (a `message` frame, stored as over REST and shown in the
chat history), and is told of a new follower on the notifications socket. What a member's
open page receives are the frames seed 001 §14 names."""
from __future__ import annotations

import pytest
from demo_accounts import BUYER, GAME_ASSETS

from tests.journeys import Socket, sign_in


async def newcomer(api) -> tuple[str, dict]:
    """Sign up on the auth page; (access token, user)."""
    reply = await api("POST", "/api/auth/register", json={
        "email": "sculptor@example.com", "username": "sculptor", "password": "Str0ng!Pass99",
        "full_name": "Sam Sculptor"})
    assert reply.status == 201, reply.json
    return reply.json["access_token"], reply.json["user"]


@pytest.mark.gen_test(timeout=90)
async def test_newcomer_joins_posts_gets_reactions_comments_and_chats(api, base_url):
    token, me = await newcomer(api)
    buyer = await sign_in(api, BUYER)
    community = f"/api/communities/{GAME_ASSETS}"

    # the hub lists the community; its page shows it with the member count
    hub = (await api("GET", "/api/communities?search=Game", token=token)).json["items"]
    listed = next(c for c in hub if c["id"] == GAME_ASSETS)
    assert listed["is_member"] is False
    members_before = listed["member_count"]

    # a member's page is open: it sees the newcomer join
    watching = await Socket.open(base_url, f"/ws/community/{GAME_ASSETS}", buyer)
    try:
        joined = await api("POST", f"{community}/join", token=token)
        assert joined.status in (200, 201), joined.json
        frame = await watching.next("member_joined")
        assert frame["channel"] == f"community:{GAME_ASSETS}" and frame["offset"] is not None
        page = (await api("GET", community, token=token)).json
        assert page["is_member"] is True and page["member_count"] == members_before + 1

        # a post appears in the feed and on the open page
        posted = await api("POST", f"{community}/posts", token=token,
                           json={"content": "  My first sculpt  "})
        assert posted.status == 201, posted.json
        post = posted.json
        assert post["content"] == "My first sculpt"
        assert (await watching.next("new_post"))["data"]["id"] == post["id"]
        feed = (await api("GET", f"{community}/posts?filter=recent", token=token)).json
        assert post["id"] in [p["id"] for p in feed["items"]]          # below pinned posts

        # a reaction and a comment from another member
        reacted = await api("POST", f"/api/posts/{post['id']}/react", token=buyer,
                            json={"reaction_type": "fire"})
        assert reacted.status in (200, 201), reacted.json
        reaction = await watching.next("new_reaction")
        assert reaction["data"]["post_id"] == post["id"]
        commented = await api("POST", f"/api/posts/{post['id']}/comments", token=buyer,
                              json={"content": "Lovely forms"})
        assert commented.status == 201, commented.json
        comment = await watching.next("new_comment")
        assert comment["data"]["post_id"] == post["id"]
        comments = (await api("GET", f"/api/posts/{post['id']}/comments", token=token)).json
        assert [c["content"] for c in comments["items"]] == ["Lovely forms"]
        shown = (await api("GET", f"/api/posts/{post['id']}", token=token)).json
        assert shown["comment_count"] == 1 and shown["reactions"]["fire"] == 1

        # community chat over the socket: the newcomer's own socket sends a message frame
        chatting = await Socket.open(base_url, f"/ws/community/{GAME_ASSETS}", token)
        try:
            await chatting.send({"type": "message", "content": "Hello everyone", "ref": "m1"})
            heard = await watching.next("message_received")
            assert heard["data"]["content"] == "Hello everyone"
            assert heard["data"]["sender"]["username"] == "sculptor"
            await chatting.send({"type": "ping", "ref": "p1"})
            assert (await chatting.next("pong"))["type"] == "pong"
        finally:
            chatting.close()
        history = (await api("GET", f"/api/communities/messages?community_id={GAME_ASSETS}",
                             token=token)).json
        assert history["items"][0]["content"] == "Hello everyone"
        mine = (await api("GET", "/api/communities/messages", token=token)).json
        assert mine["items"][0]["id"] == history["items"][0]["id"]
    finally:
        watching.close()
    assert me["username"] == "sculptor"


@pytest.mark.gen_test(timeout=60)
async def test_notifications_socket_tells_of_a_new_follower(api, base_url):
    token, me = await newcomer(api)
    bell = await Socket.open(base_url, "/ws/notifications", token)
    try:
        followed = await api("POST", f"/api/users/{me['username']}/follow",
                             token=await sign_in(api, BUYER))
        assert followed.status in (200, 201), followed.json
        frame = await bell.next("new_follower")
        assert frame["channel"] == f"notifications:{me['id']}"
    finally:
        bell.close()
    listed = (await api("GET", "/api/notifications", token=token)).json
    assert listed["items"][0]["type"] == "new_follower" and listed["items"][0]["is_read"] is False
    read = await api("PUT", "/api/notifications/read-all", token=token)
    assert read.status == 200
    assert all(n["is_read"] for n in (await api("GET", "/api/notifications",
                                                 token=token)).json["items"])
