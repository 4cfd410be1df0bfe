"""An in-process backend for saq's `Queue`, so that the embedded default (no `REDIS_URL`)
runs the very same saq `Worker`: the same job functions, cron schedule, retry policy with
backoff, timeouts and unique keys, only without Redis.

The jobs live in this process's memory: they do not survive a restart (use Redis for that).
"""
from __future__ import annotations

import asyncio
import collections
import time
import typing as t

from saq.job import Job, Status
from saq.queue.base import Queue

KEEP_FINISHED = 1000


class MemoryQueue(Queue):
    """saq queue kept in a dict: `incomplete` maps job id → scheduled time (0 = now)."""

    def __init__(self, name: str = "default") -> None:
        super().__init__(name, dump=None, load=None)
        self._jobs: dict[str, Job] = {}
        self._incomplete: dict[str, float] = {}
        self._queued: collections.deque[str] = collections.deque()
        self._active: set[str] = set()
        self._finished: collections.deque[str] = collections.deque()
        self._workers: dict[str, dict] = {}
        self._ready: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._ready is None:
            self._ready = asyncio.Condition()
        return self._ready

    async def _wake(self) -> None:
        async with self._condition():
            self._condition().notify_all()

    async def disconnect(self) -> None:
        self._workers.clear()

    async def info(self, jobs: bool = False, offset: int = 0, limit: int = 10) -> dict:
        listed = [self._jobs[i].to_dict() for i in list(self._incomplete)[offset:offset + limit]
                  if i in self._jobs] if jobs else []
        return {"workers": dict(self._workers), "name": self.name,
                "queued": len(self._queued), "active": len(self._active),
                "scheduled": await self.count("incomplete") - len(self._queued)
                - len(self._active), "jobs": listed}

    async def count(self, kind: str) -> int:
        if kind == "queued":
            return len(self._queued)
        if kind == "active":
            return len(self._active)
        return len(self._incomplete)

    async def schedule(self, _lock: int = 1) -> list[str]:
        now = time.time()
        due = [i for i, at in self._incomplete.items()
               if at and at <= now and i not in self._active and i not in self._queued]
        for job_id in due:
            self._incomplete[job_id] = 0
            self._queued.append(job_id)
        if due:
            await self._wake()
        return due

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        return []  # a job of this process cannot outlive its worker

    async def _update(self, job: Job, status: Status | None = None, **kwargs: t.Any) -> None:
        if job.id in self._jobs:
            self._jobs[job.id] = job

    async def job(self, job_key: str) -> Job | None:
        found = self._jobs.get(self.job_id(job_key))
        return self.copy(found) if found else None

    async def jobs(self, job_keys: t.Iterable[str]) -> list[Job | None]:
        return [await self.job(key) for key in job_keys]

    async def iter_jobs(self, statuses: list[Status] | None = None,
                        batch_size: int = 100) -> t.AsyncIterator[Job]:
        for job in list(self._jobs.values()):
            if statuses is None or job.status in statuses:
                yield self.copy(job)

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        job.error = error
        if job.id in self._queued:
            self._queued.remove(job.id)
        await self.finish(job, Status.ABORTED, error=error)

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        ready = self._condition()
        async with ready:
            try:
                await asyncio.wait_for(ready.wait_for(lambda: bool(self._queued)),
                                       timeout or None)
            except TimeoutError:
                return None
            job_id = self._queued.popleft()
        self._active.add(job_id)
        return self.copy(self._jobs[job_id])

    async def write_worker_info(self, worker_id: str, info: dict, ttl: int) -> None:
        self._workers[worker_id] = info

    async def _retry(self, job: Job, error: str | None) -> None:
        self._active.discard(job.id)
        delay = job.next_retry_delay()
        self._jobs[job.id] = job
        if delay:
            self._incomplete[job.id] = time.time() + delay
        else:
            self._incomplete[job.id] = 0
            self._queued.append(job.id)
            await self._wake()

    async def _finish(self, job: Job, status: Status, *, result: t.Any = None,
                      error: str | None = None) -> None:
        self._active.discard(job.id)
        self._incomplete.pop(job.id, None)
        self._jobs[job.id] = job
        self._finished.append(job.id)
        while len(self._finished) > KEEP_FINISHED:
            self._jobs.pop(self._finished.popleft(), None)

    async def _enqueue(self, job: Job) -> Job | None:
        if job.id in self._incomplete:
            return None  # a job with this key is waiting or running: enqueued once
        self._jobs[job.id] = job
        self._incomplete[job.id] = job.scheduled
        if not job.scheduled:
            self._queued.append(job.id)
            await self._wake()
        return job
