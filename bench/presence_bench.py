"""Presence and Redis-outage benchmarks: ours beside the bare Tornado server, same run.

    .venv/bin/python bench/presence_bench.py [d] [e] [--users 300,1000,3000]
        [--subscribers 1000] [--rate 20] [--duration 20] [--outage 3] [--client-procs 4]

(d) presence: N distinct users (registered through REST on our instance) open the public
    community ``/ws/community/<id>`` on one instance, `--concurrency` at a time. Reported:
    frames the server sent (events written to sockets, from ``/metrics``, plus the opening
    `connected` and `presence` frames), frames per user, and server CPU per connect. Ours
    runs twice: as configured (communities above PRESENCE_COALESCE_ABOVE=200 users get
    `presence_count`) and with per-user presence events everywhere (PRESENCE_COALESCE_ABOVE
    set above N: the n² behaviour). Baseline: N sockets on one channel of the bare server
    (no presence at all), CPU per connect.
(e) Redis outage: as `realtime_bench.py` (b) — `--subscribers` on one support ticket over two
    instances, staff replies through REST on instance A at `--rate`/s — with Redis SIGKILLed
    half way and restarted empty on the same port `--outage` s later. Reported: events
    acknowledged, events lost (target 0), resync frames received, duplicated deliveries,
    and the time from Redis's return until the last event sent during the outage reached
    every subscriber. The bare server (PUBLISH straight to Redis) is run the same way: what
    is published while Redis is down is simply gone.

Not a test: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from realtime_bench import (  # noqa: E402
    TICKET,
    TICKET_SUBSCRIBERS,
    RedisPublisher,
    RestPublisher,
    cpu_seconds,
    flush,
    load,
    pct,
    publish_loop,
    ratio,
    start_bare,
    start_ours,
    start_redis,
    tokens,
)
from ws_client import ClientPool, raise_nofile  # noqa: E402

GAME = "653000000000000000000001"


def metric(port: int, name: str, hub: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    match = re.search(rf'^{name}{{hub="{hub}"}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def register(port: int, count: int, tag: str) -> list[str]:
    """`count` fresh accounts through ``POST /api/auth/register``; their access tokens."""
    local = threading.local()

    def one(i: int) -> str:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = json.dumps({"email": f"p{tag}{i}@bench.example", "username": f"p{tag}{i}",
                           "password": "BenchPass123!"})
        conn.request("POST", "/api/auth/register", body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        data = json.loads(reply.read())
        if reply.status != 201:
            raise SystemExit(f"register failed: {reply.status} {data}")
        return data["access_token"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


# --------------------------------------------------------------------------- (d) presence

def presence_run(workdir: Path, redis_url: str, users: int, coalesce: int, args) -> dict:
    flush(redis_url)
    server, port = start_ours(workdir, f"d-{users}-{coalesce}", redis_url,
                              extra={"PRESENCE_COALESCE_ABOVE": str(coalesce),
                                     "BCRYPT_ROUNDS": "4"})
    try:
        toks = register(port, users, f"{coalesce}x")
        specs = [{"url": f"ws://127.0.0.1:{port}/ws/community/{GAME}?token={t}"} for t in toks]
        time.sleep(args.settle)
        before_cpu = cpu_seconds(server.proc.pid)
        before = metric(port, "hwc3d_events_delivered_total", "community")
        started = time.monotonic()
        pool = ClientPool(specs, args.client_procs, hello=True, concurrency=args.concurrency)
        try:
            ready = pool.wait_ready()
            connect_seconds = time.monotonic() - started
            time.sleep(max(args.settle, 2.5))          # the last presence_count goes out
            cpu = cpu_seconds(server.proc.pid) - before_cpu
            events = metric(port, "hwc3d_events_delivered_total", "community") - before
            received = pool.tally()["frames"]
        finally:
            pool.close()
        frames = events + 2 * ready["ready"]           # + connected, presence
        return {"users": users, "ready": ready["ready"], "frames": frames,
                "received": received, "cpu": cpu, "connect_seconds": connect_seconds}
    finally:
        server.stop()


def bare_connects(workdir: Path, redis_url: str, users: int, args) -> dict:
    flush(redis_url)
    server, port = start_bare(workdir, f"d-bare-{users}", redis_url)
    try:
        specs = [{"url": f"ws://127.0.0.1:{port}/ws/community:{GAME}"}] * users
        time.sleep(args.settle)
        before_cpu = cpu_seconds(server.proc.pid)
        pool = ClientPool(specs, args.client_procs, concurrency=args.concurrency)
        try:
            ready = pool.wait_ready()
            time.sleep(args.settle)
            cpu = cpu_seconds(server.proc.pid) - before_cpu
        finally:
            pool.close()
        return {"users": users, "ready": ready["ready"], "cpu": cpu}
    finally:
        server.stop()


def bench_d(args, workdir: Path, redis_url: str) -> None:
    print(f"\n(d) presence: N distinct users join one public community; load average {load()}",
          flush=True)
    print(f"{'N':>5} {'server':<26} {'ready':>5} {'frames sent':>11} {'frames/user':>11} "
          f"{'CPU ms/connect':>14} {'vs bare':>7}")
    for users in args.users:
        bare = bare_connects(workdir, redis_url, users, args)
        bare_ms = 1000 * bare["cpu"] / max(1, bare["ready"])
        runs = [("ours (presence_count)", 200)]
        if users <= args.quadratic_up_to:
            runs.append(("ours (per-user events)", 10 * users))
        for name, coalesce in runs:
            r = presence_run(workdir, redis_url, users, coalesce, args)
            ms = 1000 * r["cpu"] / max(1, r["ready"])
            print(f"{users:>5} {name:<26} {r['ready']:>5} {r['frames']:>11.0f} "
                  f"{r['frames'] / max(1, r['ready']):>11.1f} {ms:>14.2f} "
                  f"{ratio(ms, bare_ms):>7}", flush=True)
        print(f"{users:>5} {'bare (no presence)':<26} {bare['ready']:>5} {'-':>11} {'-':>11} "
              f"{bare_ms:>14.2f} {'1.00x':>7}", flush=True)


# --------------------------------------------------------------------------- (e) outage

class Redis:
    """The benchmark's redis-server, which (e) kills and restarts empty on the same port."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc, self.url = start_redis(workdir)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def start(self) -> None:
        import shutil

        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def outage_run(kind: str, args, workdir: Path, redis: Redis) -> dict:
    flush(redis.url)
    starter = start_ours if kind == "ours" else start_bare
    a, port_a = starter(workdir, f"e-{kind}-A", redis.url)
    b, port_b = starter(workdir, f"e-{kind}-B", redis.url)
    pool = None
    try:  # (servers stopped below: a failed run leaves no process behind)
        n = args.subscribers
        if kind == "ours":
            urls = [f"ws://127.0.0.1:{{}}/ws/support/{TICKET}?token={t}"
                    for t in tokens(TICKET_SUBSCRIBERS, n)]
        else:
            urls = [f"ws://127.0.0.1:{{}}/ws/bench:{TICKET}"] * n
        specs = [{"url": u.format(port_a if i % 2 == 0 else port_b)} for i, u in enumerate(urls)]
        total = int(args.rate * args.duration)
        half = total // 2
        watch = (half, half + int(args.rate * args.outage))
        pool = ClientPool(specs, args.client_procs, hello=kind == "ours", max_seq=total,
                          watch=watch)
        ready = pool.wait_ready()
        time.sleep(args.settle)
        publisher = RestPublisher(port_a) if kind == "ours" else RedisPublisher(
            redis.url, f"bench:{TICKET}", 0)
        marks = {}

        def outage() -> None:
            redis.kill()
            marks["down"] = time.time()

            def back() -> None:
                time.sleep(args.outage)
                redis.start()
                marks["up"] = time.time()
            threading.Thread(target=back, daemon=True).start()

        pub = publish_loop(publisher, total, args.rate, outage)
        sent = pub["sent"]
        result = pool.drain(sorted(sent), args.drain_timeout)
        last = result.get("watch_last") or 0.0
        result.update(kind=kind, ready=ready["ready"], acked=len(sent), failures=pub["failures"],
                      down=marks.get("down"), up=marks.get("up"),
                      full_delivery=(last - marks["up"]) if last and "up" in marks else None)
        return result
    finally:
        if pool is not None:
            pool.close()
        a.stop()
        b.stop()


