"""The model catalog: listing with every filter and sort, detail, edit, delete, featured,
related, creator card, public view, publish toggle, a user's models and stats.

Each test creates its own models through `documents.catalog` with a unique tag and filters
on it, so the demo fixtures (which may hold any number of models) never change the result.
"""
import uuid

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, CREATOR, CREATOR2, MODERATOR

from documents import model_writes, users
from documents.errors import Invalid


def unique_tag() -> str:
    return "t" + uuid.uuid4().hex[:12]


def model_file(fmt="GLB", **analysis) -> dict:
    info = {"analyzed": True, "format": fmt, "poly_count": 1000, "vertex_count": 600,
            "has_animations": False, "has_rigging": False, "has_materials": True,
            "has_textures": False}
    info.update(analysis)
    return {"_id": ObjectId(), "key": f"models/{uuid.uuid4().hex}.{fmt.lower()}",
            "size": 4321, "format": fmt, "analysis": info, "url": None}


async def make_model(db, creator=CREATOR, *, status="approved", stats=None, analysis=None,
                     **data) -> dict:
    """A model created through `model_writes.create_model`, then moved to `status`."""
    owner = await users.get_by_email(db, creator)
    fields = {"title": "Test model", "category": "Characters", "price": "10.00"}
    fields.update(data)
    fields = {k: v for k, v in fields.items() if v is not None}
    model = await model_writes.create_model(
        db, creator=owner, data=fields, model_file=model_file(**(analysis or {})),
        thumbnail={"url": "/media/thumbnails/t.png"}, previews=[{"url": "/media/p1.png"}])
    admin = await users.get_by_email(db, ADMIN)
    if status == "approved":
        model = await model_writes.approve(db, model["_id"], admin)
    elif status == "rejected":
        model = await model_writes.reject(db, model["_id"], admin, "Not good enough")
    if stats:
        await db.models.update_one({"_id": model["_id"]}, {"$set": stats})
        model.update(stats)
    return model


def ids(reply) -> list[str]:
    return [item["id"] for item in reply.json["items"]]


# --------------------------------------------------------------------------- create_model

@pytest.mark.gen_test
async def test_create_model_stores_a_pending_model_from_the_form_and_file(services):
    tag = unique_tag()
    model = await make_model(services.db, status="pending", tags=f"Game-Ready, {tag},game-ready",
                             price="29.99", analysis={"poly_count": 5000, "has_rigging": True},
                             has_animations="true")
    stored = await services.db.models.find_one({"_id": model["_id"]})
    assert stored["status"] == "pending" and stored["price_cents"] == 2999
    assert stored["is_free"] is False and stored["is_published"] is True
    assert stored["tags"] == ["game-ready", tag]
    assert stored["poly_count"] == 5000 and stored["has_rigging"] is True
    assert stored["has_animations"] is True          # the form overrides the analysis
    assert stored["file_format"] == "GLB" and stored["file_formats"] == ["GLB"]
    assert stored["file_key"].startswith("models/") and stored["file_size"] == 4321
    assert stored["thumbnail_url"] == "/media/thumbnails/t.png"
    assert stored["preview_images"] == ["/media/p1.png"]
    assert stored["views"] == stored["likes"] == stored["downloads"] == 0


@pytest.mark.gen_test
async def test_create_model_accepts_json_tags_and_free_models(services):
    model = await make_model(services.db, status="pending", tags='["A", "b", "a"]',
                             price=None, is_free="true")
    assert model["tags"] == ["a", "b"] and model["is_free"] is True and model["price_cents"] == 0


@pytest.mark.parametrize("bad, field", [
    ({"category": "No Such Category"}, "category"),
    ({"title": "ab"}, "title"),
    ({"price": "-1"}, "price"),
    ({"price": "10000.01"}, "price"),
    ({"price": "1.999"}, "price"),
    ({"price": "5", "is_free": "true"}, "price"),
    ({"price": "0", "is_free": "false"}, "price"),
    ({"tags": ",".join(f"tag{i}" for i in range(21))}, "tags"),
    ({"tags": "x" * 31}, "tags"),
    ({"description": "d" * 5001}, "description"),
    ({"colour": "red"}, "colour"),
])
@pytest.mark.gen_test
async def test_create_model_rejects_bad_fields(services, bad, field):
    with pytest.raises(Invalid) as caught:
        await make_model(services.db, status="pending", **bad)
    assert field in caught.value.field_errors


