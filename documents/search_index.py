"""The search index: one search document per searchable item, and the vocabulary
(README "Search"; seed 001 §17).

This module and `documents.search_engine` are the whole boundary between the product and
how text is matched: the rest of the server calls `index_model` / `remove` from the writes
that change an item, and the engine's `match` / `suggest` to read. A deployment that moves
to Atlas Search or a search engine replaces these two modules behind the same functions.

`search_docs` — one per item, `_id` "<kind>:<item id>"::

    {_id, kind: "models" | "users" | "communities" | "blog", item_id,
     visible: bool,                      # what anyone may find (never refreshed lazily)
     terms: [stem, ...],                 # every field's terms; multikey index with kind, visible
     fields: {t: [...], g: [...], c: [...], d: [...], u: [...]},   # title, tags, category,
                                         # description, creator name: stemmed terms
     label: str,                         # the title, for suggestions
     popularity: float, created_at,      # tie-breakers (popularity refreshed lazily)
     ...kind fields}                     # models: the list filters' fields (see MODEL_FIELDS)

`search_vocab` — one per (kind, field, key) with `df`, the number of VISIBLE items that
have it: field "term" (stems: the vocabulary typos are corrected against), and "tag",
"category", "creator" (phrases offered as suggestions). Moved by `$inc` in the same write
as the search document, from the difference between the stored document before and after.

On the embedded store the same functions move the in-process term index of
`documents.search_postings` right after each write of `search_docs` (no await between, so
no reader sees one without the other); `load_terms` rebuilds it at start-up.

`search_meta` — ``{_id: "vocab:<kind>", token}``: a random token replaced whenever an entry
enters or leaves the vocabulary, so every instance knows when to reload the vocabulary it
keeps in memory (the store is the truth); ``{_id: "built"}`` once the index was built.
"""
from __future__ import annotations

import math
import uuid
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError

from documents import search_postings, search_text
from documents.common import utcnow

SEARCH = "search_docs"
VOCAB = "search_vocab"
META = "search_meta"

INDEXES = {
    SEARCH: [IndexModel([("kind", ASCENDING), ("visible", ASCENDING), ("terms", ASCENDING)])],
    VOCAB: [IndexModel([("kind", ASCENDING), ("field", ASCENDING), ("key", ASCENDING)]),
            IndexModel([("kind", ASCENDING), ("field", ASCENDING), ("df", DESCENDING)])],
}

# The model fields copied into its search document, so that the list filters of
# `documents.model_listing.filter_query` (same field names) and the facets run on search documents.
MODEL_FIELDS = ("status", "is_published", "category", "tags", "price_cents", "is_free",
                "has_animations", "has_rigging", "poly_count", "creator_id", "file_format",
                "file_formats")
PHRASE_FIELDS = ("tag", "category", "creator")


def model_popularity(model: dict) -> float:
    """log(1 + 5·sales + 3·likes + 2·downloads + views/10): the tie-breaker after relevance."""
    raw = (5 * (model.get("sales_count") or 0) + 3 * (model.get("likes") or 0)
           + 2 * (model.get("downloads") or 0) + (model.get("views") or 0) / 10)
    return round(math.log1p(max(raw, 0)), 6)


def model_document(model: dict, creator: dict | None) -> dict:
    """The search document of `model` (whose creator is `creator`) without `_id`."""
    creator = creator or {}
    name = " ".join(filter(None, (creator.get("username"), creator.get("full_name"))))
    tags = [t for t in model.get("tags") or () if isinstance(t, str)]
    fields = {"t": search_text.terms(model.get("title")),
              "g": search_text.terms(" ".join(tags)),
              "c": search_text.terms(model.get("category")),
              "d": search_text.terms(model.get("description")),
              "u": search_text.terms(name)}
    phrases = [("tag", t) for t in tags] + [("category", model.get("category"))]
    if creator.get("username"):
        phrases.append(("creator", creator["username"]))
    return {
        "kind": "models", "item_id": model["_id"],
        "visible": model.get("status") == "approved" and bool(model.get("is_published")),
        **_terms(fields), "label": model.get("title") or "",
        "phrases": [[f, v] for f, v in phrases if v],
        "popularity": model_popularity(model), "created_at": model.get("created_at"),
        **{name: model.get(name) for name in MODEL_FIELDS},
    }


