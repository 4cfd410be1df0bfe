"""Brokers: how an event reaches every instance, and the bounded history of each channel.

A broker carries *frames* (the JSON text sent to sockets, docs/architecture.md §6) on named channels and
gives each history event a per-channel **offset**. Two implementations:

- `MemoryBroker` (embedded default, one process): delivers in-process; history is an
  in-memory ring of `history_size` frames per channel, forgotten `history_ttl` seconds after
  the channel's last event.
- `RedisBroker` (`REDIS_URL` set, several instances): one Lua script per publish does
  INCR offset → XADD to the channel's stream (``MAXLEN ~ history_size``, ``EXPIRE
  history_ttl``) → PUBLISH, atomically, so that pub/sub order is offset order and an event
  is never in one and not the other. Each process holds ONE pub/sub connection, subscribed
  only to the channels with local subscribers; a reader task reconnects with backoff when
  Redis goes away and resubscribes every current channel, then tells the hub, which fills
  the gap from history. `realtime.cluster.ClusterBroker` is the same on a Redis Cluster
  (sharded pub/sub, keys tagged by channel).

Offsets: the offset is the value of a per-channel counter (``INCR``), also used as the
stream entry id ``<offset>-0`` so history reads are a plain ``XRANGE``. A fresh counter
starts at ``unix_milliseconds * 1000`` rather than 0, so offsets keep growing even when Redis
loses its data (restart without persistence) or a channel's keys expire (unless a channel
averaged over a million events a second): an old offset is then simply older than the
retained history (``recovered: false``), never confused with a new event. Values stay below
2**53 (safe as JavaScript numbers) until the year 2255.

Interface used by the hub (both classes)::

    await broker.start(deliver, on_resubscribed)   # deliver(channel, offset|None, frame)
                                                   # (frame: text, or its UTF-8 bytes)
    await broker.subscribe(channel) -> bool        # True once the subscription is live
    await broker.unsubscribe(channel)
    await broker.publish(channel, head, history=True) -> (offset|None, frame)
    await broker.history(channel, since) -> (frames [(offset, frame)], complete, top)
    await broker.position(channel) -> top offset (0 when the channel has no history)
    broker.connected -> bool;  await broker.close()

`head` is the event's JSON without its closing brace, ending in ``"offset":``; the broker
appends the offset (or ``null`` for a transient event: typing, presence) and ``}``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from realtime.recent import PER_CHANNEL, RESTORE_SCRIPT, RecentFrames

log = logging.getLogger("hwc3d.realtime")

Deliver = Callable[[str, "int | None", "str | bytes"], None]
OnResubscribed = Callable[[list], Awaitable[None]]
OnLost = Callable[[list], Awaitable[None]]

def offset_base(clock: Callable[[], float] = time.time) -> int:
    """The value a fresh channel counter starts from (its first offset is one more):
    the current time in milliseconds × 1000."""
    return int(clock() * 1000) * 1000


def finish_frame(head: str, offset: int | None) -> str:
    """The frame text for `head` (see module doc) with `offset` filled in."""
    return f"{head}{'null' if offset is None else offset}}}"


# --------------------------------------------------------------------------- in-process

@dataclass
class _Ring:
    top: int
    touched: float
    frames: collections.deque = field(default_factory=collections.deque)


class MemoryBroker:
    """In-process broker and history for the embedded default (one instance)."""

    connected = True

    def __init__(self, history_size: int, history_ttl: float, clock=time.time):
        self._size, self._ttl, self._clock = history_size, history_ttl, clock
        self._rings: dict[str, _Ring] = {}
        self._subscribed: set[str] = set()
        self._deliver: Deliver | None = None
        self._publishes = 0

    async def start(self, deliver: Deliver, on_resubscribed: OnResubscribed | None = None,
                    on_lost: OnLost | None = None) -> None:
        self._deliver = deliver

    async def subscribe(self, channel: str) -> bool:
        self._subscribed.add(channel)
        return True

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def publish(self, channel: str, head: str, *, history: bool = True) -> tuple[int | None, str]:
        """Give a history event the next offset and keep it; deliver to local subscribers."""
        offset = self._append(channel, head) if history else None
        frame = finish_frame(head, offset)
        if offset is not None:
            self._rings[channel].frames.append((offset, frame))
        if channel in self._subscribed and self._deliver is not None:
            self._deliver(channel, offset, frame)
        return offset, frame

    def _append(self, channel: str, head: str) -> int:
        now = self._clock()
        ring = self._ring(channel, now)
        if ring is None:
            ring = self._rings[channel] = _Ring(offset_base(self._clock), now,
                                                collections.deque(maxlen=self._size))
        ring.top += 1
        ring.touched = now
        self._publishes += 1
        if self._publishes % 1000 == 0:
            self._prune(now)
        return ring.top

    def _ring(self, channel: str, now: float) -> _Ring | None:
        ring = self._rings.get(channel)
        if ring is not None and now - ring.touched > self._ttl:
            del self._rings[channel]
            return None
        return ring

    def _prune(self, now: float) -> None:
        for channel in [c for c, r in self._rings.items() if now - r.touched > self._ttl]:
            del self._rings[channel]

    async def position(self, channel: str) -> int:
        ring = self._ring(channel, self._clock())
        return ring.top if ring else 0

    async def history(self, channel: str, since: int) -> tuple[list, bool, int]:
        """Frames after offset `since`, whether they reach back to it, and the top offset."""
        ring = self._ring(channel, self._clock())
        if ring is None:
            return [], since == 0, 0
        frames = [(o, f) for o, f in ring.frames if o > since]
        return frames, _complete(frames, since, ring.top), ring.top

    async def close(self) -> None:
        self._deliver = None


def _complete(frames: list, since: int, top: int) -> bool:
    """True when `frames` (offsets > since, in order) are every event after `since`."""
    if since == top:
        return True
    if since > top or not frames:
        return False
    # offsets are unique and increasing: the first and the count tell that none is missing
    return frames[0][0] == since + 1 and frames[-1][0] == since + len(frames) == top


# --------------------------------------------------------------------------- Redis

PUBLISH_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[3]) end
local offset = string.format('%d', redis.call('INCR', KEYS[1]))
local frame = ARGV[2] .. offset .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], offset .. '-0', 'f', frame)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[1], offset .. '\\n' .. frame)
return offset
"""