def bench_e(args, workdir: Path, redis: Redis) -> None:
    print(f"\n(e) Redis SIGKILLed half way and restarted empty {args.outage} s later: "
          f"{args.subscribers} subscribers on two instances, {args.rate} events/s for "
          f"{args.duration} s; load average {load()}", flush=True)
    print(f"{'server':<6} {'subs':>5} {'acked':>6} {'failed':>6} {'lost':>6} {'lost subs':>9} "
          f"{'resyncs':>7} {'dup':>5} {'p50 ms':>7} {'max ms':>8} {'full delivery s':>15}")
    for kind in ("ours", "bare"):
        r = outage_run(kind, args, workdir, redis)
        full = r["full_delivery"]
        print(f"{kind:<6} {r['ready']:>5} {r['acked']:>6} {r['failures']:>6} {r['lost']:>6} "
              f"{r['lost_subs']:>9} {r['resyncs']:>7} {r['dups']:>5} "
              f"{pct(r['latency'], .5):>7.1f} {max(r['latency'], default=0):>8.0f} "
              f"{'-' if full is None else f'{full:.2f}':>15}", flush=True)


# --------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="*", default=["d", "e"], choices=["d", "e"])
    parser.add_argument("--users", default="300,1000,3000",
                        type=lambda s: [int(n) for n in s.split(",")])
    parser.add_argument("--quadratic-up-to", type=int, default=1000,
                        help="also run per-user presence events up to this N")
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--outage", type=float, default=3.0)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    raise_nofile()
    with tempfile.TemporaryDirectory(prefix="presence-bench-") as tmp:
        workdir = Path(tmp)
        redis = Redis(workdir)
        try:
            if "d" in args.parts:
                bench_d(args, workdir, redis.url)
            if "e" in args.parts:
                bench_e(args, workdir, redis)
        finally:
            redis.proc.kill()


if __name__ == "__main__":
    main()
