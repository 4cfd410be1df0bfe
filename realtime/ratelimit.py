"""Fixed-window rate-limit counters (seed 001 §21, DESIGN §3).

`MemoryRateLimiter` counts in this process (embedded default); `RedisRateLimiter` counts in
Redis so that a limit holds across every instance. Both answer `hit(key, rule)` with
``(allowed, retry_after_seconds)``.
"""
from __future__ import annotations

import math
import time

from config import RateLimit


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
