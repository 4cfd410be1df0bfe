"""A visitor's pages of seeds 001/004 played in order over real HTTP: the home page (featured
models, stats, categories, testimonials, blog), the marketplace with filters, sort, search
and facets, a model page whose 3D preview loads as GLB, the creator's profile, and sign-up.
Every request carries the cache buster a browser's fetch adds (`_=`)."""
from __future__ import annotations

import io
import time

import pytest
import trimesh
from demo_accounts import ROBOT

from tests.journeys import ABSOLUTE, open_tab


def bust(path: str) -> str:
    """`path` with the cache buster the pages' fetch adds."""
    return f"{path}{'&' if '?' in path else '?'}_={int(time.time() * 1000)}"


def model_card_ok(card: dict) -> None:
    """What a model card of seed 001 §3 reads."""
    for field in ("id", "title", "price", "thumbnail_url", "creator", "likes", "downloads",
                  "rating", "category", "is_free", "file_format", "poly_count"):
        assert field in card, field
    assert card["thumbnail_url"].startswith(ABSOLUTE), card["thumbnail_url"]
    assert card["creator"]["username"]


@pytest.mark.gen_test(timeout=60)
async def test_home_page_shows_featured_models_stats_categories_testimonials_and_blog(api):
    featured = await api("GET", bust("/api/models/featured"))
    assert featured.status == 200 and featured.json["items"]
    for card in featured.json["items"]:
        model_card_ok(card)
        assert card["is_featured"] is True

    stats = (await api("GET", bust("/api/stats/platform"))).json
    assert stats["total_models"] >= len(featured.json["items"]) and stats["total_creators"] >= 2

    categories = (await api("GET", bust("/api/categories"))).json["items"]
    assert {"Characters", "Vehicles"} <= {c["name"] for c in categories}
    assert all(c["enabled"] is True and c["model_count"] >= 0 for c in categories)

    testimonials = (await api("GET", bust("/api/testimonials"))).json["items"]
    assert len(testimonials) >= 3
    first = testimonials[0]
    assert first["featured"] is True                              # featured first
    for t in testimonials:
        assert t["author"] and t["text"] and 1 <= t["rating"] <= 5
        assert t["author"] == t["author_name"] and t["text"] == t["content"]

    top = (await api("GET", bust("/api/creators/top"))).json["items"]
    assert top and top[0]["creator"]["username"]

    blog = (await api("GET", bust("/api/blog/posts?limit=3"))).json
    assert blog["total"] >= 3 and len(blog["items"]) == 3
    for post in blog["items"]:
        assert post["title"] and post["excerpt"] and post["slug"] and post["read_time"] >= 1
    image = next(p["featured_image"] for p in blog["items"] if p["featured_image"])
    assert image.startswith(ABSOLUTE)
    article = await api("GET", bust(f"/api/blog/posts/{blog['items'][0]['slug']}"))
    assert article.status == 200 and article.json["content"]


