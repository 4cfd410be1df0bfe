"""Reading the model catalog in lists: filters, sorts and pages of `models` (seed 000 §3,
seed 001 §17). The model document and what makes it public are in `documents.catalog`.

Public lists show approved AND published models only (`catalog.PUBLIC_QUERY`); staff's
moderation list shows every status, pending models oldest first (a review queue).
"""
from __future__ import annotations

from pymongo import ASCENDING, DESCENDING

from documents import categories as categories_db
from documents import users
from documents.catalog import CARD_PROJECTION, COLLECTION, PUBLIC_QUERY
from documents.common import (
    paginate,
    search_regex,
)
from documents.errors import NotFound

SORTS = {
    "newest": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "oldest": [("created_at", ASCENDING), ("_id", ASCENDING)],
    "popular": [("views", DESCENDING), ("likes", DESCENDING), ("_id", DESCENDING)],
    "price_low": [("price_cents", ASCENDING), ("_id", DESCENDING)],
    "price_high": [("price_cents", DESCENDING), ("_id", DESCENDING)],
    "most_liked": [("likes", DESCENDING), ("_id", DESCENDING)],
    "most_downloaded": [("downloads", DESCENDING), ("_id", DESCENDING)],
    "rating": [("rating", DESCENDING), ("rating_count", DESCENDING), ("_id", DESCENDING)],
}


async def _category_name(db, ref: str) -> str:
    """The stored category name for a name or slug (case-insensitive); `ref` itself if none."""
    category = await categories_db.find_by_name_or_slug(db, ref)
    return category["name"] if category else ref


def _range(low, high) -> dict | None:
    cond = {}
    if low is not None:
        cond["$gte"] = low
    if high is not None:
        cond["$lte"] = high
    return cond or None


async def filter_query(db, filters: dict) -> dict | None:
    """The MongoDB filter for the list filters of seed 000 §3 / seed 001 §17, on top of
    `catalog.PUBLIC_QUERY`; None when nothing can match (unknown creator).

    `filters`: category (name or slug), tags ([str], any of), min/max_price_cents,
    is_free, has_animations, has_rigging, min/max_poly_count, search (literal text in
    title, description or tags), creator (id or username), ids (only these models: the
    matches of a relevance search, `documents.model_search`).
    """
    query: dict = dict(PUBLIC_QUERY)
    if filters.get("ids") is not None:
        query["_id"] = {"$in": list(filters["ids"])}
    if filters.get("category"):
        query["category"] = await _category_name(db, filters["category"])
    if filters.get("tags"):
        query["tags"] = {"$in": [t.lower() for t in filters["tags"]]}
    for flag in ("is_free", "has_animations", "has_rigging"):
        if filters.get(flag) is not None:
            query[flag] = filters[flag]
    for name, low, high in (("price_cents", "min_price_cents", "max_price_cents"),
                            ("poly_count", "min_poly_count", "max_poly_count")):
        cond = _range(filters.get(low), filters.get(high))
        if cond:
            query[name] = cond
    if filters.get("search"):
        regex = search_regex(filters["search"])
        query["$or"] = [{"title": regex}, {"description": regex}, {"tags": regex}]
    if filters.get("creator"):
        try:
            query["creator_id"] = (await users.find(db, filters["creator"]))["_id"]
        except NotFound:
            return None
    return query


async def list_public(db, filters: dict, *, page: int, limit: int, sort: str = "newest",
                      anonymous: bool = False) -> tuple[list[dict], dict]:
    """One page of approved, published models matching `filters` (see `filter_query`),
    in `sort` order (a key of SORTS). Returns (documents, pagination meta).

    `anonymous`: the page is for a viewer without an account, who never sees PRIVATE_FIELDS,
    so they are not fetched (less to copy and to send; `catalog.render_models` shows the same).
    """
    query = await filter_query(db, filters)
    if query is None:
        return [], {"total": 0, "page": page, "limit": limit, "pages": 0}
    return await paginate(db[COLLECTION], query, page=page, limit=limit, sort=SORTS[sort],
                          projection=CARD_PROJECTION if anonymous else None)


