"""Model categories: the `categories` collection (seed 000 §3 `GET /api/categories`).

A category document::

    {_id, name (unique, case-insensitive via name_lower), name_lower, slug (unique),
     description, icon, order: int, is_active: bool, model_count: int, created_at, updated_at}

`model_count` counts the category's APPROVED models; `documents.catalog` keeps it with `$inc`
in the moderation transitions. Models refer to a category by its name.
"""
from __future__ import annotations

import re

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents.common import render, require_id, utcnow
from documents.common import slugify as common_slugify
from documents.errors import Conflict, NotFound

COLLECTION = "categories"

INDEXES = {
    COLLECTION: [
        IndexModel([("slug", ASCENDING)], unique=True),
        IndexModel([("order", ASCENDING)]),
    ]
}


def slugify(name: str) -> str:
    """`name` as a category slug ("Sci-Fi & Space" → "sci-fi-space"); see `common.slugify`."""
    return common_slugify(name, "category")


def _name_query(name: str) -> dict:
    return {"name": {"$regex": f"^{re.escape(name.strip())}$", "$options": "i"}}


async def get_active_by_name(db, name: str) -> dict | None:
    """The active category named `name` (case-insensitive), or None."""
    return await db[COLLECTION].find_one({**_name_query(name), "is_active": True})


async def find_by_name_or_slug(db, ref: str) -> dict | None:
    """The category (active or not) whose name (case-insensitive) or slug is `ref`, or None."""
    return await db[COLLECTION].find_one({"$or": [_name_query(ref), {"slug": ref.strip().lower()}]})


async def list_active(db) -> list[dict]:
    """Active categories in display order (`order`, then name)."""
    cursor = db[COLLECTION].find({"is_active": True}).sort([("order", 1), ("name", 1)])
    return await cursor.to_list(length=None)


async def count_active(db) -> int:
    """How many categories are active (seed 001 §2 "platform stats")."""
    return await db[COLLECTION].count_documents({"is_active": True})


async def list_all(db) -> list[dict]:
    """Every category (admin), in display order."""
    return await db[COLLECTION].find({}).sort([("order", 1), ("name", 1)]).to_list(length=None)


async def get(db, category_id) -> dict:
    """The category with id `category_id`; raises NotFound (also for a malformed id)."""
    doc = await db[COLLECTION].find_one({"_id": require_id(category_id, "Category")})
    if doc is None:
        raise NotFound("Category not found")
    return doc


async def _ensure_unique(db, name: str | None, slug: str | None, exclude=None) -> None:
    clauses = []
    if name is not None:
        clauses.append(_name_query(name))
    if slug is not None:
        clauses.append({"slug": slug})
    if not clauses:
        return
    query: dict = {"$or": clauses}
    if exclude is not None:
        query["_id"] = {"$ne": exclude}
    if await db[COLLECTION].find_one(query, {"_id": 1}):
        raise Conflict("A category with this name already exists", "CATEGORY_EXISTS")


async def create(db, data: dict) -> dict:
    """Insert a category from `{name, description?, icon?, order?, is_active?}`.

    Raises Conflict CATEGORY_EXISTS (409) when the name or its slug is taken.
    """
    slug = data.get("slug") or slugify(data["name"])
    await _ensure_unique(db, data["name"], slug)
    now = utcnow()
    doc = {"name": data["name"], "slug": slug, "description": data.get("description"),
           "icon": data.get("icon"), "order": data.get("order", 0),
           "is_active": data.get("is_active", True), "model_count": 0,
           "created_at": now, "updated_at": now}
    try:
        result = await db[COLLECTION].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict("A category with this name already exists", "CATEGORY_EXISTS") from None
    doc["_id"] = result.inserted_id
    return doc


async def update(db, category_id, changes: dict, models_collection: str = "models") -> dict:
    """Apply `changes` to a category; a rename is carried to the models that use it.

    Raises NotFound, Conflict CATEGORY_EXISTS (409).
    """
    current = await get(db, category_id)
    changes = dict(changes)
    if "name" in changes and "slug" not in changes:
        changes["slug"] = slugify(changes["name"])
    await _ensure_unique(db, changes.get("name"), changes.get("slug"), exclude=current["_id"])
    changes["updated_at"] = utcnow()
    try:
        doc = await db[COLLECTION].find_one_and_update(
            {"_id": current["_id"]}, {"$set": changes}, return_document=True)
    except DuplicateKeyError:
        raise Conflict("A category with this name already exists", "CATEGORY_EXISTS") from None
    if doc is None:
        raise NotFound("Category not found")
    if changes.get("name") and changes["name"] != current["name"]:
        await db[models_collection].update_many({"category": current["name"]},
                                                {"$set": {"category": changes["name"]}})
    return doc


async def delete(db, category_id, models_collection: str = "models") -> None:
    """Delete a category that no model (of any status) uses.

    Raises NotFound, Conflict CATEGORY_IN_USE (409).
    """
    current = await get(db, category_id)
    if await db[models_collection].find_one({"category": current["name"]}, {"_id": 1}):
        raise Conflict("This category still has models", "CATEGORY_IN_USE")
    await db[COLLECTION].delete_one({"_id": current["_id"]})


async def adjust_count(db, name: str, delta: int) -> None:
    """Add `delta` to the `model_count` of the category named `name` (approved models)."""
    await db[COLLECTION].update_one({"name": name}, {"$inc": {"model_count": delta}})


def render_category(doc: dict) -> dict:
    """A category in API form: id, name, slug, description, icon, order, is_active (also as
    seed 004's `enabled`), model_count."""
    out = render(doc)
    out.pop("name_lower", None)
    out["enabled"] = bool(out.get("is_active", True))
    return out
