"""Presence: who is online in a channel (docs/architecture.md §6), across every instance.

Presence counts sockets per user: a user with several sockets (tabs, instances) counts
once. `add(channel, info)` answers whether this is the user's first socket in the channel
(→ `presence_joined`), `remove(channel, info)` returns the user's info when the last one
went (→ `presence_left`). ``info`` = ``{"user_id", "username", "avatar_url", "is_staff"}``.
Join and leave cost O(1) whatever the size of the channel; a snapshot (`snapshot`) lists at
most `limit` users, with the exact `count` and `staff_online`.

- `MemoryPresence`: dicts per channel (embedded default, one instance).
- `RedisPresence`: per channel, with ``<p>`` = ``<prefix>presence:<channel>``:
  ``<p>:users`` hash user_id → sockets on every instance; ``<p>:info`` hash user_id → JSON
  info; ``<p>:staff`` set of the staff user ids present; ``<p>:inst`` set of the instances
  with sockets in the channel; ``<p>:i:<instance_id>`` hash user_id → this instance's
  sockets. Each change is one Lua script (atomic). A heartbeat key
  ``<prefix>instance:<instance_id>`` that each live instance refreshes every `heartbeat`
  seconds with a TTL of three heartbeats tells live instances from dead ones: `sweep`
  takes a dead instance's counts out of the channel (once, atomically) and reports the
  users that left so the hub can announce it. Channel keys expire `ttl` seconds after the
  last heartbeat that renewed them. On a Redis Cluster (``cluster=True``) ``<p>`` is
  ``<prefix>presence:{<channel>}``: the hash tag puts every key of a channel in one slot.
"""
from __future__ import annotations

import json
import time

SNAPSHOT_LIMIT = 100


def _snapshot(users: list[dict], count: int, staff_online: bool) -> dict:
    return {"users": users, "count": count, "staff_online": staff_online}


class MemoryPresence:
    """In-process presence table (one instance)."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}
        self._infos: dict[str, dict[str, dict]] = {}
        self._counted: dict[str, float] = {}

    async def add(self, channel: str, info: dict) -> tuple[bool, int]:
        """Count one more socket of ``info["user_id"]``; (whether it is the user's first,
        users now present)."""
        counts = self._counts.setdefault(channel, {})
        user = info["user_id"]
        counts[user] = counts.get(user, 0) + 1
        if counts[user] == 1:
            self._infos.setdefault(channel, {})[user] = info
        return counts[user] == 1, len(counts)

    async def remove(self, channel: str, info: dict) -> tuple[dict | None, int]:
        """Count one socket fewer; (the user's info when it was the last, else None; users
        still present)."""
        counts, user = self._counts.get(channel, {}), info["user_id"]
        if user not in counts:
            return None, len(counts)
        counts[user] -= 1
        if counts[user] > 0:
            return None, len(counts)
        del counts[user]
        gone = self._infos[channel].pop(user, info)
        if not counts:
            self._counts.pop(channel, None)
            self._infos.pop(channel, None)
        return gone, len(counts)

    async def counts(self, channel: str) -> dict:
        """``{"count", "staff_online"}`` of `channel`: O(users) here, O(1) in Redis."""
        infos = self._infos.get(channel, {})
        return {"count": len(infos), "staff_online": any(i.get("is_staff") for i in infos.values())}

    async def claim_count(self, channel: str, interval: float) -> bool:
        """True when no `presence_count` of `channel` went out in the last `interval` s (and
        this caller may send one now)."""
        now = time.monotonic()
        if now - self._counted.get(channel, -interval) < interval:
            return False
        self._counted[channel] = now
        if len(self._counted) > 10_000:
            self._counted = {c: t for c, t in self._counted.items() if now - t < interval}
        return True

    async def restore(self, channel: str, local: dict[str, tuple[int, dict]]) -> list[dict]:
        return []

    async def snapshot(self, channel: str, limit: int = SNAPSHOT_LIMIT) -> dict:
        """``{"users": [info...] (at most `limit`), "count", "staff_online"}``."""
        infos = self._infos.get(channel, {})
        users = [infos[u] for u in sorted(infos)[:limit]]
        return _snapshot(users, len(infos), any(i.get("is_staff") for i in infos.values()))

    async def heartbeat(self, channels=()) -> bool:
        return False

    async def sweep(self, channels) -> list[tuple[str, dict]]:
        return []

    async def close(self) -> None:
        self._counts.clear()
        self._infos.clear()


# KEYS: users, info, staff, inst, mine   ARGV: user, info json, is staff, instance, ttl
ADD_SCRIPT = """
redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if total == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  if ARGV[3] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
end
redis.call('SADD', KEYS[4], ARGV[4])
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {total, redis.call('HLEN', KEYS[1])}
"""

# Takes `n` sockets of `user` out of the channel totals; the info when none is left.
_TAKE = """
local function take(user, n)
  local total = redis.call('HINCRBY', KEYS[1], user, -n)
  if total > 0 then return false end
  redis.call('HDEL', KEYS[1], user)
  redis.call('SREM', KEYS[3], user)
  local info = redis.call('HGET', KEYS[2], user)
  redis.call('HDEL', KEYS[2], user)
  return info
