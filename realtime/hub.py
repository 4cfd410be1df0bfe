"""The hub of one process (DESIGN §4): channel registry, local fan-out, publish, presence.

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
- Presence (support, community): joining adds the socket to the channel's presence and, for
  a user's first socket, publishes `presence_joined`; leaving publishes `presence_left` when
  the user's last socket goes. Presence and typing events are transient: offset null, not in
  history. Joining and leaving cost O(1) in Redis (per-user socket counts); the `presence`
  frame lists at most `presence.SNAPSHOT_LIMIT` users with the exact `count` and
  `staff_online`. A heartbeat task keeps this instance alive in Redis, puts its counts back
  when its mark had lapsed (Redis restarted, or it looked dead), and sweeps the counts of
  dead instances (announcing `presence_left`).
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
from realtime.presence import SNAPSHOT_LIMIT, MemoryPresence, RedisPresence

log = logging.getLogger("hwc3d.realtime")

GOING_AWAY = 1001


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


class Hub:
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

    async def start(self) -> None:
        """Start the broker and the presence heartbeat."""
        await self.broker.start(self._deliver, self._resubscribed)
        self._tasks.append(asyncio.create_task(self._beat(), name="hub-heartbeat"))

    # ---------------------------------------------------------------- publish

    async def publish(self, channel: str, type: str, data: dict, *, history: bool = True) -> dict:
        """Send event `type` with `data` to every subscriber of `channel` on every instance.

        `data` is rendered (ids → strings, datetimes → ISO Z). Returns the event
        ``{"type", "channel", "offset", "data", "ts"}``; `offset` is None for a transient event
        (`history=False`: typing, presence) or when the broker is unreachable.
        """
        event = {"type": type, "channel": channel, "data": self.render(data), "ts": now_iso()}
        head = json.dumps(event, separators=(",", ":"), default=str)[:-1] + ',"offset":'
        offset, frame = None, None
        if self.broker.connected:
            try:
                offset, frame = await self.broker.publish(channel, head, history=history)
            except Exception as exc:
                log.warning("publish on %s went local only: %s", channel, exc)
        if frame is None:
            self._deliver(channel, None, finish_frame(head, None))
        self.metrics.events_published.labels(hub_label(channel)).inc()
        return {**event, "offset": offset}

    def _deliver(self, channel: str, offset: int | None, frame: str | bytes) -> None:
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
            try:
                frames, _complete, _top = await self.broker.history(channel, last)
            except Exception as exc:
                log.warning("history of %s unavailable after reconnect: %s", channel, exc)
                frames = []
            held = self._repairing.pop(channel, [])
            for offset, frame in frames + held:
                self._fanout(channel, offset, frame)

    # ---------------------------------------------------------------- sockets

    def connection(self, send, close, info: dict) -> Connection:
        """A `Connection` for a socket with `send`/`close` and presence `info` (queue bound:
        settings.ws_queue_size)."""
        return Connection(send, close, limit=self.settings.ws_queue_size, info=info,
                          on_slow=self._slow)

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

    async def _add_presence(self, conn: Connection, channel: str) -> None:
        try:
            first = await self.presence.add(channel, conn.info)
        except Exception as exc:
            log.warning("presence of %s unavailable: %s", channel, exc)
            return
        conn.present = True
        if conn.left:
            await self._remove_presence(conn, channel)
        elif first:
            await self.publish(channel, "presence_joined", conn.info, history=False)

    async def _remove_presence(self, conn: Connection, channel: str) -> None:
        conn.present = False
        try:
            info = await self.presence.remove(channel, conn.info)
        except Exception as exc:
            log.warning("presence removal on %s failed: %s", channel, exc)
            return
        if info is not None:
            await self.publish(channel, "presence_left", info, history=False)

    def _local_presence(self, channel: str) -> dict[str, tuple[int, dict]]:
        """{user_id: (sockets, info)} of this instance's sockets counted in `channel`."""
        local: dict[str, tuple[int, dict]] = {}
        for conn in self._channels.get(channel, ()):
            if conn.present:
                count, _info = local.get(conn.info["user_id"], (0, conn.info))
                local[conn.info["user_id"]] = (count + 1, conn.info)
        return local

    def _presence_channels(self) -> list[str]:
        return [c for c, members in self._channels.items() if any(m.present for m in members)]

    async def _restore_presence(self, channel: str) -> None:
        """Put this instance's counts of `channel` back (Redis lost them, or this instance
        was swept as dead); announce users whose removal was missed meanwhile."""
        for info in await self.presence.restore(channel, self._local_presence(channel)):
            await self.publish(channel, "presence_left", info, history=False)

    async def presence_snapshot(self, channel: str) -> dict:
        """``{"users": [info...] (at most presence.SNAPSHOT_LIMIT), "count", "staff_online"}``
        for `channel` (all instances; this instance's sockets when presence is down)."""
        try:
            return await self.presence.snapshot(channel)
        except Exception:
            users = list({c.info["user_id"]: c.info
                          for c in self._channels.get(channel, ())}.values())
        return {"users": users[:SNAPSHOT_LIMIT], "count": len(users),
                "staff_online": any(u.get("is_staff") for u in users)}

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

    async def _beat(self) -> None:
        while True:
            try:
                channels = self._presence_channels()
                if await self.presence.heartbeat(channels):
                    for channel in channels:
                        await self._restore_presence(channel)
                for channel, info in await self.presence.sweep(channels):
                    await self.publish(channel, "presence_left", info, history=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("presence heartbeat failed: %s", exc)
            await asyncio.sleep(self._heartbeat)

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
    """The hub of this process: Redis broker and presence when settings.redis_url is set
    (the hub opens its own connections to it: commands without retries, one pub/sub
    connection; `redis`, the shared client, is not used), in-process ones otherwise."""
    if settings.redis_url:
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