@pytest.mark.gen_test
async def test_inactive_category_cannot_be_used(services):
    await services.db.categories.update_one({"name": "Vehicles"}, {"$set": {"is_active": False}})
    with pytest.raises(Invalid):
        await make_model(services.db, status="pending", category="Vehicles")


# --------------------------------------------------------------------------- list

@pytest.mark.gen_test
async def test_list_shows_only_approved_published_models(api, services):
    tag = unique_tag()
    db = services.db
    public = await make_model(db, tags=tag, title="Public one")
    await make_model(db, tags=tag, status="pending")
    await make_model(db, tags=tag, status="rejected")
    await make_model(db, tags=tag, is_published="false")
    reply = await api("GET", f"/api/models?tags={tag}")
    assert reply.status == 200
    assert reply.json["total"] == 1 and ids(reply) == [str(public["_id"])]
    item = reply.json["items"][0]
    assert item["price"] == 10.0 and item["title"] == "Public one"
    assert item["creator"]["username"] == "creator" and "email" not in item["creator"]
    for private in ("file_key", "file_id", "rejection_reason", "approved_by", "price_cents"):
        assert private not in item
    assert item["created_at"].endswith("Z")


@pytest.mark.gen_test
async def test_list_envelope_and_pagination(api, services):
    tag = unique_tag()
    made = [await make_model(services.db, tags=tag, title=f"Paged {i}") for i in range(3)]
    first = await api("GET", f"/api/models?tags={tag}&limit=2&page=1")
    second = await api("GET", f"/api/models?tags={tag}&limit=2&page=2")
    assert {k: first.json[k] for k in ("total", "page", "limit", "pages")} == \
        {"total": 3, "page": 1, "limit": 2, "pages": 2}
    assert len(first.json["items"]) == 2 and len(second.json["items"]) == 1
    assert set(ids(first) + ids(second)) == {str(m["_id"]) for m in made}
    assert ids(first)[0] == str(made[-1]["_id"])       # newest first by default


@pytest.mark.gen_test
async def test_list_filters(api, services):
    db = services.db
    tag = unique_tag()
    cheap = await make_model(db, tags=[tag, "lowpoly"], price="5.00", category="Vehicles",
                             title="Cheap car", analysis={"poly_count": 500})
    dear = await make_model(db, tags=[tag], price="80.00", category="Characters",
                            title="Dear hero", description="Rigged (c++) hero",
                            analysis={"poly_count": 50_000, "has_rigging": True,
                                      "has_animations": True})
    free = await make_model(db, creator=CREATOR2, tags=[tag, "free-stuff"], price=None,
                            is_free="true", category="Characters", title="Free tree",
                            analysis={"poly_count": 5000})
    cases = {
        "category=Vehicles": [cheap],
        "category=vehicles": [cheap],                  # slug or any case
        "category=Nowhere": [],
        "min_price=10": [dear],
        "max_price=5": [cheap, free],
        "min_price=1&max_price=50": [cheap],
        "price_range=1-50": [cheap],
        "price_range=50-": [dear],
        "is_free=true": [free],
        "is_free=false": [cheap, dear],
        "has_rigging=true": [dear],
        "has_animations=true": [dear],
        "has_animations=false": [cheap, free],
        "min_poly_count=1000": [dear, free],
        "max_poly_count=1000": [cheap],
        "min_poly_count=1000&max_poly_count=10000": [free],
        "poly_count_range=1000-10000": [free],
        "search=HERO": [dear],
        "search=(c%2B%2B)": [dear],                    # regex characters match literally
        "search=.*": [],
        "search=lowpoly": [cheap],                     # tags are searched too
        "creator=creator2": [free],
        "creator=does-not-exist": [],
    }
    cases[f"creator={free['creator_id']}"] = [free]
    for params, expected in cases.items():
        reply = await api("GET", f"/api/models?tags={tag}&{params}&limit=100")
        assert reply.status == 200, (params, reply.json)
        assert sorted(ids(reply)) == sorted(str(m["_id"]) for m in expected), params
    both = await api("GET", "/api/models?tags=lowpoly,free-stuff&limit=100")
    assert {str(cheap["_id"]), str(free["_id"])} <= set(ids(both))    # tags: any of


