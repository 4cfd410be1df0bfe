"""Helpers shared by every document module: ids, clocks, API rendering, pagination.

Rendering rules (docs/architecture.md §3): ids are ObjectId hex strings under `id`; timestamps are
ISO 8601 UTC with `Z`; money is stored as integer `*_cents` and shown as a decimal number
with two places under the name without `_cents`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from bson.tz_util import utc as bson_utc
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents.errors import Invalid, NotFound


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds as MongoDB stores it."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def object_id(value: Any) -> ObjectId | None:
    """`value` as an ObjectId, or None when it is not a valid 24-hex id."""
    if isinstance(value, ObjectId):
        return value
    if not isinstance(value, str) or len(value) != 24:
        return None
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


def require_id(value: Any, what: str = "Resource") -> ObjectId:
    """`value` as an ObjectId; raises NotFound("<what> not found") when it is not one.

    An id that is not an ObjectId is a 404, never a 500 (docs/architecture.md §3).
    """
    oid = object_id(value)
    if oid is None:
        raise NotFound(f"{what} not found")
    return oid


_UTC_ZONES = (timezone.utc, bson_utc)  # what documents read with tz_aware=True carry


def iso(value: datetime | None) -> str | None:
    """A datetime as ISO 8601 UTC with a trailing Z (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    elif value.tzinfo not in _UTC_ZONES and value.utcoffset():
        value = value.astimezone(timezone.utc)
    # what isoformat(timespec="milliseconds") gives for UTC, without the offset
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z")


def to_cents(amount: Any) -> int:
    """A decimal amount (``29.99``, ``"29.99"``) as integer cents, rounded half up."""
    return int((Decimal(str(amount)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def from_cents(cents: int | None) -> float:
    """Integer cents as the API's decimal number with two places (``2999`` → ``29.99``):
    the double nearest to cents/100 (Python's int division rounds correctly)."""
    return int(cents or 0) / 100


_PLAIN = frozenset((str, int, float, bool, type(None)))


def render(value: Any) -> Any:
    """A document (or any nested value) in API form.

    `_id` → `id`; ObjectId → hex string; datetime → ISO Z; `x_cents` → `x` as a decimal.
    Exact dicts, lists and scalars take a fast path (one type lookup); anything else goes
    through the general isinstance chain, with the same result.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _render_mapping(value)
    if kind is list:
        return [item if type(item) in _PLAIN else render(item) for item in value]
    if kind is ObjectId:
        return str(value)
    if kind is datetime:
        return iso(value)
    return _render_other(value)


def _render_mapping(value: Mapping) -> dict:
    out = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str or kind is float or kind is bool:
            out["id" if key == "_id" else key] = item
        elif item is None:  # an amount not set: `x_cents: None` → `x: null`
            out["id" if key == "_id" else key[:-6] if key.endswith("_cents") else key] = None
        elif kind is int:
            if key.endswith("_cents"):
                out[key[:-6]] = item / 100          # from_cents, inlined
            else:
                out["id" if key == "_id" else key] = item
        elif kind is datetime:
            out["id" if key == "_id" else key] = iso(item)
        elif kind is ObjectId:
            out["id" if key == "_id" else key] = str(item)
        elif key == "_id":
            out["id"] = render(item)
        elif key.endswith("_cents") and isinstance(item, int):
            out[key[: -len("_cents")]] = from_cents(item)
        else:
            out[key] = render(item)
    return out


def _render_other(value: Any) -> Any:
    """`render` for values that are not exactly a dict, list, scalar, ObjectId or datetime."""
    if isinstance(value, Mapping):
        return _render_mapping(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [render(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


def omit(doc: Mapping[str, Any], keys: Iterable[str]) -> dict:
    """A copy of `doc` without `keys` (private fields)."""
    drop = keys if isinstance(keys, frozenset | set) else set(keys)
    return {k: v for k, v in doc.items() if k not in drop}


def search_regex(text: str) -> dict:
    """A case-insensitive `$regex` condition matching `text` literally (regex-escaped)."""
    return {"$regex": re.escape(text.strip()), "$options": "i"}


async def thread_root(db, comments: str, owner: tuple[str, Any], parent_id, what: str) -> dict:
    """The top-level comment whose thread a reply to `parent_id` joins (replies are one level
    deep: a reply to a reply joins its root's thread).

    `owner` is the (field, id) the comment must belong to, e.g. ``("model_id", model_id)``.
    Raises Invalid (422 on `parent_id`) when `parent_id` is no live comment of that owner.
    """
    oid = object_id(parent_id)
    field, owner_id = owner
    parent = await db[comments].find_one({"_id": oid, field: owner_id}) if oid else None
    if parent is None or parent.get("is_deleted"):
        raise Invalid({"parent_id": [f"No such comment on this {what}"]})
    if parent.get("parent_id") is not None:
        parent = await db[comments].find_one({"_id": parent["parent_id"]}) or parent
    return parent


async def counted_insert(db, records: str, doc: dict, counter: Callable[[int], Awaitable],
                         *, duplicate: Exception, missing: Exception) -> dict:
    """Insert a one-per-user record (a like, a follow…) and `$inc` its target's counter.

    `records` has a unique index that makes a second record a DuplicateKeyError → `duplicate`
    is raised. `counter(step)` applies `$inc` on the target and returns the new target
    document, or None when the target is gone → the record is taken back and `missing`
    raised. Returns the target document after the increment (docs/architecture.md §4: counters move with
    the record, so they cannot drift).
    """
    try:
        result = await db[records].insert_one(doc)
    except DuplicateKeyError:
        raise duplicate from None
    after = await counter(1)
    if after is None:
        await db[records].delete_one({"_id": result.inserted_id})
        raise missing
    return after


async def counted_delete(db, records: str, query: Mapping, counter: Callable[[int], Awaitable],
                         *, missing: Exception) -> dict | None:
    """Delete the record matching `query` and `$inc` its target's counter by -1.

    Raises `missing` when there was no record. Returns the target document after the
    decrement, or None when the target is gone.
    """
    if await db[records].find_one_and_delete(query) is None:
        raise missing
    return await counter(-1)


async def paginate(collection, query: Mapping, *, page: int, limit: int,
                   sort: list[tuple[str, int]] | None = None,
                   projection: Mapping | None = None) -> tuple[list[dict], dict]:
    """One page of `collection.find(query, projection)`.

    Returns (documents, meta) where meta is ``{"total", "page", "limit", "pages"}``
    (seed 001 §22). `page` starts at 1; callers clamp `limit` to 1..100 via the query schema.
    The page is read first; `count_documents` runs only when the page does not tell the
    total (a page with fewer than `limit` documents is the last one: total = skip + its
    length).
    """
    skip = (page - 1) * limit
    cursor = collection.find(query, projection)
    if sort:
        cursor = cursor.sort(sort)
    docs = await cursor.skip(skip).limit(limit).to_list(length=limit)
    if limit > 0 and (0 < len(docs) < limit or (not docs and page == 1)):
        total = skip + len(docs)
    else:
        total = await collection.count_documents(query)
    pages = math.ceil(total / limit) if limit else 0
    return docs, {"total": total, "page": page, "limit": limit, "pages": pages}


_HEX24_SLUG = re.compile(r"[0-9a-f]{24}")


def slugify(text: str | None, fallback: str, max_length: int = 80) -> str:
    """`text` as a URL slug: lower-case ASCII letters and digits joined by ``-``
    ("Sci-Fi & Space" → "sci-fi-space", "Knight's Sword" → "knight-s-sword").

    At most `max_length` characters; `fallback` when nothing is left; ``"<slug>-<fallback>"``
    when the slug is 24 hex digits, which would read as an id (docs/architecture.md §3).
    """
    slug = re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")
    slug = slug[:max_length].strip("-") or fallback
    return f"{slug}-{fallback}" if _HEX24_SLUG.fullmatch(slug) else slug


async def upsert_one(collection, query: Mapping, update: Mapping, *, reread: bool,
                     attempts: int = 5) -> dict:
    """`find_one_and_update(query, update, upsert=True)` returning the document after it,
    correct when calls race on the document's first creation, on any MongoDB.

    Two racing upserts may both insert; the loser gets `DuplicateKeyError` (a unique index or
    `_id`) and is retried, which then matches the winner's document. A server may also answer
    a racing upsert with no document: with `reread` (idempotent updates such as
    `$setOnInsert`) the document is read back; without it (`$inc` and other updates whose
    effect must be seen exactly) the update is applied again. Raises `DuplicateKeyError`
    when it still collides after `attempts`.
    """
    for attempt in range(attempts):
        try:
            doc = await collection.find_one_and_update(
                query, update, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            if attempt == attempts - 1:
                raise
            continue
        if doc is None and reread:
            doc = await collection.find_one(query)
        if doc is not None:
            return doc
    raise DuplicateKeyError(f"upsert into {collection.name} found no document after {attempts} attempts")


# ------------------------------------------------------ by-id access for the owner of a collection

async def get_by_id(db, collection: str, doc_id: Any, what: str) -> dict:
    """The document `doc_id` (24-hex or ObjectId) of `collection`, which its owner module
    names; raises NotFound "<what> not found" (also for a malformed id)."""
    oid = require_id(doc_id, what)
    doc = await db[collection].find_one({"_id": oid})
    if doc is None:
        raise NotFound(f"{what} not found")
    return doc


async def update_by_id(db, collection: str, doc_id: Any, changes: dict, what: str) -> dict:
    """`$set` `changes` (and `updated_at`) on document `doc_id` of `collection`; returns the
    document after the change. Raises NotFound "<what> not found"."""
    oid = require_id(doc_id, what)
    doc = await db[collection].find_one_and_update(
        {"_id": oid}, {"$set": {**changes, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if doc is None:
        raise NotFound(f"{what} not found")
    return doc


async def delete_by_id(db, collection: str, doc_id: Any, what: str) -> None:
    """Delete document `doc_id` of `collection`; raises NotFound "<what> not found"."""
    oid = require_id(doc_id, what)
    if (await db[collection].delete_one({"_id": oid})).deleted_count != 1:
        raise NotFound(f"{what} not found")
