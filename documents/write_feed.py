"""The embedded store's write feed: what a change stream tells a MongoDB client, for the
in-memory store that has none (docs/architecture.md §1, §4).

The embedded store lives in one process, so every write to it passes through that process's
database object. `FeedDatabase` wraps that object: collections named in the feed come back
wrapped, and each write method of theirs (pymongo's `insert_*`, `update_*`, `replace_one`,
`delete_*`, `find_one_and_*`, `bulk_write`, `drop`, and `drop_collection` on the database)
calls the feed's listeners for that collection once the write returned. Reads and every
other collection pass straight through. A listener takes no argument: it learns that the
collection changed, not how (a cache empties itself).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

WRITE_METHODS = frozenset({
    "insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one",
    "delete_many", "find_one_and_update", "find_one_and_replace", "find_one_and_delete",
    "bulk_write", "drop"})


class WriteFeed:
    """Listeners by collection name."""

    def __init__(self) -> None:
        self.listeners: dict[str, list[Callable[[], None]]] = {}

    def listen(self, collection: str, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener()` after every write to `collection`; returns the function that
        stops it."""
        self.listeners.setdefault(collection, []).append(listener)
        return lambda: self.listeners.get(collection, []).remove(listener)

    def changed(self, collection: str) -> None:
        for listener in list(self.listeners.get(collection, ())):
            listener()


class FeedCollection:
    """A collection whose write methods tell the feed (module docstring)."""

    def __init__(self, inner: Any, feed: WriteFeed, name: str):
        self._inner, self._feed, self._name = inner, feed, name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._inner, attribute)
        if attribute not in WRITE_METHODS:
            return value

        @wraps(value)
        async def write(*args, **kwargs):
            try:
                return await value(*args, **kwargs)
            finally:
                self._feed.changed(self._name)

        return write


class FeedDatabase:
    """A database whose collections named in `feed` report their writes (module docstring)."""

    def __init__(self, inner: Any, feed: WriteFeed):
        self._inner, self.feed = inner, feed

    def _collection(self, name: str, collection: Any) -> Any:
        return FeedCollection(collection, self.feed, name) if name in self.feed.listeners \
            else collection

    def __getitem__(self, name: str) -> Any:
        return self._collection(name, self._inner[name])

    def __getattr__(self, attribute: str) -> Any:
        return self._collection(attribute, getattr(self._inner, attribute))

    def get_collection(self, name: str, *args, **kwargs) -> Any:
        return self._collection(name, self._inner.get_collection(name, *args, **kwargs))

    async def drop_collection(self, name: str, *args, **kwargs) -> Any:
        try:
            return await self._inner.drop_collection(name, *args, **kwargs)
        finally:
            self.feed.changed(name)