@pytest.mark.gen_test
async def test_list_sorts(api, services):
    db = services.db
    tag = unique_tag()
    a = await make_model(db, tags=tag, price="30.00", stats={"views": 5, "likes": 9, "downloads": 1})
    b = await make_model(db, tags=tag, price="10.00", stats={"views": 50, "likes": 1, "downloads": 7})
    c = await make_model(db, tags=tag, price="20.00", stats={"views": 20, "likes": 4, "downloads": 3})
    expected = {
        "newest": [c, b, a], "popular": [b, c, a], "price_low": [b, c, a],
        "price_high": [a, c, b], "most_liked": [a, c, b], "most_downloaded": [b, c, a],
    }
    for sort, order in expected.items():
        reply = await api("GET", f"/api/models?tags={tag}&sort={sort}")
        assert ids(reply) == [str(m["_id"]) for m in order], sort


@pytest.mark.parametrize("params", [
    "sort=cheapest", "min_price=abc", "min_price=-1", "limit=0", "limit=x",
    "page=0", "is_free=maybe", "min_poly_count=-5", "min_price=50&max_price=10",
    "min_poly_count=10&max_poly_count=5", "price_range=cheap", "poly_count_range=a-b",
    "search=" + "x" * 101,
])
@pytest.mark.gen_test
async def test_list_rejects_bad_query(api, params):
    reply = await api("GET", f"/api/models?{params}")
    assert reply.status == 422, reply.json
    assert reply.json["error_code"] == "VALIDATION_ERROR" and reply.json["field_errors"]


# --------------------------------------------------------------------------- detail

@pytest.mark.gen_test
async def test_detail_visibility_and_private_fields(api, services, tokens):
    db = services.db
    public = await make_model(db)
    pending = await make_model(db, status="pending")
    rejected = await make_model(db, status="rejected")
    owner, other, staff = [await tokens(e) for e in (CREATOR, BUYER, MODERATOR)]

    reply = await api("GET", f"/api/models/{public['_id']}")
    assert reply.status == 200 and "file_key" not in reply.json
    assert reply.json["status"] == "approved" and reply.json["price"] == 10.0

    for model in (pending, rejected):
        path = f"/api/models/{model['_id']}"
        assert (await api("GET", path)).status == 404
        assert (await api("GET", path, token=other)).status == 404
        for token in (owner, staff):
            seen = await api("GET", path, token=token)
            assert seen.status == 200 and seen.json["file_key"] == model["file_key"]
    seen = await api("GET", f"/api/models/{rejected['_id']}", token=owner)
    assert seen.json["rejection_reason"] == "Not good enough"

    own_public = await api("GET", f"/api/models/{public['_id']}", token=owner)
    assert own_public.json["file_key"] == public["file_key"]


@pytest.mark.parametrize("path", ["/api/models/not-an-id", "/api/models/123",
                                  f"/api/models/{ObjectId()}", "/api/models/zzzzzzzzzzzzzzzzzzzzzzzz"])
@pytest.mark.gen_test
async def test_detail_unknown_or_malformed_id_is_404(api, path):
    reply = await api("GET", path)
    assert reply.status == 404 and reply.json["error_code"] in ("MODEL_NOT_FOUND", "NOT_FOUND")


# --------------------------------------------------------------------------- edit

async def counts(db, model) -> tuple[int, int]:
    category = await db.categories.find_one({"name": model["category"]})
    creator = await db.users.find_one({"_id": model["creator_id"]})
    return category["model_count"], creator["total_models"]


