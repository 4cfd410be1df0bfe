"""Loading the demo data of `fixtures/` into an empty store (docs/architecture.md §1 embedded default).

`fixtures/data/<collection>.json` holds a list of documents in MongoDB extended JSON
(`{"$oid": ...}`, `{"$date": ...}`), each with a fixed `_id`, so every instance seeded from
the fixtures starts with the same data. `fixtures/files/<key>` holds the real files the
documents point at (GLB/OBJ/STL models, PNG thumbnails); each is put into storage under
`<key>` unless it is there already; the documents' ``/files/<key>`` URLs are stored as the
absolute URLs the storage serves those files at (`_absolute_urls`).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from bson import json_util
from pymongo.errors import BulkWriteError

from documents import search_build, users

log = logging.getLogger(__name__)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@lru_cache(maxsize=1)
def _documents() -> tuple[tuple[str, str], ...]:
    """(collection, raw JSON) pairs, read once per process; parsed afresh per load."""
    return tuple((path.stem, path.read_text("utf-8"))
                 for path in sorted((FIXTURES / "data").glob("*.json")))


def fixture_documents() -> dict[str, list[dict]]:
    """Every fixture collection as fresh documents: ``{collection: [doc, ...]}``."""
    return {name: json_util.loads(raw) for name, raw in _documents()}


async def load_fixtures(db, storage=None) -> bool:
    """Insert the fixtures when the store has no users, and build their search documents
    (`documents.search_build.rebuild`); put fixture files into `storage`.

    Returns True when documents were inserted, False when the store was already seeded.
    Instances starting together on one empty MongoDB may both seed: every document has a
    fixed `_id`, so each is inserted once and the other's duplicates are skipped.
    """
    if storage is not None:
        await _load_files(storage)
    if await users.any_account(db):
        return False
    counts = {}
    for collection, docs in fixture_documents().items():
        if storage is not None:
            docs = [_absolute_urls(doc, storage) for doc in docs]
        if docs:
            counts[collection] = await _insert_new(db[collection], docs)
    log.info("seeded fixtures: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    await search_build.rebuild(db)
    return True


FILES_PREFIX = "/files/"


def _absolute_urls(value, storage):
    """`value` with every ``/files/<key>`` string of the fixtures turned into the absolute URL
    the storage serves `<key>` at (CDN_URL or PUBLIC_URL; docs/api-contract.md §2), so what
    a fresh site answers carries absolute URLs as uploads do, at no cost when rendering."""
    if isinstance(value, str):
        return storage.public_url(value[len(FILES_PREFIX):]) \
            if value.startswith(FILES_PREFIX) else value
    if isinstance(value, dict):
        return {k: _absolute_urls(v, storage) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute_urls(v, storage) for v in value]
    return value


async def _insert_new(collection, docs: list[dict]) -> int:
    """Insert `docs`, skipping those whose `_id` (or unique key) exists; returns the count
    inserted. Any other write error is raised."""
    try:
        return len((await collection.insert_many(docs, ordered=False)).inserted_ids)
    except BulkWriteError as exc:
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", ())):
            raise
        return exc.details.get("nInserted", 0)


async def _load_files(storage) -> None:
    root = FIXTURES / "files"
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            key = path.relative_to(root).as_posix()
            if not await storage.exists(key):
                await storage.put_file(key, path)
