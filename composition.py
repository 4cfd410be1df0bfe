"""The composition root: the clients of one instance, opened and closed in order
(docs/architecture.md §2).

`open_services(settings)` opens every client (document store, Redis, storage, mail, pools,
the job queue and this instance's job worker) in order and returns them as `Services`;
`close_services` closes them in reverse. `server.py`, `worker.py` and the tests are the only
callers; `handlers.app.make_app(services)` builds the Application that hands them to every
handler.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import platform
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tornado
from tornado.httpclient import AsyncHTTPClient

from config import Settings, refuse_seed_in_production
from config.logs import request_id_var
from documents import accounts, cards, outbox, search_build, seed, users, write_feed
from documents import db as documents_db
from documents.common import render
from handlers import previews
from handlers.metrics import Metrics
from handlers.observe import MongoCommandTimer, TimedTransport, instrument, open_redis
from providers import mail, payments
from realtime.ratelimit import MemoryRateLimiter, RedisRateLimiter
from storage.workers import open_pool

if TYPE_CHECKING:
    from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from providers.jobs import JobQueue
    from providers.payments import PaymentProvider
    from realtime.hub import Hub
    from storage.base import Storage

log = logging.getLogger("hwc3d")


@dataclass
class Services:
    """Everything a handler may use, created once per instance by `open_services`.

    A part that is not configured keeps its embedded default (docs/architecture.md §1):
    `db` is then mongomock-motor behind the write feed, `redis`/`redis_cluster` stay None
    (in-process broker and rate limits), `storage` is the local disk.
    """

    settings: Settings
    db_client: AsyncIOMotorClient | None = None          # None on the embedded store
    db: AsyncIOMotorDatabase | None = None               # the database of MONGODB_DB
    redis: Redis | None = None                           # REDIS_URL: jobs, rate limits
    redis_cluster: RedisCluster | None = None   # REDIS_CLUSTER_URLS: rate limits (the hub
    #                                             has its own client)
    storage: Storage | None = None
    mailer: outbox.Mailer | None = None
    rate_limiter: MemoryRateLimiter | RedisRateLimiter | None = None
    hub: Hub | None = None
    payments: PaymentProvider | None = None
    jobs: JobQueue | None = None
    analysis_pool: ProcessPoolExecutor | None = None
    image_pool: ProcessPoolExecutor | None = None
    preview_pool: ProcessPoolExecutor | None = None
    preview_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one build at a time
    tasks: set[asyncio.Task] = field(default_factory=set)
    http_client: AsyncHTTPClient | None = None
    metrics: Metrics = field(default_factory=Metrics)
    log_context: contextvars.ContextVar = request_id_var
    closers: list[Callable[[], Any]] = field(default_factory=list)
    draining: bool = False  # set on SIGTERM: /readyz answers 503 from then on


async def open_services(settings: Settings, *, seed_fixtures: bool | None = None,
                        db=None) -> Services:
    """Open every client named by `settings` (embedded parts where nothing is configured).

    Creates the indexes, and loads `fixtures/` into the store when `seed_fixtures` (default:
    `settings.seed_fixtures`) and the store has no users yet. With `db`, the instance uses
    that database instead of opening its own (tests: instances sharing one in-memory store).
    Raises ConfigError before opening anything when seeding is asked for in production.
    """
    seed_fixtures = settings.seed_fixtures if seed_fixtures is None else seed_fixtures
    refuse_seed_in_production(settings, seed_fixtures, "seeding the demo fixtures")
    services = Services(settings=settings)
    services.metrics.build.info({"version": settings.build_version,
                                 "python": platform.python_version(),
                                 "tornado": tornado.version})
    if db is None:
        services.db_client = documents_db.open_client(
            settings, event_listeners=[MongoCommandTimer(services.metrics)])
        services.db = services.db_client[settings.mongodb_db]
        services.closers.append(services.db_client.close)
    else:
        services.db = db
    await documents_db.ensure_indexes(services.db)
    if settings.embedded_store:  # creator cards kept while the write feed reports users' writes
        if not isinstance(services.db, write_feed.FeedDatabase):  # or another instance's
            services.db = write_feed.FeedDatabase(services.db, write_feed.WriteFeed())
        services.closers.append(await cards.open_local_cache(services.db, users.COLLECTION))
    else:  # creator cards kept while a change stream follows users
        services.closers.append(await cards.open_cache(services.db, users.COLLECTION))

    if settings.redis_url:   # the job queue (saq) and, without a cluster, rate limits
        services.redis = open_redis(settings.redis_url, services.metrics)
        services.closers.append(services.redis.aclose)
    if settings.redis_cluster_nodes:
        from realtime.cluster import cluster_client

        services.redis_cluster = cluster_client(settings.redis_cluster_nodes)
        services.closers.append(services.redis_cluster.aclose)
        services.rate_limiter = RedisRateLimiter(services.redis_cluster, cluster=True)
    elif settings.redis_url:
        services.rate_limiter = RedisRateLimiter(services.redis)
    else:
        services.rate_limiter = MemoryRateLimiter()

    from storage import open_storage

    services.storage = await open_storage(settings)
    services.closers.append(services.storage.close)
    if settings.s3_bucket_name:
        instrument(services.storage, "s3", services.metrics)
    services.analysis_pool = open_pool(settings.analysis_workers, settings.analysis_memory_bytes,
                                       numeric=True)
    services.closers.append(lambda: services.analysis_pool.shutdown(wait=False, cancel_futures=True))
    services.image_pool = open_pool(settings.image_workers, settings.image_memory_bytes)
    services.closers.append(lambda: services.image_pool.shutdown(wait=False, cancel_futures=True))
    # Previews (conversion, decimation, offscreen rendering) get their own worker, so a long
    # preview never holds up the analysis of the next upload (no memory limit: decimating a
    # 5 M face mesh takes about 2 GB; one build at a time).
    services.preview_pool = open_pool(1, 0)
    services.closers.append(lambda: services.preview_pool.shutdown(wait=False, cancel_futures=True))
    services.closers.append(lambda: _cancel_tasks(services))
    from jobs import registry as job_registry
    from providers.jobs import open_job_queue

    services.jobs = open_job_queue(settings, job_registry(settings), services.metrics.registry)
    transport = mail.open_transport(settings)
    if settings.smtp_host:
        transport = TimedTransport(transport, services.metrics)
    services.mailer = outbox.Mailer(settings, services.db, transport, services.jobs)
    services.payments = payments.open_payment_provider(settings)
    services.closers.append(services.payments.close)
    if settings.stripe_secret_key:
        instrument(services.payments, "payments", services.metrics)
    services.http_client = AsyncHTTPClient(force_instance=True)
    services.closers.append(services.http_client.close)

    from realtime.hub import open_hub

    services.hub = await open_hub(settings, services.redis, services.metrics, render=render)
    services.closers.append(services.hub.close)
    await services.jobs.start(services)  # stopped first: running jobs still have every client
    services.closers.append(services.jobs.stop)

    if seed_fixtures:
        await seed.load_fixtures(services.db, services.storage)
    await search_build.ensure_built(services.db)     # a store from before search documents
    await search_build.open_search(services.db, in_process_index=settings.embedded_store)
    await accounts.ensure_first_admin(services.db, settings)  # after the seed: ADMIN_EMAIL
    # previews a stopped process left unfinished are enqueued again (in-process queue only)
    resume = asyncio.get_running_loop().create_task(previews.resume(services))
    services.tasks.add(resume)
    resume.add_done_callback(services.tasks.discard)
    return services


async def _cancel_tasks(services: Services) -> None:
    """Cancel the background tasks still running (the start-up preview resume) at shut-down
    and let them clean up (up to 5 s)."""
    tasks = list(services.tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)


CLOSE_SECONDS = 10.0  # the longest one closer may take at shut-down before it is abandoned


async def close_services(services: Services, *, timeout: float = CLOSE_SECONDS) -> None:
    """Close what `open_services` opened, in reverse order; never raises. A closer still
    running after `timeout` seconds is cancelled and logged, so one stuck client (a job that
    ignores cancellation, an unreachable broker) never holds up the process's exit."""
    for close in reversed(services.closers):
        try:
            result = close()
            if hasattr(result, "__await__"):
                await asyncio.wait_for(result, timeout)
        except TimeoutError:
            log.warning("%r did not close within %g s; abandoned", close, timeout)
        except Exception:
            log.warning("error while closing %r", close, exc_info=True)
    services.closers.clear()
