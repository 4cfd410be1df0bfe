"""Loading the demo data of `fixtures/` into an empty store (DESIGN §1 embedded default).

`fixtures/data/<collection>.json` holds a list of documents in MongoDB extended JSON
(`{"$oid": ...}`, `{"$date": ...}`), each with a fixed `_id`, so every instance seeded from
the fixtures starts with the same data. `fixtures/files/<key>` holds the real files the
documents point at (GLB/OBJ/STL models, PNG thumbnails); each is put into storage under
`<key>` unless it is there already.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from bson import json_util

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
    """Insert the fixtures when the store has no users; put fixture files into `storage`.

    Returns True when documents were inserted, False when the store was already seeded.
    """
    if storage is not None:
        await _load_files(storage)
    if await db["users"].find_one({}, {"_id": 1}):
        return False
    counts = {}
    for collection, docs in fixture_documents().items():
        if docs:
            await db[collection].insert_many(docs)
        counts[collection] = len(docs)
    log.info("seeded fixtures: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return True


async def _load_files(storage) -> None:
    root = FIXTURES / "files"
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            key = path.relative_to(root).as_posix()
            if not await storage.exists(key):
                await storage.put_file(key, path)