@pytest.mark.gen_test
async def test_owner_price_edit_keeps_approval(api, services, tokens):
    model = await make_model(services.db)
    reply = await api("PUT", f"/api/models/{model['_id']}", token=await tokens(CREATOR),
                      json={"price": 12.5, "is_published": True})
    assert reply.status == 200 and reply.json["price"] == 12.5
    assert reply.json["status"] == "approved"
    stored = await services.db.models.find_one({"_id": model["_id"]})
    assert stored["price_cents"] == 1250 and stored["is_free"] is False


@pytest.mark.gen_test
async def test_owner_content_edit_keeps_a_listed_model_listed(api, services, tokens):
    db = services.db
    model = await make_model(db, category="Vehicles")
    before = await counts(db, model)
    characters = (await db.categories.find_one({"name": "Characters"}))["model_count"]
    reply = await api("PUT", f"/api/models/{model['_id']}", token=await tokens(CREATOR),
                      json={"title": "A new title", "tags": ["New", "new", "Car"],
                            "category": "characters"})
    assert reply.status == 200
    assert reply.json["status"] == "approved" and reply.json["tags"] == ["new", "car"]
    assert reply.json["category"] == "Characters" and reply.json["under_review"] == []
    after_vehicles = (await db.categories.find_one({"name": "Vehicles"}))["model_count"]
    assert after_vehicles == before[0] - 1
    assert (await db.categories.find_one({"name": "Characters"}))["model_count"] == characters + 1
    assert (await db.users.find_one({"_id": model["creator_id"]}))["total_models"] == before[1]
    shown = await api("GET", f"/api/models/{model['_id']}")
    assert shown.status == 200 and shown.json["title"] == "A new title"


@pytest.mark.gen_test
async def test_staff_content_edit_keeps_approval_and_moves_category_count(api, services, tokens):
    db = services.db
    model = await make_model(db, category="Vehicles")
    vehicles, creator_total = await counts(db, model)
    characters = (await db.categories.find_one({"name": "Characters"}))["model_count"]
    reply = await api("PUT", f"/api/models/{model['_id']}", token=await tokens(MODERATOR),
                      json={"title": "Fixed title", "category": "Characters"})
    assert reply.status == 200 and reply.json["status"] == "approved"
    assert (await db.categories.find_one({"name": "Vehicles"}))["model_count"] == vehicles - 1
    assert (await db.categories.find_one({"name": "Characters"}))["model_count"] == characters + 1
    assert (await db.users.find_one({"_id": model["creator_id"]}))["total_models"] == creator_total


@pytest.mark.gen_test
async def test_owner_edit_of_rejected_model_resubmits_it(api, services, tokens):
    model = await make_model(services.db, status="rejected")
    reply = await api("PUT", f"/api/models/{model['_id']}", token=await tokens(CREATOR),
                      json={"description": "Now with better topology"})
    assert reply.status == 200
    assert reply.json["status"] == "pending" and reply.json["rejection_reason"] is None


@pytest.mark.gen_test
async def test_edit_permissions(api, services, tokens):
    public = await make_model(services.db)
    pending = await make_model(services.db, status="pending")
    other = await tokens(CREATOR2)
    change = {"title": "Hijacked"}
    assert (await api("PUT", f"/api/models/{public['_id']}", json=change)).status == 401
    assert (await api("PUT", f"/api/models/{public['_id']}", json=change, token=other)).status == 403
    assert (await api("PUT", f"/api/models/{pending['_id']}", json=change, token=other)).status == 404
    assert (await api("PUT", "/api/models/nope", json=change, token=other)).status == 404
    stored = await services.db.models.find_one({"_id": public["_id"]})
    assert stored["title"] == "Test model"


