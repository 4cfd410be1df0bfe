"""Events written while the broker could not take them: kept in order, published when it can.

An event whose database write succeeded is never dropped because Redis is down. The hub
delivers it to this instance's sockets at once (offset null) and puts it in the `Outbox`, a
bounded queue of this instance (`OUTBOX_SIZE` events). A flusher publishes the queue in
order — each event then gets its offset, its history entry and reaches every instance —
as soon as the broker is back, retrying with exponential backoff and full jitter
(redis-py's `ExponentialWithJitterBackoff`). While the queue is not empty new history events
join its tail, so that order is kept.

When the queue is full, an event is not queued: its channel is marked *overflowed*, and
once the queue has drained a ``resync`` event (reason ``outbox_overflow``) is published on
that channel so that every subscriber, on every instance, refetches over REST instead of
living with a gap. An event the broker refuses for good (not a connection problem) is
handled the same way.

Local sockets that already got an event with offset null do not get it a second time when
it comes back from the broker with its offset: each entry keeps the join sequence number of
the newest local socket at the time (`seq`); the hub delivers the echo only to sockets that
joined after it (see `Hub._fanout`).
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("hwc3d.realtime")

TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


@dataclass(slots=True)
class Entry:
    channel: str
    head: str
    seq: int                # sockets with a join sequence number above it did not get it
    history: bool = True    # False: a control message (no offset, no history)


class Outbox:
    """The bounded queue of events waiting for the broker (see module doc)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.entries: collections.deque[Entry] = collections.deque()
        self.overflowed: set[str] = set()
        self.overflows = 0
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, channel: str, head: str, seq: int, history: bool = True) -> bool:
        """Queue an event; False (and `channel` marked overflowed) when the queue is full."""
        self._wake.set()
        if len(self.entries) >= self.limit:
            if history:
                self.overflowed.add(channel)
            self.overflows += 1
            return False
        self.entries.append(Entry(channel, head, seq, history))
        return True

    async def run(self, ready: Callable[[], bool], publish: Callable[[Entry], Awaitable],
                  dropped: Callable[[Entry], None],
                  resync: Callable[[str], Awaitable]) -> None:
        """Publish queued events in order while `ready()`; then resync overflowed channels.

        `publish(entry)` raises a `TRANSIENT` error to be retried later, any other error to
        drop the entry (`dropped(entry)` is called, its channel is resynced).
        """
        backoff = ExponentialWithJitterBackoff(cap=1.0, base=0.05)
        failures = 0
        while True:
            if not self.entries and not self.overflowed:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not ready():
                failures += 1
                await asyncio.sleep(backoff.compute(failures))
                continue
            if self.entries:
                entry = self.entries[0]
                try:
                    await publish(entry)
                except asyncio.CancelledError:
                    raise
                except TRANSIENT as exc:
                    failures += 1
                    log.debug("outbox publish on %s failed, retrying: %s", entry.channel, exc)
                    await asyncio.sleep(backoff.compute(failures))
                    continue
                except Exception:
                    log.warning("outbox event on %s refused; the channel will be resynced",
                                entry.channel, exc_info=True)
                    self.overflowed.add(entry.channel)
                    dropped(entry)
                if self.entries and self.entries[0] is entry:
                    self.entries.popleft()
                failures = 0
                continue
            channels, self.overflowed = sorted(self.overflowed), set()
            log.warning("outbox overflowed on %d channels; sending resync", len(channels))
            for channel in channels:
                await resync(channel)
