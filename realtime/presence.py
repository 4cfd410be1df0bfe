"""Presence: who is online in a channel (DESIGN §4), across every instance.

An entry is one open socket: ``key`` = ``"<instance_id>:<connection_id>"`` and ``info`` =
``{"user_id", "username", "avatar_url", "is_staff"}``. A user with several sockets (tabs)
counts once: `add` answers whether the user was not there before (→ `presence_joined`),
`remove` whether the user has no socket left (→ `presence_left`).

- `MemoryPresence`: a dict per channel (embedded default, one instance).
- `RedisPresence`: a hash ``<prefix>presence:<channel>`` per channel (field = key, value =
  JSON info) plus a heartbeat key ``<prefix>instance:<instance_id>`` that each live instance
  refreshes every `heartbeat` seconds with a TTL of three heartbeats. Entries of an instance
  whose heartbeat key has expired (it died without cleaning up) are ignored by `members`
  and removed by `sweep`, which reports the users that left so the hub can announce it.
"""
from __future__ import annotations

import json


def _users(entries: dict) -> list[dict]:
    """One info per user (first socket wins), in a stable order."""
    out: dict[str, dict] = {}
    for _key, info in sorted(entries.items()):
        out.setdefault(info["user_id"], info)
    return list(out.values())


class MemoryPresence:
    """In-process presence table."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, dict]] = {}

    async def add(self, channel: str, key: str, info: dict) -> bool:
        """Record socket `key` in `channel`; True when its user was not present before."""
        entries = self._channels.setdefault(channel, {})
        first = all(i["user_id"] != info["user_id"] for i in entries.values())
        entries[key] = info
        return first

    async def remove(self, channel: str, key: str) -> dict | None:
        """Forget socket `key`; its info when that user has no socket left, else None."""
        entries = self._channels.get(channel, {})
        info = entries.pop(key, None)
        if not entries:
            self._channels.pop(channel, None)
        if info is None or any(i["user_id"] == info["user_id"] for i in entries.values()):
            return None
        return info

    async def members(self, channel: str) -> list[dict]:
        """The users present in `channel` (one info each)."""
        return _users(self._channels.get(channel, {}))

    async def heartbeat(self, channels=()) -> None:
        return None

    async def sweep(self, channels) -> list[tuple[str, dict]]:
        return []

    async def close(self) -> None:
        self._channels.clear()


class RedisPresence:
    """Presence in Redis, shared by every instance (see module doc)."""

    def __init__(self, redis, instance_id: str, *, prefix: str = "hwc3d:rt:",
                 heartbeat: float = 10.0, ttl: int = 86400):
        self._redis, self.instance_id, self._prefix = redis, instance_id, prefix
        self._instance_ttl = max(1, round(3 * heartbeat))
        self._ttl = ttl

    def _hash(self, channel: str) -> str:
        return f"{self._prefix}presence:{channel}"

    def _instance(self, instance_id: str) -> str:
        return f"{self._prefix}instance:{instance_id}"

    async def heartbeat(self, channels=()) -> None:
        """Mark this instance alive for three heartbeats; keep `channels`' tables from
        expiring (their TTL, `ttl` seconds, is renewed)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._instance(self.instance_id), b"1", ex=self._instance_ttl)
            for channel in channels:
                pipe.expire(self._hash(channel), self._ttl)
            await pipe.execute()

    async def add(self, channel: str, key: str, info: dict) -> bool:
        """Record socket `key` in `channel`; True when its user was not present before."""
        before = await self._live(channel)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._hash(channel), key, json.dumps(info))
            pipe.expire(self._hash(channel), self._ttl)
            await pipe.execute()
        return all(i["user_id"] != info["user_id"] for i in before.values())

    async def remove(self, channel: str, key: str) -> dict | None:
        """Forget socket `key`; its info when that user has no socket left, else None."""
        raw = await self._redis.hget(self._hash(channel), key)
        if raw is None or not await self._redis.hdel(self._hash(channel), key):
            return None
        info = json.loads(raw)
        rest = await self._live(channel)
        return None if any(i["user_id"] == info["user_id"] for i in rest.values()) else info

    async def members(self, channel: str) -> list[dict]:
        """The users present in `channel` on live instances (one info each)."""
        return _users(await self._live(channel))

    async def _entries(self, channel: str) -> tuple[dict, set]:
        """(every entry, the instance ids among them that are dead)."""
        raw = await self._redis.hgetall(self._hash(channel))
        entries = {k.decode(): json.loads(v) for k, v in raw.items()}
        instances = sorted({k.split(":", 1)[0] for k in entries})
        if not instances:
            return entries, set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for instance in instances:
                pipe.exists(self._instance(instance))
            flags = await pipe.execute()
        return entries, {i for i, ok in zip(instances, flags, strict=True) if not ok}

    async def _live(self, channel: str) -> dict:
        entries, dead = await self._entries(channel)
        return {k: v for k, v in entries.items() if k.split(":", 1)[0] not in dead}

    async def sweep(self, channels) -> list[tuple[str, dict]]:
        """Remove entries of dead instances from `channels`; (channel, info) of users gone."""
        gone = []
        for channel in channels:
            entries, dead = await self._entries(channel)
            stale = [k for k in entries if k.split(":", 1)[0] in dead]
            if not stale or not await self._redis.hdel(self._hash(channel), *stale):
                continue
            live_users = {v["user_id"] for k, v in entries.items() if k not in stale}
            gone += [(channel, info) for info in _users({k: entries[k] for k in stale})
                     if info["user_id"] not in live_users]
        return gone

    async def close(self) -> None:
        """Forget this instance: its heartbeat key goes, so its entries stop counting."""
        await self._redis.delete(self._instance(self.instance_id))
