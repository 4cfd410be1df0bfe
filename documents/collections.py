"""Collections of models (seed 004 §4 `Collection`, `CollectionModel`, `CollectionFollower`).

A collection document::

    {_id, owner_id, name, name_lower, description, is_public, model_ids: [ObjectId] (ordered),
     model_count, views, followers, created_at, updated_at}

The ordered models are embedded as `model_ids` (read together with the collection, bounded):
at most MAX_MODELS (500) per collection; adding past the bound is a 409 COLLECTION_FULL.
Adding and removing are single conditional updates that also move `model_count`, so the
count always equals ``len(model_ids)`` and a model is never in a collection twice (409
ALREADY_IN_COLLECTION), even under racing requests.

A follow is its own document ``{_id, user_id, collection_id, created_at}``, unique per pair;
`followers` moves by one right after the insert or delete that won (docs/architecture.md §4).

Visibility: a private collection exists only for its owner (404 for everyone else, staff
included); only the owner edits, deletes, adds and removes (403 on a public collection).
"""
from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import catalog, users
from documents.common import paginate, render, require_id, search_regex, utcnow
from documents.errors import BadRequest, Conflict, Forbidden, NotFound

COLLECTION = "collections"
FOLLOWERS = "collection_followers"
MAX_MODELS = 500

