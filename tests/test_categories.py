"""Categories: the public list with model counts, and the staff CRUD."""
import uuid

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, CREATOR, MODERATOR

from documents import model_writes, users


async def make_model(db, category: str, approve: bool = True) -> dict:
    owner = await users.get_by_email(db, CREATOR)
    model = await model_writes.create_model(
        db, creator=owner, data={"title": "Category test", "category": category, "price": "1"},
        model_file={"key": f"models/{uuid.uuid4().hex}.glb", "size": 1, "format": "GLB"},
        thumbnail=None, previews=[])
    if approve:
        model = await model_writes.approve(db, model["_id"], await users.get_by_email(db, ADMIN))
    return model


@pytest.mark.gen_test
async def test_public_list_is_active_categories_in_order_with_counts(api, services):
    db = services.db
    await db.categories.update_one({"name": "Vehicles"}, {"$set": {"is_active": False}})
    before = {c["name"]: c["model_count"] async for c in db.categories.find()}
    await make_model(db, "Characters")
    await make_model(db, "Characters", approve=False)
    reply = await api("GET", "/api/categories")
    assert reply.status == 200
    items = reply.json["items"]
    names = [c["name"] for c in items]
    assert "Vehicles" not in names and "Characters" in names
    assert [c["order"] for c in items] == sorted(c["order"] for c in items)
    characters = next(c for c in items if c["name"] == "Characters")
    assert characters["model_count"] == before["Characters"] + 1
    assert set(characters) >= {"id", "name", "slug", "description", "icon", "model_count"}


@pytest.mark.gen_test
async def test_admin_category_crud(api, services, tokens):
    db = services.db
    token = await tokens(ADMIN)
    created = await api("POST", "/api/admin/categories", token=token,
                        json={"name": " Sci-Fi Props ", "description": "Props", "order": 42})
    assert created.status == 201
    cat = created.json
    assert cat["name"] == "Sci-Fi Props" and cat["slug"] == "sci-fi-props"
    assert cat["model_count"] == 0 and cat["is_active"] is True
    listed = await api("GET", "/api/admin/categories", token=token)
    assert cat["id"] in [c["id"] for c in listed.json["items"]]
    assert cat["id"] in [c["id"] for c in (await api("GET", "/api/categories")).json["items"]]

    dup = await api("POST", "/api/admin/categories", token=token, json={"name": "sci-fi props"})
    assert dup.status == 409 and dup.json["error_code"] == "CATEGORY_EXISTS"
    clash = await api("PUT", f"/api/admin/categories/{cat['id']}", token=token,
                      json={"name": "characters"})
    assert clash.status == 409

    model = await make_model(db, "Sci-Fi Props")
    renamed = await api("PUT", f"/api/admin/categories/{cat['id']}", token=token,
                        json={"name": "Space Props", "is_active": False})
    assert renamed.status == 200 and renamed.json["slug"] == "space-props"
    assert renamed.json["model_count"] == 1
    assert (await db.models.find_one({"_id": model["_id"]}))["category"] == "Space Props"
    assert cat["id"] not in [c["id"] for c in (await api("GET", "/api/categories")).json["items"]]

    in_use = await api("DELETE", f"/api/admin/categories/{cat['id']}", token=token)
    assert in_use.status == 409 and in_use.json["error_code"] == "CATEGORY_IN_USE"
    await db.models.delete_one({"_id": model["_id"]})
    assert (await api("DELETE", f"/api/admin/categories/{cat['id']}", token=token)).status == 204
    assert (await api("DELETE", f"/api/admin/categories/{cat['id']}", token=token)).status == 404


@pytest.mark.gen_test
async def test_categories_take_and_show_seed_004s_enabled(api, tokens):
    token = await tokens(ADMIN)
    created = await api("POST", "/api/admin/categories", token=token,
                        json={"name": "Hidden Props", "enabled": False})
    assert created.status == 201, created.json
    assert created.json["enabled"] is False and created.json["is_active"] is False
    public = (await api("GET", "/api/categories")).json["items"]
    assert created.json["id"] not in [c["id"] for c in public]
    assert all(c["enabled"] is True for c in public)
    shown = await api("PUT", f"/api/admin/categories/{created.json['id']}", token=token,
                      json={"enabled": True})
    assert shown.status == 200 and shown.json["enabled"] is True
    assert created.json["id"] in [c["id"] for c in (await api("GET", "/api/categories")).json["items"]]


@pytest.mark.gen_test
async def test_admin_categories_need_the_permission(api, tokens):
    body = {"name": "Forbidden Fruit"}
    assert (await api("GET", "/api/admin/categories")).status == 401
    assert (await api("POST", "/api/admin/categories", json=body)).status == 401
    for email in (MODERATOR, CREATOR):    # moderators lack categories.manage
        token = await tokens(email)
        assert (await api("GET", "/api/admin/categories", token=token)).status == 403
        assert (await api("POST", "/api/admin/categories", json=body, token=token)).status == 403
        reply = await api("DELETE", "/api/admin/categories/651000000000000000000001", token=token)
        assert reply.status == 403


@pytest.mark.parametrize("payload, field", [
    ({}, "name"), ({"name": "x"}, "name"), ({"name": "n" * 61}, "name"),
    ({"name": "Good", "slug": "Not A Slug"}, "slug"), ({"name": "Good", "order": -1}, "order"),
    ({"name": "Good", "colour": "red"}, "colour"), ({"name": 5}, "name"),
])
@pytest.mark.gen_test
async def test_admin_category_bad_input(api, tokens, payload, field):
    reply = await api("POST", "/api/admin/categories", json=payload, token=await tokens(ADMIN))
    assert reply.status == 422 and field in reply.json["field_errors"]


@pytest.mark.gen_test
async def test_admin_category_unknown_ids(api, tokens):
    token = await tokens(ADMIN)
    for ref in ("bad", str(ObjectId())):
        assert (await api("PUT", f"/api/admin/categories/{ref}", json={"order": 1},
                          token=token)).status == 404
        assert (await api("DELETE", f"/api/admin/categories/{ref}", token=token)).status == 404
    malformed = await api("POST", "/api/admin/categories", body=b"[[", token=token,
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400
