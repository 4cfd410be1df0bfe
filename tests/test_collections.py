"""Collections over real HTTP (seed 004 §4): CRUD, public/private, ordered models, the
500-model bound, follow toggle with an exact follower count under concurrency."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import (
    ADMIN,
    BUYER,
    BUYER2,
    BUYER2_ID,
    BUYER_ID,
    CREATOR,
    PENDING_OF_CREATOR,
    PENDING_OF_CREATOR2,
    ROBOT,
    SNOWMAN,
)

from documents import sessions, users

EXPLORER = "652000000000000000000003"
UNKNOWN = "ffffffffffffffffffffffff"


async def create(api, token, **fields):
    payload = {"name": "Favourites", **fields}
    reply = await api("POST", "/api/collections", token=token, json=payload)
    assert reply.status == 201, reply.json
    return reply.json


async def stored(services, collection_id: str) -> dict:
    return await services.db.collections.find_one({"_id": ObjectId(collection_id)})


# --------------------------------------------------------------------------- CRUD

@pytest.mark.gen_test
async def test_create_get_update_delete(api, tokens, services):
    buyer = await tokens(BUYER)
    made = await create(api, buyer, name="  Sci-fi props  ", description="Rockets and more")
    assert made["name"] == "Sci-fi props" and made["description"] == "Rockets and more"
    assert made["is_public"] is True and made["model_count"] == 0 and made["model_ids"] == []
    assert made["followers"] == 0 and made["views"] == 0
    assert made["owner"]["id"] == BUYER_ID and made["is_following"] is False
    cid = made["id"]

    reply = await api("GET", f"/api/collections/{cid}")
    assert reply.status == 200 and reply.json["name"] == "Sci-fi props"
    assert reply.json["views"] == 1      # an anonymous visit counts
    reply = await api("GET", f"/api/collections/{cid}", token=buyer)
    assert reply.json["views"] == 1      # the owner's does not

    reply = await api("PUT", f"/api/collections/{cid}", token=buyer,
                      json={"name": "Space", "is_public": False})
    assert reply.status == 200 and reply.json["name"] == "Space" and reply.json["is_public"] is False
    assert (await stored(services, cid))["is_public"] is False

    assert (await api("DELETE", f"/api/collections/{cid}", token=buyer)).status == 204
    assert await stored(services, cid) is None
    assert (await api("GET", f"/api/collections/{cid}", token=buyer)).status == 404


@pytest.mark.gen_test
async def test_private_collections_are_hidden_and_others_cannot_edit(api, tokens, services):
    owner, other = await tokens(BUYER), await tokens(BUYER2)
    admin = await tokens(ADMIN)
    private = await create(api, owner, name="Secret", is_public=False)
    public = await create(api, owner, name="Open")
    for token in (None, other, admin):
        for method, suffix, payload in (("GET", "", None), ("PUT", "", {"name": "x"}),
                                        ("DELETE", "", None), ("GET", "/models", None),
                                        ("POST", "/follow", None),
                                        ("POST", "/add-model", {"model_id": ROBOT}),
                                        ("DELETE", f"/remove-model/{ROBOT}", None)):
            reply = await api(method, f"/api/collections/{private['id']}{suffix}", token=token,
                              json=payload)
            expected = 401 if token is None and (method != "GET") else 404
            assert reply.status == expected, (method, suffix, token is None)
    for method, suffix, payload in (("PUT", "", {"name": "x"}), ("DELETE", "", None),
                                    ("POST", "/add-model", {"model_id": ROBOT}),
                                    ("DELETE", f"/remove-model/{ROBOT}", None)):
        reply = await api(method, f"/api/collections/{public['id']}{suffix}", token=other,
                          json=payload)
        assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN", (method, suffix)
    doc = await stored(services, public["id"])
    assert doc["name"] == "Open" and doc["model_ids"] == []
    assert (await api("GET", f"/api/collections/{private['id']}", token=owner)).status == 200


@pytest.mark.gen_test
async def test_list_public_mine_user_and_search(api, tokens, services):
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    await create(api, buyer, name="Robots", description="metal friends")
    await create(api, buyer, name="Drafts", is_public=False)
    await create(api, buyer2, name="Trees")

    reply = await api("GET", "/api/collections")
    assert reply.status == 200
    assert [c["name"] for c in reply.json["items"]] == ["Trees", "Robots"]
    assert reply.json["total"] == 2 and reply.json["pages"] == 1
    assert "model_ids" not in reply.json["items"][0] and reply.json["items"][0]["owner"]["id"] == BUYER2_ID

    mine = await api("GET", "/api/collections?mine=true", token=buyer)
    assert sorted(c["name"] for c in mine.json["items"]) == ["Drafts", "Robots"]
    assert (await api("GET", "/api/collections?mine=true")).status == 401

    by_user = await api("GET", f"/api/collections?user_id={BUYER_ID}", token=buyer2)
    assert [c["name"] for c in by_user.json["items"]] == ["Robots"]
    by_self = await api("GET", f"/api/collections?user_id={BUYER_ID}", token=buyer)
    assert by_self.json["total"] == 2
    assert (await api("GET", "/api/collections?user_id=nope")).json["total"] == 0

    found = await api("GET", "/api/collections?search=METAL")
    assert [c["name"] for c in found.json["items"]] == ["Robots"]
    assert (await api("GET", "/api/collections?search=.*")).json["total"] == 0
    page = await api("GET", "/api/collections?page=2&limit=1")
    assert page.json["pages"] == 2 and [c["name"] for c in page.json["items"]] == ["Robots"]
    assert (await api("GET", "/api/collections?limit=0")).status == 422


@pytest.mark.gen_test
async def test_bad_input(api, tokens, services):
    buyer = await tokens(BUYER)
    for payload, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"),
                           ({"name": "x" * 101}, "name"), ({"name": 5}, "name"),
                           ({"name": "ok", "description": "d" * 1001}, "description"),
                           ({"name": "ok", "is_public": "perhaps"}, "is_public"),
                           ({"name": "ok", "color": "red"}, "color")):
        reply = await api("POST", "/api/collections", token=buyer, json=payload)
        assert reply.status == 422 and field in reply.json["field_errors"], payload
    reply = await api("POST", "/api/collections", token=buyer, body=b"[1,",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert (await api("POST", "/api/collections", json={"name": "x"})).status == 401
    assert await services.db.collections.count_documents({}) == 0

    made = await create(api, buyer)
    url = f"/api/collections/{made['id']}"
    assert (await api("PUT", url, token=buyer, json={})).status == 422
    assert (await api("PUT", url, token=buyer, json={"owner_id": BUYER2_ID})).status == 422
    assert (await api("PUT", url, token=buyer, json={"name": ""})).status == 422
    for ref in ("nope", UNKNOWN):
        for method in ("GET", "PUT", "DELETE"):
            reply = await api(method, f"/api/collections/{ref}", token=buyer, json={"name": "x"}
                              if method == "PUT" else None)
            assert reply.status == 404, (method, ref)
        assert (await api("GET", f"/api/collections/{ref}/models")).status == 404
    assert (await stored(services, made["id"]))["name"] == "Favourites"


# --------------------------------------------------------------------------- models

@pytest.mark.gen_test
async def test_add_order_and_remove_models(api, tokens, services):
    buyer = await tokens(BUYER)
    cid = (await create(api, buyer))["id"]
    add = f"/api/collections/{cid}/add-model"
    assert (await api("POST", add, token=buyer, json={"model_id": ROBOT})).status == 200
    assert (await api("POST", add, token=buyer, json={"model_id": SNOWMAN})).status == 200
    reply = await api("POST", add, token=buyer, json={"model_id": EXPLORER, "position": 0})
    assert reply.status == 200
    assert reply.json["model_ids"] == [EXPLORER, ROBOT, SNOWMAN] and reply.json["model_count"] == 3

    reply = await api("POST", add, token=buyer, json={"model_id": ROBOT})
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_IN_COLLECTION"
    for model_id in (PENDING_OF_CREATOR2, UNKNOWN, "bad"):
        assert (await api("POST", add, token=buyer, json={"model_id": model_id})).status == 404
    for payload in ({}, {"model_id": ROBOT, "position": -1}, {"model_id": ROBOT, "extra": 1},
                    {"model_id": 7}):
        assert (await api("POST", add, token=buyer, json=payload)).status == 422, payload

    listing = await api("GET", f"/api/collections/{cid}/models")
    assert listing.status == 200
    assert [m["id"] for m in listing.json["items"]] == [EXPLORER, ROBOT, SNOWMAN]
    assert listing.json["items"][1]["title"] == "Low-Poly Robot"
    assert "file_key" not in listing.json["items"][1]
    page = await api("GET", f"/api/collections/{cid}/models?page=2&limit=2")
    assert page.json["total"] == 3 and page.json["pages"] == 2
    assert [m["id"] for m in page.json["items"]] == [SNOWMAN]

    reply = await api("DELETE", f"/api/collections/{cid}/remove-model/{ROBOT}", token=buyer)
    assert reply.status == 200 and reply.json["model_ids"] == [EXPLORER, SNOWMAN]
    reply = await api("DELETE", f"/api/collections/{cid}/remove-model/{ROBOT}", token=buyer)
    assert reply.status == 404 and reply.json["reason"] == "MODEL_NOT_IN_COLLECTION"
    assert (await api("DELETE", f"/api/collections/{cid}/remove-model/zz", token=buyer)).status == 404
    doc = await stored(services, cid)
    assert doc["model_count"] == len(doc["model_ids"]) == 2
    assert (await api("POST", add, json={"model_id": ROBOT})).status == 401


@pytest.mark.gen_test
async def test_own_hidden_model_is_shown_to_the_owner_only(api, tokens, services):
    creator = await tokens(CREATOR)
    cid = (await create(api, creator))["id"]
    for model_id in (ROBOT, PENDING_OF_CREATOR):
        reply = await api("POST", f"/api/collections/{cid}/add-model", token=creator,
                          json={"model_id": model_id})
        assert reply.status == 200
    own = await api("GET", f"/api/collections/{cid}/models", token=creator)
    assert [m["id"] for m in own.json["items"]] == [ROBOT, PENDING_OF_CREATOR]
    public = await api("GET", f"/api/collections/{cid}/models")
    assert [m["id"] for m in public.json["items"]] == [ROBOT]


@pytest.mark.gen_test
async def test_collection_full_past_the_bound(api, tokens, services):
    buyer = await tokens(BUYER)
    cid = (await create(api, buyer))["id"]
    filler = [ObjectId() for _ in range(499)]
    await services.db.collections.update_one(
        {"_id": ObjectId(cid)}, {"$set": {"model_ids": filler, "model_count": 499}})
    add = f"/api/collections/{cid}/add-model"
    reply = await api("POST", add, token=buyer, json={"model_id": ROBOT})
    assert reply.status == 200 and reply.json["model_count"] == 500
    reply = await api("POST", add, token=buyer, json={"model_id": SNOWMAN})
    assert reply.status == 409 and reply.json["error_code"] == "COLLECTION_FULL"
    doc = await stored(services, cid)
    assert doc["model_count"] == len(doc["model_ids"]) == 500


@pytest.mark.gen_test
async def test_concurrent_adds_of_the_same_model(api, tokens, services):
    buyer = await tokens(BUYER)
    cid = (await create(api, buyer))["id"]
    replies = await asyncio.gather(*[
        api("POST", f"/api/collections/{cid}/add-model", token=buyer, json={"model_id": ROBOT})
        for _ in range(6)])
    assert sorted(r.status for r in replies) == [200] + [409] * 5
    doc = await stored(services, cid)
    assert doc["model_ids"] == [ObjectId(ROBOT)] and doc["model_count"] == 1


# --------------------------------------------------------------------------- follow

@pytest.mark.gen_test
async def test_follow_toggle(api, tokens, services):
    owner, fan = await tokens(BUYER), await tokens(BUYER2)
    cid = (await create(api, owner))["id"]
    url = f"/api/collections/{cid}/follow"
    reply = await api("POST", url, token=fan)
    assert reply.status == 201 and reply.json == {"collection_id": cid, "is_following": True,
                                                  "followers": 1}
    assert (await api("GET", f"/api/collections/{cid}", token=fan)).json["is_following"] is True
    reply = await api("POST", url, token=fan)
    assert reply.status == 200 and reply.json["is_following"] is False and reply.json["followers"] == 0
    reply = await api("DELETE", url, token=fan)
    assert reply.status == 404 and reply.json["reason"] == "NOT_FOLLOWING"
    assert (await api("POST", url, token=fan)).status == 201
    reply = await api("DELETE", url, token=fan)
    assert reply.status == 200 and reply.json["followers"] == 0

    reply = await api("POST", url, token=owner)
    assert reply.status == 400 and reply.json["error_code"] == "CANNOT_FOLLOW_OWN"
    assert (await api("POST", url)).status == 401
    assert (await api("POST", "/api/collections/nope/follow", token=fan)).status == 404
    assert (await stored(services, cid))["followers"] == 0
    assert await services.db.collection_followers.count_documents({}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_follows_keep_the_count_exact(api, tokens, services):
    owner = await tokens(BUYER)
    cid = (await create(api, owner))["id"]
    fans = []
    for i in range(20):
        user = await users.insert(services.db, users.new_user(f"f{i}@example.com", f"f{i}", None))
        fans.append((await sessions.start_session(services.db, services.settings, user))["access_token"])
    replies = await asyncio.gather(*[
        api("POST", f"/api/collections/{cid}/follow", token=t) for t in fans])
    assert [r.status for r in replies] == [201] * 20
    replies = await asyncio.gather(*[
        api("DELETE", f"/api/collections/{cid}/follow", token=t) for t in fans[:7]])
    assert [r.status for r in replies] == [200] * 7
    records = await services.db.collection_followers.count_documents({"collection_id": ObjectId(cid)})
    assert records == 13
    assert (await stored(services, cid))["followers"] == records
    # deleting the collection removes its follow records
    assert (await api("DELETE", f"/api/collections/{cid}", token=owner)).status == 204
    assert await services.db.collection_followers.count_documents({}) == 0


@pytest.mark.gen_test
async def test_every_engagement_and_collection_route_is_in_openapi(api):
    from openapi_spec_validator import validate

    spec = (await api("GET", "/openapi.json")).json
    validate(spec)
    paths = spec["paths"]
    expected = {
        "/api/models/{model_id}/like": {"post", "delete"},
        "/api/models/{model_id}/comments": {"get", "post"},
        "/api/models/{model_id}/comment": {"post"},
        "/api/models/{model_id}/view": {"post"},
        "/api/models/{model_id}/share": {"post"},
        "/api/models/{model_id}/download-specs": {"post"},
        "/api/models/{model_id}/screenshot": {"post"},
        "/api/models/{model_id}/record-video": {"post"},
        "/api/collections": {"get", "post"},
        "/api/collections/{collection_id}": {"get", "put", "delete"},
        "/api/collections/{collection_id}/add-model": {"post"},
        "/api/collections/{collection_id}/remove-model/{model_id}": {"delete"},
        "/api/collections/{collection_id}/follow": {"post", "delete"},
        "/api/collections/{collection_id}/models": {"get"},
    }
    for path, verbs in expected.items():
        assert path in paths, path
        assert verbs <= set(paths[path]), path

