"""The demo data of the embedded default agrees with itself and with its files.

`fixtures/generate.py` writes these files (the blog posts and testimonials a fresh site
shows, `blog_posts.json` and `testimonials.json`, are kept by hand); this suite checks what
every later test and benchmark relies on: fixed, unique ids; references that resolve;
counters that match the records; model files that are real, small and analysed correctly;
thumbnails that are PNGs, served by the local storage at their `thumbnail_url`.
"""
from __future__ import annotations

import json
import struct
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trimesh
from bson import ObjectId
from demo_accounts import BUYER
from PIL import Image

from documents.seed import FIXTURES, fixture_documents

FILES = FIXTURES / "files"
DOCS = fixture_documents()


def docs(collection: str) -> list[dict]:
    return DOCS.get(collection, [])


def ids(collection: str) -> set[ObjectId]:
    return {doc["_id"] for doc in docs(collection)}


def scene_counts(path: Path) -> tuple[int, int]:
    """(faces, vertices) summed over every geometry instance of the file, as trimesh loads it."""
    scene = trimesh.load(str(path), force="scene")
    faces = vertices = 0
    for node in scene.graph.nodes_geometry:
        geometry = scene.geometry[scene.graph[node][1]]
        faces += len(geometry.faces)
        vertices += len(geometry.vertices)
    return faces, vertices


def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20:20 + length])


# collections keyed by another document's id (a seller's balance) or by a name (counters)
KEYED_ELSEWHERE = {"seller_balances", "counters"}


def test_every_id_is_a_unique_object_id():
    seen = Counter()
    for collection, documents in DOCS.items():
        if collection in KEYED_ELSEWHERE:
            continue
        for doc in documents:
            assert isinstance(doc["_id"], ObjectId), (collection, doc["_id"])
            seen[doc["_id"]] += 1
        for post in documents if collection == "posts" else []:
            for comment in post["comments"]:
                assert isinstance(comment["_id"], ObjectId)
                seen[comment["_id"]] += 1
    assert [oid for oid, count in seen.items() if count > 1] == []


def test_references_resolve():
    users, communities, models = ids("users"), ids("communities"), ids("models")
    categories = {c["name"] for c in docs("categories")}
    for model in docs("models"):
        assert model["creator_id"] in users
        assert model["category"] in categories
        assert model["approved_by"] is None or model["approved_by"] in users
    for community in docs("communities"):
        assert community["creator_id"] in users
    for member in docs("community_members"):
        assert member["community_id"] in communities and member["user_id"] in users
    for post in docs("posts"):
        assert post["community_id"] in communities and post["author_id"] in users
        assert post["model_id"] is None or post["model_id"] in models
        comment_ids = {c["_id"] for c in post["comments"]}
        for comment in post["comments"]:
            assert comment["author_id"] in users
            assert comment["parent_id"] is None or comment["parent_id"] in comment_ids
        for reaction in post["reacted"]:
            assert reaction["user_id"] in users
    tickets = ids("support_tickets")
    for ticket in docs("support_tickets"):
        assert ticket["user_id"] in users
    for message in docs("support_messages"):
        assert message["ticket_id"] in tickets and message["sender_id"] in users


def test_catalog_has_enough_approved_published_models():
    models = docs("models")
    live = [m for m in models if m["status"] == "approved" and m["is_published"]]
    assert len(models) >= 32 and len(live) >= 30
    statuses = Counter(m["status"] for m in models)
    assert 2 <= statuses["pending"] <= 3 and statuses["rejected"] == 1
    assert all(m["rejection_reason"] for m in models if m["status"] == "rejected")
    assert {m["category"] for m in live} == {c["name"] for c in docs("categories")}
    assert all(m["is_free"] == (m["price_cents"] == 0) for m in models)
    assert {0, 1, 99, 1999, 123456} <= {m["price_cents"] for m in models}
    assert {m["file_format"] for m in models} == {"GLB", "OBJ", "STL"}
    assert len({m["file_key"] for m in models}) == len(models)