MIN_BACKOFF, MAX_BACKOFF = 0.1, 1.0
MAX_CONNECTIONS, POOL_TIMEOUT = 200, 5.0


def pool_exhausted(exc: BaseException) -> bool:
    """True for redis-py's "no free connection in the pool within its timeout" error (Redis
    itself is fine, this process is busy), as opposed to Redis being unreachable."""
    return (type(exc).__name__ == "ConnectionError"
            and isinstance(exc.__cause__, asyncio.TimeoutError)
            and "No connection available" in str(exc))


class RedisBroker:
    """Broker on Redis: pub/sub between instances, streams for history (see module doc).

    `url` is REDIS_URL (its query string may set pool options, e.g. ``max_connections``).
    Commands share a blocking pool of `max_connections` connections: when all are busy a
    command waits up to `pool_timeout` s for one (see `pool_exhausted`).
    Keys: ``<prefix>off:<channel>`` (counter), ``<prefix>hist:<channel>``
    (stream); the pub/sub channel is ``<prefix>ch:<channel>``. Commands go through a client
    with one immediate retry (a connection broken by a Redis restart is replaced) and short
    timeouts, so that a Redis outage fails a publish at once (the hub then delivers locally)
    instead of stalling it. `connected` is False from the moment the pub/sub connection is
    lost until it is back: meanwhile the hub does not try Redis at all.
    """

    publish_script = PUBLISH_SCRIPT
    message_kind, subscribe_kind = b"message", b"subscribe"

    def __init__(self, url: str | None, history_size: int, history_ttl: int, *,
                 prefix: str = "hwc3d:rt:", ping_interval: float = 5.0,
                 max_connections: int = MAX_CONNECTIONS, pool_timeout: float = POOL_TIMEOUT):
        self._size, self._ttl, self._prefix = history_size, int(history_ttl), prefix
        self._open(url, max_connections, pool_timeout)
        self._script = self.commands.register_script(self.publish_script)
        self._ping_interval = ping_interval
        self._channels: set[str] = set()
        self._sent: dict[str, int] = {}
        self._acked: dict[str, int] = {}
        self._waiters: dict[str, list[tuple[int, asyncio.Future]]] = {}
        self._lock = asyncio.Lock()
        self._conn = None
        self._healthy = True
        self._first_attempt = asyncio.Event()
        self._last_read = 0.0
        self._tasks: list[asyncio.Task] = []
        self._deliver: Deliver | None = None
        self._on_resubscribed: OnResubscribed | None = None
        self._on_lost: OnLost | None = None
        self.recent = RecentFrames(min(history_size, PER_CHANNEL), ttl=history_ttl)
        self._restore = self.commands.register_script(RESTORE_SCRIPT)

    def _open(self, url: str, max_connections: int, pool_timeout: float) -> None:
        """The command client (`self.commands`) and the pool of the pub/sub connection."""
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # A blocking pool: a burst of joins (each needs a few commands) waits up to
        # `pool_timeout` s for a free connection instead of failing with "Too many
        # connections" (the default pool's behaviour once `max_connections` are in use).
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_timeout,
            retry=Retry(NoBackoff(), 1), socket_connect_timeout=2, socket_timeout=5)
        self.commands = aioredis.Redis.from_pool(pool)
        self._pubsub_pool = aioredis.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2, socket_timeout=None,
            protocol=2).connection_pool

    @property
    def connected(self) -> bool:
        """False while Redis is known to be unreachable (the pub/sub connection failed and is
        not back yet, or the history it lost is still being written back)."""
        return self._healthy

    def _key(self, kind: str, channel: str) -> str:
        return f"{self._prefix}{kind}:{channel}"

    async def start(self, deliver: Deliver, on_resubscribed: OnResubscribed | None = None,
                    on_lost: OnLost | None = None) -> None:
        """Start the reader (connects in the background; never raises when Redis is down).

        `on_lost(channels)` is awaited after a reconnect with the channels whose history
        could not be bridged (see `realtime.recent`), before `connected` turns True.
        """
        self._deliver, self._on_resubscribed, self._on_lost = deliver, on_resubscribed, on_lost
        self._tasks = [asyncio.create_task(self._run(), name="redis-pubsub-reader"),
                       asyncio.create_task(self._watchdog(), name="redis-pubsub-watchdog")]
        try:
            await asyncio.wait_for(self._first_attempt.wait(), 3.0)
        except TimeoutError:
            log.warning("Redis did not answer at start-up; going on, the reader keeps trying")

    # ---------------------------------------------------------------- subscriptions

    async def subscribe(self, channel: str, timeout: float = 5.0) -> bool:
        """Subscribe to `channel`; True once Redis confirmed it, False when Redis is down."""
        self._channels.add(channel)
        waiter = await self._send_subscribe([channel])
        if not waiter:
            return False
        try:
            return await asyncio.wait_for(asyncio.shield(waiter[0]), timeout)
        except TimeoutError:
            return False

    async def unsubscribe(self, channel: str) -> None:
        """Drop `channel` (no local subscriber left); errors are left to the reader."""
        self._channels.discard(channel)
        async with self._lock:
            if self._conn is not None and channel not in self._channels:
                try:
                    await self._conn.send_command("UNSUBSCRIBE", self._key("ch", channel))
                except Exception as exc:
                    log.debug("unsubscribe %s failed: %s", channel, exc)

    async def _send_subscribe(self, channels: list[str]) -> list[asyncio.Future]:
        """Send SUBSCRIBE for `channels` in one command; returns one confirmation future each."""
        async with self._lock:
            conn = self._conn
            if conn is None:
                return []
            futures = []
            for channel in channels:
                seq = self._sent[channel] = self._sent.get(channel, 0) + 1
                future = asyncio.get_running_loop().create_future()
                self._waiters.setdefault(channel, []).append((seq, future))
                futures.append(future)
            try:
                await conn.send_command("SUBSCRIBE", *(self._key("ch", c) for c in channels))
            except Exception as exc:
                log.debug("subscribe failed: %s", exc)
            return futures

    def _confirmed(self, channel: str) -> None:
        acked = self._acked[channel] = self._acked.get(channel, 0) + 1
        waiting = self._waiters.get(channel, [])
        for _seq, future in [w for w in waiting if w[0] <= acked]:
            if not future.done():
                future.set_result(True)
        self._waiters[channel] = [w for w in waiting if w[0] > acked]
        if not self._waiters[channel]:
            del self._waiters[channel]

    def _fail_waiters(self) -> None:
        for waiting in self._waiters.values():
            for _seq, future in waiting:
                if not future.done():
                    future.set_result(False)
        self._waiters.clear()
        self._sent.clear()
        self._acked.clear()

    # ---------------------------------------------------------------- reader

    async def _run(self) -> None:
        """Connect, (re)subscribe every current channel, read; on failure back off and retry."""
        delay, outage = MIN_BACKOFF, False
        while True:
            try:
                await self._connect()
                self._healthy = True
                self._first_attempt.set()
                if outage:
                    log.warning("Redis pub/sub reconnected; resubscribed %d channels",
                                len(self._channels))
                delay, outage = MIN_BACKOFF, False
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not outage:
                    log.warning("Redis pub/sub connection lost (%s); local delivery goes on", exc)
                outage, self._healthy = True, False
                self._first_attempt.set()
            await self._drop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _open_pubsub(self) -> None:
        conn = self._pubsub_pool.make_connection()
        try:
            await conn.connect()
        except BaseException:
            await conn.disconnect()
            raise
        async with self._lock:
            self._conn = conn

    async def _connect(self) -> None:
        await self._open_pubsub()
        self._last_read = time.monotonic()
        lost = await self.restore_history()
        if lost and self._on_lost is not None:
            await self._on_lost(lost)
        channels = sorted(self._channels)
        for start in range(0, len(channels), 500):
            futures = await self._send_subscribe(channels[start:start + 500])
            if futures and self._on_resubscribed is not None:
                asyncio.create_task(self._after_resubscribe(channels[start:start + 500], futures))

    async def _after_resubscribe(self, channels: list[str], futures: list) -> None:
        results = await asyncio.gather(*futures)
        live = [c for c, ok in zip(channels, results, strict=True) if ok]
        try:
            await self._on_resubscribed(live)
        except Exception:
            log.warning("gap repair after reconnect failed", exc_info=True)

    def _channel_of(self, name: bytes) -> str:
        """Our channel name from its pub/sub channel name (see `_key`)."""
        return name.decode()[len(self._prefix) + 3:]

    async def _read(self) -> None:
        while True:
            self._received(await self._conn.read_response())

    def _received(self, reply) -> bytes:
        """Handle one reply of a pub/sub connection; returns its kind."""
        self._last_read = time.monotonic()
        kind = reply[0]
        if kind == self.message_kind:
            channel = self._channel_of(reply[1])
            offset, _, frame = reply[2].partition(b"\n")
            offset = int(offset) if offset else None
            if offset is not None:
                self.recent.add(channel, offset, frame)
            if self._deliver is not None:
                self._deliver(channel, offset, frame)
        elif kind == self.subscribe_kind:
            self._confirmed(self._channel_of(reply[1]))
        return kind

    async def _drop(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
        self._fail_waiters()
        if conn is not None:
            await conn.disconnect(nowait=True)

    async def _watchdog(self) -> None:
        """PING the pub/sub connection; drop it when nothing came back for 3 intervals."""
        while True:
            await asyncio.sleep(self._ping_interval)
            conn = self._conn
            if conn is None:
                continue
            if time.monotonic() - self._last_read > 3 * self._ping_interval:
                log.warning("Redis pub/sub connection silent; reconnecting")
                await conn.disconnect(nowait=True)
                continue
            async with self._lock:
                try:
                    await conn.send_command("PING")
                except Exception as exc:
                    log.debug("pub/sub ping failed: %s", exc)

    # ---------------------------------------------------------------- publish and history

    async def publish(self, channel: str, head: str, *, history: bool = True) -> tuple[int | None, str]:
        """Publish to every instance; a history event gets its offset and goes in the stream.

        Raises redis errors when Redis cannot be reached (the hub falls back to local).
        """
        if not history:
            frame = finish_frame(head, None)
            await self._publish_transient(self._key("ch", channel), b"\n" + frame.encode())
            return None, frame
        known = self.recent.top(channel)
        offset = int(await self._script(
            keys=[self._key("off", channel), self._key("hist", channel)],
            args=[self._key("ch", channel), head, offset_base() if known is None else known,
                  self._size, self._ttl]))
        frame = finish_frame(head, offset)
        self.recent.add(channel, offset, frame)
        return offset, frame

    async def _publish_transient(self, name: str, data: bytes) -> None:
        await self.commands.publish(name, data)

    async def restore_history(self) -> list[str]:
        """Write this instance's recent frames back into Redis (see `realtime.recent`);
        returns the channels whose history cannot bridge them. Raises redis errors."""
        lost = []
        for channel, frames in self.recent.channels():
            args: list = [self._size, self._ttl]
            for offset, frame in frames:
                args += [offset, frame]
            if await self._restore(keys=[self._key("off", channel), self._key("hist", channel)],
                                   args=args):
                lost.append(channel)
        if lost:
            log.warning("history of %d channels could not be rebuilt after Redis came back",
                        len(lost))
        return lost

    async def position(self, channel: str) -> int:
        return int(await self.commands.get(self._key("off", channel)) or 0)

    async def history(self, channel: str, since: int) -> tuple[list, bool, int]:
        """Frames after offset `since`, whether they reach back to it, and the top offset.

        Counter and stream are read in one MULTI, so they agree.
        """
        async with self.commands.pipeline(transaction=True) as pipe:
            pipe.get(self._key("off", channel))
            pipe.xrange(self._key("hist", channel), min=f"({since}-0", max="+")
            top, entries = await pipe.execute()
        top = int(top or 0)
        frames = [(int(entry_id.split(b"-")[0]), fields[b"f"].decode())
                  for entry_id, fields in entries]
        return frames, _complete(frames, since, top), top

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._drop()
        await self._pubsub_pool.disconnect()
        await self.commands.aclose()