end
"""

# KEYS: users, info, staff, inst, mine   ARGV: user, instance
REMOVE_SCRIPT = _TAKE + """
local mine = redis.call('HINCRBY', KEYS[5], ARGV[1], -1)
if mine <= 0 then redis.call('HDEL', KEYS[5], ARGV[1]) end
if redis.call('HLEN', KEYS[5]) == 0 then redis.call('SREM', KEYS[4], ARGV[2]) end
local info = false
if mine >= 0 then info = take(ARGV[1], 1) end
return {redis.call('HLEN', KEYS[1]), info or ''}
"""

# KEYS: users, info, staff, inst, theirs   ARGV: dead instance
SWEEP_SCRIPT = _TAKE + """
local entries = redis.call('HGETALL', KEYS[5])
local gone = {}
for i = 1, #entries, 2 do
  local info = take(entries[i], tonumber(entries[i + 1]))
  if info then gone[#gone + 1] = info end
end
redis.call('DEL', KEYS[5])
redis.call('SREM', KEYS[4], ARGV[1])
return gone
"""

# KEYS: users, info, staff, inst, mine   ARGV: instance, ttl, then user, count, info json,
# is staff for each local user. Sets this instance's counts to exactly the given ones
# (idempotent); returns the infos of users that are gone (they were counted here only).
RESTORE_SCRIPT = _TAKE + """
local wanted = {}
for i = 3, #ARGV, 4 do wanted[ARGV[i]] = true end
local entries = redis.call('HGETALL', KEYS[5])
local gone = {}
for i = 1, #entries, 2 do
  if not wanted[entries[i]] then
    local info = take(entries[i], tonumber(entries[i + 1]))
    redis.call('HDEL', KEYS[5], entries[i])
    if info then gone[#gone + 1] = info end
  end
end
for i = 3, #ARGV, 4 do
  local user, n = ARGV[i], tonumber(ARGV[i + 1])
  local delta = n - tonumber(redis.call('HGET', KEYS[5], user) or '0')
  redis.call('HSET', KEYS[5], user, n)
  if redis.call('HINCRBY', KEYS[1], user, delta) == n then
    redis.call('HSET', KEYS[2], user, ARGV[i + 2])
    if ARGV[i + 3] == '1' then redis.call('SADD', KEYS[3], user) end
  end
end
if #ARGV > 2 then redis.call('SADD', KEYS[4], ARGV[1]) else redis.call('SREM', KEYS[4], ARGV[1]) end
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return gone
"""


class RedisPresence:
    """Presence in Redis, shared by every instance (see module doc)."""

    def __init__(self, redis, instance_id: str, *, prefix: str = "hwc3d:rt:",
                 heartbeat: float = 10.0, ttl: int = 86400, cluster: bool = False):
        self._redis, self.instance_id, self._prefix = redis, instance_id, prefix
        self._cluster = cluster
        self._instance_ttl = max(1, round(3 * heartbeat))
        self._ttl = ttl
        self._add = redis.register_script(ADD_SCRIPT)
        self._remove = redis.register_script(REMOVE_SCRIPT)
        self._sweep = redis.register_script(SWEEP_SCRIPT)
        self._restore = redis.register_script(RESTORE_SCRIPT)

    def _base(self, channel: str) -> str:
        """``<prefix>presence:<channel>``; on a cluster ``<prefix>presence:{<channel>}``, so
        that every key of the channel lives in one slot (its scripts touch them together)."""
        return f"{self._prefix}presence:{{{channel}}}" if self._cluster \
            else f"{self._prefix}presence:{channel}"

    def _keys(self, channel: str, instance_id: str | None = None) -> list[str]:
        """users, info, staff, inst and the per-instance hash of `instance_id` (this one)."""
        base = self._base(channel)
        return [f"{base}:users", f"{base}:info", f"{base}:staff", f"{base}:inst",
                f"{base}:i:{instance_id or self.instance_id}"]

    def _instance(self, instance_id: str) -> str:
        return f"{self._prefix}instance:{instance_id}"

    async def heartbeat(self, channels=()) -> bool:
        """Mark this instance alive for three heartbeats; keep `channels`' keys from expiring
        (their TTL, `ttl` seconds, is renewed). True when the mark had lapsed (first beat,
        Redis lost its data, or this instance looked dead and may have been swept)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._instance(self.instance_id))
            pipe.set(self._instance(self.instance_id), b"1", ex=self._instance_ttl)
            for channel in channels:
                for key in self._keys(channel):
                    pipe.expire(key, self._ttl)
            replies = await pipe.execute()
        return not replies[0]

    async def add(self, channel: str, info: dict) -> tuple[bool, int]:
        """Count one more socket of ``info["user_id"]`` here; (whether it is the user's first
        socket in `channel` on any instance, users present). O(1)."""
        total, users = await self._add(keys=self._keys(channel), args=[
            info["user_id"], json.dumps(info), "1" if info.get("is_staff") else "0",
            self.instance_id, self._ttl])
        return int(total) == 1, int(users)

    async def remove(self, channel: str, info: dict) -> tuple[dict | None, int]:
        """Count one socket fewer; (the user's info when it was the last anywhere, users
        still present). O(1)."""
        users, gone = await self._remove(keys=self._keys(channel),
                                         args=[info["user_id"], self.instance_id])
        return (json.loads(gone) if gone else None), int(users)

    async def counts(self, channel: str) -> dict:
        """``{"count", "staff_online"}`` of `channel`. O(1)."""
        users_key, _info, staff_key, _inst, _mine = self._keys(channel)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hlen(users_key)
            pipe.scard(staff_key)
            count, staff = await pipe.execute()
        return {"count": int(count), "staff_online": int(staff) > 0}

    async def claim_count(self, channel: str, interval: float) -> bool:
        """True when no instance sent a `presence_count` of `channel` in the last
        `interval` s (this one may send it now): one ``SET NX PX``."""
        key = f"{self._base(channel)}:counted"
        return bool(await self._redis.set(key, self.instance_id, nx=True,
                                          px=max(1, int(interval * 1000))))

    async def restore(self, channel: str, local: dict[str, tuple[int, dict]]) -> list[dict]:
        """Set this instance's counts in `channel` to `local` ({user_id: (sockets, info)})
        after Redis lost data or swept this instance; idempotent. Returns the infos of users
        counted only here who have no socket left (missed removals)."""
        args: list = [self.instance_id, self._ttl]
        for user, (count, info) in local.items():
            args += [user, count, json.dumps(info), "1" if info.get("is_staff") else "0"]
        gone = await self._restore(keys=self._keys(channel), args=args)
        return [json.loads(raw) for raw in gone]

    async def snapshot(self, channel: str, limit: int = SNAPSHOT_LIMIT) -> dict:
        """``{"users": [info...] (at most `limit`), "count", "staff_online"}``: O(limit)."""
        users_key, info_key, staff_key, _inst, _mine = self._keys(channel)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hlen(users_key)
            pipe.scard(staff_key)
            pipe.hscan(info_key, 0, count=limit)
            count, staff, (_cursor, infos) = await pipe.execute()
        users = [json.loads(infos[k]) for k in sorted(infos)[:limit]]
        return _snapshot(users, int(count), int(staff) > 0)

    async def sweep(self, channels) -> list[tuple[str, dict]]:
        """Take the sockets of dead instances out of `channels`; (channel, info) of the users
        that left with them (each reported by one sweeper only)."""
        channels = list(channels)
        if not channels:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.smembers(self._keys(channel)[3])
            present = await pipe.execute()
        instances = sorted({i.decode() for members in present for i in members}
                           - {self.instance_id})
        if not instances:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for instance in instances:
                pipe.exists(self._instance(instance))
            alive = await pipe.execute()
        dead = {i for i, ok in zip(instances, alive, strict=True) if not ok}
        gone = []
        for channel, members in zip(channels, present, strict=True):
            for instance in sorted(dead & {i.decode() for i in members}):
                for raw in await self._sweep(keys=self._keys(channel, instance), args=[instance]):
                    gone.append((channel, json.loads(raw)))
        return gone

    async def close(self) -> None:
        """Forget this instance: its heartbeat key goes, so other instances sweep its counts."""
        await self._redis.delete(self._instance(self.instance_id))