async def list_featured(db, limit: int) -> list[dict]:
    """Up to `limit` featured public models, the most recently approved first."""
    cursor = db[COLLECTION].find({**PUBLIC_QUERY, "is_featured": True}).sort(
        [("approved_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
    return await cursor.to_list(length=limit)


async def list_related(db, model: dict, limit: int) -> list[dict]:
    """Up to `limit` public models sharing the category or a tag of `model`, not itself.

    Ranked by shared tags (+1 for the same category), then likes, then newest.
    """
    either = [{"category": model["category"]}]
    if model.get("tags"):
        either.append({"tags": {"$in": model["tags"]}})
    query = {**PUBLIC_QUERY, "_id": {"$ne": model["_id"]}, "$or": either}
    candidates = await db[COLLECTION].find(query).sort(
        [("likes", DESCENDING), ("_id", DESCENDING)]).limit(200).to_list(length=200)
    tags = set(model.get("tags") or ())

    def score(doc: dict) -> int:
        return len(tags & set(doc.get("tags") or ())) + (doc["category"] == model["category"])

    candidates.sort(key=score, reverse=True)   # stable: keeps likes/newest order within a score
    return candidates[:limit]


async def list_by_creator(db, creator_id, *, page: int, limit: int, status: str | None = None,
                          public_only: bool = False, sort: str = "newest") -> tuple[list[dict], dict]:
    """One page of a creator's models: every status (optionally one `status`), or only the
    public ones when `public_only`."""
    query: dict = {"creator_id": creator_id}
    if public_only:
        query.update(PUBLIC_QUERY)
    elif status:
        query["status"] = status
    return await paginate(db[COLLECTION], query, page=page, limit=limit, sort=SORTS[sort])


async def list_for_moderation(db, *, page: int, limit: int, status: str | None = None,
                              search: str | None = None, category: str | None = None,
                              creator: str | None = None) -> tuple[list[dict], dict]:
    """One page of models of every status for staff (seed 000 §7 `GET /api/admin/models`).

    Pending models come oldest first (a review queue); other views newest first.
    """
    query: dict = {}
    if status:
        query["status"] = status
    if category:
        query["category"] = await _category_name(db, category)
    if search:
        regex = search_regex(search)
        query["$or"] = [{"title": regex}, {"description": regex}, {"tags": regex}]
    if creator:
        try:
            query["creator_id"] = (await users.find(db, creator))["_id"]
        except NotFound:
            return [], {"total": 0, "page": page, "limit": limit, "pages": 0}
    sort = SORTS["oldest" if status == "pending" else "newest"]
    return await paginate(db[COLLECTION], query, page=page, limit=limit, sort=sort)


async def creator_stats(db, creator: dict) -> dict:
    """A creator's public figures: models (public ones), total views, likes, downloads,
    sales, followers (seed 004 `GET /api/users/:username/stats`)."""
    totals = {"views": 0, "likes": 0, "downloads": 0, "sales_count": 0}
    count = 0
    async for doc in db[COLLECTION].find({"creator_id": creator["_id"], **PUBLIC_QUERY},
                                         {key: 1 for key in totals}):
        count += 1
        for key in totals:
            totals[key] += int(doc.get(key) or 0)
    return {"models_count": count, "total_views": totals["views"],
            "total_likes": totals["likes"], "total_downloads": totals["downloads"],
            "total_sales": totals["sales_count"],
            "followers_count": int(creator.get("followers_count") or 0),
            "following_count": int(creator.get("following_count") or 0),
            "rating": float(creator.get("rating") or 0.0)}


# --------------------------------------------------------------------------- reports

async def most_viewed_approved(db, limit: int) -> list[dict]:
    """The approved models with the most views, newest id first on a tie: ``[{_id, title,
    views, likes, downloads, sales_count}]``."""
    return await db[COLLECTION].find(
        {"status": "approved"},
        {"title": 1, "views": 1, "likes": 1, "downloads": 1, "sales_count": 1}) \
        .sort([("views", DESCENDING), ("_id", DESCENDING)]).to_list(limit)


async def pending_since(db, cutoff) -> tuple[int, dict | None]:
    """Models pending review created at or before `cutoff` (a UTC datetime): (how many, the
    oldest of them; None when there are none)."""
    old = {"status": "pending", "created_at": {"$lte": cutoff}}
    count = await db[COLLECTION].count_documents(old)
    if not count:
        return 0, None
    return count, await db[COLLECTION].find_one(old, sort=[("created_at", 1)])


async def ids_by_creator(db, creator_id) -> list:
    """The ids of every model of the creator, any status."""
    docs = await db[COLLECTION].find({"creator_id": creator_id}, {"_id": 1}).to_list(None)
    return [d["_id"] for d in docs]


async def best_selling_by(db, creator_id, limit: int) -> list[dict]:
    """The creator's models (whole documents, any status) by sales count, then views, then
    newest id."""
    return await db[COLLECTION].find({"creator_id": creator_id}).sort(
        [("sales_count", DESCENDING), ("views", DESCENDING), ("_id", DESCENDING)]).to_list(limit)


async def titles(db, ids: list) -> dict:
    """``{model id: title}`` for the models of `ids` that exist (title None when unset)."""
    return {m["_id"]: m.get("title") for m in
            await db[COLLECTION].find({"_id": {"$in": ids}}, {"title": 1}).to_list(None)}


async def creators_of(db, ids: list) -> dict:
    """``{model id: creator id}`` for the models of `ids` that exist."""
    return {m["_id"]: m["creator_id"] for m in await db[COLLECTION].find(
        {"_id": {"$in": ids}}, {"creator_id": 1}).to_list(None)}


async def creator_ratings(db) -> list[dict]:
    """Per creator, over their approved rated models: ``[{_id: creator id, weighted: sum of
    rating × rating_count, ratings: sum of rating_count}]``, in no set order."""
    return await db[COLLECTION].aggregate([
        {"$match": {"status": "approved", "rating_count": {"$gt": 0}}},
        {"$group": {"_id": "$creator_id", "weighted": {"$sum": {"$multiply": ["$rating",
                                                                             "$rating_count"]}},
                    "ratings": {"$sum": "$rating_count"}}},
    ]).to_list(None)