@pytest.mark.parametrize("payload, status, field", [
    ({"title": "x"}, 422, "title"),
    ({"price": "ten"}, 422, "price"),
    ({"price": 1.234}, 422, "price"),
    ({"price": 20000}, 422, "price"),
    ({"category": "Nope"}, 422, "category"),
    ({"tags": "a" * 40}, 422, "tags"),
    ({"tags": [1, 2]}, 422, "tags"),
    ({"is_free": False, "price": 0}, 422, "price"),
    ({"status": "approved"}, 422, "status"),
    ({"views": 1000}, 422, "views"),
    ({"file_key": "models/other.glb"}, 422, "file_key"),
])
@pytest.mark.gen_test
async def test_edit_rejects_bad_fields(api, services, tokens, payload, status, field):
    model = await make_model(services.db, status="pending")
    reply = await api("PUT", f"/api/models/{model['_id']}", json=payload,
                      token=await tokens(CREATOR))
    assert reply.status == status and field in reply.json["field_errors"], reply.json
    stored = await services.db.models.find_one({"_id": model["_id"]})
    assert stored["status"] == "pending" and stored["title"] == "Test model"


@pytest.mark.gen_test
async def test_edit_rejects_malformed_json(api, services, tokens):
    model = await make_model(services.db)
    reply = await api("PUT", f"/api/models/{model['_id']}", body=b"{not json",
                      headers={"Content-Type": "application/json"}, token=await tokens(CREATOR))
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"


@pytest.mark.gen_test
async def test_making_a_model_free_sets_price_zero(api, services, tokens):
    model = await make_model(services.db)
    reply = await api("PUT", f"/api/models/{model['_id']}", json={"is_free": True},
                      token=await tokens(CREATOR))
    assert reply.status == 200 and reply.json["price"] == 0 and reply.json["is_free"] is True


# --------------------------------------------------------------------------- delete

@pytest.mark.gen_test
async def test_owner_deletes_model_and_counters_follow(api, services, tokens):
    db = services.db
    model = await make_model(db)
    before = await counts(db, model)
    token = await tokens(CREATOR)
    assert (await api("DELETE", f"/api/models/{model['_id']}", token=token)).status == 204
    assert await db.models.find_one({"_id": model["_id"]}) is None
    assert await counts(db, model) == (before[0] - 1, before[1] - 1)
    assert (await api("DELETE", f"/api/models/{model['_id']}", token=token)).status == 404


@pytest.mark.gen_test
async def test_deleting_a_pending_model_leaves_counters(api, services, tokens):
    db = services.db
    model = await make_model(db, status="pending")
    before = await counts(db, model)
    reply = await api("DELETE", f"/api/models/{model['_id']}", token=await tokens(CREATOR))
    assert reply.status == 204 and await counts(db, model) == before


@pytest.mark.gen_test
async def test_delete_permissions(api, services, tokens):
    model = await make_model(services.db)
    path = f"/api/models/{model['_id']}"
    assert (await api("DELETE", path)).status == 401
    assert (await api("DELETE", path, token=await tokens(BUYER))).status == 403
    assert await services.db.models.find_one({"_id": model["_id"]}) is not None
    assert (await api("DELETE", path, token=await tokens(MODERATOR))).status == 204
    assert (await api("DELETE", "/api/models/bad-id", token=await tokens(CREATOR))).status == 404


# --------------------------------------------------------------------------- featured, related

@pytest.mark.gen_test
async def test_featured_lists_featured_public_models(api, services):
    db = services.db
    featured = await make_model(db)
    plain = await make_model(db)
    await model_writes.set_featured(db, featured["_id"], True)
    hidden = await make_model(db)
    await model_writes.set_featured(db, hidden["_id"], True)
    await db.models.update_one({"_id": hidden["_id"]}, {"$set": {"is_published": False}})
    reply = await api("GET", "/api/models/featured?limit=50")
    assert reply.status == 200
    found = ids(reply)
    assert str(featured["_id"]) in found
    assert str(plain["_id"]) not in found and str(hidden["_id"]) not in found
    assert (await api("GET", "/api/models/featured?limit=0")).status == 422
    assert (await api("GET", "/api/models/featured?_=1")).status == 200    # a cache buster


