"""HWC3D server: one Tornado process = one instance (docs/architecture.md §1).

    python server.py [--host 0.0.0.0] [--port 8888] [--seed | --no-seed]

Reads the configuration (environment and `.env`), opens the clients, builds the
Application, serves, and on SIGTERM/SIGINT stops accepting, closes WebSockets with 1001,
drains HTTP requests and exits.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from tornado.ioloop import PeriodicCallback
from tornado.netutil import bind_sockets

from composition import close_services, open_services
from config import ConfigError, load_settings, refuse_seed_in_production
from config.logs import setup_logging
from handlers.app import make_app
from handlers.limits import LimitedHTTPServer

log = logging.getLogger("hwc3d")

DRAIN_SECONDS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one HWC3D server instance.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8888, help="port to bind (default 8888)")
    parser.add_argument("--seed", action=argparse.BooleanOptionalAction, default=None,
                        help="load the demo data of fixtures/ into an empty store (default: on "
                             "for the in-memory store only; refused with ENV=production)")
    return parser.parse_args(argv)


def banner(settings, host: str, port: int) -> str:
    parts = [f"HWC3D server on http://{host}:{port}  (API at /api, docs at /docs)"]
    if settings.embedded_store:
        parts.append("Documents: IN MEMORY (embedded default) - everything is lost on exit. "
                     "Set MONGODB_URL for a real MongoDB.")
    storage = (f"S3 {settings.s3_bucket_name}" if settings.s3_bucket_name
               else f"local disk {settings.data_dir}")
    broker = (f"Redis Cluster ({len(settings.redis_cluster_nodes)} seed nodes)"
              if settings.redis_cluster_nodes else "Redis" if settings.redis_url else "in-process")
    parts.append(f"Realtime broker: {broker}; "
                 f"storage: {storage}; "
                 f"payments: {'Stripe' if settings.stripe_secret_key else 'test provider'}; "
                 f"email: {'SMTP ' + settings.smtp_host if settings.smtp_host else 'outbox (log)'}")
    return "\n".join(parts)


async def serve(args: argparse.Namespace) -> None:
    overrides = {"public_url": f"http://{args.host}:{args.port}"} if args.host != "0.0.0.0" else {}
    try:
        settings = load_settings(**overrides)
        refuse_seed_in_production(settings, args.seed, "--seed")
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    access_log = setup_logging(settings.log_format, settings.log_level,
                               settings.access_log_buffer)
    if access_log is not None:  # buffered access lines reach the log within a second
        PeriodicCallback(access_log.flush, 1000).start()
    try:   # before any seeding: a taken port stops start-up at once
        sockets = bind_sockets(args.port, args.host, backlog=1024)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc} (another server "
              "running? stop it or choose --port)", file=sys.stderr)
        raise SystemExit(1) from None
    services = await open_services(settings, seed_fixtures=args.seed)
    # What start-up built (libraries, seeded documents) lives as long as the process: move it
    # out of the collector's reach, so collections walk only what requests create.
    gc.collect()
    gc.freeze()
    server = LimitedHTTPServer(make_app(services), xheaders=True,
                               max_body_size=settings.max_model_bytes + 1024 * 1024,
                               max_header_size=settings.max_header_bytes,
                               idle_connection_timeout=75)
    server.add_sockets(sockets)
    print(banner(settings, args.host, args.port), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    services.draining = True  # /readyz: 503 from now on
    if settings.shutdown_grace_seconds:
        log.info("shutting down in %ss: /readyz answers 503, requests are still served",
                 settings.shutdown_grace_seconds)
        await asyncio.sleep(settings.shutdown_grace_seconds)
    log.info("shutting down: no new connections, closing sockets with 1001, draining requests")
    server.stop()
    if hasattr(services.hub, "shutdown"):
        await services.hub.shutdown()
    try:
        await asyncio.wait_for(server.close_all_connections(), DRAIN_SECONDS)
    except TimeoutError:
        log.warning("drain timed out after %ss", DRAIN_SECONDS)
    await close_services(services)
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
