"""The blog (seed 004 §3 BlogPost, BlogComment, BlogLike).

Documents::

    blog_posts     {_id, author_id, title, slug (unique), content (Markdown, ≤ 100 KB),
                    excerpt, featured_image, category, tags: [str], views, likes,
                    comment_count, shares, read_time (minutes), status: "draft" | "published",
                    is_featured, published_at, created_at, updated_at}
    blog_comments  {_id, post_id, author_id, content, parent_id, reply_count, is_deleted,
                    created_at}                       referenced: a post's comments are unbounded
    blog_likes     {_id, user_id, post_id, created_at}          unique (user_id, post_id)
    blog_views     {_id, post_id, viewer_key, window_start}     unique triple, expire after a day

Rules kept here:
- Categories are the fixed list CATEGORIES (seed 004 names tutorials, news, updates; we add
  showcase and community).
- Only staff write posts (handlers: `content.manage`). A draft is hidden from everyone else:
  reads answer 404, so that its existence does not leak. Likes, comments and shares need a
  published post; views are counted on published posts only (staff previews do not count).
- `slug` comes from the title at creation and is made unique with a numeric suffix
  ("my-post", "my-post-2", …); it only changes when staff send a new `slug` (stable URLs).
  A slug is never 24 hex digits, so `/api/blog/posts/{ref}` can take an id or a slug.
- `read_time` = words / 200, rounded up, at least 1 (words: whitespace-separated tokens
  holding a letter or digit, so Markdown markup does not count). Recomputed on every content
  change. `excerpt`, when not given, is the first EXCERPT_LENGTH characters of the text with
  the Markdown markup removed; it follows content changes until staff set one by hand.
- Publishing (draft → published) sets `published_at`; going back to draft clears it.
- Counters (`likes`, `comment_count`, `views`, `shares`) move with `$inc` right after the
  write that changes the state won (unique insert or delete), so each stored or removed
  record moves a counter exactly once, also under racing requests (docs/architecture.md §4).
- A view counts once per viewer (the user, or a keyed hash of the client IP) per
  30-minute window, as model views do (`documents.engagement.viewer_key`, `window_start`).
- Comments are threaded one level deep: a reply to a reply joins the thread of its top-level
  comment; the top-level comment counts its replies in `reply_count`.
"""
from __future__ import annotations

import math
import re
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import common, engagement, search_engine, search_kinds, users
from documents.common import (
    counted_delete,
    counted_insert,
    object_id,
    paginate,
    render,
    search_regex,
    thread_root,
    utcnow,
)
from documents.errors import Conflict, NotFound

POSTS = "blog_posts"
COMMENTS = "blog_comments"
LIKES = "blog_likes"
VIEWS = "blog_views"

CATEGORIES = ("tutorials", "news", "updates", "showcase", "community")
STATUSES = ("draft", "published")
WORDS_PER_MINUTE = 200
MAX_CONTENT_BYTES = 100 * 1024
MAX_COMMENT_LENGTH = 2000
EXCERPT_LENGTH = 200
REPLIES_SHOWN = 50
VIEW_RECORD_TTL_SECONDS = 24 * 3600
_SLUG_ATTEMPTS = 50

