"""The blog over real HTTP (seed 004 §3): staff write, drafts hidden from
the public and from buyers, listing filters, featured, categories, views once per window,
likes and comments with exact counters under concurrency, shares, read time, bad input."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, ADMIN_ID, BUYER, BUYER2, CREATOR, MODERATOR

from documents import blog, sessions, users

pytestmark = pytest.mark.usefixtures("no_demo_content")  # counts start from zero

UNKNOWN = "ffffffffffffffffffffffff"


def words(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


async def new_post(api, token, **fields) -> dict:
    payload = {"title": "Hello Blog", "content": words(30), "category": "news", **fields}
    reply = await api("POST", "/api/admin/blog/posts", json=payload, token=token)
    assert reply.status == 201, reply.json
    return reply.json


async def post_doc(services, post_id: str) -> dict:
    return await services.db.blog_posts.find_one({"_id": ObjectId(post_id)})


async def extra_users(services, count: int) -> list[str]:
    """Access tokens of `count` new buyer accounts."""
    out = []
    for i in range(count):
        user = await users.insert(services.db, users.new_user(
            f"reader{i}@example.com", f"reader{i}", None, is_verified=True))
        pair = await sessions.start_session(services.db, services.settings, user)
        out.append(pair["access_token"])
    return out


# --------------------------------------------------------------------------- staff writes, drafts

@pytest.mark.gen_test
async def test_staff_writes_a_draft_that_only_staff_can_read(api, tokens, services):
    admin = await tokens(ADMIN)
    buyer = await tokens(BUYER)
    post = await new_post(api, admin, title="Draft: Secret Plans!", tags=["Roadmap", "news"])
    assert post["status"] == "draft" and post["published_at"] is None
    assert post["slug"] == "draft-secret-plans"
    assert post["tags"] == ["roadmap", "news"]
    assert post["author"]["id"] == ADMIN_ID
    assert (post["views"], post["likes"], post["comment_count"], post["shares"]) == (0, 0, 0, 0)
    stored = await post_doc(services, post["id"])
    assert stored["author_id"] == ObjectId(ADMIN_ID) and stored["status"] == "draft"

    for ref in (post["id"], post["slug"]):
        assert (await api("GET", f"/api/blog/posts/{ref}")).status == 404
        reply = await api("GET", f"/api/blog/posts/{ref}", token=buyer)
        assert reply.status == 404 and reply.json["reason"] == "BLOG_POST_NOT_FOUND"
        reply = await api("GET", f"/api/blog/posts/{ref}", token=admin)
        assert reply.status == 200 and reply.json["id"] == post["id"]
    assert (await post_doc(services, post["id"]))["views"] == 0   # staff previews do not count

    listing = await api("GET", "/api/blog/posts", token=buyer)
    assert listing.status == 200 and listing.json["total"] == 0
    for status in ("draft", "all"):
        reply = await api("GET", f"/api/blog/posts?status={status}", token=buyer)
        assert reply.status == 403
        reply = await api("GET", f"/api/blog/posts?status={status}", token=admin)
        assert [p["id"] for p in reply.json["items"]] == [post["id"]]
    moderator = await tokens(MODERATOR)   # staff without content.manage
    assert (await api("GET", f"/api/blog/posts/{post['id']}", token=moderator)).status == 404
    assert (await api("GET", f"/api/blog/posts/{post['id']}/comments", token=buyer)).status == 404
    for path in ("like", "comments", "share"):
        reply = await api("POST", f"/api/blog/posts/{post['id']}/{path}", json={"content": "x"},
                          token=buyer)
        assert reply.status == 404, path
        reply = await api("POST", f"/api/blog/posts/{post['id']}/{path}", json={"content": "x"},
                          token=admin)
        assert reply.status == 409 and reply.json["error_code"] == "POST_NOT_PUBLISHED"
    assert (await api("GET", "/api/blog/categories")).json["items"][1] == {"name": "news",
                                                                          "count": 0}


@pytest.mark.gen_test
async def test_only_content_staff_write(api, tokens, services):
    payload = {"title": "Not allowed", "content": "text"}
    assert (await api("POST", "/api/admin/blog/posts", json=payload)).status == 401
    for email in (BUYER, CREATOR, MODERATOR):
        token = await tokens(email)
        reply = await api("POST", "/api/admin/blog/posts", json=payload, token=token)
        assert reply.status == 403, email
    post = await new_post(api, await tokens(ADMIN), status="published")
    buyer = await tokens(BUYER)
    reply = await api("PUT", f"/api/admin/blog/posts/{post['id']}", json={"title": "Mine now"},
                      token=buyer)
    assert reply.status == 403
    assert (await api("DELETE", f"/api/admin/blog/posts/{post['id']}", token=buyer)).status == 403
    assert (await api("DELETE", f"/api/admin/blog/posts/{post['id']}")).status == 401
    assert (await post_doc(services, post["id"]))["title"] == "Hello Blog"
    assert await services.db.blog_posts.count_documents({}) == 1


@pytest.mark.gen_test
async def test_publishing_sets_published_at_and_shows_the_post(api, tokens, services):
    admin = await tokens(ADMIN)
    post = await new_post(api, admin, category="tutorials")
    reply = await api("PUT", f"/api/admin/blog/posts/{post['id']}", json={"status": "published"},
                      token=admin)
    assert reply.status == 200 and reply.json["status"] == "published"
    assert reply.json["published_at"] is not None
    assert reply.json["slug"] == post["slug"]
    reply = await api("GET", f"/api/blog/posts/{post['slug']}")
    assert reply.status == 200 and reply.json["content"] == words(30)
    listing = await api("GET", "/api/blog/posts")
    assert [p["id"] for p in listing.json["items"]] == [post["id"]]
    categories = (await api("GET", "/api/blog/categories")).json["items"]
    assert [c["name"] for c in categories] == list(blog.CATEGORIES)
    assert {c["name"]: c["count"] for c in categories}["tutorials"] == 1

    reply = await api("PUT", f"/api/admin/blog/posts/{post['id']}", json={"status": "draft"},
                      token=admin)
    assert reply.json["published_at"] is None
    assert (await api("GET", f"/api/blog/posts/{post['id']}")).status == 404

    published = await new_post(api, admin, title="Straight out", status="published")
    assert published["published_at"] is not None


@pytest.mark.gen_test
async def test_read_time_and_excerpt_come_from_the_text(api, tokens, services):
    admin = await tokens(ADMIN)
    cases = {1: 1, 200: 1, 201: 2, 401: 3, 1000: 5}
    for count, minutes in cases.items():
        post = await new_post(api, admin, title=f"Length {count}", content=words(count))
        assert post["read_time"] == minutes, count
        assert (await post_doc(services, post["id"]))["read_time"] == minutes
    # Markdown markup is not words: "Title", 198 list words and "ok" are 200 words → 1 min
    markdown = "# Title\n\n---\n\n" + "\n".join(f"- {w}" for w in words(198).split()) + "\n\n> ok"
    post = await new_post(api, admin, title="Markup", content=markdown)
    assert post["read_time"] == 1
    assert post["excerpt"].startswith("Title word0 word1")
    assert len(post["excerpt"]) <= blog.EXCERPT_LENGTH + 1 and post["excerpt"].endswith("…")

    reply = await api("PUT", f"/api/admin/blog/posts/{post['id']}", json={"content": words(650)},
                      token=admin)
    assert reply.json["read_time"] == 4 and reply.json["excerpt"].startswith("word0 word1")
    reply = await api("PUT", f"/api/admin/blog/posts/{post['id']}",
                      json={"excerpt": "Hand written"}, token=admin)
    assert reply.json["excerpt"] == "Hand written"
    reply = await api("PUT", f"/api/admin/blog/posts/{post['id']}", json={"content": "Short."},
                      token=admin)
    assert reply.json["excerpt"] == "Hand written" and reply.json["read_time"] == 1


@pytest.mark.gen_test
async def test_slugs_are_unique(api, tokens, services):
    admin = await tokens(ADMIN)
    first = await new_post(api, admin, title="Spring Update")
    second = await new_post(api, admin, title="Spring  update!")
    third = await new_post(api, admin, title="SPRING UPDATE")
    assert [first["slug"], second["slug"], third["slug"]] == [
        "spring-update", "spring-update-2", "spring-update-3"]
    reply = await api("POST", "/api/admin/blog/posts", token=admin,
                      json={"title": "Other", "content": "x", "slug": "spring-update"})
    assert reply.status == 409 and reply.json["error_code"] == "SLUG_TAKEN"
    reply = await api("PUT", f"/api/admin/blog/posts/{third['id']}", token=admin,
                      json={"slug": "spring-update"})
    assert reply.status == 409 and reply.json["error_code"] == "SLUG_TAKEN"
    reply = await api("PUT", f"/api/admin/blog/posts/{third['id']}", token=admin,
                      json={"slug": "spring-recap"})
    assert reply.status == 200 and reply.json["slug"] == "spring-recap"
    hexish = await new_post(api, admin, title="aaaaaaaaaaaaaaaaaaaaaaaa")
    assert hexish["slug"] == "aaaaaaaaaaaaaaaaaaaaaaaa-post"
    for bad in ("Has Spaces", "UPPER", "-lead", "a" * 81, "ffffffffffffffffffffffff", 5):
        reply = await api("POST", "/api/admin/blog/posts", token=admin,
                          json={"title": "Slugged", "content": "x", "slug": bad})
        assert reply.status == 422 and "slug" in reply.json["field_errors"], bad
    assert await services.db.blog_posts.count_documents({}) == 4

    replies = await asyncio.gather(*[
        api("POST", "/api/admin/blog/posts", json={"title": "Race Day", "content": "x"},
            token=admin) for _ in range(6)])
    assert [r.status for r in replies] == [201] * 6
    assert sorted(r.json["slug"] for r in replies) == sorted(
        ["race-day"] + [f"race-day-{i}" for i in range(2, 7)])


# --------------------------------------------------------------------------- listing

@pytest.mark.gen_test
async def test_list_filters_search_and_pagination(api, tokens, services):
    admin = await tokens(ADMIN)
    made = []
    for i in range(5):
        made.append(await new_post(api, admin, title=f"Tutorial {i}", category="tutorials",
                                   status="published", tags=["blender"] if i % 2 else []))
    special = await new_post(api, admin, title="Regex (beta) [v2] .* test", category="news",
                             status="published", is_featured=True,
                             content="Mentions C++ and a+b? here")
    await new_post(api, admin, title="Draft tutorial", category="tutorials")

    reply = await api("GET", "/api/blog/posts")
    assert reply.json["total"] == 6 and reply.json["items"][0]["id"] == special["id"]
    assert all("content" not in item for item in reply.json["items"])
    assert reply.json["items"][0]["author"]["username"] == "admin"
    reply = await api("GET", "/api/blog/posts?category=tutorials&limit=2&page=2")
    assert reply.json["total"] == 5 and reply.json["pages"] == 3
    assert [p["id"] for p in reply.json["items"]] == [made[2]["id"], made[1]["id"]]
    reply = await api("GET", "/api/blog/posts?tag=Blender")
    assert {p["id"] for p in reply.json["items"]} == {made[1]["id"], made[3]["id"]}
    reply = await api("GET", "/api/blog/posts?featured=true")
    assert [p["id"] for p in reply.json["items"]] == [special["id"]]
    assert (await api("GET", "/api/blog/posts?featured=false")).json["total"] == 5
    # search matches words (relevance): punctuation alone matches nothing, never a 500
    for text, expected in ((".*", 0), ("(beta) [v2]", 1), ("C++", 1), ("a+b?", 1), ("(", 0),
                           ("[", 0), ("tutorial", 5), ("\\", 0), ("nothing-like-this", 0)):
        reply = await api("GET", "/api/blog/posts?search=" + _quote(text))
        assert reply.status == 200 and reply.json["total"] == expected, text

    featured = await api("GET", "/api/blog/featured")
    assert featured.status == 200 and [p["id"] for p in featured.json["items"]] == [special["id"]]
    counts = {c["name"]: c["count"] for c in (await api("GET", "/api/blog/categories")).json["items"]}
    assert counts == {"tutorials": 5, "news": 1, "updates": 0, "showcase": 0, "community": 0}


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


@pytest.mark.gen_test
async def test_list_bad_input(api, tokens):
    for query in ("category=gossip", "status=archived", "featured=maybe", "page=0",
                  "search=" + "x" * 101, "limit=abc"):
        reply = await api("GET", f"/api/blog/posts?{query}")
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", query
    for query in ("limit=0", "limit=abc"):
        assert (await api("GET", f"/api/blog/featured?{query}")).status == 422
    clamped = await api("GET", "/api/blog/posts?limit=101&unknown=1")     # clamped, ignored
    assert clamped.status == 200 and clamped.json["limit"] == 100
    reply = await api("GET", "/api/blog/posts?status=draft")
    assert reply.status == 403


# --------------------------------------------------------------------------- views, shares

@pytest.mark.gen_test
async def test_views_count_once_per_viewer_per_window(api, tokens, services):
    admin = await tokens(ADMIN)
    post = await new_post(api, admin, status="published")
    buyer = await tokens(BUYER)
    first = await api("GET", f"/api/blog/posts/{post['id']}", token=buyer)
    assert first.status == 200 and first.json["views"] == 1 and first.json["liked"] is False
    again = await api("GET", f"/api/blog/posts/{post['slug']}", token=buyer)
    assert again.json["views"] == 1
    anonymous = await api("GET", f"/api/blog/posts/{post['id']}")
    assert anonymous.json["views"] == 2
    assert (await api("GET", f"/api/blog/posts/{post['id']}")).json["views"] == 2
    buyer2 = await tokens(BUYER2)
    assert (await api("GET", f"/api/blog/posts/{post['id']}", token=buyer2)).json["views"] == 3
    assert (await post_doc(services, post["id"]))["views"] == 3
    assert await services.db.blog_views.count_documents({"post_id": ObjectId(post["id"])}) == 3


@pytest.mark.gen_test
async def test_share_counts_and_answers_the_url(api, tokens, services):
    post = await new_post(api, await tokens(ADMIN), title="Share me",
                          status="published")
    reply = await api("POST", f"/api/blog/posts/{post['id']}/share")
    assert reply.status == 200
    assert reply.json == {"post_id": post["id"], "shares": 1,
                          "share_url": f"{services.settings.public_url}/blog/share-me"}
    replies = await asyncio.gather(*[api("POST", "/api/blog/posts/share-me/share")
                                     for _ in range(10)])
    assert all(r.status == 200 for r in replies)
    assert (await post_doc(services, post["id"]))["shares"] == 11
    for ref in (UNKNOWN, "not-an-id", "x" * 300):
        assert (await api("POST", f"/api/blog/posts/{ref}/share")).status == 404


# --------------------------------------------------------------------------- likes

@pytest.mark.gen_test
async def test_like_and_unlike(api, tokens, services):
    post = await new_post(api, await tokens(ADMIN), status="published")
    buyer = await tokens(BUYER)
    path = f"/api/blog/posts/{post['id']}/like"
    assert (await api("POST", path)).status == 401
    assert (await api("DELETE", path)).status == 401
    reply = await api("POST", path, token=buyer)
    assert reply.status == 201 and reply.json == {"post_id": post["id"], "liked": True, "likes": 1}
    reply = await api("POST", f"/api/blog/posts/{post['slug']}/like", token=buyer)
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_LIKED"
    assert (await api("GET", f"/api/blog/posts/{post['id']}", token=buyer)).json["liked"] is True
    reply = await api("DELETE", path, token=buyer)
    assert reply.status == 200 and reply.json == {"post_id": post["id"], "liked": False,
                                                  "likes": 0}
    reply = await api("DELETE", path, token=buyer)
    assert reply.status == 404 and reply.json["reason"] == "NOT_LIKED"
    assert (await post_doc(services, post["id"]))["likes"] == 0
    for ref in (UNKNOWN, "not-an-id"):
        assert (await api("POST", f"/api/blog/posts/{ref}/like", token=buyer)).status == 404


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_likes_and_comments_keep_counters_exact(api, tokens, services):
    post = await new_post(api, await tokens(ADMIN), status="published")
    readers = await extra_users(services, 20)
    path = f"/api/blog/posts/{post['id']}/like"
    replies = await asyncio.gather(*[api("POST", path, token=t) for t in readers])
    assert [r.status for r in replies] == [201] * 20
    buyer = await tokens(BUYER)
    replies = await asyncio.gather(*[api("POST", path, token=buyer) for _ in range(8)])
    assert sorted(r.status for r in replies) == [201] + [409] * 7

    calls = [api("DELETE", path, token=t) for t in readers[:10]]
    calls += [api("POST", path, token=t) for t in readers[10:]]
    calls += [api("POST", f"/api/blog/posts/{post['id']}/comments", json={"content": f"c{i}"},
                  token=t) for i, t in enumerate(readers)]
    replies = await asyncio.gather(*calls)
    assert [r.status for r in replies] == [200] * 10 + [409] * 10 + [201] * 20
    records = await services.db.blog_likes.count_documents({"post_id": ObjectId(post["id"])})
    assert records == 11
    stored = await post_doc(services, post["id"])
    assert stored["likes"] == records
    assert stored["comment_count"] == await services.db.blog_comments.count_documents(
        {"post_id": ObjectId(post["id"])}) == 20


# --------------------------------------------------------------------------- comments

@pytest.mark.gen_test
async def test_threaded_comments(api, tokens, services):
    post = await new_post(api, await tokens(ADMIN), status="published")
    buyer, creator = await tokens(BUYER), await tokens(CREATOR)
    path = f"/api/blog/posts/{post['id']}/comments"
    assert (await api("POST", path, json={"content": "hi"})).status == 401
    top = await api("POST", path, json={"content": "  Great read  "}, token=buyer)
    assert top.status == 201 and top.json["content"] == "Great read"
    assert top.json["parent_id"] is None and top.json["author"]["username"] == "buyer"
    reply = await api("POST", path, json={"content": "Thanks", "parent_id": top.json["id"]},
                      token=creator)
    assert reply.status == 201 and reply.json["parent_id"] == top.json["id"]
    deeper = await api("POST", path, json={"content": "Deeper", "parent_id": reply.json["id"]},
                       token=buyer)
    assert deeper.json["parent_id"] == top.json["id"]       # joins the top-level thread
    second = await api("POST", path, json={"content": "Second"}, token=creator)

    listing = await api("GET", path)
    assert listing.status == 200 and listing.json["total"] == 2
    first, last = listing.json["items"]
    assert first["id"] == second.json["id"] and first["replies"] == []
    assert last["reply_count"] == 2
    assert [r["content"] for r in last["replies"]] == ["Thanks", "Deeper"]
    assert (await post_doc(services, post["id"]))["comment_count"] == 4
    page = await api("GET", f"{path}?limit=1&page=2")
    assert [c["id"] for c in page.json["items"]] == [top.json["id"]]


@pytest.mark.gen_test
async def test_comment_bad_input(api, tokens, services):
    post = await new_post(api, await tokens(ADMIN), status="published")
    buyer = await tokens(BUYER)
    path = f"/api/blog/posts/{post['id']}/comments"
    for payload in ({}, {"content": ""}, {"content": "   "}, {"content": "x" * 2001},
                    {"content": 5}, {"content": "ok", "rating": 5},
                    {"content": "ok", "parent_id": UNKNOWN}, {"content": "ok", "parent_id": "zz"},
                    {"content": "ok", "parent_id": 7}):
        reply = await api("POST", path, json=payload, token=buyer)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", payload
    reply = await api("POST", path, body=b"{not json", token=buyer,
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    assert (await api("POST", path, json={"content": "x" * 2000}, token=buyer)).status == 201
    for ref in (UNKNOWN, "nope"):
        reply = await api("POST", f"/api/blog/posts/{ref}/comments", json={"content": "hi"},
                          token=buyer)
        assert reply.status == 404
        assert (await api("GET", f"/api/blog/posts/{ref}/comments")).status == 404
    assert (await api("GET", f"{path}?page=0")).status == 422
    assert await services.db.blog_comments.count_documents({}) == 1
    assert (await post_doc(services, post["id"]))["comment_count"] == 1


# --------------------------------------------------------------------------- staff bad input, delete

@pytest.mark.gen_test
async def test_staff_write_bad_input(api, tokens, services):
    admin = await tokens(ADMIN)
    bad = [{}, {"title": "Ok title"}, {"content": "text"}, {"title": "ab", "content": "x"},
           {"title": "Fine", "content": ""}, {"title": "Fine", "content": "   "},
           {"title": "Fine", "content": "x", "category": "gossip"},
           {"title": "Fine", "content": "x", "status": "archived"},
           {"title": "Fine", "content": "x", "is_featured": "sure"},
           {"title": "Fine", "content": "x", "tags": ",".join(f"t{i}" for i in range(21))},
           {"title": "Fine", "content": "x", "author_id": ADMIN_ID},
           {"title": "Fine", "content": "x", "views": 1000},
           {"title": "Fine", "content": "é" * (blog.MAX_CONTENT_BYTES // 2 + 1)},
           {"title": 42, "content": "x"}]
    for payload in bad:
        reply = await api("POST", "/api/admin/blog/posts", json=payload, token=admin)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", payload
    reply = await api("POST", "/api/admin/blog/posts", body=b'{"title": ', token=admin,
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400
    big = await new_post(api, admin, content="a " * (blog.MAX_CONTENT_BYTES // 2))
    assert big["read_time"] == 256      # 51200 words / 200
    assert await services.db.blog_posts.count_documents({}) == 1

    path = f"/api/admin/blog/posts/{big['id']}"
    for payload in ({}, {"status": "gone"}, {"likes": 5}, {"title": ""}):
        assert (await api("PUT", path, json=payload, token=admin)).status == 422, payload
    assert (await api("PUT", path, body=b"[", token=admin)).status == 400
    for ref in (UNKNOWN, "not-an-id"):
        reply = await api("PUT", f"/api/admin/blog/posts/{ref}", json={"title": "New"},
                          token=admin)
        assert reply.status == 404
        assert (await api("DELETE", f"/api/admin/blog/posts/{ref}", token=admin)).status == 404
    assert (await post_doc(services, big["id"]))["title"] == "Hello Blog"


@pytest.mark.gen_test
async def test_delete_removes_the_post_with_its_comments_and_likes(api, tokens, services):
    admin = await tokens(ADMIN)
    post = await new_post(api, admin, status="published")
    keep = await new_post(api, admin, title="Keep me", status="published")
    buyer = await tokens(BUYER)
    for target in (post, keep):
        await api("POST", f"/api/blog/posts/{target['id']}/like", token=buyer)
        await api("POST", f"/api/blog/posts/{target['id']}/comments", json={"content": "hi"},
                  token=buyer)
        await api("GET", f"/api/blog/posts/{target['id']}", token=buyer)
    reply = await api("DELETE", f"/api/admin/blog/posts/{post['slug']}", token=admin)
    assert reply.status == 204 and reply.body == b""
    assert (await api("GET", f"/api/blog/posts/{post['id']}")).status == 404
    assert (await api("DELETE", f"/api/admin/blog/posts/{post['id']}", token=admin)).status == 404
    for collection in ("blog_likes", "blog_comments", "blog_views"):
        assert await services.db[collection].count_documents(
            {"post_id": ObjectId(post["id"])}) == 0
        assert await services.db[collection].count_documents(
            {"post_id": ObjectId(keep["id"])}) == 1


@pytest.mark.gen_test
async def test_blog_routes_are_in_openapi(api):
    paths = (await api("GET", "/openapi.json")).json["paths"]
    for path in ("/api/blog/posts", "/api/blog/posts/{post_id}", "/api/blog/posts/{post_id}/like",
                 "/api/blog/posts/{post_id}/comments", "/api/blog/posts/{post_id}/share",
                 "/api/blog/featured", "/api/blog/categories", "/api/admin/blog/posts",
                 "/api/admin/blog/posts/{post_id}"):
        assert path in paths, path