@pytest.mark.gen_test(timeout=60)
async def test_marketplace_filters_sorts_searches_and_counts_facets(api):
    page = await api("GET", bust("/api/models?page=1&limit=500&facets=true"))
    assert page.status == 200, page.json                         # limit clamped, not refused
    assert page.json["limit"] == 100 and page.json["page"] == 1
    everything = page.json["items"]
    assert page.json["total"] == len(everything) > 12
    for card in everything:
        model_card_ok(card)
    facets = page.json["facets"]
    by_category = {f["value"]: f["count"] for f in facets["category"]}
    assert sum(by_category.values()) == page.json["total"]

    characters = (await api("GET", bust("/api/models?category=Characters&limit=50"))).json
    assert characters["total"] == by_category["Characters"]
    assert {m["category"] for m in characters["items"]} == {"Characters"}

    cheap = (await api("GET", bust("/api/models?min_price=1&max_price=10&limit=50"))).json
    assert cheap["items"] and all(1 <= m["price"] <= 10 for m in cheap["items"])

    for sort, key, reverse in (("price_low", "price", False), ("price_high", "price", True)):
        items = (await api("GET", bust(f"/api/models?sort={sort}&limit=50"))).json["items"]
        prices = [m[key] for m in items]
        assert prices == sorted(prices, reverse=reverse)
    newest = (await api("GET", bust("/api/models?sort=newest&limit=5"))).json["items"]
    popular = (await api("GET", bust("/api/models?sort=popular&limit=5"))).json["items"]
    assert len(newest) == len(popular) == 5

    found = (await api("GET", bust("/api/models?search=robot"))).json["items"]
    assert found and found[0]["id"] == ROBOT
    paged = (await api("GET", bust("/api/models?page=2&limit=5"))).json
    assert paged["page"] == 2 and paged["pages"] == -(-paged["total"] // 5)


@pytest.mark.gen_test(timeout=120)
async def test_model_page_loads_its_3d_preview_creator_comments_and_related(api, http_client,
                                                                             base_url):
    model = await api("GET", bust(f"/api/models/{ROBOT}"))
    assert model.status == 200
    page = model.json
    assert page["title"] == "Low-Poly Robot" and page["price"] == 19.99
    for field in ("preview_url", "file_url", "thumbnail_url"):
        assert page[field].startswith(ABSOLUTE), (field, page[field])
    assert page["preview_status"] == "ready" and "file_key" not in page
    assert page["creator"]["username"] == "creator"
    preview = await open_tab(http_client, base_url, page["preview_url"])
    assert preview.code == 200 and preview.headers["Content-Type"] == "model/gltf-binary"
    scene = trimesh.load(io.BytesIO(preview.body), file_type="glb", force="scene")
    faces = sum(len(scene.geometry[scene.graph[n][1]].faces) for n in scene.graph.nodes_geometry)
    assert faces == page["poly_count"]
    shot = await open_tab(http_client, base_url, page["thumbnail_url"])
    assert shot.code == 200 and shot.headers["Content-Type"] == "image/png"

    views = page["views"]
    assert (await api("POST", f"/api/models/{ROBOT}/view")).status in (200, 201)
    assert (await api("GET", f"/api/models/{ROBOT}")).json["views"] == views + 1

    creator = (await api("GET", bust(f"/api/models/{ROBOT}/creator"))).json
    assert creator["username"] == "creator" and "stats" in creator
    comments = await api("GET", bust(f"/api/models/{ROBOT}/comments"))
    assert comments.status == 200 and "items" in comments.json
    related = (await api("GET", bust(f"/api/models/{ROBOT}/related"))).json["items"]
    assert ROBOT not in [m["id"] for m in related]

    missing = await api("GET", "/api/models/652000000000000000000099")
    assert missing.status == 404 and missing.json["error_code"] == "NOT_FOUND"


@pytest.mark.gen_test(timeout=60)
async def test_creator_profile_shows_their_public_models_and_figures(api, http_client, base_url):
    profile = await api("GET", bust("/api/users/creator"))
    assert profile.status == 200
    assert profile.json["username"] == "creator" and "email" not in profile.json
    models = (await api("GET", bust("/api/users/creator/models?limit=50"))).json
    assert models["total"] >= 2 and ROBOT in [m["id"] for m in models["items"]]
    assert all(m["creator"]["username"] == "creator" for m in models["items"])
    stats = (await api("GET", bust("/api/users/creator/stats"))).json
    assert stats["models_count"] == models["total"]
    for field in ("total_views", "total_likes", "total_downloads", "followers_count"):
        assert isinstance(stats[field], int)


@pytest.mark.gen_test(timeout=60)
async def test_sign_up_then_sign_in_shows_the_new_account(api):
    form = {"email": "newcomer@example.com", "username": "newcomer", "password": "Str0ng!Pass99",
            "full_name": "New Comer", "user_type": "buyer"}
    signed_up = await api("POST", "/api/auth/register", json=form)
    assert signed_up.status == 201, signed_up.json
    assert signed_up.json["access_token"] and signed_up.json["user"]["username"] == "newcomer"
    again = await api("POST", "/api/auth/register", json=form)
    assert again.status == 409 and again.json["error_code"] == "EMAIL_ALREADY_EXISTS"
    login = await api("POST", "/api/auth/login",
                      json={"email": form["email"], "password": form["password"]})
    assert login.status == 200
    me = await api("GET", bust("/api/auth/me"), token=login.json["access_token"])
    assert me.json["email"] == "newcomer@example.com"
    assert me.json["user"]["full_name"] == "New Comer"
    wrong = await api("POST", "/api/auth/login",
                      json={"email": form["email"], "password": "Wrong!Pass99"})
    assert wrong.status == 401 and wrong.json["error_code"] == "INVALID_CREDENTIALS"
