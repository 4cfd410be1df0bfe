"""Benchmark (not a test): a rolling restart of N instances behind a real nginx, under load.

    .venv/bin/python bench/rolling_restart_bench.py [--instances 3] [--rest-clients 8]
        [--sockets 30] [--rate 10] [--steady 15] [--pause 3]

Starts a private `redis-server`, N `server.py` instances (embedded documents seeded from
fixtures/, shared REDIS_URL and JWT_SECRET_KEY, rate limits off) and Debian's nginx with
`config/nginx.conf` (its upstream lines pointed at the instances, as tests/test_nginx.py
renders it). Load, all through nginx:

- REST: `--rest-clients` loops of `GET /api/models/{id}` and `GET /api/models?limit=5`;
- events: `--rate` staff replies a second on the seeded support ticket (`POST
  /api/admin/support/tickets/{id}/messages`), each a `message_received` event;
- WebSocket: `--sockets` subscribers of the ticket's channel (`/ws/support/{id}`); a socket
  closed by its instance (1001 on SIGTERM) reconnects through nginx with `since=<last
  offset>`.

After `--steady` seconds of steady state the instances are restarted one by one (SIGTERM,
wait for the drain and exit, start again on the same port, wait for `/readyz`, `--pause` s).
Printed: failed requests (status ≥ 500 or no answer) and the REST latency p50/p99 in the
steady state and during the roll, events published, and per subscriber the events lost
(published but never received) and duplicated. Targets: 0 failed, 0 lost.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from http_bench import Process, free_port  # noqa: E402
from realtime_bench import SECRET, STAFF, TICKET, TICKET_SUBSCRIBERS, start_redis, tokens  # noqa: E402
from test_nginx import nginx_binary, render_config  # noqa: E402
from tornado.httpclient import AsyncHTTPClient, HTTPRequest  # noqa: E402
from tornado.websocket import websocket_connect  # noqa: E402

MODEL_ID = "652000000000000000000039"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Cluster:
    def __init__(self, workdir: Path, redis_url: str, count: int):
        self.workdir, self.redis_url = workdir, redis_url
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[Process | None] = [None] * count

    def start(self, index: int) -> None:
        port = self.ports[index]
        env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
        env.update(REDIS_URL=self.redis_url, JWT_SECRET_KEY=SECRET, RATE_LIMITS_ENABLED="false",
                   DATA_DIR=str(self.workdir / f"i{index}"), PYTHONUNBUFFERED="1",
                   COMPRESS_RESPONSES="false", LOG_LEVEL="warning")
        proc = Process([sys.executable, str(ROOT / "server.py"), "--port", str(port)],
                       self.workdir, env, self.workdir / f"i{index}-{time.time():.0f}.log")
        proc.wait_for("HWC3D server on", timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        self.procs[index] = proc

    def stop(self, index: int) -> float:
        """SIGTERM and wait for the exit; returns the seconds the drain took."""
        proc = self.procs[index]
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        proc.proc.wait(timeout=60)
        proc.log.close()
        return time.monotonic() - started


def start_nginx(workdir: Path, ports: list[int]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    prefix = workdir / "nginx"
    prefix.mkdir()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / f"{kind}_temp").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(render_config((ROOT / "config" / "nginx.conf").read_text(), prefix, port,
                                  ports, "root"))
    proc = subprocess.Popen([nginx_binary(), "-p", str(prefix), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("nginx did not start")


class Load:
    def __init__(self, base: str, args):
        self.base, self.args = base, args
        self.phase = "steady"
        self.latency: dict[str, list[float]] = {"steady": [], "roll": []}
        self.failed: dict[str, list[str]] = {"steady": [], "roll": []}
        self.requests = {"steady": 0, "roll": 0}
        self.published: list[str] = []
        self.received: list[list[str]] = []
        self.reconnects = 0
        self.stop = asyncio.Event()
        self.client = AsyncHTTPClient(max_clients=args.rest_clients + 8)

    async def call(self, method: str, path: str, token: str | None = None, body=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        phase, started = self.phase, time.monotonic()
        self.requests[phase] += 1
        try:
            response = await self.client.fetch(HTTPRequest(
                self.base + path, method=method, headers=headers,
                body=json.dumps(body) if body is not None else None, request_timeout=30),
                raise_error=False)
        except Exception as exc:
            self.failed[phase].append(f"{method} {path}: {type(exc).__name__}")
            return None
        self.latency[phase].append(time.monotonic() - started)
        if response.code >= 500 or response.code == 599:
            self.failed[phase].append(f"{method} {path}: {response.code}")
            return None
        return response

    async def rest_loop(self) -> None:
        paths = [f"/api/models/{MODEL_ID}", "/api/models?limit=5"]
        n = 0
        while not self.stop.is_set():
            await self.call("GET", paths[n % 2])
            n += 1

    async def publish_loop(self, token: str) -> None:
        n = 0
        while not self.stop.is_set():
            started = time.monotonic()
            response = await self.call("POST", f"/api/admin/support/tickets/{TICKET}/messages",
                                       token, {"content": f"roll #{n}"})
            if response is not None and response.code == 201:
                self.published.append(json.loads(response.body)["id"])
            n += 1
            await asyncio.sleep(max(0.0, 1 / self.args.rate - (time.monotonic() - started)))

    async def subscriber(self, token: str) -> None:
        seen: list[str] = []
        self.received.append(seen)
        offset = None
        while not self.stop.is_set():
            url = self.base.replace("http", "ws", 1) + f"/ws/support/{TICKET}?token={token}"
            if offset is not None:
                url += f"&since={offset}"
            try:
                conn = await websocket_connect(url, connect_timeout=10)
            except Exception:
                await asyncio.sleep(0.2)
                continue
            while True:
                message = await conn.read_message()
                if message is None:
                    break
                frame = json.loads(message)
                if frame.get("offset") is not None:
                    offset = frame["offset"]
                if frame.get("type") == "message_received":
                    seen.append(frame["data"]["id"])
            if not self.stop.is_set():
                self.reconnects += 1


async def run(args, cluster: Cluster, base: str) -> None:
    load = Load(base, args)
    staff = tokens([STAFF], 1)[0]
    subscribers = tokens(TICKET_SUBSCRIBERS, args.sockets)
    tasks = [asyncio.ensure_future(load.subscriber(t)) for t in subscribers]
    await asyncio.sleep(3)  # sockets joined
    tasks += [asyncio.ensure_future(load.rest_loop()) for _ in range(args.rest_clients)]
    tasks.append(asyncio.ensure_future(load.publish_loop(staff)))
    await asyncio.sleep(args.steady)
    load.phase = "roll"
    roll_started = time.monotonic()
    drains = []
    for index in range(len(cluster.ports)):
        drains.append(await asyncio.to_thread(cluster.stop, index))
        await asyncio.to_thread(cluster.start, index)
        await asyncio.sleep(args.pause)
    roll_seconds = time.monotonic() - roll_started
    load.phase = "after"
    load.latency["after"], load.failed["after"], load.requests["after"] = [], [], 0
    await asyncio.sleep(5)  # the last events reach every socket
    load.stop.set()
    await asyncio.sleep(1)
    for task in tasks:
        task.cancel()

    published = set(load.published)
    lost = [len(published - set(seen)) for seen in load.received]
    duplicated = [len(seen) - len(set(seen)) for seen in load.received]
    print(f"{len(cluster.ports)} instances behind nginx; roll took {roll_seconds:.1f} s "
          f"(drains {', '.join(f'{d:.1f}' for d in drains)} s); {args.sockets} sockets, "
          f"{args.rest_clients} REST clients, {args.rate} events/s")
    print(f"{'phase':<8} {'requests':>9} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for phase in ("steady", "roll"):
        values = load.latency[phase]
        print(f"{phase:<8} {load.requests[phase]:>9} {len(load.failed[phase]):>7} "
              f"{1000 * pct(values, 0.5):>8.1f} {1000 * pct(values, 0.99):>8.1f}")
    for phase in ("steady", "roll"):
        for failure in sorted(set(load.failed[phase]))[:5]:
            print(f"  {phase} failure: {failure} (×{load.failed[phase].count(failure)})")
    print(f"events published: {len(published)}; socket reconnects: {load.reconnects}; "
          f"lost per socket: max {max(lost)}, total {sum(lost)}; duplicated: total {sum(duplicated)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--rest-clients", type=int, default=8)
    parser.add_argument("--sockets", type=int, default=30)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--steady", type=float, default=15)
    parser.add_argument("--pause", type=float, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rolling-bench-"))
    redis_proc, redis_url = start_redis(workdir)
    cluster = Cluster(workdir, redis_url, args.instances)
    nginx = None
    try:
        for index in range(args.instances):
            cluster.start(index)
        nginx, port = start_nginx(workdir, cluster.ports)
        asyncio.run(run(args, cluster, f"http://127.0.0.1:{port}"))
    finally:
        for proc in cluster.procs:
            if proc is not None and proc.proc.poll() is None:
                proc.stop()
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=20)
        redis_proc.terminate()
        redis_proc.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
