"""Fixed-window rate-limit counters (seed 001 §21, docs/architecture.md §3).

`MemoryRateLimiter` counts in this process (embedded default); `RedisRateLimiter` counts in
Redis (one Redis, or a Redis Cluster with ``cluster=True``: keys
``hwc3d:rl:{<key>:<count>/<seconds>}:<window>``) so that a limit holds across every
instance. Both answer `hit(key, rule)` with ``(allowed, retry_after_seconds)``.
"""
from __future__ import annotations

import logging
import math
import time

from redis.exceptions import RedisError

from config import RateLimit

log = logging.getLogger("hwc3d.ratelimit")


class MemoryRateLimiter:
    """In-process counters; windows are pruned as they expire."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str, rule: RateLimit) -> tuple[bool, int]:
        """Count one request for `key` under `rule`; returns (allowed, seconds until the window ends)."""
        now = self._clock()
        window = int(now // rule.seconds)
        slot = f"{key}:{rule.count}/{rule.seconds}"
        start, count = self._windows.get(slot, (window, 0))
        if start != window:
            start, count = window, 0
        count += 1
        self._windows[slot] = (start, count)
        if len(self._windows) > 100_000:
            self._prune(now)
        retry_after = max(1, math.ceil((window + 1) * rule.seconds - now))
        return count <= rule.count, retry_after

    def _prune(self, now: float) -> None:
        for slot, (start, _count) in list(self._windows.items()):
            seconds = int(slot.rsplit("/", 1)[1])
            if start != int(now // seconds):
                del self._windows[slot]

    async def reset(self) -> None:
        self._windows.clear()


# One fixed window per key: the first hit of a window creates the counter and sets its expiry,
# both in the same script, so a counter never lives without a TTL. The window index comes from
# Redis's own clock, so every instance counts into the same window.
_HIT_SCRIPT = """
local now = redis.call('TIME')
local seconds = tonumber(ARGV[1])
local window = math.floor(tonumber(now[1]) / seconds)
local key = KEYS[1] .. ':' .. window
local count = redis.call('INCR', key)
if count == 1 then
  redis.call('EXPIRE', key, seconds + 1)
end
local retry_after = (window + 1) * seconds - tonumber(now[1])
return {count, retry_after}
"""


class RedisRateLimiter:
    """Counters in Redis (`INCR` + `EXPIRE` in one Lua script), shared by every instance.

    When Redis cannot be reached the request is let through (fail open) and a warning is
    logged at most once per `warn_every` seconds: an outage of the limiter must not become an
    outage of the API.
    """

    prefix = "hwc3d:rl:"

    def __init__(self, redis, *, warn_every: float = 30.0, clock=time.monotonic,
                 cluster: bool = False):
        self._redis, self._cluster = redis, cluster
        self._script = redis.register_script(_HIT_SCRIPT)
        self._warn_every = warn_every
        self._clock = clock
        self._last_warning: float | None = None

    async def hit(self, key: str, rule: RateLimit) -> tuple[bool, int]:
        """Count one request for `key` under `rule`; returns (allowed, seconds until the window ends).

        Never raises for a Redis failure: answers ``(True, 0)`` and logs a warning instead.
        """
        slot = f"{key}:{rule.count}/{rule.seconds}"
        # the script adds ":<window>" to KEYS[1]: on a cluster the hash tag keeps that key in
        # the slot of KEYS[1]
        slot = f"{self.prefix}{{{slot}}}" if self._cluster else f"{self.prefix}{slot}"
        try:
            count, retry_after = await self._script(keys=[slot], args=[rule.seconds])
        except (RedisError, OSError) as exc:  # OSError covers TimeoutError
            self._warn(exc)
            return True, 0
        return int(count) <= rule.count, max(1, int(retry_after))

    def _warn(self, exc: BaseException) -> None:
        now = self._clock()
        if self._last_warning is None or now - self._last_warning >= self._warn_every:
            self._last_warning = now
            log.warning("rate limiter: Redis unreachable, letting requests through (%s)", exc)

    async def reset(self) -> None:
        """Delete every counter of this limiter (tests and operators)."""
        async for key in self._redis.scan_iter(match=self.prefix + "*", count=500):
            await self._redis.delete(key)
