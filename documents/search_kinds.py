"""Search documents of the other searchable kinds (README "Search"): public profiles
(`users`), communities and blog posts, built from the stored item for
`documents.search_index` (shape and fields there). Each owner module calls `index_*` from
the writes that change an item, with the item as stored after the write.

| kind | title (10) | tags (6) | category (4) | description (2) | visible |
|---|---|---|---|---|---|
| users | username, full name | skills | user type | bio | active, not banned, not deleted |
| communities | name | — | category | description | status "active" (private ones too: their card is public) |
| blog | title | tags | category | excerpt and text | published |
| posts | — | — | — | text | not deleted; searched within its community only |

Popularity: followers (users), members (communities), likes and views (blog), reactions
and comments (posts).
"""
from __future__ import annotations

import math

from documents import search_index, search_text


def _popularity(value) -> float:
    return round(math.log1p(max(float(value or 0), 0.0)), 6)


def _doc(kind: str, item: dict, *, title: str, tags=(), category: str | None = None,
         description: str | None = None, visible: bool, popularity: float, **extra) -> dict:
    fields = {"t": search_text.terms(title), "g": search_text.terms(" ".join(tags or ())),
              "c": search_text.terms(category), "d": search_text.terms(description), "u": []}
    return {"kind": kind, "item_id": item["_id"], "visible": visible,
            "fields": fields, "terms": list(dict.fromkeys(t for ts in fields.values() for t in ts)),
            "label": title or "", "phrases": [], "popularity": popularity,
            "created_at": item.get("created_at"), **extra}


def user_document(user: dict) -> dict:
    """The search document of a user's public profile."""
    profile = user.get("profile") or {}
    names = " ".join(filter(None, (user.get("username"), user.get("full_name"))))
    skills = [s for s in profile.get("skills") or () if isinstance(s, str)]
    visible = bool(user.get("is_active", True) and not user.get("is_banned")
                   and not user.get("deleted_at"))
    return _doc("users", user, title=names, tags=skills, category=user.get("user_type"),
                description=user.get("bio"), visible=visible,
                popularity=_popularity(user.get("followers_count")))


def community_document(community: dict) -> dict:
    """The search document of a community (its card; never its posts or members)."""
    return _doc("communities", community, title=community.get("name") or "",
                category=community.get("category"), description=community.get("description"),
                visible=community.get("status") == "active",
                popularity=_popularity(community.get("member_count")),
                status=community.get("status"))


def blog_document(post: dict) -> dict:
    """The search document of a blog post."""
    tags = [t for t in post.get("tags") or () if isinstance(t, str)]
    return _doc("blog", post, title=post.get("title") or "", tags=tags,
                category=post.get("category"),
                description=" ".join(filter(None, (post.get("excerpt"), post.get("content")))),
                visible=post.get("status") == "published",
                popularity=_popularity(3 * (post.get("likes") or 0) + (post.get("views") or 0) / 10))


def post_document(post: dict) -> dict:
    """The search document of a community post (searched within its community)."""
    reactions = sum(v for v in (post.get("reactions") or {}).values() if isinstance(v, int))
    return _doc("posts", post, title="", description=post.get("content"),
                visible=not post.get("is_deleted"), community_id=post.get("community_id"),
                popularity=_popularity(reactions + (post.get("comment_count") or 0)))


BUILD = {"users": user_document, "communities": community_document, "blog": blog_document,
         "posts": post_document}


async def index(db, kind: str, item_id, item: dict | None) -> None:
    """(Re)index one item of `kind` as stored now; `item` None when it is gone."""
    if item is None:
        await search_index.remove(db, kind, item_id)
    else:
        await search_index.put(db, kind, item_id, BUILD[kind](item))


async def remove_community_posts(db, community_id) -> None:
    """Drop the search documents of a deleted community's posts."""
    await search_index.remove_matching(db, "posts", {"community_id": community_id})


async def index_user(db, user: dict, *, renamed: bool = False) -> None:
    """(Re)index a user; when `renamed` (username or full name changed), also the creator
    name in their models' search documents."""
    await index(db, "users", user["_id"], user)
    if renamed:
        await search_index.rename_creator(db, user)
