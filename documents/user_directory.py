"""The public directory of people: pages of public profiles for search and the creators most
followed. Same collection and rules as `documents.users`; the filters come from the caller
(`documents.search.users_query`)."""
from __future__ import annotations

from pymongo import DESCENDING

from documents import search_engine
from documents.common import paginate
from documents.users import COLLECTION


async def profiles_page(db, q: str, query: dict, *, page: int,
                        limit: int) -> tuple[list[dict], dict]:
    """One page of the accounts matching `query` (a `users` filter): by relevance to `q`
    over the visible profiles' search documents when `q` holds words, else most followed
    first (newest id on a tie). Returns (stored documents, pagination meta ``{total, page,
    limit, pages}``)."""
    if q and q.strip():
        return await search_engine.ranked_page(db, "users", q, db[COLLECTION], query,
                                               page=page, limit=limit, where={"visible": True})
    return await paginate(db[COLLECTION], query, page=page, limit=limit,
                          sort=[("followers_count", DESCENDING), ("_id", DESCENDING)])


async def most_followed_creator_ids(db, limit: int) -> list:
    """The ids of the creators (not banned, not deleted) with the most followers, newest id
    first on a tie, at most `limit`."""
    docs = await db[COLLECTION].find(
        {"user_type": "creator", "is_banned": {"$ne": True}, "deleted_at": None},
        {"_id": 1}).sort([("followers_count", DESCENDING), ("_id", DESCENDING)]).to_list(limit)
    return [d["_id"] for d in docs]
