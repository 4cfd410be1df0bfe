"""The hub of one process (docs/architecture.md §6): channel registry, local fan-out, publish, presence.

- Registry: channel → the local `Connection`s joined to it. The broker is subscribed to a
  channel while it has at least one local connection (Redis: SUBSCRIBE on the first,
  UNSUBSCRIBE when the last leaves).
- `publish(channel, type, data)` is the one publish function: the broker gives a history
  event its offset, keeps it and sends it to every instance (this one included); each hub
  writes the same frame text to its local sockets. When Redis is unreachable the event is
  delivered to this instance's sockets only, with offset null and no history, and publish
  still returns (never raises for a broker failure).
- Per channel the hub remembers the last offset it delivered. After a Redis reconnect the
  broker resubscribes and the hub reads the channel's history from that offset, holding live
  events meanwhile, so events published elsewhere during the outage still arrive, in order,
  once (as far as the history reaches).
- Presence (support, community; `realtime.hub_presence`): per-user `presence_joined` /
  `presence_left` in tickets and small communities, a `presence_count` at most once per
  second in large ones. Presence and typing events are transient: offset null, not in
  history.
- Broker outages: events wait in the outbox (`realtime.outbox`); history Redis lost is
  rebuilt (`realtime.recent`); otherwise subscribers get a `resync` frame.
- Recovery reasons in the `recovered` frame: `invalid_since`, `history_expired`,
  `history_unavailable` (Redis unreachable) and `history_busy` (no Redis connection free
  within the pool's wait, after retries: this instance is overloaded, Redis is fine).

Frames (server → client): ``{"type", "channel", "offset", "data", "ts"}``; on join a socket
gets ``connected`` ({channel, offset: latest offset, user_id}), ``presence`` (when tracked),
``recovered`` (when it asked `since`), the missed events, then live events.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from realtime.broker import MemoryBroker, RedisBroker, finish_frame, pool_exhausted
from realtime.connection import Connection, control_frame, now_iso
from realtime.control import CONTROL, HubControl
from realtime.hub_presence import COALESCE_ABOVE, HubPresence
from realtime.outbox import Outbox
from realtime.presence import MemoryPresence, RedisPresence

log = logging.getLogger("hwc3d.realtime")

GOING_AWAY = 1001
RESYNC = "resync"
OUTBOX_SIZE = 10_000


def resync_frame(channel: str, reason: str) -> str:
    """``{"type": "resync", "channel", "reason", "offset": null, "data": {"reason"}, "ts"}``:
    this socket may have missed events of `channel`; the client refetches over REST."""
    return json.dumps({"type": RESYNC, "channel": channel, "reason": reason, "offset": None,
                       "data": {"reason": reason}, "ts": now_iso()}, separators=(",", ":"))


class ShuttingDown(Exception):
    """The hub no longer accepts sockets (SIGTERM)."""


def hub_label(channel: str) -> str:
    """The metrics label of `channel`: its kind (support, community, notifications)."""
    return channel.split(":", 1)[0]


HISTORY_ATTEMPTS = 3


def _lost_reason(complete: bool, since: int | None, top: int | None,
                 failure: str | None) -> str | None:
    """Why a recovery failed: invalid_since, history_unavailable (Redis down), history_busy
    (no Redis connection free in time, Redis itself fine) or history_expired (the events
    after `since` are no longer all kept)."""
    if complete:
        return None
    if since is None:
        return "invalid_since"
    return failure or ("history_unavailable" if top is None else "history_expired")


class Hub(HubPresence, HubControl):
    """Channel registry and fan-out of one process; see the module doc."""

    def __init__(self, settings, broker, presence, metrics, *, instance_id: str | None = None,
                 heartbeat: float = 10.0, render: Callable[[Any], Any] | None = None):
        self.settings, self.broker, self.presence, self.metrics = settings, broker, presence, metrics
        # Turns event data into JSON-ready API form (ids, datetimes, cents): handed in by
        # the Application, since realtime/ knows nothing of documents.
        self.render = render or (lambda data: data)
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self._heartbeat = heartbeat
        self._channels: dict[str, set[Connection]] = {}
        self._subscribed: dict[str, asyncio.Future] = {}
        self._last: dict[str, int] = {}
        self._repairing: dict[str, list] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._tasks: list[asyncio.Task] = []
        self._leaving: set[asyncio.Task] = set()
        self.outbox = Outbox(getattr(settings, "outbox_size", OUTBOX_SIZE))
        self._echo: dict[str, dict[bytes, int]] = {}
        self._joins = 0                 # join sequence number of the newest local socket
        self._coalesce_above = getattr(settings, "presence_coalesce_above", COALESCE_ABOVE)
        self._users: dict[str, int] = {}    # users present per channel, as last seen
        self._uncounted: set[str] = set()   # channels whose presence_count is due
        self._count_due = asyncio.Event()

    async def start(self) -> None:
        """Start the broker and the presence heartbeat."""
        await self.broker.start(self._deliver, self._resubscribed, self._history_lost)
        await self.broker.subscribe(CONTROL)
        self._tasks.append(asyncio.create_task(self._beat(), name="hub-heartbeat"))
        self._tasks.append(asyncio.create_task(self._count_presence(), name="hub-presence-count"))
        self._tasks.append(asyncio.create_task(self.outbox.run(
            lambda: self.broker.connected, self._publish_queued, self._dropped, self._resync),
            name="hub-outbox"))

    # ---------------------------------------------------------------- publish

    async def publish(self, channel: str, type: str, data: dict, *, history: bool = True) -> dict:
        """Send event `type` with `data` to every subscriber of `channel` on every instance.

        `data` is rendered (ids → strings, datetimes → ISO Z). Returns the event
        ``{"type", "channel", "offset", "data", "ts"}``; `offset` is None for a transient event
        (`history=False`: typing, presence) or when the event waits in the outbox (the broker
        is unreachable: it is delivered to this instance's sockets now and published, with its
        offset, when the broker is back; see `realtime.outbox`). Never raises for a broker
        failure. A ``resync`` event also carries its reason at the top level.
        """
        event = {"type": type, "channel": channel, "data": self.render(data), "ts": now_iso()}
        if type == RESYNC:
            event["reason"] = event["data"].get("reason")
        head = json.dumps(event, separators=(",", ":"), default=str)[:-1] + ',"offset":'
        offset = None
        self.metrics.events_published.labels(hub_label(channel)).inc()
        if history and (self.outbox.entries or not self.broker.connected):
            self._queue(channel, head)
            return {**event, "offset": None}
        try:
            if not self.broker.connected:
                raise ConnectionError("broker unreachable")
            offset, _frame = await self.broker.publish(channel, head, history=history)
        except Exception as exc:
            if history:
                log.warning("publish on %s waits in the outbox: %s", channel, exc)
                self._queue(channel, head)
            else:
                self._deliver(channel, None, finish_frame(head, None))
        return {**event, "offset": offset}

    def _queue(self, channel: str, head: str) -> None:
        """Deliver locally now (offset null) and queue for the broker (see realtime.outbox)."""
        self._deliver(channel, None, finish_frame(head, None))
        if self.outbox.put(channel, head, self._joins) and self._channels.get(channel):
            self._echo.setdefault(channel, {})[head.encode()] = self._joins

    async def _publish_queued(self, entry) -> None:
        await self.broker.publish(entry.channel, entry.head, history=entry.history)

    def _dropped(self, entry) -> None:
        echo = self._echo.get(entry.channel)
        if echo is not None:
            echo.pop(entry.head.encode(), None)

    async def _resync(self, channel: str, reason: str = "outbox_overflow") -> None:
        self.metrics.resyncs.labels(hub_label(channel), reason).inc()
        await self.publish(channel, RESYNC, {"reason": reason})

    async def _history_lost(self, channels: list[str]) -> None:
        """The broker could not rebuild these channels' history: resync their subscribers."""
        for channel in channels:
            await self._resync(channel, "history_lost")

    def _deliver(self, channel: str, offset: int | None, frame: str | bytes) -> None:
        if channel == CONTROL:
            self._control(frame)
            return
        held = self._repairing.get(channel)
        if held is not None:
            held.append((offset, frame))
        else:
            self._fanout(channel, offset, frame)

    def _fanout(self, channel: str, offset: int | None, frame: str | bytes) -> None:
        if offset is not None:
            last = self._last.get(channel)
            if last is not None and offset <= last:
                return
            self._last[channel] = offset
        members = self._channels.get(channel)
        if not members:
            return
        if isinstance(frame, str):
            frame = frame.encode()      # once, not once per socket
        if self._echo and offset is not None and channel in self._echo:
            seen = self._echo[channel].pop(frame[:frame.rfind(b'"offset":') + 9], None)
            if not self._echo[channel]:
                del self._echo[channel]
            if seen is not None:        # local sockets up to `seen` got it from the outbox
                members = [conn for conn in members if conn.seq > seen]
        for conn in list(members):
            conn.deliver(offset, frame)
        self.metrics.events_delivered.labels(hub_label(channel)).inc(len(members))

    async def _resubscribed(self, channels: list[str]) -> None:
        """After a Redis reconnect: re-add presence, fill each channel's gap from history."""
        for channel in channels:
            if channel not in self._channels:
                continue
            try:
                await self._restore_presence(channel)
            except Exception as exc:
                log.warning("presence of %s not restored: %s", channel, exc)
            last = self._last.get(channel)
            if last is None or channel in self._repairing:
                continue
            self._repairing[channel] = []
            reason = "history_lost"
            try:
                frames, complete, _top = await self.broker.history(channel, last)
            except Exception as exc:
                log.warning("history of %s unavailable after reconnect: %s", channel, exc)
                frames, complete, reason = [], False, "history_unavailable"
            held = self._repairing.pop(channel, [])
            if not complete:            # the history does not bridge the outage
                self.metrics.resyncs.labels(hub_label(channel), reason).inc()
                for conn in list(self._channels.get(channel, ())):
                    conn.push(resync_frame(channel, reason), force=True)
            for offset, frame in frames + held:
                self._fanout(channel, offset, frame)

    # ---------------------------------------------------------------- sockets

    def connection(self, send, close, info: dict, session: str | None = None) -> Connection:
        """A `Connection` for a socket with `send`/`close`, presence `info` and the sign-in
        `session` it belongs to (closed by `disconnect`); queue bound: settings.ws_queue_size."""
        conn = Connection(send, close, limit=self.settings.ws_queue_size, info=info,
                          on_slow=self._slow)
        conn.session = session
        return conn

    def _slow(self, conn: Connection) -> None:
        """A socket overflowed its queue: count it and take it out of the channel at once
        (its socket is being closed with 4008)."""
        self.metrics.slow_consumers.labels(hub_label(conn.channel or "unknown")).inc()
        self.release(conn)

    async def join(self, conn: Connection, channel: str, *, since: int | None = None,
                   presence: bool = True, recover: bool = False) -> None:
        """Join `conn` to `channel` (already authorized) and send its opening frames.

        `recover` with `since` (an offset) sends the events after it, or ``recovered: false``
        when the history no longer reaches back (or `since` is None: the client sent a bad
        one). Raises ShuttingDown after `shutdown`.
        """
        if self._closing:
            raise ShuttingDown()
        if conn.left:
            return
        conn.channel = channel
        self._joins += 1
        conn.seq = self._joins
        self._channels.setdefault(channel, set()).add(conn)
        self._idle.clear()
        self.metrics.sockets.labels(hub_label(channel)).inc()
        await self._subscribe(channel)
        if presence and not conn.left:
            await self._add_presence(conn, channel)
        if conn.left:
            return
        frames, complete, top, failure = await self._position(
            channel, since if recover else None, recover)
        conn.push(control_frame("connected", channel, {"channel": channel, "offset": top,
                                                       "user_id": conn.info.get("user_id")}))
        if presence:
            conn.push(control_frame("presence", channel, await self.presence_snapshot(channel)))
        if recover:
            conn.push(control_frame("recovered", channel, {
                "recovered": complete, "since": since, "offset": top,
                "missed": len(frames) if complete else None,
                "reason": _lost_reason(complete, since, top, failure)}))
        conn.go_live(frames if complete else [], top)

    async def _subscribe(self, channel: str) -> None:
        ready = self._subscribed.get(channel)
        if ready is None:
            ready = self._subscribed[channel] = asyncio.get_running_loop().create_future()
            try:
                ok = await self.broker.subscribe(channel)
            except Exception as exc:
                log.warning("subscribe %s failed: %s", channel, exc)
                ok = False
            ready.set_result(ok)
        await asyncio.shield(ready)

    async def _position(self, channel: str, since: int | None,
                        recover: bool) -> tuple[list, bool, int | None, str | None]:
        """(missed frames, complete, latest offset, failure); on failure (.., False, None,
        "history_unavailable" | "history_busy"). A busy connection pool is retried."""
        for attempt in range(HISTORY_ATTEMPTS):
            try:
                if since is None:
                    return [], not recover, await self.broker.position(channel), None
                return (*await self.broker.history(channel, since), None)
            except Exception as exc:
                if pool_exhausted(exc) and attempt + 1 < HISTORY_ATTEMPTS:
                    continue
                log.warning("history of %s unavailable: %s", channel, exc)
                return [], False, None, ("history_busy" if pool_exhausted(exc)
                                         else "history_unavailable")
        raise AssertionError("unreachable")

    def release(self, conn: Connection) -> None:
        """`leave` from synchronous code (a socket's on_close); the hub keeps the task."""
        task = asyncio.create_task(self.leave(conn))
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)

    async def leave(self, conn: Connection) -> None:
        """Remove `conn` (its socket closed); unsubscribe the channel when it was the last."""
        if conn.left:
            return
        conn.left = True
        conn.stop()
        channel = conn.channel
        members = self._channels.get(channel)
        if members is None or conn not in members:
            return
        members.discard(conn)
        self.metrics.sockets.labels(hub_label(channel)).dec()
        if not members:
            del self._channels[channel]
            self._subscribed.pop(channel, None)
            self._last.pop(channel, None)
            self._echo.pop(channel, None)
            self._users.pop(channel, None)
            self._uncounted.discard(channel)
            try:
                await self.broker.unsubscribe(channel)
            except Exception:
                log.debug("unsubscribe %s failed", channel, exc_info=True)
        if conn.present:
            await self._remove_presence(conn, channel)
        if not self._channels:
            self._idle.set()

    def local_count(self, channel: str | None = None) -> int:
        """Local sockets in `channel` (all channels when None)."""
        if channel is not None:
            return len(self._channels.get(channel, ()))
        return sum(len(m) for m in self._channels.values())

    # ---------------------------------------------------------------- heartbeat, shutdown

    async def shutdown(self, timeout: float = 5.0) -> None:
        """SIGTERM: refuse new sockets, close every local socket with 1001 "server shutting
        down" (clients reconnect elsewhere), and wait up to `timeout` s for them to leave."""
        self._closing = True
        for members in list(self._channels.values()):
            for conn in list(members):
                conn.close(GOING_AWAY, "server shutting down")
                self.release(conn)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("%d sockets still open after shutdown", self.local_count())

    async def close(self) -> None:
        """Close sockets (if `shutdown` did not), stop the heartbeat, close broker and presence."""
        if not self._closing or self._channels:
            await self.shutdown(timeout=2.0)
        if self._leaving:
            await asyncio.gather(*list(self._leaving), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self.presence.close()
        except Exception:
            log.debug("presence close failed", exc_info=True)
        await self.broker.close()


async def open_hub(settings, redis, metrics, render: Callable[[Any], Any] | None = None) -> Hub:
    """The hub of this process: on a Redis Cluster when settings.redis_cluster_nodes is set
    (`realtime.cluster`: one subscriber connection per shard, keys tagged by channel), else
    on Redis when settings.redis_url is set (the hub opens its own connections to it:
    commands without retries, one pub/sub connection; `redis`, the shared client, is not
    used), in-process ones otherwise (docs/architecture.md §6)."""
    if settings.redis_cluster_nodes:
        from realtime.cluster import ClusterBroker

        broker = ClusterBroker(settings.redis_cluster_nodes, settings.history_size,
                               settings.history_ttl_seconds)
        hub_presence = RedisPresence(broker.commands, uuid.uuid4().hex[:12], cluster=True)
        hub = Hub(settings, broker, hub_presence, metrics, instance_id=hub_presence.instance_id,
                  render=render)
    elif settings.redis_url:
        broker = RedisBroker(settings.redis_url, settings.history_size,
                             settings.history_ttl_seconds)
        hub_presence = RedisPresence(broker.commands, uuid.uuid4().hex[:12])
        hub = Hub(settings, broker, hub_presence, metrics, instance_id=hub_presence.instance_id,
                  render=render)
    else:
        broker = MemoryBroker(settings.history_size, settings.history_ttl_seconds)
        hub = Hub(settings, broker, MemoryPresence(), metrics, render=render)
    await hub.start()
    return hub
