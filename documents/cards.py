"""Creator cards: the brief user card shown beside every model (`users.render_brief`), kept
per process while a MongoDB change stream on `users` says when one changes.

A catalog page or a model shows its creators' cards; without this they cost one more query
per request. With a server that has change streams (MongoDB as a replica set — the
production deployment — and the SecantusDB test server), `open_cache(db)` watches `users`:
any insert, update, replace or delete of a user evicts that user's card, and anything else on
the stream (a drop, an invalidation, the stream failing) empties the cache and stops it until
the stream is open again. A card read while an event arrived is not kept, so a read racing a
write never keeps the old card. `users.update` also evicts at once, so a user's own instance
shows an edited profile on the very next request; other instances follow within the time a
change event takes (about a millisecond on a local server). The in-memory store has no change
streams, but it lives in one process whose every write passes its write feed
(`documents/write_feed.py`): `open_local_cache(db)` keeps cards there and empties them after
any write to `users`. The cache is part of the users collection's owner: `documents.users`
names the collection (every function here takes it as `collection`) and is the only caller
besides the composition root, which opens the cache.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

# The user fields `users.render_brief` shows: the only ones fetched for a card.
CARD_PROJECTION = {"username": 1, "full_name": 1, "avatar_url": 1, "is_verified_creator": 1}
MAX_CARDS = 50_000
RETRY_SECONDS = 1.0   # then 2, 3 ... up to 30 s between attempts

_caches: dict[int, CardCache] = {}  # by id() of the database object of an open cache


class CardCache:
    """Cards by user id, valid while `live` (the change stream is open)."""

    def __init__(self, db, collection: str):
        self.db, self.collection = db, collection
        self.cards: dict = {}
        self.generation = 0     # bumped by every eviction: reads that straddle one are not kept
        self.live = False
        self.task: asyncio.Task | None = None

    def evict(self, user_id=None) -> None:
        """Forget `user_id`'s card (all cards when None)."""
        self.generation += 1
        if user_id is None:
            self.cards.clear()
        else:
            self.cards.pop(user_id, None)

    async def follow(self) -> None:
        """Open the change stream and evict on its events; reopen it after a failure."""
        failures = 0
        while True:
            try:
                async with self.db[self.collection].watch() as stream:
                    await stream.try_next()  # the cursor is open: from here no change is missed
                    self.evict()
                    self.live, failures = True, 0
                    while True:
                        change = await stream.next()
                        if change.get("operationType") in ("insert", "update", "replace",
                                                           "delete"):
                            self.evict(change.get("documentKey", {}).get("_id"))
                        else:
                            self.live = False
                            self.evict()
                            break
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                        "creator cards: no change stream on users (cards are read from the "
                        "store until it opens)", exc_info=True)
            finally:
                self.live = False
                self.evict()
            await asyncio.sleep(min(RETRY_SECONDS * failures, 30.0))

    async def get(self, ids: list) -> dict:
        found = {i: self.cards[i] for i in ids if i in self.cards} if self.live else {}
        missing = [i for i in ids if i not in found]
        if missing:
            generation = self.generation
            fetched = await fetch(self.db, self.collection, missing)
            if self.live and generation == self.generation and len(self.cards) < MAX_CARDS:
                self.cards.update(fetched)
            found.update(fetched)
        return found


async def fetch(db, collection: str, ids: list) -> dict:
    """The cards of `ids` from the store as ``{ObjectId: user}``, in one query."""
    query = {"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": ids}}
    return {u["_id"]: u async for u in db[collection].find(query, CARD_PROJECTION)}


async def creator_cards(db, collection: str, ids: Iterable) -> dict:
    """The users `ids` (of `collection`) as ``{ObjectId: user}`` with only the fields of
    their card."""
    wanted = list({i for i in ids if i is not None})
    if not wanted:
        return {}
    cache = _caches.get(id(db))
    return (await cache.get(wanted) if cache is not None
            else await fetch(db, collection, wanted))


def evict(db, user_id) -> None:
    """Forget the card of `user_id` in this process (after a write to the user)."""
    cache = _caches.get(id(db))
    if cache is not None:
        cache.evict(user_id)


async def open_local_cache(db, collection: str):
    """Start caching the cards of `collection` in the embedded store `db` (a
    `write_feed.FeedDatabase`): valid at once, emptied after every write to `collection`;
    returns the closer."""
    cache = CardCache(db, collection)
    cache.live = True
    _caches[id(db)] = cache
    stop = db.feed.listen(collection, cache.evict)

    async def close() -> None:
        _caches.pop(id(db), None)
        stop()

    return close


async def open_cache(db, collection: str, *, wait: float = 5.0):
    """Start caching the cards of `collection` in `db` (a MongoDB server: the in-memory store
    has no change streams); returns the closer. Waits up to `wait` seconds for the stream to
    open, then carries on reading cards from the store until it does."""
    cache = CardCache(db, collection)
    _caches[id(db)] = cache
    cache.task = asyncio.get_running_loop().create_task(cache.follow())
    deadline = asyncio.get_running_loop().time() + wait
    while not cache.live and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)

    async def close() -> None:
        _caches.pop(id(db), None)
        cache.task.cancel()
        try:
            await cache.task
        except (asyncio.CancelledError, Exception):
            pass

    return close
