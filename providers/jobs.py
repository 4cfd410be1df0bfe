"""The job queue: saq (https://github.com/tobymao/saq) on Redis, or in process.

`open_job_queue(settings, registry, metrics_registry)` returns a `JobQueue`. With `REDIS_URL`
the jobs are saq jobs in Redis: each one stays in Redis until it finished, so a job whose
worker crashed or whose instance was killed is found by saq's sweep (past its timeout) and
run again by any instance; a graceful stop puts the running jobs back in the queue. Without
`REDIS_URL` (embedded default) the same saq `Worker` runs the same functions on an in-process
queue (`providers.memory_queue`), lost when the process ends.

- `enqueue(function, key=..., **kwargs)`: a job under a unique `key` is enqueued once while
  it waits or runs (so a message id or an order id makes the job idempotent). Each function
  has a `Policy`: retries with exponential backoff (saq's own, with jitter) and a timeout.
- Heartbeat (Redis only): a running job touches its record every third of
  `heartbeat_seconds` (JOBS_HEARTBEAT_SECONDS, 30 s); a job not touched for that long is
  stuck, so the sweep of any instance gives a killed instance's job another try within about
  `heartbeat_seconds + sweep_seconds + 5` s, however long its timeout (README "Background jobs").
- Periodic jobs are saq cron jobs with a unique key per function: every instance schedules
  them, and Redis lets exactly one of them enqueue each run (one run across all instances).
- A job that failed its last try is a dead letter: logged as an error, counted in
  `hwc3d_jobs_total{outcome="failed"}`, and kept in a list (`dead_letters()`, the newest
  DEAD_LETTERS_KEPT; in Redis under ``hwc3d:jobs:dead``).
- Metrics on the instance's registry: jobs by function and outcome, job durations, and the
  queue depth (`hwc3d_jobs_queue{state="queued"|"active"|"scheduled"}`; `refresh_metrics()`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from saq import CronJob, Worker
from saq.job import Status

from providers.memory_queue import MemoryQueue

log = logging.getLogger("hwc3d.jobs")
logging.getLogger("saq").setLevel(logging.ERROR)  # saq logs every enqueue, finish, stop

QUEUE_NAME = "hwc3d"
DEAD_KEY = "hwc3d:jobs:dead"
DEAD_LETTERS_KEPT = 1000


@dataclass(frozen=True)
class Policy:
    """How a job is retried: `retries` tries in all, the n-th retry after about
    ``retry_delay * 2**(n-1)`` seconds (jittered, at most `max_delay`); `timeout` seconds per
    try (a try past it is cancelled and retried)."""

    retries: int = 5
    retry_delay: float = 2.0
    max_delay: float = 600.0
    timeout: int = 120


@dataclass(frozen=True)
class Periodic:
    """A function run on a cron schedule (croniter syntax: minute hour day month weekday,
    and an optional sixth field for seconds)."""

    function: Callable
    cron: str
    timeout: int = 600


@dataclass
class Registry:
    """The job functions (``async def f(ctx, **kwargs)``; ``ctx["services"]`` holds the
    instance's services) with their policies, and the periodic ones."""

    functions: dict[str, tuple[Callable, Policy]] = field(default_factory=dict)
    periodic: list[Periodic] = field(default_factory=list)

    def job(self, policy: Policy | None = None):
        """Decorator: register `function` under its name with `policy`."""
        def register(function):
            self.functions[function.__qualname__] = (function, policy or Policy())
            return function
        return register


class _Worker(Worker):
    SIGNALS: list = []  # the server handles SIGTERM itself and stops the worker


class _Metrics:
    def __init__(self, registry: CollectorRegistry):
        self.jobs = Counter("hwc3d_jobs_total", "Job tries by function and outcome "
                            "(complete, retried, failed = dead letter, aborted)",
                            ["function", "outcome"], registry=registry)
        self.seconds = Histogram("hwc3d_job_seconds", "Job try duration", ["function"],
                                 registry=registry,
                                 buckets=(.01, .05, .1, .5, 1, 5, 15, 60, 300))
        self.depth = Gauge("hwc3d_jobs_queue", "Jobs in the queue by state", ["state"],
                           registry=registry)
        self.enqueued = Counter("hwc3d_jobs_enqueued_total", "Jobs enqueued by function",
                                ["function"], registry=registry)


class JobQueue:
    """The queue client of one instance, and (with `run_worker`) its worker."""

    def __init__(self, queue, registry: Registry, metrics_registry: CollectorRegistry, *,
                 run_worker: bool = True, concurrency: int = 4, sweep_seconds: int = 30,
                 schedule_seconds: int = 1, grace_seconds: float = 5.0,
                 heartbeat_seconds: int = 0):
        self.queue = queue
        self.registry = registry
        self.run_worker = run_worker
        self.metrics = _Metrics(metrics_registry)
        self._grace = grace_seconds
        self._heartbeat = heartbeat_seconds
        self._dead: deque = deque(maxlen=DEAD_LETTERS_KEPT)
        self._task: asyncio.Task | None = None
        cron = [CronJob(p.function, cron=p.cron, timeout=p.timeout, retries=1)
                for p in registry.periodic]
        self.worker = _Worker(
            queue, [(name, self._beating(fn)) for name, (fn, _) in registry.functions.items()],
            concurrency=concurrency, cron_jobs=cron, dequeue_timeout=1,
            after_process=self._after, timers={"sweep": sweep_seconds,
                                               "schedule": schedule_seconds})

    @property
    def redis(self):
        return getattr(self.queue, "redis", None)

    async def start(self, services) -> None:
        """Connect and (with `run_worker`) start this instance's worker in the event loop."""
        await self.queue.connect()
        self.worker.context["services"] = services
        if self.run_worker:
            self._task = asyncio.create_task(self.worker.start(), name="jobs-worker")

    async def stop(self) -> None:
        """Stop taking jobs, give running ones `grace_seconds` to end (the rest are put back
        in the queue for another try), and disconnect. Never raises."""
        try:
            if self._task is not None:
                self.worker.event.set()
                running = [c["task"] for c in list(self.worker.job_task_contexts.values())]
                if running:
                    await asyncio.wait(running, timeout=self._grace)
                await self.worker.stop()
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        finally:
            await self.queue.disconnect()

    async def enqueue(self, function: str | Callable, *, key: str | None = None,
                      delay: float = 0, **kwargs) -> bool:
        """Enqueue `function` (a registered name or function) with JSON-able `kwargs`; with
        `key`, only when no job with that key waits or runs. True when enqueued; raises
        KeyError for an unregistered function."""
        name = function if isinstance(function, str) else function.__qualname__
        _, policy = self.registry.functions[name]
        options = {"retries": policy.retries, "retry_delay": policy.retry_delay,
                   "retry_backoff": policy.max_delay, "timeout": policy.timeout}
        if self._heartbeat:
            options["heartbeat"] = self._heartbeat
        if key:
            options["key"] = key
        if delay:
            options["scheduled"] = int(time.time() + delay)
        job = await self.queue.enqueue(name, **options, **kwargs)
        if job is not None:
            self.metrics.enqueued.labels(name).inc()
        return job is not None

    async def refresh_metrics(self) -> dict:
        """Read the queue depth into the gauge; returns ``{queued, active, scheduled}``."""
        queued = await self.queue.count("queued")
        active = await self.queue.count("active")
        incomplete = await self.queue.count("incomplete")
        depth = {"queued": queued, "active": active,
                 "scheduled": max(0, incomplete - queued - active)}
        for state, value in depth.items():
            self.metrics.depth.labels(state).set(value)
        return depth

    async def dead_letters(self, limit: int = 100) -> list[dict]:
        """The newest dead letters (jobs that failed their last try), newest first:
        ``[{function, key, kwargs, attempts, error, failed_at (unix s)}]``."""
        if self.redis is not None:
            raw = await self.redis.lrange(DEAD_KEY, 0, limit - 1)
            return [json.loads(item) for item in raw]
        return list(self._dead)[:limit]

    def _beating(self, function: Callable) -> Callable:
        """`function` run while a task touches its job every third of the heartbeat."""
        if not self._heartbeat:
            return function

        async def run(ctx, **kwargs):
            stop = asyncio.Event()
            beat = asyncio.create_task(self._beat(ctx.get("job"), stop))
            try:
                return await function(ctx, **kwargs)
            finally:
                stop.set()  # the last touch ends before the worker records the outcome
                await asyncio.gather(beat, return_exceptions=True)

        run.__qualname__ = run.__name__ = function.__name__
        run.__doc__ = function.__doc__
        return run

    async def _beat(self, job, stop: asyncio.Event) -> None:
        while job is not None and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self._heartbeat / 3)
            except TimeoutError:
                try:
                    await job.update()  # status unchanged: only `touched` moves
                except Exception:
                    log.warning("heartbeat of job %s failed", job.key, exc_info=True)

    async def _after(self, ctx: dict) -> None:
        job = ctx.get("job")
        if job is None:
            return
        outcome = {Status.COMPLETE: "complete", Status.FAILED: "failed",
                   Status.ABORTED: "aborted"}.get(job.status, "retried")
        self.metrics.jobs.labels(job.function, outcome).inc()
        if job.started:
            self.metrics.seconds.labels(job.function).observe(
                max(0.0, (time.time() * 1000 - job.started) / 1000))
        if outcome == "failed":
            await self._dead_letter(job)

    async def _dead_letter(self, job) -> None:
        error = (job.error or "").strip().splitlines()[-1:] or [""]
        letter = {"function": job.function, "key": job.key, "kwargs": job.kwargs or {},
                  "attempts": job.attempts, "error": error[0][:500], "failed_at": time.time()}
        log.error("job %s (%s) failed after %d tries: %s", job.function, job.key,
                  job.attempts, letter["error"])
        if self.redis is not None:
            await self.redis.lpush(DEAD_KEY, json.dumps(letter, default=str))
            await self.redis.ltrim(DEAD_KEY, 0, DEAD_LETTERS_KEPT - 1)
        else:
            self._dead.appendleft(letter)


def open_job_queue(settings, registry: Registry, metrics_registry: CollectorRegistry
                   ) -> JobQueue:
    """saq on `settings.redis_url`, else the in-process queue; not started yet."""
    if settings.redis_url:
        from saq.queue.redis import RedisQueue

        queue = RedisQueue.from_url(settings.redis_url, name=QUEUE_NAME)
    else:
        queue = MemoryQueue(QUEUE_NAME)
    # in process, this process's worker is the only one: it always runs
    run_worker = settings.jobs_worker or not settings.redis_url
    return JobQueue(queue, registry, metrics_registry, run_worker=run_worker,
                    concurrency=settings.jobs_concurrency,
                    sweep_seconds=settings.jobs_sweep_seconds,
                    heartbeat_seconds=settings.jobs_heartbeat_seconds if settings.redis_url else 0)
