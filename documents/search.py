"""Global search (seed 001 §17 "Search & Filtering", seed 004 "Search").

`search(db, type, q, filters, ...)` answers one page of one type: models, users, communities
or courses. `q` matches by relevance (models, users, communities: words in any order, stems,
typos, prefixes; `documents.search_engine`) or literally (courses: regex-escaped,
case-insensitive) and may be empty when
filters are given (the handler decides). What each type matches and who sees what:

- models: relevance search of the marketplace (`documents.model_search`: approved and
  published only; words in any order, stems, typos, prefixes, weighted fields); filters
  category, tags, price range, poly count range, has_animations, has_rigging, is_free;
  `sort` as on `GET /api/models` ("relevance" by default with `q`); `facets`.
- users: public profiles only (active, not banned, not deleted); `q` ranks by relevance
  over username and full name, skills, user type and bio (never the email). Filters
  user_type, is_verified, country, skills. `is_verified`
  filters on the public verified badge (`is_verified_creator`): the account's email
  verification (`is_verified` on the document) is private and not searchable. Country and
  skills match whole values, case-insensitive; skills match any of the given ones. Most
  followed first.
- communities: active ones for everyone; staff with `communities.moderate` see every status
  and may filter on it (anyone else asking for pending or suspended ones gets 403). Private
  communities are listed too — by their card (name, description, icon, category, counts,
  `is_private`, `require_approval`) — since users expect to find them and ask to join; their
  posts and members are never part of search. `q` ranks by relevance over name, category
  and description; filters category
  (whole value, case-insensitive), member count range, status. Most members first.
- courses: the `courses` collection (seed 000 "Learning Center" Course) when it holds any
  documents, else an empty page; unpublished ones (`is_published: false`) are left out;
  `q` in title or description; filters difficulty, category, is_free. Newest first.
"""
from __future__ import annotations

import re

from documents import catalog, community_directory, courses, model_search, user_directory, users
from documents.common import omit, render, search_regex
from documents.errors import Forbidden

INDEXES: dict = {}   # every searched collection declares its indexes in its own module

TYPES = ("models", "users", "communities", "courses")
COMMUNITY_STATUSES = ("pending", "active", "suspended")
COURSE_DIFFICULTIES = ("beginner", "intermediate", "advanced")
COMMUNITY_CARD = ("_id", "name", "slug", "description", "icon", "banner_gradient", "category",
                  "member_count", "post_count", "status", "is_private", "require_approval",
                  "created_at")


def _empty(page: int, limit: int) -> tuple[list, dict]:
    return [], {"total": 0, "page": page, "limit": limit, "pages": 0}


def _whole(value: str) -> dict:
    """A case-insensitive `$regex` matching the whole of `value` literally."""
    return {"$regex": f"^{re.escape(value.strip())}$", "$options": "i"}


def _range(low, high) -> dict | None:
    cond = {}
    if low is not None:
        cond["$gte"] = low
    if high is not None:
        cond["$lte"] = high
    return cond or None


def _text(q: str, names: tuple[str, ...]) -> dict:
    """`{"$or": [...]}` matching `q` literally in any of `names`; {} for an empty `q`."""
    if not q or not q.strip():
        return {}
    regex = search_regex(q)
    return {"$or": [{name: regex} for name in names]}


# --------------------------------------------------------------------------- models

async def search_models(db, q: str, filters: dict, *, page: int, limit: int,
                        viewer: dict | None) -> tuple[list[dict], dict, dict]:
    """Public models matching `q` and the marketplace filters (module docstring), rendered
    as on `GET /api/models`; with `facets` in `filters`, the extra ``{"facets": ...}``."""
    wanted = {k: v for k, v in filters.items() if k not in ("sort", "facets")}
    if q and q.strip():
        wanted["search"] = q
    docs, meta, counts = await model_search.list_models(
        db, wanted, page=page, limit=limit, sort=filters.get("sort"),
        anonymous=viewer is None, facets=bool(filters.get("facets")))
    extra = {"facets": counts} if counts is not None else {}
    return await catalog.render_models(db, docs, viewer), meta, extra


# --------------------------------------------------------------------------- users