def _terms(fields: dict) -> dict:
    everything = list(dict.fromkeys(t for ts in fields.values() for t in ts))
    return {"fields": fields, "terms": everything}


# --------------------------------------------------------------------------- writes

def _entries(doc: dict | None) -> dict[tuple[str, str], str]:
    """The vocabulary entries a stored search document counts for: {(field, key): value};
    none when it is not visible."""
    if not doc or not doc.get("visible"):
        return {}
    out = {("term", t): t for t in doc.get("terms") or ()}
    for field, value in doc.get("phrases") or ():
        k = search_text.key(value)
        if k:
            out[(field, k)] = value
    return out


def _vocab_id(kind: str, field: str, key: str) -> str:
    return f"{kind}|{field}|{key}"


async def _move_vocabulary(db, kind: str, before: dict | None, after: dict | None) -> None:
    """`$inc` the vocabulary by the difference of two stored versions of a search document;
    a new token in `search_meta` when an entry enters or leaves the vocabulary."""
    old, new = _entries(before), _entries(after)
    changed = False
    for step, entries in ((-1, {k: v for k, v in old.items() if k not in new}),
                          (1, {k: v for k, v in new.items() if k not in old})):
        for (field, k), value in entries.items():
            update: dict = {"$inc": {"df": step},
                            "$setOnInsert": {"kind": kind, "field": field, "key": k}}
            if step > 0:
                update["$set"] = {"value": value}
            else:
                update["$setOnInsert"]["value"] = value
            entry = await db[VOCAB].find_one_and_update(
                {"_id": _vocab_id(kind, field, k)}, update, upsert=True,
                return_document=ReturnDocument.AFTER)
            if entry["df"] == (1 if step > 0 else 0):
                changed = True
    if changed:
        await new_token(db, kind)


async def new_token(db, kind: str) -> None:
    """Tell every instance that the vocabulary of `kind` changed."""
    await db[META].update_one({"_id": f"vocab:{kind}"},
                              {"$set": {"token": uuid.uuid4().hex, "at": utcnow()}}, upsert=True)


async def put(db, kind: str, item_id, doc: dict) -> None:
    """Store the search document `doc` of one item and move the vocabulary with it."""
    new = {"_id": f"{kind}:{item_id}", **doc}
    before = await db[SEARCH].find_one_and_replace({"_id": new["_id"]}, new, upsert=True,
                                                   return_document=ReturnDocument.BEFORE)
    if (index := search_postings.terms_of(db)) is not None:
        index.put(new)
    await _move_vocabulary(db, kind, before, new)


async def remove(db, kind: str, item_id) -> None:
    """Drop the search document of one item (deleted) and its vocabulary counts."""
    before = await db[SEARCH].find_one_and_delete({"_id": f"{kind}:{item_id}"})
    if (index := search_postings.terms_of(db)) is not None:
        index.remove(f"{kind}:{item_id}")
    await _move_vocabulary(db, kind, before, None)


async def remove_matching(db, kind: str, condition: dict) -> None:
    """Drop the search documents of `kind` matching `condition` (items deleted together)."""
    async for doc in db[SEARCH].find({"kind": kind, **condition}, {"item_id": 1}):
        await remove(db, kind, doc["item_id"])


async def index_model(db, model_id, model: dict | None, creator: dict | None) -> None:
    """(Re)index one model as stored now (`model`: None when it no longer exists), whose
    creator is `creator`. `documents.catalog` calls it from every write that changes a
    model, with the model read back after the write, so that two racing writes both leave
    the index describing the latest state."""
    if model is None:
        await remove(db, "models", model_id)
    else:
        await put(db, "models", model_id, model_document(model, creator))


