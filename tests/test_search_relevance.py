"""Marketplace relevance search, suggestions and facets over real HTTP (seed 001 §17;
README "Search"): the relevance set of tests/search_queries.py with its precision@5 and
recall@10, the writes that keep the index current, hidden models nowhere, bad input."""
from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from demo_accounts import ADMIN, CREATOR
from search_queries import QUERIES, m, precision_at, recall_at


def ids(reply) -> list[str]:
    assert reply.status == 200, reply.json
    return [item["id"] for item in reply.json["items"]]


async def models(api, token=None, **params):
    return await api("GET", "/api/models?" + urlencode(params), token=token)


async def suggestions(api, q: str) -> list[dict]:
    reply = await api("GET", "/api/search/suggest?q=" + quote(q))
    assert reply.status == 200, reply.json
    return reply.json["items"]


def facet_total(facets: dict) -> int:
    return sum(row["count"] for row in facets["category"])


# --------------------------------------------------------------------------- relevance set

@pytest.mark.gen_test(timeout=120)
async def test_relevance_set_precision_and_recall(api):
    assert len(QUERIES) >= 40
    precision = recall = 0.0
    misses = []
    for text, what, relevant in QUERIES:
        shown = ids(await models(api, search=text, limit=10))
        p, r = precision_at(shown, relevant), recall_at(shown, relevant)
        precision, recall = precision + p, recall + r
        if relevant and (not shown or shown[0] not in relevant):
            misses.append((text, what, shown[:3]))
        if p < 1 or r < 1:
            print(f"{text!r} ({what}): precision@5 {p:.2f} recall@10 {r:.2f} shown {shown[:5]}")
    precision, recall = precision / len(QUERIES), recall / len(QUERIES)
    print(f"precision@5 {precision:.3f} recall@10 {recall:.3f} over {len(QUERIES)} queries")
    assert precision >= 0.9 and recall >= 0.9
    assert not misses, misses      # the best result of every query is a right one


@pytest.mark.gen_test
async def test_global_search_ranks_like_the_list(api):
    for text in ("arch stone", "chiar", "lowpoly", "casey wizard"):
        listed = ids(await models(api, search=text))
        searched = ids(await api("GET", "/api/search?" + urlencode({"q": text})))
        assert listed == searched and listed, text


@pytest.mark.gen_test
async def test_relevance_is_the_default_with_search_and_other_sorts_still_apply(api):
    ranked = ids(await models(api, search="wooden"))
    assert ranked[:3] == ids(await models(api, search="wooden", sort="relevance"))[:3]
    assert set(ranked[:3]) == {m(7), m(12), m(13)}       # titles before descriptions
    reply = await models(api, search="wooden", sort="price_low")
    prices = [item["price"] for item in reply.json["items"]]
    assert prices == sorted(prices) and set(ids(reply)) == set(ranked)
    assert reply.json["total"] == len(ranked)
    newest = ids(await models(api, sort="relevance", limit=5))     # no search: newest
    assert newest == ids(await models(api, sort="newest", limit=5))
    paged = [ids(await models(api, search="casey", limit=7, page=p)) for p in (1, 2, 3)]
    assert sum(paged, []) == ids(await models(api, search="casey", limit=50))
    assert (await models(api, search="casey", limit=7)).json["pages"] == 3


@pytest.mark.gen_test
async def test_filters_narrow_a_search(api):
    assert ids(await models(api, search="printable", category="weapons")) == [m(21)]
    assert ids(await models(api, search="viking", tags="armor")) == [m(20)]
    assert set(ids(await models(api, search="medieval", creator="creator2"))) == {m(12)}
    assert ids(await models(api, search="lowpoly", has_rigging="true")) == [m(1)]
    assert ids(await models(api, search="stone arch", is_free="true"))[0] == m(11)   # free
    assert m(11) not in ids(await models(api, search="stone arch", is_free="false", limit=50))


# --------------------------------------------------------------------------- index upkeep