def test_model_files_are_real_and_analysed_as_stored():
    for model in docs("models"):
        path = FILES / model["file_key"]
        assert path.is_file(), model["file_key"]
        assert path.stat().st_size == model["file_size"] <= 100_000
        assert path.suffix[1:].upper() == model["file_format"]
        assert scene_counts(path) == (model["poly_count"], model["vertex_count"]), path.name
        assert model["analysis"]["poly_count"] == model["poly_count"]
        if model["file_format"] == "GLB":
            gltf = glb_json(path)
            assert model["has_materials"] == bool(gltf.get("materials"))
            assert model["has_textures"] == bool(gltf.get("textures"))
            assert model["has_animations"] == bool(gltf.get("animations"))
            assert model["has_rigging"] == bool(gltf.get("skins"))
    assert any(m["has_animations"] for m in docs("models"))
    assert any(m["has_rigging"] for m in docs("models"))
    assert any(m["has_textures"] for m in docs("models"))


def test_thumbnails_are_pngs_at_their_url():
    for model in docs("models"):
        url = model["thumbnail_url"]
        assert url.startswith("/files/thumbnails/") and url.endswith(".png")
        path = FILES / url[len("/files/"):]
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (320, 240)
            image.verify()


def test_user_and_category_counters_match_the_catalog():
    live = [m for m in docs("models") if m["status"] == "approved" and m["is_published"]]
    for user in docs("users"):
        assert user["total_models"] == sum(m["creator_id"] == user["_id"] for m in live)
    for category in docs("categories"):
        assert category["model_count"] == sum(m["category"] == category["name"] for m in live)


def test_community_counters_match_the_records():
    communities = {c["_id"]: c for c in docs("communities")}
    assert {(c["name"], c["status"], c["is_private"]) for c in communities.values()} >= {
        ("3D Game Assets", "active", False), ("Studio Insiders", "active", True)}
    assert any(c["status"] == "pending" for c in communities.values())
    pairs = [(m["community_id"], m["user_id"]) for m in docs("community_members")]
    assert len(pairs) == len(set(pairs))
    for cid, community in communities.items():
        active = [m for m in docs("community_members")
                  if m["community_id"] == cid and m["status"] == "active"]
        posts = [p for p in docs("posts") if p["community_id"] == cid and not p["is_deleted"]]
        assert community["member_count"] == len(active)
        assert community["post_count"] == len(posts)
        assert community["name_lower"] == community["name"].lower()
    for post in docs("posts"):
        assert post["comment_count"] == sum(not c["is_deleted"] for c in post["comments"])
        by_type = Counter(r["type"] for r in post["reacted"])
        assert post["reactions"] == {t: by_type[t] for t in ("like", "love", "wow", "fire")}
        reactors = [r["user_id"] for r in post["reacted"]]
        assert len(reactors) == len(set(reactors))
    public, private = (next(c for c in communities.values() if c["name"] == name)
                       for name in ("3D Game Assets", "Studio Insiders"))
    assert len([p for p in docs("posts") if p["community_id"] == public["_id"]]) >= 6
    assert len([p for p in docs("posts") if p["community_id"] == private["_id"]]) >= 2
    assert private["require_approval"] is True
    assert any(p["is_pinned"] for p in docs("posts"))


def test_support_ticket_agrees_with_its_messages():
    buyer = next(u for u in docs("users") if u["email"] == BUYER)
    (ticket,) = docs("support_tickets")
    messages = sorted((m for m in docs("support_messages") if m["ticket_id"] == ticket["_id"]),
                      key=lambda m: m["created_at"])
    assert ticket["user_id"] == buyer["_id"] and ticket["status"] == "active"
    assert ticket["message_count"] == len(messages) == 3
    assert ticket["last_message_at"] == messages[-1]["created_at"]
    assert [m["sender_type"] for m in messages] == ["user", "admin", "user"]