@pytest.mark.gen_test
async def test_related_shares_category_or_tags_and_excludes_itself(api, services):
    db = services.db
    tag = unique_tag()
    base = await make_model(db, tags=[tag, "robot"], category="Sci-Fi")
    same_tags = await make_model(db, tags=[tag, "robot"], category="Vehicles")
    one_tag = await make_model(db, tags=[tag], category="Vehicles")
    unrelated = await make_model(db, tags=[unique_tag()], category="Vehicles")
    pending = await make_model(db, tags=[tag, "robot"], category="Sci-Fi", status="pending")
    reply = await api("GET", f"/api/models/{base['_id']}/related?limit=50")
    assert reply.status == 200
    found = ids(reply)
    assert str(base["_id"]) not in found
    assert str(unrelated["_id"]) not in found and str(pending["_id"]) not in found
    assert found.index(str(same_tags["_id"])) < found.index(str(one_tag["_id"]))
    assert (await api("GET", f"/api/models/{pending['_id']}/related")).status == 404
    assert (await api("GET", "/api/models/nope/related")).status == 404


# --------------------------------------------------------------------------- creator, public

@pytest.mark.gen_test
async def test_creator_card_with_stats(api, services):
    db = services.db
    await db.models.delete_many({"creator_id": ObjectId("650000000000000000000004")})
    a = await make_model(db, creator=CREATOR2, stats={"views": 10, "likes": 2, "downloads": 1})
    await make_model(db, creator=CREATOR2, stats={"views": 5, "likes": 3, "downloads": 4})
    await make_model(db, creator=CREATOR2, status="pending", stats={"views": 99})
    reply = await api("GET", f"/api/models/{a['_id']}/creator")
    assert reply.status == 200
    card = reply.json
    assert card["username"] == "creator2" and "email" not in card and "password_hash" not in card
    assert card["stats"]["models_count"] == 2
    assert card["stats"]["total_views"] == 15 and card["stats"]["total_likes"] == 5
    assert card["stats"]["total_downloads"] == 5


@pytest.mark.gen_test
async def test_public_view_shape(api, services, tokens):
    db = services.db
    model = await make_model(db, tags=["shiny"])
    reply = await api("GET", f"/api/models/{model['_id']}/public")
    assert reply.status == 200
    view = reply.json
    assert view["id"] == str(model["_id"]) and view["price"] == 10.0 and view["tags"] == ["shiny"]
    assert view["creator"]["username"] == "creator"
    for hidden in ("file_key", "file_id", "status", "rejection_reason", "analysis", "approved_by"):
        assert hidden not in view
    pending = await make_model(db, status="pending")
    assert (await api("GET", f"/api/models/{pending['_id']}/public")).status == 404
    own = await api("GET", f"/api/models/{pending['_id']}/public", token=await tokens(CREATOR))
    assert own.status == 200 and "file_key" not in own.json


# --------------------------------------------------------------------------- toggle-publish

@pytest.mark.gen_test
async def test_toggle_publish(api, services, tokens):
    db = services.db
    tag = unique_tag()
    model = await make_model(db, tags=tag)
    before = await counts(db, model)
    token = await tokens(CREATOR)
    path = f"/api/models/{model['_id']}/toggle-publish"
    off = await api("POST", path, token=token)
    assert off.status == 200 and off.json["is_published"] is False
    assert (await api("GET", f"/api/models?tags={tag}")).json["total"] == 0
    assert await counts(db, model) == (before[0] - 1, before[1] - 1)
    on = await api("POST", path, token=token)
    assert on.status == 200 and on.json["is_published"] is True
    assert (await api("GET", f"/api/models?tags={tag}")).json["total"] == 1
    assert await counts(db, model) == before


@pytest.mark.gen_test
async def test_toggle_publish_permissions(api, services, tokens):
    model = await make_model(services.db)
    pending = await make_model(services.db, status="pending")
    path = f"/api/models/{model['_id']}/toggle-publish"
    assert (await api("POST", path)).status == 401
    assert (await api("POST", path, token=await tokens(BUYER))).status == 403
    assert (await api("POST", f"/api/models/{pending['_id']}/toggle-publish",
                      token=await tokens(BUYER))).status == 404
    assert (await api("POST", "/api/models/xyz/toggle-publish",
                      token=await tokens(CREATOR))).status == 404
    assert (await services.db.models.find_one({"_id": model["_id"]}))["is_published"] is True


