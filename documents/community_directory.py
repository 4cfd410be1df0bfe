"""Pages of communities for search: the directory over `communities`, whose documents and
rules are those of `documents.communities`; the filters come from the caller
(`documents.search.communities_query`)."""
from __future__ import annotations

from pymongo import DESCENDING

from documents import search_engine
from documents.common import paginate
from documents.communities import COMMUNITIES


async def communities_page(db, q: str, query: dict, *, page: int,
                           limit: int) -> tuple[list[dict], dict]:
    """One page of the communities matching `query` (a `communities` filter): by relevance
    to `q` (name, category, description) when `q` holds words, else most members first
    (newest id on a tie). Returns (stored documents, pagination meta ``{total, page, limit,
    pages}``)."""
    if q and q.strip():
        return await search_engine.ranked_page(db, "communities", q, db[COMMUNITIES], query,
                                               page=page, limit=limit)
    return await paginate(db[COMMUNITIES], query, page=page, limit=limit,
                          sort=[("member_count", DESCENDING), ("_id", DESCENDING)])