@pytest.mark.gen_test
async def test_seeded_store_holds_the_fixtures(services):
    for collection in ("models", "communities", "posts", "support_tickets"):
        assert await services.db[collection].count_documents({}) == len(docs(collection))
    model = await services.db.models.find_one({"status": "approved"})
    assert await services.storage.exists(model["file_key"])


@pytest.mark.gen_test
async def test_thumbnail_of_a_seeded_model_is_served(api, services):
    model = await services.db.models.find_one({"status": "approved", "is_published": True})
    shown = (await api("GET", f"/api/models/{model['_id']}")).json
    public_url = services.settings.public_url
    for field in ("thumbnail_url", "preview_url", "file_url"):     # absolute, as uploads are
        assert shown[field].startswith(public_url + "/files/"), shown[field]
    path = urlsplit(shown["thumbnail_url"]).path
    reply = await api("GET", path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/png"
    assert reply.body == (FILES / path[len("/files/"):]).read_bytes()


@pytest.mark.gen_test
async def test_a_fresh_site_shows_blog_posts_and_testimonials(api):
    blog = await api("GET", "/api/blog/posts")
    assert blog.status == 200 and blog.json["total"] == len(docs("blog_posts")) >= 3
    assert all(p["status"] == "published" and p["title"] and p["excerpt"]
               for p in blog.json["items"])
    featured = await api("GET", "/api/blog/featured")
    assert featured.status == 200
    shown = (await api("GET", "/api/testimonials")).json["items"]
    assert len(shown) == len(docs("testimonials")) >= 3
    assert shown[0]["featured"] is True and all(t["author"] and t["text"] for t in shown)
    home = (await api("GET", "/api/stats/homepage")).json
    assert home["testimonials"]


def test_fixture_blog_posts_and_testimonials_refer_to_real_users():
    users = ids("users")
    for post in docs("blog_posts"):
        assert post["author_id"] in users and post["status"] == "published"
    for testimonial in docs("testimonials"):
        assert testimonial["is_approved"] and 1 <= testimonial["rating"] <= 5


def test_past_sales_agree_and_are_past_the_hold():
    """The demo orders: each line has its transaction, purchase and sale ledger line; the
    sellers' pending balances are the sums of their lines; every line's hold has ended."""
    from documents import money

    users, models = ids("users"), {m["_id"]: m for m in docs("models")}
    transactions = {t["transaction_id"]: t for t in docs("transactions")}
    lines = {e["transaction_id"]: e for e in docs("ledger_entries")}
    purchases = {(p["user_id"], p["model_id"]) for p in docs("purchases")}
    per_seller: Counter = Counter()
    sold: Counter = Counter()
    for order in docs("orders"):
        assert order["status"] == "paid" and order["buyer_id"] in users
        assert order["total_cents"] == sum(x["amount_cents"] for x in order["lines"])
        for line in order["lines"]:
            txn, entry = transactions[line["transaction_id"]], lines[line["transaction_id"]]
            model = models[line["model_id"]]
            assert line["price_cents"] == model["price_cents"] > 0
            assert line["seller_id"] == model["creator_id"] == txn["seller_id"]
            assert line["fee_cents"] == money.platform_fee_cents(line["amount_cents"])
            assert entry["amount_cents"] == txn["seller_amount_cents"] == \
                line["seller_amount_cents"]
            assert entry["available_at"] - entry["created_at"] == money.REFUND_WINDOW
            assert entry["available_at"] < datetime.now(UTC).replace(tzinfo=None)
            assert (order["buyer_id"], line["model_id"]) in purchases
            per_seller[line["seller_id"]] += entry["amount_cents"]
            sold[line["model_id"]] += 1
    balances = {b["_id"]: b["pending_cents"] for b in docs("seller_balances")}
    assert balances == dict(per_seller) and len(balances) == 2
    assert all(m.get("sales_count", 0) == sold[m["_id"]] for m in models.values())
    counters = {c["_id"]: c["seq"] for c in docs("counters")}
    assert counters == {"ORD:2026": len(docs("orders")), "TXN:2026": len(transactions)}
