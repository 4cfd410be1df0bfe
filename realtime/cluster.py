"""The broker on a Redis Cluster (`REDIS_CLUSTER_URLS`, docs/architecture.md §6).

`ClusterBroker` keeps the contract of `realtime.broker.RedisBroker` (offsets, history,
outbox, history rebuilt after data loss) on a Redis Cluster of any number of masters:

- **Keys and hash tags.** Every key of a channel carries the channel name as its hash tag,
  so they all live in one slot and one script or MULTI may touch them together:
  ``<prefix>off:{<channel>}`` (offset counter), ``<prefix>hist:{<channel>}`` (history
  stream), and the shard channel ``<prefix>ch:{<channel>}``. Presence and rate-limit keys
  are tagged the same way (`realtime.presence`, `realtime.ratelimit`).
- **Sharded pub/sub.** The publish script ends with ``SPUBLISH`` on the channel's shard
  channel (same slot as its keys), so a message only travels inside the shard that owns
  the channel instead of being broadcast over the whole cluster bus. Transient events
  (offset null) use a plain ``SPUBLISH``.
- **One subscriber connection per shard.** The process holds one RESP2 connection to each
  master and sends ``SSUBSCRIBE`` for a channel on the connection of the master that owns
  the channel's slot (from the client's slot map, `redis.crc.key_slot`).
- **Failover and resharding.** When any shard connection drops, a ``SSUBSCRIBE`` is
  answered with ``MOVED`` (stale slot map), or Redis itself ends a shard subscription (it
  sends ``sunsubscribe`` when the slot moved to another master or the master became a
  replica), the broker drops every shard connection, reloads the slot map (``CLUSTER
  SLOTS``), connects to the current masters, writes back lost history and resubscribes
  every channel; the hub then fills the gap from history, exactly as after a single
  Redis's restart. Meanwhile `connected` is False and publishes wait in the outbox.

Commands go through `redis.asyncio.cluster.RedisCluster`, which follows ``MOVED``/``ASK``
and refreshes its slot map by itself.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time

from realtime.broker import MAX_CONNECTIONS, POOL_TIMEOUT, PUBLISH_SCRIPT, RedisBroker

log = logging.getLogger("hwc3d.realtime")

SPUBLISH_SCRIPT = PUBLISH_SCRIPT.replace("'PUBLISH'", "'SPUBLISH'")


class ShardMoved(ConnectionError):
    """Redis ended a shard subscription by itself (slot migrated, failover)."""


def cluster_client(nodes: tuple[str, ...] | list[str], *, max_connections: int = MAX_CONNECTIONS,
                   socket_timeout: float = 5.0):
    """A `redis.asyncio.cluster.RedisCluster` (bytes replies) seeded with `nodes`
    (``"host:port"`` strings, any of the cluster's nodes; docs/architecture.md §6). It
    connects on first use and follows ``MOVED``/``ASK`` itself; at most `max_connections`
    per node (beyond: redis-py's `MaxConnectionsError`), `socket_timeout` seconds per reply."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    seeds = [ClusterNode(host.strip("[]"), int(port))
             for host, port in (n.rsplit(":", 1) for n in nodes)]
    return RedisCluster(startup_nodes=seeds, max_connections=max_connections,
                        socket_connect_timeout=2, socket_timeout=socket_timeout,
                        decode_responses=False)


def tagged(prefix: str, kind: str, channel: str) -> str:
    """``<prefix><kind>:{<channel>}``: a key (or shard channel) in the slot of `channel`."""
    return f"{prefix}{kind}:{{{channel}}}"


class ClusterBroker(RedisBroker):
    """Broker on a Redis Cluster (see module doc). `nodes`: ``"host:port"`` seeds."""

    publish_script = SPUBLISH_SCRIPT
    message_kind, subscribe_kind = b"smessage", b"ssubscribe"

    def __init__(self, nodes, history_size: int, history_ttl: int, *,
                 prefix: str = "hwc3d:rt:", ping_interval: float = 5.0,
                 max_connections: int = MAX_CONNECTIONS, pool_timeout: float = POOL_TIMEOUT):
        self._nodes = tuple(nodes)
        self._shards: dict[str, _Shard] = {}
        self._unsubscribing: collections.Counter = collections.Counter()
        super().__init__(None, history_size, history_ttl, prefix=prefix,
                         ping_interval=ping_interval, max_connections=max_connections,
                         pool_timeout=pool_timeout)

    def _open(self, url, max_connections: int, pool_timeout: float) -> None:
        self.commands = cluster_client(self._nodes, max_connections=max_connections)
        self._pubsub_pool = None

    def _key(self, kind: str, channel: str) -> str:
        return tagged(self._prefix, kind, channel)

    def _channel_of(self, name: bytes) -> str:
        return name.decode()[len(self._prefix) + 4:-1]

    def shard_of(self, channel: str) -> str:
        """The name (``host:port``) of the master that owns `channel`'s slot, from the
        client's slot map (reloaded after each reconnect). Raises redis-py's
        `SlotNotCoveredError` while no master serves the slot."""
        return self.commands.get_node_from_key(self._key("ch", channel)).name

    async def _publish_transient(self, name: str, data: bytes) -> None:
        await self.commands.execute_command("SPUBLISH", name, data)

    # ---------------------------------------------------------------- shard connections

    async def _open_pubsub(self) -> None:
        from redis.asyncio.connection import Connection
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        if self.commands._initialize:          # first connection
            await self.commands.initialize()
        else:                                   # after a failure: a fresh slot map
            await self.commands.nodes_manager.initialize()
        shards: dict[str, _Shard] = {}
        try:
            for node in self.commands.get_primaries():
                conn = Connection(host=node.host, port=node.port, socket_connect_timeout=2,
                                  socket_timeout=None, retry=Retry(NoBackoff(), 0), protocol=2)
                shards[node.name] = _Shard(conn)
                await conn.connect()
        except BaseException:
            for shard in shards.values():
                await shard.conn.disconnect(nowait=True)
            raise
        async with self._lock:
            self._shards = shards
            self._conn = next(iter(shards.values())).conn if shards else None
            self._unsubscribing.clear()

    async def _send_subscribe(self, channels: list[str]) -> list[asyncio.Future]:
        async with self._lock:
            if not self._shards:
                return []
            futures, by_shard = [], collections.defaultdict(list)
            for channel in channels:
                seq = self._sent[channel] = self._sent.get(channel, 0) + 1
                future = asyncio.get_running_loop().create_future()
                self._waiters.setdefault(channel, []).append((seq, future))
                futures.append(future)
                try:
                    by_shard[self.shard_of(channel)].append(channel)
                except Exception as exc:       # slot not covered (a master is down)
                    log.debug("no shard for %s: %s", channel, exc)
                    by_shard[None].append(channel)
            for name, group in by_shard.items():
                shard = self._shards.get(name)
                if shard is None:          # the slot map changed: reconnect everything
                    self._fail_shards(f"no connection to the shard of {group[0]}")
                    continue
                try:
                    await shard.conn.send_packed_command(shard.conn.pack_commands(
                        [("SSUBSCRIBE", self._key("ch", c)) for c in group]))
                except Exception as exc:
                    log.debug("ssubscribe failed: %s", exc)
            return futures

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        async with self._lock:
            if not self._shards or channel in self._channels:
                return
            try:
                shard = self._shards.get(self.shard_of(channel))
                if shard is not None:
                    self._unsubscribing[channel] += 1
                    await shard.conn.send_command("SUNSUBSCRIBE", self._key("ch", channel))
            except Exception as exc:
                log.debug("sunsubscribe %s failed: %s", channel, exc)

    def _fail_shards(self, why: str) -> None:
        """Make the readers fail, so that `_run` reconnects every shard."""
        log.warning("Redis Cluster shards change (%s); resubscribing", why)
        for shard in self._shards.values():
            shard.failed = why
            asyncio.get_running_loop().create_task(shard.conn.disconnect(nowait=True))

    async def _read(self) -> None:
        readers = [asyncio.create_task(self._read_shard(s), name=f"redis-shard-{name}")
                   for name, s in self._shards.items()]
        try:
            done, _pending = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise ConnectionError("a shard reader ended")
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _read_shard(self, shard: _Shard) -> None:
        while True:
            try:
                reply = await shard.conn.read_response()
            except Exception as exc:
                raise ShardMoved(shard.failed) if shard.failed else exc from None
            shard.last_read = time.monotonic()
            if isinstance(reply, Exception):           # MOVED: the slot map is stale
                raise reply
            if self._received(reply) == b"sunsubscribe":
                channel = self._channel_of(reply[1])
                if self._unsubscribing[channel] > 0:
                    self._unsubscribing[channel] -= 1
                    if not self._unsubscribing[channel]:
                        del self._unsubscribing[channel]
                elif channel in self._channels:
                    raise ShardMoved(f"Redis ended the subscription of {channel}")

    async def _drop(self) -> None:
        async with self._lock:
            shards, self._shards, self._conn = self._shards, {}, None
            self._unsubscribing.clear()
        self._fail_waiters()
        for shard in shards.values():
            await shard.conn.disconnect(nowait=True)

    async def _watchdog(self) -> None:
        """PING every shard connection; drop them all when one stayed silent 3 intervals."""
        while True:
            await asyncio.sleep(self._ping_interval)
            now = time.monotonic()
            for name, shard in list(self._shards.items()):
                if now - shard.last_read > 3 * self._ping_interval:
                    self._fail_shards(f"{name} silent")
                    break
                async with self._lock:
                    try:
                        await shard.conn.send_command("PING")
                    except Exception as exc:
                        log.debug("shard ping failed: %s", exc)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._drop()
        await self.commands.aclose()


class _Shard:
    __slots__ = ("conn", "last_read", "failed")

    def __init__(self, conn):
        self.conn, self.last_read, self.failed = conn, time.monotonic(), ""