def users_query(q: str, filters: dict) -> dict:
    """The filter for user search: public profiles only (module docstring)."""
    query: dict = {"is_active": True, "is_banned": {"$ne": True}, "deleted_at": None,
                   **_text(q, ("username", "full_name"))}
    if filters.get("user_type"):
        query["user_type"] = filters["user_type"]
    if filters.get("is_verified") is not None:
        query["is_verified_creator"] = True if filters["is_verified"] else {"$ne": True}
    if filters.get("country"):
        query["profile.country"] = _whole(filters["country"])
    if filters.get("skills"):
        query["$and"] = [{"$or": [{"profile.skills": _whole(s)} for s in filters["skills"]]}]
    return query


async def search_users(db, q: str, filters: dict, *, page: int,
                       limit: int) -> tuple[list[dict], dict]:
    """Public profiles matching `q` (by relevance: names, skills, user type, bio) and the
    filters, else most followed first, in public form."""
    ranked = bool(q and q.strip())
    docs, meta = await user_directory.profiles_page(
        db, q, users_query("" if ranked else q, filters), page=page, limit=limit)
    return [users.render_public(d) for d in docs], meta


# --------------------------------------------------------------------------- communities

def communities_query(q: str, filters: dict, *, staff: bool) -> dict:
    """The filter for community search. Raises Forbidden when someone who is not staff asks
    for pending or suspended communities."""
    status = filters.get("status")
    if not staff and status not in (None, "active"):
        raise Forbidden("Only staff can search pending or suspended communities")
    query: dict = _text(q, ("name", "description"))
    if status or not staff:
        query["status"] = status or "active"
    if filters.get("category"):
        query["category"] = _whole(filters["category"])
    cond = _range(filters.get("min_member_count"), filters.get("max_member_count"))
    if cond:
        query["member_count"] = cond
    return query


def render_community_card(doc: dict) -> dict:
    """A community's card: what a listing shows, never its members or posts."""
    return render({key: doc.get(key) for key in COMMUNITY_CARD})


async def search_communities(db, q: str, filters: dict, *, page: int, limit: int,
                             staff: bool) -> tuple[list[dict], dict]:
    """Communities matching `q` (by relevance: name, category, description) and the
    filters, else most members first, as cards."""
    ranked = bool(q and q.strip())
    docs, meta = await community_directory.communities_page(
        db, q, communities_query("" if ranked else q, filters, staff=staff), page=page,
        limit=limit)
    return [render_community_card(d) for d in docs], meta


# --------------------------------------------------------------------------- courses

def courses_query(q: str, filters: dict) -> dict:
    """The filter for course search (published courses only)."""
    query: dict = {"is_published": {"$ne": False}, **_text(q, ("title", "description"))}
    if filters.get("difficulty"):
        query["difficulty"] = filters["difficulty"]
    if filters.get("category"):
        query["category"] = _whole(filters["category"])
    if filters.get("is_free") is not None:
        query["is_free"] = filters["is_free"]
    return query


async def search_courses(db, q: str, filters: dict, *, page: int,
                         limit: int) -> tuple[list[dict], dict]:
    """Courses matching `q` and the filters, newest first; an empty page while there are
    no courses."""
    if not await courses.any_stored(db):
        return _empty(page, limit)
    docs, meta = await courses.newest_page(db, courses_query(q, filters), page=page, limit=limit)
    return [render(omit(d, ("video_url",))) for d in docs], meta


# --------------------------------------------------------------------------- entry point

async def search(db, type_: str, q: str, filters: dict, *, page: int, limit: int,
                 viewer: dict | None) -> tuple[list[dict], dict, dict]:
    """One page of `type_` (one of TYPES) matching `q` and that type's `filters` (already
    validated). Returns (rendered items, pagination meta, extra answer fields: models'
    `facets`). Raises Forbidden (communities: a status only staff may see)."""
    if type_ == "models":
        return await search_models(db, q, filters, page=page, limit=limit, viewer=viewer)
    if type_ == "users":
        return (*await search_users(db, q, filters, page=page, limit=limit), {})
    if type_ == "communities":
        staff = users.has_permission(viewer, "communities.moderate")
        return (*await search_communities(db, q, filters, page=page, limit=limit,
                                          staff=staff), {})
    return (*await search_courses(db, q, filters, page=page, limit=limit), {})
