"""The embedded document store (docs/architecture.md §1, "Embedded default"): mongomock-motor
in memory, with reads by `_id` that look documents up.

mongomock has no indexes: every query, a read of one document by `_id` included, evaluates
its filter against every document of the collection, so reading a page of models by id, or
rewriting one search document, costs the whole collection. MongoDB answers those through
its `_id` index. Here a query whose filter pins `_id` to one value or to an `$in` list of
values (ObjectId, string or integer; other conditions allowed beside it) looks those
documents up in mongomock's own store and evaluates the whole filter (mongomock's matcher)
on them only; every other query is mongomock's scan. Results are the same documents; an
`$in` read yields them in ascending `_id` order, as MongoDB's `_id` index does (mongomock's
scan yields insertion order, which no caller may rely on: docs/architecture.md §1, queries
every supported store answers alike).

`open_client(**kwargs)` → an `AsyncMongoMockClient` (kwargs: mongomock's, e.g. `tz_aware`).
"""
from __future__ import annotations

from collections.abc import Mapping

from bson import ObjectId
from mongomock import MongoClient
from mongomock.database import Database
from mongomock.filtering import filter_applies
from mongomock_motor import AsyncMongoMockClient

_FLAG = "_hwc3d_reads_by_id"
_LOOKUP_TYPES = (ObjectId, str, int)


def open_client(**kwargs) -> AsyncMongoMockClient:
    """An in-memory mongomock-motor client whose collections read by `_id` by lookup."""
    return AsyncMongoMockClient(mock_mongo_client=_Client(**kwargs))


def pinned_ids(spec) -> list | None:
    """The `_id` values a filter pins (``{_id: v}`` or ``{_id: {$in: [v, ...]}}`` with
    ObjectId, string or integer values, deduplicated), or None when it pins none."""
    if not isinstance(spec, Mapping) or "_id" not in spec:
        return None
    value = spec["_id"]
    if isinstance(value, Mapping):
        if set(value) != {"$in"} or not isinstance(value["$in"], list | tuple):
            return None
        values = list(value["$in"])
    else:
        values = [value]
    if not all(isinstance(v, _LOOKUP_TYPES) and not isinstance(v, bool) for v in values):
        return None
    return list(dict.fromkeys(values))


def _reads_by_id(collection) -> None:
    """Make `collection` (a mongomock Collection) look documents up when its filter pins
    `_id` (module docstring)."""
    scan = collection._iter_documents
    store = collection._store

    def iter_documents(spec):
        ids = pinned_ids(spec)
        if ids is None or store.is_empty:
            return scan(spec)
        found = []
        for value in ids:
            try:
                found.append(store[value])
            except KeyError:
                continue
        if len(found) > 1 and len({type(d["_id"]) for d in found}) == 1:
            found.sort(key=lambda d: d["_id"])
        return (doc for doc in found if filter_applies(spec, doc))

    collection._iter_documents = iter_documents
    setattr(collection, _FLAG, True)


class _Database(Database):
    def get_collection(self, name, *args, **kwargs):
        collection = super().get_collection(name, *args, **kwargs)
        if not getattr(collection, _FLAG, False):
            _reads_by_id(collection)
        return collection


class _Client(MongoClient):
    def get_database(self, name=None, *args, **kwargs):
        if name is not None and name not in self._database_accesses:
            self._database_accesses[name] = _Database(
                self, name, read_preference=self.read_preference,
                codec_options=self._codec_options, _store=self._store[name])
        return super().get_database(name, *args, **kwargs)