INDEXES = {
    POSTS: [
        IndexModel([("slug", ASCENDING)], unique=True),
        IndexModel([("status", ASCENDING), ("published_at", DESCENDING)]),
        IndexModel([("category", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("tags", ASCENDING)]),
        IndexModel([("is_featured", ASCENDING), ("status", ASCENDING)]),
    ],
    COMMENTS: [
        IndexModel([("post_id", ASCENDING), ("parent_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("parent_id", ASCENDING), ("created_at", ASCENDING)]),
    ],
    LIKES: [
        IndexModel([("user_id", ASCENDING), ("post_id", ASCENDING)], unique=True),
        IndexModel([("post_id", ASCENDING)]),
    ],
    VIEWS: [
        IndexModel([("post_id", ASCENDING), ("viewer_key", ASCENDING), ("window_start", ASCENDING)],
                   unique=True),
        IndexModel([("window_start", ASCENDING)], expireAfterSeconds=VIEW_RECORD_TTL_SECONDS),
    ],
}

SORT = [("published_at", DESCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]
LIST_PROJECTION = {"content": 0}   # lists show the excerpt; the full text is on the post route


# --------------------------------------------------------------------------- text helpers

_WORD = re.compile(r"\S+")
_HAS_WORD_CHAR = re.compile(r"\w")
_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_RULE = re.compile(r"^\s{0,3}([-*_]\s*){3,}$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"(^\s{0,3}(#{1,6}|>|[-*+]|\d+\.)\s+)|[*_`~]+", re.MULTILINE)


def count_words(text: str) -> int:
    """The number of words in `text`: whitespace-separated tokens holding a letter or digit."""
    return sum(1 for token in _WORD.findall(text or "") if _HAS_WORD_CHAR.search(token))


def read_time(text: str) -> int:
    """Minutes to read `text`: words / 200 rounded up, at least 1."""
    return max(1, math.ceil(count_words(text) / WORDS_PER_MINUTE))


def plain_text(markdown: str) -> str:
    """`markdown` with code fences, image and link syntax, headings, quotes, list markers and
    thematic breaks, emphasis removed, whitespace collapsed (an approximation, for excerpts)."""
    text = _FENCE.sub(" ", markdown or "")
    text = _RULE.sub(" ", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub(" ", text)
    return " ".join(text.split())


def make_excerpt(markdown: str) -> str:
    """The automatic excerpt: the first EXCERPT_LENGTH characters of the plain text, cut at
    a word boundary with "…" when longer."""
    text = plain_text(markdown)
    if len(text) <= EXCERPT_LENGTH:
        return text
    cut = text[:EXCERPT_LENGTH].rsplit(" ", 1)[0] or text[:EXCERPT_LENGTH]
    return cut.rstrip(" ,.;:") + "…"


def slugify(title: str) -> str:
    """A post slug of `title` ("Hello, World!" → "hello-world"), "post" when nothing is left,
    never a 24-hex string; see `common.slugify`."""
    return common.slugify(title, "post")


def content_problems(content: str) -> list[str]:
    """Messages for a content that is too large (over MAX_CONTENT_BYTES of UTF-8)."""
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        return [f"Content is at most {MAX_CONTENT_BYTES // 1024} KB"]
    return []


# --------------------------------------------------------------------------- reads

def is_published(post: dict) -> bool:
    return post.get("status") == "published"


def _ref_query(ref: str) -> dict | None:
    oid = object_id(ref)
    if oid is not None:
        return {"_id": oid}
    if isinstance(ref, str) and 0 < len(ref) <= 120:
        return {"slug": ref.lower()}
    return None


async def get_post(db, ref: str) -> dict:
    """The post with id or slug `ref` (any status). Raises NotFound BLOG_POST_NOT_FOUND."""
    query = _ref_query(ref)
    post = await db[POSTS].find_one(query) if query else None
    if post is None:
        raise NotFound("Blog post not found", "BLOG_POST_NOT_FOUND")
    return post


async def get_visible(db, ref: str, *, staff: bool) -> dict:
    """The post if the caller may read it: published, or any post for staff with
    `content.manage`. A draft is NotFound for everyone else (drafts hidden)."""
    post = await get_post(db, ref)
    if not is_published(post) and not staff:
        raise NotFound("Blog post not found", "BLOG_POST_NOT_FOUND")
    return post


async def get_published(db, ref: str, *, staff: bool) -> dict:
    """The post for an engagement (like, comment, share): it must be published. A draft is
    NotFound, except that staff who can see it get Conflict POST_NOT_PUBLISHED (409)."""
    post = await get_visible(db, ref, staff=staff)
    if not is_published(post):
        raise Conflict("Publish the post before it can be liked, shared or commented on",
                       "POST_NOT_PUBLISHED")
    return post


def list_query(filters: dict) -> dict:
    """The filter of the post list (seed 004 "Blog Listing").

    `filters`: status ("published" default, "draft", "all" — the caller checked who may ask
    for drafts), category, tag (one tag), search (literal text in title, excerpt or content),
    featured (bool).
    """
    status = filters.get("status") or "published"
    query: dict = {} if status == "all" else {"status": status}
    if filters.get("category"):
        query["category"] = filters["category"]
    if filters.get("tag"):
        query["tags"] = filters["tag"].strip().lower()
    if filters.get("featured") is not None:
        query["is_featured"] = filters["featured"]
    if filters.get("search"):
        regex = search_regex(filters["search"])
        query["$or"] = [{"title": regex}, {"excerpt": regex}, {"content": regex}]
    return query


async def list_posts(db, filters: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of posts matching `list_query(filters)`, newest published first, without
    `content`; with `search`, ranked by relevance (title, tags, category, excerpt:
    `documents.search_engine.ranked_page`). Returns (documents, pagination meta)."""
    if filters.get("search") and filters["search"].strip():
        return await search_engine.ranked_page(
            db, "blog", filters["search"], db[POSTS], list_query({**filters, "search": None}),
            page=page, limit=limit, projection=LIST_PROJECTION)
    return await paginate(db[POSTS], list_query(filters), page=page, limit=limit, sort=SORT,
                          projection=LIST_PROJECTION)


async def list_featured(db, limit: int) -> list[dict]:
    """Up to `limit` featured published posts, newest published first, without `content`."""
    cursor = db[POSTS].find({"status": "published", "is_featured": True},
                            LIST_PROJECTION).sort(SORT).limit(limit)
    return await cursor.to_list(length=limit)


async def category_counts(db) -> list[dict]:
    """Every category of CATEGORIES with its number of published posts, in list order:
    ``[{"name", "count"}]`` (seed 004 `GET /api/blog/categories`)."""
    counts = {name: 0 for name in CATEGORIES}
    pipeline = [{"$match": {"status": "published"}},
                {"$group": {"_id": "$category", "count": {"$sum": 1}}}]
    async for row in db[POSTS].aggregate(pipeline):
        if row["_id"] in counts:
            counts[row["_id"]] = int(row["count"])
    return [{"name": name, "count": count} for name, count in counts.items()]


# --------------------------------------------------------------------------- staff writes

async def _insert_with_unique_slug(db, doc: dict, base: str) -> dict:
    """Insert `doc` under the first free slug of base, base-2, base-3, … (the unique index
    decides under races). Raises Conflict SLUG_TAKEN when none is free."""
    for attempt in range(1, _SLUG_ATTEMPTS + 1):
        doc["slug"] = base if attempt == 1 else f"{base}-{attempt}"
        doc.pop("_id", None)
        try:
            result = await db[POSTS].insert_one(doc)
        except DuplicateKeyError:
            continue
        doc["_id"] = result.inserted_id
        return doc
    raise Conflict("No free slug for this title; give a slug", "SLUG_TAKEN")


def _text_fields(content: str, excerpt: str | None) -> dict:
    return {"content": content, "read_time": read_time(content),
            "excerpt": excerpt if excerpt else make_excerpt(content)}


async def create_post(db, author: dict, data: dict) -> dict:
    """Store a new post by `author` (staff) and return it.

    `data` (validated by the handler): title, content, and optional excerpt,
    featured_image, category (default "news"), tags, status (default "draft"),
    is_featured, slug. With a `slug`, a taken one is Conflict SLUG_TAKEN (409); without,
    one is made from the title. Publishing sets `published_at`.
    """
    now = utcnow()
    status = data.get("status", "draft")
    doc = {
        "author_id": author["_id"], "title": data["title"],
        **_text_fields(data["content"], data.get("excerpt")),
        "featured_image": data.get("featured_image"), "category": data.get("category", "news"),
        "tags": list(data.get("tags") or []), "views": 0, "likes": 0, "comment_count": 0,
        "shares": 0, "status": status, "is_featured": bool(data.get("is_featured", False)),
        "published_at": now if status == "published" else None,
        "created_at": now, "updated_at": now,
    }
    if data.get("slug"):
        doc["slug"] = data["slug"]
        try:
            result = await db[POSTS].insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("This slug is taken", "SLUG_TAKEN") from None
        doc["_id"] = result.inserted_id
    else:
        doc = await _insert_with_unique_slug(db, doc, slugify(data["title"]))
    await search_kinds.index(db, "blog", doc["_id"], doc)
    return doc


def _changes(post: dict, data: dict, now: datetime) -> dict:
    """The `$set` for an update of `post` with validated `data` (see `update_post`)."""
    changes = {k: v for k, v in data.items() if k not in ("content", "excerpt")}
    if "content" in data or "excerpt" in data:
        content = data.get("content", post["content"])
        if "excerpt" in data:
            excerpt = data["excerpt"]          # None or "" → automatic again
        elif post.get("excerpt") != make_excerpt(post["content"]):
            excerpt = post.get("excerpt")      # keep an excerpt that staff wrote by hand
        else:
            excerpt = None
        changes.update(_text_fields(content, excerpt))
    status = data.get("status")
    if status and status != post["status"]:
        changes["published_at"] = now if status == "published" else None
    changes["updated_at"] = now
    return changes


async def update_post(db, ref: str, data: dict) -> dict:
    """Apply validated `data` (any of the create fields) to the post `ref` (id or slug) and
    return the new document.

    Content changes recompute `read_time` (and an automatic excerpt); draft → published sets
    `published_at`, published → draft clears it. The update is conditional on the status
    read, so two racing status changes cannot both set `published_at`. Raises NotFound,
    Conflict SLUG_TAKEN (409), Conflict CONCURRENT_UPDATE (409) when the post keeps changing.
    """
    for _attempt in range(3):
        post = await get_post(db, ref)
        changes = _changes(post, data, utcnow())
        try:
            after = await db[POSTS].find_one_and_update(
                {"_id": post["_id"], "status": post["status"]}, {"$set": changes},
                return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            raise Conflict("This slug is taken", "SLUG_TAKEN") from None
        if after is not None:
            await search_kinds.index(db, "blog", after["_id"], after)
            return after
    raise Conflict("The post changed while it was being edited; try again", "CONCURRENT_UPDATE")


async def delete_post(db, ref: str) -> dict:
    """Delete the post `ref` (id or slug) with its comments, likes and view records.
    Returns the deleted document. Raises NotFound."""
    post = await get_post(db, ref)
    deleted = await db[POSTS].find_one_and_delete({"_id": post["_id"]})
    if deleted is None:
        raise NotFound("Blog post not found", "BLOG_POST_NOT_FOUND")
    await search_kinds.index(db, "blog", post["_id"], None)
    for collection in (COMMENTS, LIKES, VIEWS):
        await db[collection].delete_many({"post_id": post["_id"]})
    return deleted


# --------------------------------------------------------------------------- engagement

async def _bump(db, post_id, field: str, step: int) -> dict | None:
    """`$inc` the published post's counter `field` by `step`; the new document, or None
    when the post is gone or no longer published."""
    return await db[POSTS].find_one_and_update(
        {"_id": post_id, "status": "published"}, {"$inc": {field: step}},
        return_document=ReturnDocument.AFTER)


async def like(db, post: dict, user: dict) -> int:
    """`user` likes the published `post` (seed 004 `POST /api/blog/posts/:id/like`); returns
    the new `likes`. One like per (user, post), held by the unique index under races.
    Raises Conflict ALREADY_LIKED (409); NotFound when the post vanished meanwhile."""
    doc = {"user_id": user["_id"], "post_id": post["_id"], "created_at": utcnow()}
    after = await counted_insert(
        db, LIKES, doc, lambda step: _bump(db, post["_id"], "likes", step),
        duplicate=Conflict("You already like this post", "ALREADY_LIKED"),
        missing=NotFound("Blog post not found", "BLOG_POST_NOT_FOUND"))
    return int(after["likes"])


async def unlike(db, post: dict, user: dict) -> int:
    """`user` takes back a like (seed 004 `DELETE .../like`); returns the new `likes`.
    Raises NotFound NOT_LIKED (404) when there was no like."""
    after = await counted_delete(
        db, LIKES, {"user_id": user["_id"], "post_id": post["_id"]},
        lambda step: _bump(db, post["_id"], "likes", step),
        missing=NotFound("You have not liked this post", "NOT_LIKED"))
    return int(after["likes"]) if after else 0


async def has_liked(db, user: dict | None, post: dict) -> bool:
    """True when `user` (None: anonymous) likes `post`."""
    if not user:
        return False
    return await db[LIKES].count_documents({"user_id": user["_id"], "post_id": post["_id"]}) > 0


async def record_view(db, post: dict, key: str) -> tuple[int, bool]:
    """Count a view of the published `post` by viewer `key` once per 30-minute window
    (module docstring). Returns (views, counted); a draft is never counted."""
    if not is_published(post):
        return int(post.get("views") or 0), False
    doc = {"post_id": post["_id"], "viewer_key": key,
           "window_start": engagement.window_start(utcnow())}
    try:
        await db[VIEWS].insert_one(doc)
    except DuplicateKeyError:
        current = await db[POSTS].find_one({"_id": post["_id"]}, {"views": 1})
        return int((current or {}).get("views") or 0), False
    after = await _bump(db, post["_id"], "views", 1)
    return int((after or post).get("views") or 0), after is not None


async def share(db, post: dict) -> int:
    """Count one share of the published `post`; returns the new `shares`. Raises NotFound."""
    after = await _bump(db, post["_id"], "shares", 1)
    if after is None:
        raise NotFound("Blog post not found", "BLOG_POST_NOT_FOUND")
    return int(after["shares"])


async def add_comment(db, post: dict, user: dict, content: str, parent_id=None) -> dict:
    """Store a comment of `user` on the published `post` (1–2000 characters, bounded by the
    handler's schema); `parent_id` (hex) makes it a reply. Bumps `comment_count` (and the
    root's `reply_count`). Returns the document. Raises Invalid (unknown parent), NotFound
    (post vanished)."""
    root = (await thread_root(db, COMMENTS, ("post_id", post["_id"]), parent_id, "post")
            if parent_id is not None else None)
    doc = {"post_id": post["_id"], "author_id": user["_id"], "content": content,
           "parent_id": root["_id"] if root else None, "reply_count": 0,
           "is_deleted": False, "created_at": utcnow()}
    result = await db[COMMENTS].insert_one(doc)
    doc["_id"] = result.inserted_id
    if await _bump(db, post["_id"], "comment_count", 1) is None:
        await db[COMMENTS].delete_one({"_id": doc["_id"]})
        raise NotFound("Blog post not found", "BLOG_POST_NOT_FOUND")
    if root is not None:
        await db[COMMENTS].update_one({"_id": root["_id"]}, {"$inc": {"reply_count": 1}})
    return doc


async def comment_page(db, post: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of `post`'s top-level comments, newest first, each with `replies` (oldest
    first, at most REPLIES_SHOWN; `reply_count` counts them all) and author cards.
    Returns (rendered items, pagination meta over top-level comments)."""
    tops, meta = await paginate(db[COMMENTS], {"post_id": post["_id"], "parent_id": None},
                                page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    replies: dict = {t["_id"]: [] for t in tops}
    if tops:
        cursor = db[COMMENTS].find({"parent_id": {"$in": list(replies)}}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)])
        async for reply in cursor:
            if len(replies[reply["parent_id"]]) < REPLIES_SHOWN:
                replies[reply["parent_id"]].append(reply)
    everyone = [t["author_id"] for t in tops] + [r["author_id"] for rs in replies.values()
                                                 for r in rs]
    authors = await users.get_many(db, everyone)
    items = []
    for top in tops:
        item = render_comment(top, authors)
        item["replies"] = [render_comment(r, authors) for r in replies[top["_id"]]]
        items.append(item)
    return items, meta


# --------------------------------------------------------------------------- rendering

def render_comment(doc: dict, authors: dict) -> dict:
    """A comment in API form with its author's brief card; a deleted one shows no content."""
    out = render(doc)
    out["author"] = users.render_brief(authors.get(doc["author_id"]))
    if doc.get("is_deleted"):
        out["content"] = None
    return out


def render_post(post: dict, authors: dict) -> dict:
    """A post in API form with its author's brief card (`authors`: ``{ObjectId: user}``)."""
    out = render(post)
    out["author"] = users.render_brief(authors.get(post["author_id"]))
    return out


async def render_posts(db, posts: list[dict]) -> list[dict]:
    """Posts in API form with their authors fetched in one query."""
    authors = await users.get_many(db, [p["author_id"] for p in posts])
    return [render_post(p, authors) for p in posts]
