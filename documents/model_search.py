"""The marketplace list with relevance search and facets (seed 000 §3, seed 001 §17;
README "Search"): `GET /api/models` and the models type of `GET /api/search`.

- Without `search`: the catalog's list (`documents.model_listing.list_public`) in `sort` order
  ("newest" by default; "relevance" means newest there).
- With `search`: the models whose search document matches every word and the list filters
  (`documents.model_listing.filter_query`, applied to the search documents, which carry the same
  fields) — approved and published only. `sort` "relevance" (the default) ranks them by
  `documents.search_engine.match`; any other sort of `model_listing.SORTS` orders the matches.
- `facets`: counts for the current query and filters over visible models only:
  ``{category: [{value, count}], file_format: [{value, count}],
  price: [{value: "free"|"under_10"|"10_50"|"over_50", range, count}],
  animated: {true, false}, rigged: {true, false},
  poly_count: [{value: "under_1k"|"1k_10k"|"10k_100k"|"over_100k"|"unknown", range, count}]}``;
  `range` is the `price_range` / `poly_count_range` filter that selects the band.
"""
from __future__ import annotations

from documents import catalog, model_listing, search_engine, search_index

PRICE_BANDS = (("free", 0, None), ("under_10", 1, "0.01-9.99"), ("10_50", 1000, "10-50"),
               ("over_50", 5001, "50.01-"))
POLY_BANDS = (("under_1k", 0, "0-999"), ("1k_10k", 1000, "1000-9999"),
              ("10k_100k", 10_000, "10000-99999"), ("over_100k", 100_000, "100000-"))
_BIG = 10 ** 15


def _empty(page: int, limit: int) -> tuple[list, dict]:
    return [], {"total": 0, "page": page, "limit": limit, "pages": 0}


async def list_models(db, filters: dict, *, page: int, limit: int, sort: str | None,
                      anonymous: bool = False, facets: bool = False
                      ) -> tuple[list[dict], dict, dict | None]:
    """One page of public models for `filters` (those of `model_listing.filter_query`, `search`
    the text typed) in `sort` order (a key of `model_listing.SORTS`, "relevance", or None: the
    default). Returns (model documents, pagination meta, facets or None)."""
    text = (filters.get("search") or "").strip()
    rest = {k: v for k, v in filters.items() if k != "search"}
    base = await model_listing.filter_query(db, rest)
    sort = sort or ("relevance" if text else "newest")
    if base is None:
        return (*_empty(page, limit), empty_facets() if facets else None)
    where = {**base, "visible": True}
    if not text:
        docs, meta = await model_listing.list_public(db, rest, page=page, limit=limit,
                                                     sort="newest" if sort == "relevance" else sort,
                                                     anonymous=anonymous)
        return docs, meta, await facet_counts(db, {"kind": "models", **where}) if facets else None
    query = await search_engine.prepare(db, "models", text, where)
    hits = await search_engine.run(db, query) if query else []
    counted = None
    if facets:
        counted = await facet_counts(db, query.filter) if hits else empty_facets()
    if not hits:
        return (*_empty(page, limit), counted)
    if sort != "relevance":
        docs, meta = await model_listing.list_public(
            db, {"ids": [h.item_id for h in hits]}, page=page, limit=limit, sort=sort,
            anonymous=anonymous)
        return docs, meta, counted
    window = hits[(page - 1) * limit: page * limit]
    found = await catalog.get_many(db, [h.item_id for h in window])
    docs = [found[h.item_id] for h in window
            if h.item_id in found and catalog.is_public(found[h.item_id])]
    await _refresh_popularity(db, window, docs)
    total = len(hits)
    return docs, {"total": total, "page": page, "limit": limit,
                  "pages": -(-total // limit)}, counted


async def _refresh_popularity(db, window: list, docs: list[dict]) -> None:
    """Store fresh popularity for the shown models whose counters moved (lazy refresh)."""
    stored = {h.item_id: -h.sort_key[1] for h in window}
    fresh = {d["_id"]: search_index.model_popularity(d) for d in docs}
    changed = {i: p for i, p in fresh.items() if abs(p - stored.get(i, 0.0)) > 1e-6}
    if changed:
        await search_index.refresh_popularity(db, "models", changed)


# --------------------------------------------------------------------------- facets

def empty_facets() -> dict:
    """The facets of an empty result."""
    return _shape({})


async def facet_counts(db, match: dict) -> dict:
    """The facet counts (module docstring) of the model search documents matching `match`
    (which must hold visibility: only visible models are counted)."""
    raw = await search_engine.facets(db, match, {
        "category": [{"$group": {"_id": "$category", "count": {"$sum": 1}}}],
        "file_format": [{"$unwind": "$file_formats"},
                        {"$group": {"_id": "$file_formats", "count": {"$sum": 1}}}],
        "price": [{"$bucket": {"groupBy": "$price_cents",
                               "boundaries": [b[1] for b in PRICE_BANDS] + [_BIG],
                               "default": "unknown", "output": {"count": {"$sum": 1}}}}],
        "animated": [{"$group": {"_id": "$has_animations", "count": {"$sum": 1}}}],
        "rigged": [{"$group": {"_id": "$has_rigging", "count": {"$sum": 1}}}],
        "poly_count": [{"$bucket": {"groupBy": "$poly_count",
                                    "boundaries": [b[1] for b in POLY_BANDS] + [_BIG],
                                    "default": "unknown", "output": {"count": {"$sum": 1}}}}],
    })
    return _shape(raw)


def _shape(raw: dict) -> dict:
    def counts(name: str) -> dict:
        return {row["_id"]: row["count"] for row in raw.get(name) or ()}

    def bands(name: str, table) -> list[dict]:
        got = counts(name)
        out = [{"value": value, "range": rng, "count": got.get(low, 0)}
               for value, low, rng in table]
        return out

    def flags(name: str) -> dict:
        got = counts(name)
        return {"true": got.get(True, 0), "false": sum(n for k, n in got.items() if k is not True)}

    def values(name: str) -> list[dict]:
        got = counts(name)
        return [{"value": k, "count": n}
                for k, n in sorted(got.items(), key=lambda kv: (-kv[1], str(kv[0])))
                if k is not None]

    poly = bands("poly_count", POLY_BANDS)
    unknown = counts("poly_count").get("unknown", 0)
    if unknown:
        poly.append({"value": "unknown", "range": None, "count": unknown})
    return {"category": values("category"), "file_format": values("file_format"),
            "price": bands("price", PRICE_BANDS), "animated": flags("animated"),
            "rigged": flags("rigged"), "poly_count": poly}