INDEXES = {
    COLLECTION: [
        IndexModel([("owner_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("is_public", ASCENDING), ("created_at", DESCENDING)]),
    ],
    FOLLOWERS: [
        IndexModel([("user_id", ASCENDING), ("collection_id", ASCENDING)], unique=True),
        IndexModel([("collection_id", ASCENDING), ("created_at", DESCENDING)]),
    ],
}

SORT = [("created_at", DESCENDING), ("_id", DESCENDING)]


# --------------------------------------------------------------------------- reads

def is_owner(user: dict | None, collection: dict) -> bool:
    return bool(user) and user["_id"] == collection["owner_id"]


async def get_visible(db, collection_id, viewer: dict | None) -> dict:
    """The collection if `viewer` may see it (public, or their own); NotFound otherwise."""
    doc = await db[COLLECTION].find_one({"_id": require_id(collection_id, "Collection")})
    if doc is None or not (doc.get("is_public") or is_owner(viewer, doc)):
        raise NotFound("Collection not found", "COLLECTION_NOT_FOUND")
    return doc


async def get_owned(db, collection_id, user: dict) -> dict:
    """The collection if `user` owns it: NotFound when hidden from them, Forbidden (403) for
    someone else's public collection."""
    doc = await get_visible(db, collection_id, user)
    if not is_owner(user, doc):
        raise Forbidden("Only the owner can change this collection")
    return doc


async def list_page(db, viewer: dict | None, *, page: int, limit: int, mine: bool = False,
                    owner_id=None, search: str | None = None) -> tuple[list[dict], dict]:
    """One page of collections, newest first (seed 004 "Collections Listing").

    Public collections; `mine` → the viewer's own, private ones included; `owner_id` → one
    owner's (their private ones only when the viewer is that owner). `search` matches name or
    description literally.
    """
    query: dict = {"is_public": True}
    if mine:
        query = {"owner_id": viewer["_id"]}
    elif owner_id is not None:
        query = {"owner_id": owner_id}
        if not (viewer and viewer["_id"] == owner_id):
            query["is_public"] = True
    if search:
        regex = search_regex(search)
        query["$or"] = [{"name": regex}, {"description": regex}]
    return await paginate(db[COLLECTION], query, page=page, limit=limit, sort=SORT)


async def is_following(db, user: dict | None, collection: dict) -> bool:
    if not user:
        return False
    return await db[FOLLOWERS].count_documents(
        {"user_id": user["_id"], "collection_id": collection["_id"]}) > 0


async def count_view(db, collection: dict) -> int:
    """Count one view of the collection's page; returns the new `views`."""
    after = await db[COLLECTION].find_one_and_update(
        {"_id": collection["_id"]}, {"$inc": {"views": 1}}, return_document=ReturnDocument.AFTER)
    return int((after or collection).get("views") or 0)


async def models_page(db, collection: dict, viewer: dict | None, *, page: int,
                      limit: int) -> tuple[list[dict], dict]:
    """One page of the collection's models in the collection's order (model cards).

    Models the viewer may no longer see (unpublished, rejected, deleted) are skipped on the
    page; `total` counts the ids in the collection.
    """
    ids = list(collection.get("model_ids") or [])
    window = ids[(page - 1) * limit: page * limit]
    found = await catalog.get_many(db, window)
    models = [found[i] for i in window
              if i in found and (catalog.is_public(found[i]) or catalog.can_manage(viewer, found[i]))]
    pages = -(-len(ids) // limit)
    return models, {"total": len(ids), "page": page, "limit": limit, "pages": pages}


# --------------------------------------------------------------------------- writes

async def create(db, owner: dict, data: dict) -> dict:
    """Store a new collection of `owner` from `data` ({name, description, is_public})."""
    now = utcnow()
    doc = {"owner_id": owner["_id"], "name": data["name"],
           "description": data.get("description") or "", "is_public": data.get("is_public", True),
           "model_ids": [], "model_count": 0, "views": 0, "followers": 0,
           "created_at": now, "updated_at": now}
    result = await db[COLLECTION].insert_one(doc)
    doc["_id"] = result.inserted_id
    return doc


async def update(db, collection: dict, changes: dict) -> dict:
    """Apply `changes` (name, description, is_public) and return the new document."""
    after = await db[COLLECTION].find_one_and_update(
        {"_id": collection["_id"]}, {"$set": {**changes, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound("Collection not found", "COLLECTION_NOT_FOUND")
    return after


async def delete(db, collection: dict) -> None:
    """Delete the collection and its follow records."""
    await db[COLLECTION].delete_one({"_id": collection["_id"]})
    await db[FOLLOWERS].delete_many({"collection_id": collection["_id"]})


async def add_model(db, collection: dict, model: dict, position: int | None = None) -> dict:
    """Put `model` into the collection at `position` (0-based; default and past the end: last).

    One conditional update: not already there (409 ALREADY_IN_COLLECTION), fewer than
    MAX_MODELS (409 COLLECTION_FULL). Returns the new document.
    """
    push: dict = {"$each": [model["_id"]]}
    if position is not None:
        push["$position"] = position
    after = await db[COLLECTION].find_one_and_update(
        {"_id": collection["_id"], "model_ids": {"$ne": model["_id"]},
         f"model_ids.{MAX_MODELS - 1}": {"$exists": False}},
        {"$push": {"model_ids": push}, "$inc": {"model_count": 1}, "$set": {"updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if after is not None:
        return after
    current = await db[COLLECTION].find_one({"_id": collection["_id"]})
    if current is None:
        raise NotFound("Collection not found", "COLLECTION_NOT_FOUND")
    if model["_id"] in (current.get("model_ids") or []):
        raise Conflict("The model is already in this collection", "ALREADY_IN_COLLECTION")
    raise Conflict(f"A collection holds at most {MAX_MODELS} models", "COLLECTION_FULL")


async def remove_model(db, collection: dict, model_id) -> dict:
    """Take `model_id` out of the collection; NotFound MODEL_NOT_IN_COLLECTION when absent."""
    oid = require_id(model_id, "Model")
    after = await db[COLLECTION].find_one_and_update(
        {"_id": collection["_id"], "model_ids": oid},
        {"$pull": {"model_ids": oid}, "$inc": {"model_count": -1}, "$set": {"updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if after is None:
        raise NotFound("The model is not in this collection", "MODEL_NOT_IN_COLLECTION")
    return after


async def _bump_followers(db, collection_id, step: int) -> int:
    after = await db[COLLECTION].find_one_and_update(
        {"_id": collection_id}, {"$inc": {"followers": step}}, return_document=ReturnDocument.AFTER)
    return int((after or {}).get("followers") or 0)


async def follow(db, user: dict, collection: dict) -> int:
    """`user` follows the collection; returns the new `followers`. BadRequest
    CANNOT_FOLLOW_OWN (400) for one's own; Conflict ALREADY_FOLLOWING (409)."""
    if is_owner(user, collection):
        raise BadRequest("You cannot follow your own collection", "CANNOT_FOLLOW_OWN")
    try:
        await db[FOLLOWERS].insert_one({"user_id": user["_id"], "collection_id": collection["_id"],
                                        "created_at": utcnow()})
    except DuplicateKeyError:
        raise Conflict("You already follow this collection", "ALREADY_FOLLOWING") from None
    return await _bump_followers(db, collection["_id"], 1)


async def unfollow(db, user: dict, collection: dict) -> int:
    """`user` stops following; returns the new `followers`. NotFound NOT_FOLLOWING (404)."""
    removed = await db[FOLLOWERS].find_one_and_delete(
        {"user_id": user["_id"], "collection_id": collection["_id"]})
    if removed is None:
        raise NotFound("You do not follow this collection", "NOT_FOLLOWING")
    return await _bump_followers(db, collection["_id"], -1)


# --------------------------------------------------------------------------- rendering

def render_collection(doc: dict, owners: dict, *, is_following: bool | None = None) -> dict:
    """A collection in API form: `model_ids` as strings, the owner's brief card, and
    `is_following` when known."""
    out = render(doc)
    out["owner"] = users.render_brief(owners.get(doc["owner_id"]))
    if is_following is not None:
        out["is_following"] = is_following
    return out


async def render_many(db, docs: list[dict]) -> list[dict]:
    """Collections in API form with their owners fetched in one query (list views omit the
    full `model_ids`, keeping the first four as `preview_model_ids`)."""
    owners = await users.get_many(db, [d["owner_id"] for d in docs])
    out = []
    for doc in docs:
        item = render_collection({k: v for k, v in doc.items() if k != "model_ids"}, owners)
        item["preview_model_ids"] = [str(i) for i in (doc.get("model_ids") or [])[:4]]
        out.append(item)
    return out


async def remove_model_everywhere(db, model_id) -> int:
    """Take a deleted model out of every collection (each one's `model_count` moves with it).

    For `documents.model_writes.delete_model` callers. Returns how many collections held it.
    """
    changed = 0
    async for doc in db[COLLECTION].find({"model_ids": model_id}, {"_id": 1}):
        result = await db[COLLECTION].update_one(
            {"_id": doc["_id"], "model_ids": model_id},
            {"$pull": {"model_ids": model_id}, "$inc": {"model_count": -1},
             "$set": {"updated_at": utcnow()}})
        changed += result.modified_count
    return changed