async def _created(api, token, title: str, tags: str) -> str:
    """A model uploaded through the API (pending) and approved by the admin."""
    import trimesh

    body = trimesh.creation.box().export(file_type="glb")
    boundary = "----relevance"
    parts = []
    for name, value in (("title", title), ("description", "Made for the search tests"),
                        ("price", "3.50"), ("category", "Props"), ("tags", tags)):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="box.glb"\r\nContent-Type: model/gltf-binary\r\n\r\n'.encode()
                 + body + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    reply = await api("POST", "/api/models", body=b"".join(parts), token=token, timeout=180,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 201, reply.json
    return reply.json["id"]


@pytest.mark.gen_test(timeout=300)
async def test_writes_keep_the_index_current_and_hidden_models_out(api, tokens):
    creator, admin = await tokens(CREATOR), await tokens(ADMIN)
    model_id = await _created(api, creator, "Gramophone Horn", "gramophone,music")
    # pending: nowhere for anyone, even its creator and staff
    for token in (None, creator, admin):
        assert ids(await models(api, token, search="gramophone")) == []
    assert not [s for s in await suggestions(api, "gramo") if s["type"] == "title"]
    reply = await api("PUT", f"/api/admin/models/{model_id}/approve", json={}, token=admin)
    assert reply.status == 200, reply.json
    assert ids(await models(api, search="gramophones")) == [model_id]
    assert ids(await models(api, search="gramaphone")) == [model_id]   # typo of a new word
    assert ids(await models(api, search="horn gramo")) == [model_id]
    found = await suggestions(api, "gramo")
    assert {"text": "Gramophone Horn", "type": "title", "id": model_id} in found
    assert {"text": "gramophone", "type": "tag"} in found
    facets = (await models(api, search="gramophone", facets="true")).json["facets"]
    assert facets["category"] == [{"value": "Props", "count": 1}]

    # the creator retitles the listed model: it stays listed and the index follows at once
    reply = await api("PUT", f"/api/models/{model_id}", json={"title": "Brass Trumpet"},
                      token=creator)
    assert reply.status == 200 and reply.json["status"] == "approved"
    assert ids(await models(api, search="brass trumpet")) == [model_id]
    assert ids(await models(api, search="gramophone horn")) == []      # old title gone
    assert ids(await models(api, search="gramophone")) == [model_id]   # the tag stays

    # staff hide it (reject): gone from search, suggestions and facets at once
    reply = await api("PUT", f"/api/admin/models/{model_id}/reject",
                      json={"reason": "Hidden by staff"}, token=admin)
    assert reply.status == 200, reply.json
    for token in (None, creator, admin):
        assert ids(await models(api, token, search="brass trumpet")) == []
        assert ids(await api("GET", "/api/search?q=trumpet", token=token)) == []
    assert not [s for s in await suggestions(api, "bra") if s["text"] == "Brass Trumpet"]
    assert {"text": "gramophone", "type": "tag"} not in await suggestions(api, "gramo")
    facets = (await models(api, search="gramophone", facets="true")).json["facets"]
    assert facets_total_is_zero(facets)
    everything = (await models(api, facets="true")).json
    assert facet_total(everything["facets"]) == everything["total"] == 39

    # the creator unpublishes an approved model: out; publishing again brings it back
    await api("PUT", f"/api/admin/models/{model_id}/approve", json={}, token=admin)
    reply = await api("POST", f"/api/models/{model_id}/toggle-publish", token=creator)
    assert reply.status == 200 and reply.json["is_published"] is False
    assert ids(await models(api, search="trumpet")) == []
    await api("POST", f"/api/models/{model_id}/toggle-publish", token=creator)
    assert ids(await models(api, search="trumpet")) == [model_id]

    # deleted: gone, and its words leave the vocabulary
    reply = await api("DELETE", f"/api/models/{model_id}", token=creator)
    assert reply.status == 204
    assert ids(await models(api, search="trumpet")) == []
    assert await suggestions(api, "gramo") == []


def facets_total_is_zero(facets: dict) -> bool:
    return (facet_total(facets) == 0 and facets["file_format"] == []
            and all(band["count"] == 0 for band in facets["price"] + facets["poly_count"])
            and facets["animated"] == {"true": 0, "false": 0})


@pytest.mark.gen_test
async def test_staff_hiding_a_seeded_model_removes_it_everywhere(api, tokens):
    admin = await tokens(ADMIN)
    assert ids(await models(api, search="stone arch"))[0] == m(11)
    before = (await models(api, facets="true", category="architecture")).json["facets"]
    reply = await api("PUT", f"/api/admin/models/{m(11)}/reject",
                      json={"reason": "Hidden by staff"}, token=admin)
    assert reply.status == 200
    assert m(11) not in ids(await models(api, search="stone arch", limit=50))
    assert m(11) not in ids(await models(api, search="arches", limit=50))
    assert "Stone Arch" not in [s["text"] for s in await suggestions(api, "stone")]
    after = (await models(api, facets="true", category="architecture")).json["facets"]
    assert after["category"] == [{"value": "Architecture",
                                  "count": before["category"][0]["count"] - 1}]


# --------------------------------------------------------------------------- suggestions

@pytest.mark.gen_test
async def test_suggestions_complete_titles_tags_categories_and_creators(api):
    found = await suggestions(api, "sto")
    assert found[0] == {"text": "Stone Arch", "type": "title", "id": m(11)}
    assert {"text": "stone", "type": "tag"} in found and len(found) <= 10
    assert {"text": "Furniture", "type": "category"} in await suggestions(api, "furn")
    assert {"text": "creator2", "type": "creator"} in await suggestions(api, "creator")
    assert [s["text"] for s in await suggestions(api, "wooden w")][:1] == ["Wooden Watchtower"]
    assert len(await suggestions(api, "c")) == 10
    reply = await api("GET", "/api/search/suggest?q=s&limit=3")
    assert reply.status == 200 and len(reply.json["items"]) == 3
    assert await suggestions(api, "") == [] and await suggestions(api, "zzqx") == []


# --------------------------------------------------------------------------- facets

@pytest.mark.gen_test
async def test_facets_count_the_current_query_and_filters(api):
    reply = await models(api, facets="true", limit=50)
    facets, items = reply.json["facets"], reply.json["items"]
    assert facet_total(facets) == reply.json["total"] == len(items) == 39
    assert sum(r["count"] for r in facets["file_format"]) >= 39
    free = sum(1 for i in items if i["is_free"])
    assert facets["price"][0] == {"value": "free", "range": None, "count": free}
    assert sum(b["count"] for b in facets["price"]) == 39
    assert facets["animated"]["true"] == sum(1 for i in items if i["has_animations"])
    assert facets["rigged"]["true"] == sum(1 for i in items if i["has_rigging"])
    assert sum(b["count"] for b in facets["poly_count"]) == 39
    for band in facets["price"][1:] + facets["poly_count"]:
        if band["range"]:
            name = "price_range" if band in facets["price"] else "poly_count_range"
            narrowed = await models(api, **{name: band["range"]}, limit=1)
            assert narrowed.json["total"] == band["count"], band

    reply = await models(api, search="medieval", facets="true")
    facets = reply.json["facets"]
    assert facet_total(facets) == reply.json["total"] == 4
    assert {r["value"]: r["count"] for r in facets["category"]} == {"Architecture": 2,
                                                                    "Weapons": 2}
    reply = await models(api, search="medieval", category="weapons", facets="true")
    assert facets_of(reply) == {"Weapons": 2}
    reply = await api("GET", "/api/search?q=medieval&facets=true")
    assert facets_of(reply) == {"Architecture": 2, "Weapons": 2}
    assert "facets" not in (await models(api, search="medieval")).json
    empty = (await models(api, search="xylophone", facets="true")).json
    assert empty["total"] == 0 and facets_total_is_zero(empty["facets"])


def facets_of(reply) -> dict:
    assert reply.status == 200, reply.json
    return {r["value"]: r["count"] for r in reply.json["facets"]["category"]}


# --------------------------------------------------------------------------- bad input

@pytest.mark.gen_test
async def test_bad_search_input_is_never_a_server_error(api):
    texts = ["", " ", ".*", "(", "[", "\\", "*", "+?", "$where", "{$gt: 1}", "a{1,}", "]",
             "café", "CAFÉ crème", "日本語", "модель", "🚀 rocket", "\u200b", "שלום",
             "a" * 100, "stone " * 16, "x\u0301" * 30, "%00", "null", "-", "'\"", "<script>"]
    for text in texts:
        for path in ("/api/models?search=", "/api/search?type=models&q=",
                     "/api/search/suggest?q="):
            reply = await api("GET", path + quote(text))
            assert reply.status in (200, 422), (path, text, reply.status)
            if reply.status == 422:
                assert reply.json["error_code"] == "VALIDATION_ERROR"
    assert ids(await models(api, search="🚀 rocket")) == [m(34)]
    assert ids(await models(api, search="ROCKET!!!")) == [m(34)]
    for path in ("/api/models?search=", "/api/search?q=", "/api/search/suggest?q="):
        reply = await api("GET", path + "x" * 101)
        assert reply.status == 422 and reply.json["field_errors"], path
    for params in ("sort=best", "facets=maybe", "limit=0"):
        assert (await api("GET", f"/api/models?search=arch&{params}")).status == 422, params
    for params in ("limit=0", "limit=x"):
        assert (await api("GET", f"/api/search/suggest?q=a&{params}")).status == 422, params


# --------------------------------------------------------------------------- other kinds

async def found(api, type_: str, q: str, token=None) -> list[str]:
    reply = await api("GET", "/api/search?" + urlencode({"q": q, "type": type_}), token=token)
    assert reply.status == 200, reply.json
    return [item.get("username") or item.get("name") or item["id"] for item in reply.json["items"]]


@pytest.mark.gen_test(timeout=120)
async def test_people_communities_and_blog_posts_by_relevance_hidden_ones_never(api, tokens):
    admin = await tokens(ADMIN)
    # people: names in any order, a typo, a prefix; banned accounts never
    assert (await found(api, "users", "creator casey"))[0] == "creator2"
    assert (await found(api, "users", "Chris Creatr"))[0] == "creator"
    assert (await found(api, "users", "ben buy"))[0] == "buyer2"
    reply = await api("POST", "/api/admin/users/creator2/ban", json={"reason": "spam"}, token=admin)
    assert reply.status == 200, reply.json
    assert "creator2" not in await found(api, "users", "casey creator")
    assert "creator2" not in await found(api, "users", "casey creator", admin)
    # renaming a creator renames the creator name their models are found by
    reply = await api("PUT", "/api/users/me", json={"full_name": "Quincy Modeller"},
                      token=await tokens(CREATOR))
    assert reply.status == 200, reply.json
    assert ids(await models(api, search="quincy robot")) == [m(1)]
    assert ids(await models(api, search="chris robot")) == []

    # communities: words in any order, plural, typo; a pending one only for staff with status
    assert await found(api, "communities", "games assets 3d") == ["3D Game Assets"]
    assert await found(api, "communities", "game assest") == ["3D Game Assets"]
    assert await found(api, "communities", "voxel") == []
    reply = await api("GET", "/api/search?q=voxel&type=communities&status=pending", token=admin)
    assert [c["name"] for c in reply.json["items"]] == ["Retro Voxel Club"]
    reply = await api("GET", "/api/communities?search=asset%20game")
    assert [c["name"] for c in reply.json["items"]] == ["3D Game Assets"]

    # blog posts: published ones by relevance; a post moved back to draft is gone
    reply = await api("POST", "/api/admin/blog/posts", token=admin, json={
        "title": "Retopology for printable miniatures", "content": "Clean quads and supports.",
        "category": "tutorials", "tags": ["printing"], "status": "published"})
    assert reply.status == 201, reply.json
    post_id = reply.json["id"]
    for q in ("miniature retopology", "printed miniatures", "retoplogy", "quads support"):
        reply = await api("GET", "/api/blog/posts?search=" + quote(q))
        assert [p["id"] for p in reply.json["items"]] == [post_id], q
    reply = await api("PUT", f"/api/admin/blog/posts/{post_id}", json={"status": "draft"},
                      token=admin)
    assert reply.status == 200
    assert (await api("GET", "/api/blog/posts?search=miniatures")).json["items"] == []


@pytest.mark.gen_test(timeout=120)
async def test_posts_are_searched_within_their_community(api, tokens):
    game_assets, insiders = "653000000000000000000001", "653000000000000000000002"
    url = f"/api/communities/{game_assets}/posts?search="
    reply = await api("GET", url + quote("animations loop saucer"))
    assert [p["id"] for p in reply.json["items"]] == ["655000000000000000000005"]
    reply = await api("GET", url + quote("treasure chests"))
    assert [p["id"] for p in reply.json["items"]] == ["655000000000000000000004"]
    reply = await api("GET", url + "sailboat")       # a post of another (private) community
    assert reply.status == 200 and reply.json["items"] == []
    assert (await api("GET", f"/api/communities/{insiders}/posts?search=sailboat")).status == 403
    admin = await tokens(ADMIN)
    reply = await api("DELETE", "/api/posts/655000000000000000000004", token=admin)
    assert reply.status in (200, 204), reply.json
    assert (await api("GET", url + "treasure")).json["items"] == []
    assert (await api("GET", url + "x" * 101)).status == 422
