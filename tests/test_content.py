"""Public site content over real HTTP (seed 001 §2, §6; seed 004 homepage, help, docs):
testimonials, platform and homepage stats, help, docs, newsletter, tag suggestions and the
safety scan of uploaded files."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from bson import ObjectId
from content_support import UNKNOWN_ID, box_glb, png_bytes, textured_glb, upload, with_external_image
from demo_accounts import ADMIN, BUYER, BUYER2, CREATOR, CREATOR2

from documents import homepage, tagger
from documents.common import utcnow

pytestmark = pytest.mark.usefixtures("no_demo_content")  # counts start from zero


async def add_testimonial(db, **fields) -> dict:
    data = {"author_name": "Ann", "content": "Great models", "rating": 5, **fields}
    return await homepage.create_testimonial(db, data)


# --------------------------------------------------------------------------- testimonials

@pytest.mark.gen_test
async def test_public_testimonials_are_approved_only_featured_first(api, services):
    db = services.db
    plain = await add_testimonial(db, author_name="Plain", is_approved=True, order=1)
    featured = await add_testimonial(db, author_name="Star", is_approved=True, is_featured=True,
                                     order=5)
    await add_testimonial(db, author_name="Hidden", is_approved=False, is_featured=True)
    reply = await api("GET", "/api/testimonials")
    assert reply.status == 200
    items = reply.json["items"]
    assert [t["author_name"] for t in items] == ["Star", "Plain"]
    assert items[0]["id"] == str(featured["_id"]) and items[1]["id"] == str(plain["_id"])
    assert items[0]["rating"] == 5 and items[0]["created_at"].endswith("Z")
    only = await api("GET", "/api/testimonials?featured=true&limit=5")
    assert [t["author_name"] for t in only.json["items"]] == ["Star"]


@pytest.mark.gen_test
@pytest.mark.parametrize("qs", ["limit=0", "limit=x", "featured=maybe"])
async def test_public_testimonials_reject_bad_query(api, qs):
    reply = await api("GET", f"/api/testimonials?{qs}")
    assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR"


@pytest.mark.gen_test
async def test_testimonials_take_and_show_seed_004s_names(api, tokens):
    admin = await tokens(ADMIN)
    created = await api("POST", "/api/admin/testimonials", token=admin, json={
        "author": "Lin", "company": "Voxel Works", "text": "Great previews.", "rating": 4,
        "featured": True, "is_approved": True})
    assert created.status == 201, created.json
    t = created.json
    assert (t["author"], t["company"], t["text"], t["featured"]) == (
        "Lin", "Voxel Works", "Great previews.", True)
    assert (t["author_name"], t["author_title"], t["content"], t["is_featured"]) == (
        "Lin", "Voxel Works", "Great previews.", True)
    changed = await api("PUT", f"/api/admin/testimonials/{t['id']}", token=admin,
                        json={"text": "Great previews and support."})
    assert changed.status == 200 and changed.json["content"] == "Great previews and support."
    public = (await api("GET", "/api/testimonials")).json["items"]
    assert public[0]["text"] == "Great previews and support." and public[0]["verified"] is True


# --------------------------------------------------------------------------- stats

async def store_counts(db) -> dict:
    """The platform counts computed in Python from every stored document."""
    people = await db.users.find().to_list(None)
    models = await db.models.find().to_list(None)
    return {
        "total_users": sum(1 for u in people if not u.get("deleted_at")),
        "total_creators": sum(1 for u in people
                              if not u.get("deleted_at") and u.get("user_type") == "creator"),
        "total_models": sum(1 for m in models
                            if m["status"] == "approved" and m.get("is_published")),
        "total_downloads": sum(int(m.get("downloads") or 0) for m in models),
        "total_communities": await db.communities.count_documents({"status": "active"}),
        "total_categories": len([c async for c in db.categories.find() if c.get("is_active")]),
    }


@pytest.mark.gen_test
async def test_platform_stats_are_the_stores_counts(api, services):
    db = services.db
    first = await api("GET", "/api/stats/platform")
    assert first.status == 200
    assert first.json == await store_counts(db)
    # change the store: the figures follow
    model = await db.models.find_one({"status": "approved", "is_published": True})
    await db.models.update_one({"_id": model["_id"]}, {"$inc": {"downloads": 17}})
    await db.models.update_one({"_id": model["_id"]}, {"$set": {"status": "pending"}})
    await db.users.update_one({"email": BUYER2}, {"$set": {"deleted_at": utcnow()}})
    await db.users.update_one({"email": BUYER}, {"$set": {"user_type": "creator"}})
    second = await api("GET", "/api/stats/platform")
    expected = await store_counts(db)
    assert second.json == expected
    assert expected["total_downloads"] == first.json["total_downloads"] + 17
    assert expected["total_models"] == first.json["total_models"] - 1
    assert expected["total_users"] == first.json["total_users"] - 1
    assert expected["total_creators"] == first.json["total_creators"] + 1


@pytest.mark.gen_test
async def test_homepage_stats(api, services):
    db = services.db
    public = await db.models.find({"status": "approved", "is_published": True}).to_list(None)
    assert public, "the fixtures hold approved models"
    featured_id = public[0]["_id"]
    await db.models.update_many({}, {"$set": {"is_featured": False}})
    await db.models.update_one({"_id": featured_id}, {"$set": {"is_featured": True}})
    await db.models.update_one({"_id": public[-1]["_id"]}, {"$set": {"views": 10_000}})
    await add_testimonial(db, author_name="Shown", is_approved=True)
    await add_testimonial(db, author_name="Not shown")
    now = utcnow()
    live = await homepage.create_slide(db, {"title": "Live", "image_url": "/img/a.png"})
    await homepage.create_slide(db, {"title": "Off", "image_url": "/img/b.png",
                                     "is_active": False})
    await homepage.create_slide(db, {"title": "Over", "image_url": "/img/c.png",
                                     "starts_at": now - timedelta(days=3),
                                     "ends_at": now - timedelta(days=1)})
    await homepage.create_slide(db, {"title": "Soon", "image_url": "/img/d.png",
                                     "starts_at": now + timedelta(days=1)})
    reply = await api("GET", "/api/stats/homepage")
    assert reply.status == 200
    body = reply.json
    assert body["stats"] == await store_counts(db)
    assert [m["id"] for m in body["featured_models"]] == [str(featured_id)]
    assert "file_key" not in body["featured_models"][0]
    assert body["featured_models"][0]["creator"]["username"]
    assert body["trending_models"][0]["id"] == str(public[-1]["_id"])
    assert len(body["trending_models"]) == min(8, len(public))
    assert isinstance(body["top_creators"], list) and body["top_creators"]
    assert {"creator", "total_sales", "followers_count"} <= set(body["top_creators"][0])
    assert [t["author_name"] for t in body["testimonials"]] == ["Shown"]
    assert [s["id"] for s in body["slides"]] == [str(live["_id"])]


# --------------------------------------------------------------------------- help and docs

@pytest.mark.gen_test
async def test_help_categories_and_faqs(api):
    cats = await api("GET", "/api/help/categories")
    assert cats.status == 200
    slugs = [c["slug"] for c in cats.json["items"]]
    assert "selling" in slugs and len(slugs) == len(set(slugs))
    everything = await api("GET", "/api/help/faqs")
    assert everything.status == 200
    assert everything.json["total"] == len(everything.json["items"])
    assert sum(c["faq_count"] for c in cats.json["items"]) == everything.json["total"]
    selling = await api("GET", "/api/help/faqs?category=selling")
    assert selling.json["items"] and all(f["category"] == "selling"
                                         for f in selling.json["items"])
    fee = await api("GET", "/api/help/faqs?search=PLATFORM%20FEE")
    assert [f["id"] for f in fee.json["items"]] == ["platform-fee"]
    assert "7.5%" in fee.json["items"][0]["answer"]
    none = await api("GET", "/api/help/faqs?category=buying&search=payout")
    assert none.json == {"items": [], "total": 0}
    blank = await api("GET", "/api/help/faqs?category=&search=")
    assert blank.json["total"] == everything.json["total"]


@pytest.mark.gen_test
@pytest.mark.parametrize("qs", ["category=unknown", "search=" + "x" * 101])
async def test_help_faqs_reject_bad_query(api, qs):
    reply = await api("GET", f"/api/help/faqs?{qs}")
    assert reply.status == 422


@pytest.mark.gen_test
async def test_docs_sections_and_one_section(api):
    sections = await api("GET", "/api/docs/sections")
    assert sections.status == 200
    items = sections.json["items"]
    assert items and all("content" not in s for s in items)
    one = await api("GET", f"/api/docs/{items[0]['slug']}")
    assert one.status == 200
    assert one.json["slug"] == items[0]["slug"] and one.json["content"].startswith("#")
    api_doc = await api("GET", "/api/docs/api")
    assert "Authorization: Bearer" in api_doc.json["content"]
    missing = await api("GET", "/api/docs/no-such-section")
    assert missing.status == 404 and missing.json["error_code"] == "NOT_FOUND"


# --------------------------------------------------------------------------- newsletter

@pytest.mark.gen_test
async def test_newsletter_subscribe_is_idempotent(api, services):
    first = await api("POST", "/api/newsletter/subscribe", json={"email": "Fan@Example.COM"})
    assert first.status == 201
    assert first.json["email"] == "fan@example.com" and first.json["status"] == "subscribed"
    again = await api("POST", "/api/newsletter/subscribe", json={"email": " fan@example.com "})
    assert again.status == 200 and again.json["id"] == first.json["id"]
    assert await services.db.newsletter_subscribers.count_documents({}) == 1
    await services.db.newsletter_subscribers.update_one({}, {"$set": {"status": "unsubscribed"}})
    back = await api("POST", "/api/newsletter/subscribe", json={"email": "FAN@example.com"})
    assert back.status == 200 and back.json["status"] == "subscribed"
    stored = await services.db.newsletter_subscribers.find_one({})
    assert stored["email"] == "fan@example.com" and stored["status"] == "subscribed"


@pytest.mark.gen_test
@pytest.mark.parametrize("payload,status", [
    ({}, 422), ({"email": "not-an-email"}, 422), ({"email": 42}, 422),
    ({"email": "a@b.co", "name": "x"}, 422), ({"email": "a" * 250 + "@b.co"}, 422),
    ("{not json", 400), ([], 422)])
async def test_newsletter_rejects_bad_input(api, services, payload, status):
    if isinstance(payload, str):
        reply = await api("POST", "/api/newsletter/subscribe", body=payload,
                          headers={"Content-Type": "application/json"})
    else:
        reply = await api("POST", "/api/newsletter/subscribe", json=payload)
    assert reply.status == status
    assert await services.db.newsletter_subscribers.count_documents({}) == 0


# --------------------------------------------------------------------------- tags

def test_tagger_rules_are_deterministic():
    analysis = {"format": "GLB", "poly_count": 250_000, "has_animations": True,
                "has_rigging": True, "has_materials": True, "has_textures": True}
    out = tagger.suggest_tags("The Low Poly Sci Fi Robot", "A rigged mech for games", "Vehicles",
                              analysis)
    assert out == tagger.suggest_tags("The Low Poly Sci Fi Robot", "A rigged mech for games",
                                      "Vehicles", analysis)
    tags = out["tags"]
    assert tags == ["sci-fi", "rigged", "game-ready", "vehicles", "animated", "high-poly",
                    "pbr", "glb"]  # "low poly" in the title loses to the measured 250,000
    text_only = tagger.suggest_tags("The Low Poly Sci Fi Robot", None, None)["tags"]
    assert text_only == ["sci-fi", "low-poly"]
    assert "the" not in tags and len(tags) == len(set(tags))
    assert "rule-based" in out["method"] and "not a machine-learning" in out["method"]
    assert out["reasons"]["high-poly"].startswith("250000 faces")


@pytest.mark.gen_test
async def test_generate_tags_from_text_and_an_uploaded_glb(api, tokens):
    token = await tokens(CREATOR)
    text_only = await api("POST", "/api/ai/generate-tags", token=token,
                          json={"title": "Medieval battle axe", "description": "A sword and "
                                "shield set for your game", "category": "weapons"})
    assert text_only.status == 200, text_only.json
    assert text_only.json["tags"][:3] == ["fantasy", "weapon", "game-ready"]
    assert "weapons" in text_only.json["tags"]

    plain = await upload(api, token, "/api/upload/model", "box.glb", box_glb())
    tagged = await api("POST", "/api/ai/generate-tags", token=token,
                       json={"title": "Wooden crate", "file_id": plain["file_id"]})
    assert tagged.status == 200
    assert tagged.json["tags"] == ["prop", "low-poly", "glb"]
    assert tagged.json["reasons"]["low-poly"] == "12 faces (< 5000)"

    textured = await upload(api, token, "/api/upload/model", "crate.glb", textured_glb())
    assert textured["has_materials"] and textured["has_textures"]
    pbr = await api("POST", "/api/ai/generate-tags", token=token,
                    json={"title": "Crate", "file_id": textured["file_id"]})
    assert "pbr" in pbr.json["tags"] and "animated" not in pbr.json["tags"]


@pytest.mark.gen_test
async def test_generate_tags_rejects_bad_input_and_foreign_files(api, tokens):
    token = await tokens(CREATOR)
    assert (await api("POST", "/api/ai/generate-tags", json={"title": "x"})).status == 401
    theirs = await upload(api, await tokens(CREATOR2), "/api/upload/model", "b.glb", box_glb())
    image = await upload(api, token, "/api/upload/image", "p.png", png_bytes())
    cases = [
        ({"title": "x", "file_id": theirs["file_id"]}, 403),
        ({"title": "x", "file_id": "nope"}, 404),
        ({"title": "x", "file_id": UNKNOWN_ID}, 404),
        ({"title": "x", "file_id": image["file_id"]}, 422),
        ({"title": "x", "category": "Not A Category"}, 422),
        ({"description": "no title"}, 422),
        ({"title": ""}, 422),
        ({"title": 12}, 422),
        ({"title": "x", "colour": "red"}, 422),
    ]
    for payload, status in cases:
        reply = await api("POST", "/api/ai/generate-tags", token=token, json=payload)
        assert reply.status == status, (payload, reply.json)
    bad = await api("POST", "/api/ai/generate-tags", token=token, body="{",
                    headers={"Content-Type": "application/json"})
    assert bad.status == 400


# --------------------------------------------------------------------------- safety scan

def checks_of(reply) -> dict:
    return {c["name"]: c for c in reply.json["checks"]}


@pytest.mark.gen_test
async def test_safety_scan_passes_a_clean_glb_and_image(api, tokens):
    token = await tokens(CREATOR)
    model = await upload(api, token, "/api/upload/model", "box.glb", box_glb())
    reply = await api("POST", "/api/models/safety-scan", token=token,
                      json={"file_id": model["file_id"]})
    assert reply.status == 200, reply.json
    assert reply.json["safe"] is True and reply.json["file_id"] == model["file_id"]
    checks = checks_of(reply)
    assert set(checks) == {"analysis", "file_type", "size", "external_uris", "poly_count"}
    assert all(c["passed"] for c in checks.values())
    assert checks["file_type"]["detail"] == "content is GLB, recorded as GLB"
    assert checks["poly_count"]["detail"].startswith("12 faces")

    image = await upload(api, token, "/api/upload/image", "p.png", png_bytes())
    scanned = await api("POST", "/api/models/safety-scan", token=token,
                        json={"file_id": image["file_id"]})
    assert scanned.status == 200 and scanned.json["safe"] is True
    assert set(checks_of(scanned)) == {"analysis", "file_type", "size"}
    assert checks_of(scanned)["analysis"]["detail"] == "64x48 px"


@pytest.mark.gen_test
async def test_safety_scan_flags_external_uris(api, tokens):
    token = await tokens(CREATOR)
    data = with_external_image(box_glb(), "https://evil.example/texture.png")
    model = await upload(api, token, "/api/upload/model", "ext.glb", data)
    reply = await api("POST", "/api/models/safety-scan", token=token,
                      json={"file_id": model["file_id"]})
    assert reply.status == 200
    assert reply.json["safe"] is False
    checks = checks_of(reply)
    assert checks["external_uris"]["passed"] is False
    assert "https://evil.example/texture.png" in checks["external_uris"]["detail"]
    assert checks["file_type"]["passed"] and checks["size"]["passed"]

    local = with_external_image(box_glb(), "file:///etc/passwd")
    model = await upload(api, token, "/api/upload/model", "local.glb", local)
    again = await api("POST", "/api/models/safety-scan", token=token,
                      json={"file_id": model["file_id"]})
    assert again.json["safe"] is False and "file:///etc/passwd" in \
        checks_of(again)["external_uris"]["detail"]


@pytest.mark.gen_test
async def test_safety_scan_detects_tampered_and_missing_objects(api, tokens, services):
    token = await tokens(CREATOR)
    model = await upload(api, token, "/api/upload/model", "box.glb", box_glb())
    record = await services.db.files.find_one({"_id": ObjectId(model["file_id"])})
    stored = Path(services.storage.path_of(record["key"]))
    stored.write_bytes(b"MZ\x90\x00 this is not a model at all" * 10)
    reply = await api("POST", "/api/models/safety-scan", token=token,
                      json={"file_id": model["file_id"]})
    assert reply.status == 200 and reply.json["safe"] is False
    checks = checks_of(reply)
    assert not checks["file_type"]["passed"] and not checks["size"]["passed"]
    assert not checks["external_uris"]["passed"]  # the JSON chunk is gone too
    stored.unlink()
    gone = await api("POST", "/api/models/safety-scan", token=token,
                     json={"file_id": model["file_id"]})
    assert gone.json["safe"] is False and checks_of(gone)["stored"]["passed"] is False
    leftovers = list((Path(services.settings.data_dir) / "tmp").glob("scan-*"))
    assert leftovers == []


@pytest.mark.gen_test
async def test_safety_scan_auth_and_bad_input(api, tokens):
    token = await tokens(CREATOR)
    model = await upload(api, await tokens(CREATOR2), "/api/upload/model", "b.glb", box_glb())
    assert (await api("POST", "/api/models/safety-scan",
                      json={"file_id": model["file_id"]})).status == 401
    cases = [({"file_id": model["file_id"]}, 403), ({"file_id": "bad"}, 404),
             ({"file_id": UNKNOWN_ID}, 404), ({}, 422), ({"file_id": 5}, 422),
             ({"file_id": model["file_id"], "deep": True}, 422)]
    for payload, status in cases:
        reply = await api("POST", "/api/models/safety-scan", token=token, json=payload)
        assert reply.status == status, (payload, reply.json)
    buyer_scan = await api("POST", "/api/models/safety-scan", token=await tokens(BUYER),
                           json={"file_id": model["file_id"]})
    assert buyer_scan.status == 403


@pytest.mark.gen_test
async def test_public_routes_answer_anonymous_callers(api):
    for path in ("/api/testimonials", "/api/stats/platform", "/api/stats/homepage",
                 "/api/help/categories", "/api/help/faqs", "/api/docs/sections",
                 "/api/docs/getting-started"):
        reply = await api("GET", path)
        assert reply.status == 200, path
        assert reply.headers["Content-Type"].startswith("application/json")