# --------------------------------------------------------------------------- users' models

@pytest.mark.gen_test
async def test_my_models_lists_every_status_with_private_fields(api, services, tokens):
    db = services.db
    await db.models.delete_many({"creator_id": ObjectId("650000000000000000000004")})
    made = {s: await make_model(db, creator=CREATOR2, status=s)
            for s in ("approved", "pending", "rejected")}
    token = await tokens(CREATOR2)
    reply = await api("GET", "/api/users/me/models", token=token)
    assert reply.status == 200 and reply.json["total"] == 3
    assert {i["status"] for i in reply.json["items"]} == {"approved", "pending", "rejected"}
    assert all("file_key" in i for i in reply.json["items"])
    only = await api("GET", "/api/users/me/models?status=pending", token=token)
    assert ids(only) == [str(made["pending"]["_id"])]
    assert (await api("GET", "/api/users/me/models")).status == 401
    assert (await api("GET", "/api/users/me/models?status=gone", token=token)).status == 422
    assert (await api("GET", "/api/users/me/models?_=1", token=token)).status == 200


@pytest.mark.gen_test
async def test_user_models_show_public_ones_by_username_or_id(api, services):
    db = services.db
    await db.models.delete_many({"creator_id": ObjectId("650000000000000000000004")})
    public = await make_model(db, creator=CREATOR2)
    await make_model(db, creator=CREATOR2, status="pending")
    for ref in ("creator2", "CREATOR2", "650000000000000000000004"):
        reply = await api("GET", f"/api/users/{ref}/models")
        assert reply.status == 200 and ids(reply) == [str(public["_id"])], ref
        assert "file_key" not in reply.json["items"][0]
    missing = await api("GET", "/api/users/nobody-here/models")
    assert missing.status == 404 and missing.json["reason"] == "USER_NOT_FOUND"
    assert (await api("GET", "/api/users/creator2/models?limit=0")).status == 422


@pytest.mark.gen_test
async def test_user_stats(api, services, tokens):
    db = services.db
    await db.models.delete_many({"creator_id": ObjectId("650000000000000000000004")})
    await db.users.update_one({"username": "creator2"}, {"$set": {"followers_count": 7}})
    await make_model(db, creator=CREATOR2, stats={"views": 3, "likes": 2, "downloads": 1})
    await make_model(db, creator=CREATOR2, stats={"views": 4, "likes": 1, "downloads": 6})
    await make_model(db, creator=CREATOR2, status="rejected", stats={"views": 100})
    reply = await api("GET", "/api/users/creator2/stats")
    assert reply.status == 200
    assert {k: reply.json[k] for k in ("models_count", "total_views", "total_likes",
                                       "total_downloads", "followers_count")} == \
        {"models_count": 2, "total_views": 7, "total_likes": 3, "total_downloads": 7,
         "followers_count": 7}
    me = await api("GET", "/api/users/me/stats", token=await tokens(CREATOR2))
    assert me.status == 200 and me.json["models_count"] == 2
    assert (await api("GET", "/api/users/me/stats")).status == 401
    assert (await api("GET", "/api/users/ghost-user/stats")).status == 404


@pytest.mark.gen_test
async def test_a_bought_model_cannot_be_deleted_by_its_creator_but_staff_can(api, tokens, services):
    robot = ObjectId("652000000000000000000001")  # creator@hwc3d.com's, approved
    await services.db.purchases.insert_one({"user_id": ObjectId("650000000000000000000005"),
                                            "model_id": robot, "status": "active"})
    reply = await api("DELETE", f"/api/models/{robot}", token=await tokens(CREATOR))
    assert reply.status == 409 and reply.json["error_code"] == "MODEL_HAS_PURCHASES"
    assert await services.db.models.count_documents({"_id": robot}) == 1

    reply = await api("DELETE", f"/api/admin/models/{robot}", token=await tokens(ADMIN))
    assert reply.status == 204
    assert await services.db.models.count_documents({"_id": robot}) == 0
