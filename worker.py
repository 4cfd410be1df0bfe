"""A job worker without an HTTP server (README "Background jobs").

    python worker.py

Every `server.py` instance already runs a worker in its process; with `JOBS_WORKER=false`
on the instances, this process (one or more, same environment, `REDIS_URL` required) runs
the jobs instead. Stops on SIGTERM/SIGINT; running jobs get a few seconds, the rest go back
to the queue.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys

from composition import close_services, open_services
from config import ConfigError, load_settings
from config.logs import setup_logging

log = logging.getLogger("hwc3d")


async def run() -> None:
    try:
        settings = load_settings(jobs_worker=True)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not settings.redis_url:
        print("worker.py needs REDIS_URL: without it each server runs its own jobs",
              file=sys.stderr)
        raise SystemExit(2)
    setup_logging(settings.log_format, settings.log_level)
    services = await open_services(settings, seed_fixtures=False)
    log.info("job worker running (%d at a time)", settings.jobs_concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await close_services(services)
    log.info("job worker stopped")


if __name__ == "__main__":
    asyncio.run(run())
