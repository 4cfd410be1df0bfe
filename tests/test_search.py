"""Global search over real HTTP (seed 001 §17, seed 004 "Search"): each type
with its advanced filters against the seeded store plus documents made here with a unique
word, regex metacharacters, visibility rules and bad input."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, CREATOR, MODERATOR, ROBOT

from documents import catalog, search_kinds, users
from documents.seed import fixture_documents

WORD = "zyxqor"     # appears in no fixture


async def search(api, token=None, **params):
    return await api("GET", "/api/search?" + urlencode(params, doseq=True), token=token)


def ids(reply) -> set[str]:
    assert reply.status == 200, reply.json
    return {item["id"] for item in reply.json["items"]}


_STAMP = datetime(2026, 3, 1, tzinfo=UTC)


async def add_models(services, specs: list[dict]) -> list[str]:
    """Copies of a seeded model with the given fields (approved and published by default)."""
    template = next(m for m in fixture_documents()["models"] if str(m["_id"]) == ROBOT)
    out = []
    for i, spec in enumerate(specs):
        doc = {**template, "_id": ObjectId(), "created_at": _STAMP + timedelta(minutes=i),
               **spec}
        await services.db.models.insert_one(doc)
        await catalog.reindex(services.db, doc["_id"])
        out.append(str(doc["_id"]))
    return out


async def add_users(services, specs: list[dict]) -> list[str]:
    out = []
    for i, spec in enumerate(specs):
        profile = spec.pop("profile", {})
        doc = users.new_user(f"{WORD}{i}@example.com", f"{WORD}_{i}", None, **spec)
        doc["profile"] = {"skills": [], "software": [], **profile}
        out.append(str((await users.insert(services.db, doc))["_id"]))
    return out


async def add_communities(services, specs: list[dict]) -> list[str]:
    out = []
    for i, spec in enumerate(specs):
        name = spec.pop("name", f"{WORD} circle {i}")
        doc = {"name": name, "name_lower": name.lower(), "slug": f"{WORD}-{i}",
               "description": "A place", "icon": "*", "banner_gradient": None,
               "category": "Gaming", "creator_id": ObjectId("650000000000000000000003"),
               "member_count": 1, "post_count": 0, "status": "active", "is_private": False,
               "require_approval": False, "rules": [], "created_at": _STAMP,
               "updated_at": _STAMP, **spec}
        result = await services.db.communities.insert_one(doc)
        await search_kinds.index(services.db, "communities", result.inserted_id, doc)
        out.append(str(result.inserted_id))
    return out


# --------------------------------------------------------------------------- models

@pytest.mark.gen_test
async def test_models_search_with_filters(api, services):
    seeded = await services.db.models.count_documents({})
    cheap, rigged, free, heavy, pending, hidden = await add_models(services, [
        {"title": f"{WORD} crate", "price_cents": 500, "is_free": False, "poly_count": 200,
         "has_animations": False, "has_rigging": False, "tags": ["prop"], "category": "Props"},
        {"title": f"{WORD} knight", "price_cents": 4000, "is_free": False, "poly_count": 12000,
         "has_animations": True, "has_rigging": True, "tags": ["knight", "rigged"]},
        {"title": "Plain barrel", "description": f"made by {WORD}", "price_cents": 0,
         "is_free": True, "poly_count": 800, "has_animations": False, "has_rigging": False,
         "tags": ["prop"], "category": "Props"},
        {"title": "Tower", "tags": [WORD, "building"], "price_cents": 9000, "is_free": False,
         "poly_count": 90000, "has_animations": False, "has_rigging": False},
        {"title": f"{WORD} pending", "status": "pending"},
        {"title": f"{WORD} unpublished", "is_published": False},
    ])
    assert await services.db.models.count_documents({}) == seeded + 6

    reply = await search(api, q=WORD.upper(), type="models")
    assert ids(reply) == {cheap, rigged, free, heavy}
    assert reply.json["total"] == 4 and reply.json["type"] == "models"
    assert reply.json["q"] == WORD.upper() and reply.json["pages"] == 1
    item = next(i for i in reply.json["items"] if i["id"] == cheap)
    assert item["price"] == 5.0 and item["creator"]["username"] == "creator"
    assert "file_key" not in item
    assert pending not in ids(reply) and hidden not in ids(reply)

    cases = [
        ({"category": "props"}, {cheap, free}),
        ({"tags": "knight,prop"}, {cheap, rigged, free}),
        ({"is_free": "true"}, {free}),
        ({"is_free": "false"}, {cheap, rigged, heavy}),
        ({"has_animations": "true"}, {rigged}),
        ({"has_rigging": "true", "is_free": "false"}, {rigged}),
        ({"price_range": "1-50"}, {cheap, rigged}),
        ({"min_price": "10"}, {rigged, heavy}),
        ({"max_price": "5"}, {cheap, free}),
        ({"poly_count_range": "500-20000"}, {rigged, free}),
        ({"min_poly_count": "50000"}, {heavy}),
        ({"max_poly_count": "300"}, {cheap}),
    ]
    for params, expected in cases:
        assert ids(await search(api, q=WORD, type="models", **params)) == expected, params
    reply = await search(api, q=WORD, type="models", sort="price_high")
    assert [i["id"] for i in reply.json["items"]] == [heavy, rigged, cheap, free]
    reply = await search(api, q=WORD, limit=3, page=2)     # type defaults to models
    assert reply.json["total"] == 4 and reply.json["pages"] == 2 and len(reply.json["items"]) == 1

    # filters alone (no q) browse the public catalog
    reply = await search(api, type="models", has_rigging="true")
    public_rigged = await services.db.models.count_documents(
        {"status": "approved", "is_published": True, "has_rigging": True})
    assert reply.json["total"] == public_rigged and rigged in ids(reply)
    assert reply.json["q"] == ""


@pytest.mark.gen_test
async def test_models_search_staff_and_owner_see_no_hidden_models(api, tokens, services):
    [pending] = await add_models(services, [{"title": f"{WORD} draft", "status": "pending"}])
    for email in (ADMIN, CREATOR):
        reply = await search(api, await tokens(email), q=WORD, type="models")
        assert pending not in ids(reply) and reply.json["total"] == 0


# --------------------------------------------------------------------------- users

@pytest.mark.gen_test
async def test_users_search_public_profiles_with_filters(api, tokens, services):
    now = datetime.now(UTC)
    blender, sculptor, buyer, banned, inactive, deleted = await add_users(services, [
        {"user_type": "creator", "is_verified_creator": True, "full_name": "Ola Blend",
         "profile": {"country": "Ghana", "skills": ["Blender", "Rigging"], "phone": "123"}},
        {"user_type": "creator", "profile": {"country": "Kenya", "skills": ["ZBrush"]}},
        {"user_type": "buyer", "profile": {"country": "ghana"}},
        {"user_type": "creator", "is_banned": True},
        {"user_type": "creator", "is_active": False},
        {"user_type": "creator", "deleted_at": now},
    ])
    reply = await search(api, q=WORD, type="users")
    assert ids(reply) == {blender, sculptor, buyer}
    assert not {banned, inactive, deleted} & ids(reply)
    card = next(i for i in reply.json["items"] if i["id"] == blender)
    assert card["username"] == f"{WORD}_0" and card["full_name"] == "Ola Blend"
    assert card["is_verified_creator"] is True and card["profile"]["skills"] == ["Blender",
                                                                                "Rigging"]
    for private in ("email", "password_hash", "is_banned", "totp_secret"):
        assert private not in card
    assert "phone" not in card["profile"]

    cases = [
        ({"user_type": "creator"}, {blender, sculptor}),
        ({"user_type": "buyer"}, {buyer}),
        ({"is_verified": "true"}, {blender}),
        ({"is_verified": "false"}, {sculptor, buyer}),
        ({"country": "GHANA"}, {blender, buyer}),
        ({"country": "Gha"}, set()),                       # whole value, not a prefix
        ({"skills": "blender"}, {blender}),
        ({"skills": "zbrush,rigging"}, {blender, sculptor}),
        ({"skills": "Blender", "country": "Kenya"}, set()),
    ]
    for params, expected in cases:
        assert ids(await search(api, q=WORD, type="users", **params)) == expected, params
    assert ids(await search(api, q="Ola Blend", type="users")) == {blender}
    # the email is never searched
    assert ids(await search(api, q="example.com", type="users")) == set()
    # filters alone: the seeded verified creators are found too
    seeded = ids(await search(api, type="users", is_verified="true", skills="Blender"))
    assert seeded == {"650000000000000000000003", "650000000000000000000004", blender}
    # a staff viewer gets the same public view
    reply = await search(api, await tokens(ADMIN), q=WORD, type="users")
    assert ids(reply) == {blender, sculptor, buyer}


# --------------------------------------------------------------------------- communities

@pytest.mark.gen_test
async def test_communities_search_visibility_and_filters(api, tokens, services):
    big, private, small, pending, suspended = await add_communities(services, [
        {"member_count": 120, "category": "Gaming"},
        {"member_count": 40, "is_private": True, "require_approval": True, "category": "Art",
         "description": f"secret {WORD} drafts"},
        {"member_count": 3, "category": "Art", "name": "Tiny club",
         "description": f"about {WORD}"},
        {"status": "pending", "member_count": 1},
        {"status": "suspended", "member_count": 9},
    ])
    reply = await search(api, q=WORD, type="communities")
    assert [i["id"] for i in reply.json["items"]] == [big, private, small]   # most members first
    card = next(i for i in reply.json["items"] if i["id"] == private)
    assert card["is_private"] is True and card["require_approval"] is True
    assert set(card) <= {"id", "name", "slug", "description", "icon", "banner_gradient",
                         "category", "member_count", "post_count", "status", "is_private",
                         "require_approval", "created_at"}

    cases = [
        ({"category": "art"}, {private, small}),
        ({"member_count_range": "10-100"}, {private}),
        ({"min_member_count": "40"}, {big, private}),
        ({"max_member_count": "3"}, {small}),
        ({"status": "active"}, {big, private, small}),
    ]
    for params, expected in cases:
        assert ids(await search(api, q=WORD, type="communities", **params)) == expected, params

    buyer = await tokens(BUYER)
    for status in ("pending", "suspended"):
        reply = await search(api, buyer, q=WORD, type="communities", status=status)
        assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN"
    moderator = await tokens(MODERATOR)
    assert ids(await search(api, moderator, q=WORD, type="communities")) == {
        big, private, small, pending, suspended}
    assert ids(await search(api, moderator, q=WORD, type="communities",
                            status="pending")) == {pending}
    # the seeded fixtures: two active communities (one private), one pending
    assert ids(await search(api, type="communities", status="active")) >= {
        "653000000000000000000001", "653000000000000000000002"}
    assert "653000000000000000000003" not in ids(await search(api, q="voxel", type="communities"))


# --------------------------------------------------------------------------- courses

@pytest.mark.gen_test
async def test_courses_empty_until_courses_exist(api, services):
    reply = await search(api, q="blender", type="courses")
    assert reply.status == 200
    assert reply.json == {"items": [], "total": 0, "page": 1, "limit": 20, "pages": 0,
                          "type": "courses", "q": "blender"}
    await services.db.courses.insert_many([
        {"title": f"{WORD} basics", "description": "Start here", "difficulty": "beginner",
         "is_free": True, "price_cents": 0, "video_url": "/private/v1.mp4",
         "created_at": _STAMP},
        {"title": "Advanced rigging", "description": f"{WORD} deep dive",
         "difficulty": "advanced", "is_free": False, "price_cents": 1999,
         "created_at": _STAMP + timedelta(days=1)},
        {"title": f"{WORD} unreleased", "description": "", "difficulty": "beginner",
         "is_free": True, "is_published": False, "created_at": _STAMP},
    ])
    reply = await search(api, q=WORD, type="courses")
    assert [i["title"] for i in reply.json["items"]] == ["Advanced rigging", f"{WORD} basics"]
    assert reply.json["items"][0]["price"] == 19.99
    assert all("video_url" not in i for i in reply.json["items"])
    reply = await search(api, q=WORD, type="courses", difficulty="beginner")
    assert [i["title"] for i in reply.json["items"]] == [f"{WORD} basics"]
    reply = await search(api, type="courses", is_free="false")
    assert [i["title"] for i in reply.json["items"]] == ["Advanced rigging"]


# --------------------------------------------------------------------------- literal matching

@pytest.mark.gen_test
async def test_regex_metacharacters_match_literally(api, services):
    literal, other = await add_models(services, [
        {"title": "C++ (beta) [v2] .* model", "tags": []},
        {"title": "Cxx beta v2 anything model", "tags": []},
    ])
    [community] = await add_communities(services, [{"name": "Regex (fans) [v2] .*"}])
    # models match words: punctuation only separates them, so it never reaches a query
    expectations = {".*": set(), "(beta) [v2]": {literal, other}, "C++ model": {literal},
                    "(": set(), "[": set(), "beta": {literal, other}}
    for text, expected in expectations.items():
        reply = await search(api, q=text, type="models")
        assert reply.status == 200 and ids(reply) == expected, text
    for text in (".*", "(", "[", "\\", "*", "+?", "$", "^", "|", "{2}", "(?i)", "a{1,}", "]"):
        for type_ in ("models", "users", "communities", "courses"):
            reply = await search(api, q=text, type=type_)
            assert reply.status == 200, (text, type_)
    assert ids(await search(api, q="(fans) [v2] .*", type="communities")) == {community}
    assert ids(await search(api, q=".*", type="users")) == set()


# --------------------------------------------------------------------------- bad input

@pytest.mark.gen_test
async def test_search_bad_input(api):
    cases = [
        ({"q": "x", "type": "bounties"}, "type"),
        ({"q": "x", "type": ""}, "type"),
        ({}, "q"),
        ({"q": "   "}, "q"),
        ({"type": "users", "page": "2"}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "x", "type": "models", "skills": "Blender"}, "skills"),
        ({"q": "x", "type": "users", "category": "Props"}, "category"),
        ({"q": "x", "type": "users", "sort": "newest"}, "sort"),
        ({"q": "x", "type": "communities", "is_free": "true"}, "is_free"),
        ({"q": "x", "type": "courses", "status": "active"}, "status"),
        ({"q": "x", "type": "models", "price_range": "cheap"}, "price_range"),
        ({"q": "x", "type": "models", "price_range": "50-10"}, "min_price"),
        ({"q": "x", "type": "models", "poly_count_range": "a-b"}, "poly_count_range"),
        ({"q": "x", "type": "models", "min_price": "-1"}, "min_price"),
        ({"q": "x", "type": "models", "is_free": "maybe"}, "is_free"),
        ({"q": "x", "type": "models", "sort": "random"}, "sort"),
        ({"q": "x", "type": "users", "user_type": "admin"}, "user_type"),
        ({"q": "x", "type": "users", "is_verified": "perhaps"}, "is_verified"),
        ({"q": "x", "type": "communities", "status": "archived"}, "status"),
        ({"q": "x", "type": "communities", "member_count_range": "9-1"}, "min_member_count"),
        ({"q": "x", "type": "communities", "min_member_count": "lots"}, "min_member_count"),
        ({"q": "x", "type": "courses", "difficulty": "expert"}, "difficulty"),
        ({"q": "x", "page": "0"}, "page"),
        ({"q": "x", "limit": "0"}, "limit"),
        ({"q": "x", "limit": "ten"}, "limit"),
    ]
    for params, field in cases:
        reply = await search(api, **params)
        assert reply.status == 422, params
        assert reply.json["error_code"] == "VALIDATION_ERROR", params
        assert field in reply.json["field_errors"], (params, reply.json)


@pytest.mark.gen_test
async def test_search_route_is_in_openapi(api):
    paths = (await api("GET", "/openapi.json")).json["paths"]
    assert "get" in paths["/api/search"]