async def rename_creator(db, creator: dict) -> None:
    """Rewrite the creator name (terms and suggestion phrase) in the search documents of
    `creator`'s models after a change of username or full name."""
    name = " ".join(filter(None, (creator.get("username"), creator.get("full_name"))))
    async for doc in db[SEARCH].find({"kind": "models", "creator_id": creator["_id"]}):
        fields = {**doc["fields"], "u": search_text.terms(name)}
        phrases = [p for p in doc.get("phrases") or () if p[0] != "creator"]
        if creator.get("username"):
            phrases.append(["creator", creator["username"]])
        new = {k: v for k, v in doc.items() if k != "_id"}
        new.update(_terms(fields), phrases=phrases)
        await put(db, "models", doc["item_id"], new)


async def refresh_popularity(db, kind: str, values: dict[Any, float]) -> None:
    """Store fresh popularity figures ``{item_id: popularity}`` (lazy: from read paths)."""
    index = search_postings.terms_of(db)
    for item_id, popularity in values.items():
        await db[SEARCH].update_one({"_id": f"{kind}:{item_id}"},
                                    {"$set": {"popularity": popularity}})
        if index is not None:
            index.set_fields(f"{kind}:{item_id}", {"popularity": popularity})


# --------------------------------------------------------------------------- building

def vocabulary_documents(kind: str, docs: list[dict]) -> list[dict]:
    """The vocabulary of `kind` counted from its search documents `docs` (a rebuild)."""
    counts: dict[tuple[str, str], list] = {}
    for doc in docs:
        for (field, k), value in _entries(doc).items():
            entry = counts.setdefault((field, k), [0, value])
            entry[0] += 1
    return [{"_id": _vocab_id(kind, field, k), "kind": kind, "field": field, "key": k,
             "value": value, "df": df} for (field, k), (df, value) in counts.items()]


async def replace_kind(db, kind: str, docs: list[dict]) -> None:
    """Replace every search document of `kind` by `docs` (built, without `_id`) and recount
    its vocabulary (a rebuild: `documents.search_build`)."""
    docs = [{"_id": f"{kind}:{d['item_id']}", **d} for d in docs]
    index = search_postings.terms_of(db)
    await db[SEARCH].delete_many({"kind": kind})
    if index is not None:
        index.replace_kind(kind, ())
    await db[VOCAB].delete_many({"kind": kind})
    if docs:
        await _insert_missing(db[SEARCH], docs)
        if index is not None:
            index.replace_kind(kind, docs)
        vocabulary = vocabulary_documents(kind, docs)
        if vocabulary:
            await _insert_missing(db[VOCAB], vocabulary)
    await new_token(db, kind)


async def _insert_missing(collection, docs: list[dict]) -> None:
    """Insert `docs` (fixed `_id`s), skipping those that exist: instances starting together
    on one empty store rebuild the same documents at once. Any other write error is raised."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", ())):
            raise


LOAD_CHUNK = 500     # search documents read at once by `load_terms`


async def load_terms(db) -> int:
    """Rebuild the in-process term index of `db` (the embedded store's, attached by the
    composition root: `documents.search_postings`) from `search_docs`, at start-up. Returns
    the number of search documents indexed; 0 on a store without one (MongoDB)."""
    index = search_postings.terms_of(db)
    if index is None:
        return 0
    # ids first, then the documents by id in chunks: mongomock's cursor copies its remaining
    # results at each step, which makes iterating one large result quadratic
    ids = await db[SEARCH].find({}, {"_id": 1}).distinct("_id")
    index.docs.clear()
    index.postings.clear()
    for start in range(0, len(ids), LOAD_CHUNK):
        async for doc in db[SEARCH].find({"_id": {"$in": ids[start:start + LOAD_CHUNK]}}):
            index.put(doc)
    return len(index.docs)


async def mark_built(db, counts: dict) -> None:
    """Record that the whole index was built."""
    await db[META].update_one({"_id": "built"}, {"$set": {"at": utcnow(), "counts": counts}},
                              upsert=True)


async def is_built(db) -> bool:
    """Whether the whole index was ever built on this store."""
    return await db[META].find_one({"_id": "built"}, {"_id": 1}) is not None
