"""Real-time benchmarks: ours beside a bare Tornado fan-out server, same run.

    .venv/bin/python bench/realtime_bench.py [a] [b] [c] [--quick] [--sockets 5000]
        [--subscribers 1000] [--rate 20] [--duration 30] [--client-procs 4]

Starts a private `redis-server` on a free port, our `server.py` instances (embedded
documents seeded from fixtures/, shared REDIS_URL and JWT_SECRET_KEY, RATE_LIMITS_ENABLED=
false) and `bench/bare_ws_server.py` processes, and loads both with `bench/ws_client.py`
(several processes of raw asyncio WebSocket connections). Tokens are signed here with
`documents.sessions.issue_access_token` and the servers' secret, for the seeded users.

(a) memory: `--sockets` idle sockets on one instance (ours: ``/ws/notifications?token=``
    spread over the 6 seeded users; bare: ``/ws/notifications:<user id>``); per connection
    = (RSS with the sockets − RSS before) / sockets, measured twice (the second round shows
    whether memory keeps growing). Target: ours ≤ 1.5× bare.
(b) fan-out: two instances, `--subscribers` sockets of ONE channel split across them (ours:
    ``/ws/support/657000000000000000000001`` as the ticket's owner and two support staff),
    `--rate` events/s for `--duration` s (ours: staff replies through REST on instance A,
    ``POST /api/admin/support/tickets/{id}/messages``; bare: PUBLISH to Redis, frames padded
    to the size of ours). Reports lost and duplicated deliveries (target 0), latency p50/p99
    from the time embedded in the content (REST call start for ours) to receipt, and server
    CPU s per 1,000 deliveries (utime+stime of both instances). Targets: ours ≤ 1.5× bare.
(c) as (b), with instance B stopped (SIGTERM) half way: its clients reconnect to A with
    ``&since=<last offset>``; target: zero missed, zero duplicated. The bare server, which
    has no history, is run the same way for contrast (its clients reconnect without since).

Not a test: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from http_bench import Process, free_port  # noqa: E402
from realtime_report import (  # noqa: E402
    load,
    pct,
    print_fanout,
    print_reconnects,
    ratio,
    summary,
    verdict,
)
from ws_client import ClientPool, raise_nofile  # noqa: E402

SECRET = "realtime-bench-secret-0123456789abcdef"
TICKET = "657000000000000000000001"
USERS = [f"65000000000000000000000{i}" for i in range(1, 7)]
TICKET_SUBSCRIBERS = ["650000000000000000000005", "650000000000000000000001",
                      "650000000000000000000002"]  # owner, superadmin, moderator
STAFF = "650000000000000000000001"
TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- processes

def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (0.0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        return int(re.search(r"VmRSS:\s+(\d+)", handle.read()).group(1))


def listen_overflows() -> int:
    """The kernel's TcpExt ListenOverflows counter (SYNs dropped on a full accept queue)."""
    try:
        with open("/proc/net/netstat") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split(), values.split(), strict=True))
            return int(row.get("ListenOverflows", 0))
    return 0


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def flush(redis_url: str) -> None:
    """Empty the Redis of `redis_url` (a cluster URL: nothing, the cluster is fresh)."""
    import redis

    if not redis_url.startswith("redis+cluster://"):
        redis.Redis.from_url(redis_url).flushall()


def start_ours(workdir: Path, name: str, redis_url: str,
               extra: dict | None = None) -> tuple[Process, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    env.update(REDIS_URL=redis_url, JWT_SECRET_KEY=SECRET, RATE_LIMITS_ENABLED="false",
               DATA_DIR=str(workdir / name), SEED_FIXTURES="true", PYTHONUNBUFFERED="1",
               **(extra or {}))
    script = ROOT / "server.py"
    proc = Process([sys.executable, str(script), "--port", str(port), "--seed"],
                   workdir, env, workdir / f"{name}.log")
    proc.wait_for("HWC3D server on")
    return proc, port


def ours_redis(args, redis_url: str) -> str:
    """Ours' REDIS_URL: with `--redis-url-options` as its query string when given."""
    return f"{redis_url}?{args.redis_url_options}" if args.redis_url_options else redis_url


def start_bare(workdir: Path, name: str, redis_url: str) -> tuple[Process, int]:
    port = free_port()
    proc = Process([sys.executable, str(ROOT / "bench" / "bare_ws_server.py"), "--port",
                    str(port), "--redis", redis_url], workdir,
                   {**os.environ, "PYTHONUNBUFFERED": "1"}, workdir / f"{name}.log")
    proc.wait_for("bare ws server on")
    return proc, port


def open_sockets(base: str) -> str:
    """The `hwc3d_ws_open_sockets` lines of ours' /metrics (a leak check), or why not."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except Exception as exc:
        return f"/metrics unavailable ({exc})"
    lines = [line for line in text.splitlines() if line.startswith("hwc3d_ws_open_sockets{")]
    return ", ".join(lines) or "no hwc3d_ws_open_sockets gauge"


# --------------------------------------------------------------------------- tokens

def tokens(user_ids: list[str], count: int) -> list[str]:
    """`count` access tokens, round robin over `user_ids`, signed as the servers do."""
    from config.settings import Settings
    from documents import sessions
    from documents.seed import fixture_documents

    settings = Settings(jwt_secret_key=SECRET, access_token_expire_minutes=240)
    users = {str(u["_id"]): u for u in fixture_documents()["users"]}
    return [sessions.issue_access_token(settings, users[user_ids[i % len(user_ids)]])[0]
            for i in range(count)]


# --------------------------------------------------------------------------- (a) memory

def measure_memory(pid: int, urls: list[str], args, hello: bool) -> dict:
    """RSS of `pid` before and with `urls` open, twice; per-connection KB."""
    warm = ClientPool([{"url": u} for u in urls[:50]], 1, hello=hello)
    warm.wait_ready()
    warm.close()
    time.sleep(1.0)
    rounds = []
    for _ in range(args.memory_rounds):
        before = rss_kb(pid)
        pool = ClientPool([{"url": u} for u in urls], args.client_procs, hello=hello)
        ready = pool.wait_ready()
        time.sleep(args.settle)
        after = rss_kb(pid)
        cpu = cpu_seconds(pid)
        pool.close()
        time.sleep(args.settle)
        rounds.append({"before": before, "after": after, "closed": rss_kb(pid),
                       "per_conn": (after - before) / max(1, ready["ready"]), **ready,
                       "cpu": cpu})
    return {"rounds": rounds}


def bench_a(args, workdir: Path, redis_url: str) -> dict:
    n = args.sockets
    print(f"\n(a) {n} idle sockets on one instance; load average {load()}", flush=True)
    flush(redis_url)
    ours, port = start_ours(workdir, "a-ours", ours_redis(args, redis_url))
    try:
        urls = [f"ws://127.0.0.1:{port}/ws/notifications?token={t}" for t in tokens(USERS, n)]
        mine = measure_memory(ours.proc.pid, urls, args, hello=True)
        mine["gauge"] = open_sockets(f"http://127.0.0.1:{port}")
    finally:
        ours.stop()
    flush(redis_url)
    bare, bare_port = start_bare(workdir, "a-bare", redis_url)
    try:
        urls = [f"ws://127.0.0.1:{bare_port}/ws/notifications:{USERS[i % 6]}" for i in range(n)]
        theirs = measure_memory(bare.proc.pid, urls, args, hello=False)
    finally:
        bare.stop()
    report_a(n, mine, theirs)
    return {"ours": mine, "bare": theirs}


def report_a(n: int, mine: dict, theirs: dict) -> None:
    print(f"{'server':<6} {'round':>5} {'ready':>6} {'failed':>6} {'connect s':>9} "
          f"{'RSS before MB':>13} {'RSS with MB':>11} {'after close MB':>14} {'KB/conn':>8}")
    for name, result in (("ours", mine), ("bare", theirs)):
        for index, r in enumerate(result["rounds"], 1):
            print(f"{name:<6} {index:>5} {r['ready']:>6} {r['failed']:>6} "
                  f"{r['connect_seconds']:>9.1f} {r['before'] / 1024:>13.1f} "
                  f"{r['after'] / 1024:>11.1f} {r['closed'] / 1024:>14.1f} {r['per_conn']:>8.1f}"
                  + (f"  errors {r['errors']}" if r["errors"] else ""))
    ours_kb, bare_kb = mine["rounds"][0]["per_conn"], theirs["rounds"][0]["per_conn"]
    print(f"memory per connection (round 1): ours {ours_kb:.1f} KB, bare {bare_kb:.1f} KB, "
          f"ratio {ratio(ours_kb, bare_kb)} (target <= 1.5x: "
          f"{verdict(ours_kb <= 1.5 * bare_kb)})")
    print(f"ours after closing every socket: {mine.get('gauge')}")


# --------------------------------------------------------------------------- (b), (c) fan-out

def bench_frame(seq: int, sent: float, pad: int) -> bytes:
    """The bare server's event: ours' frame shape, content as ours, padded to ours' size."""
    stamp = datetime.fromtimestamp(sent, UTC).isoformat(timespec="milliseconds")
    head = json.dumps({"type": "message_received", "channel": f"support:{TICKET}",
                       "data": {"content": f"bench seq={seq} t={sent:.6f}", "pad": "x" * pad},
                       "ts": stamp.replace("+00:00", "Z")}, separators=(",", ":"))
    return (head[:-1] + ',"offset":null}').encode()


class RestPublisher:
    """Staff replies on instance A through REST: one keep-alive connection per sending thread."""

    def __init__(self, port: int):
        self.port, self.local = port, threading.local()
        self.headers = {"Authorization": f"Bearer {tokens([STAFF], 1)[0]}",
                        "Content-Type": "application/json"}
        self.path = f"/api/admin/support/tickets/{TICKET}/messages"

    def send(self, seq: int) -> bool:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        body = json.dumps({"content": f"bench seq={seq} t={time.time():.6f}"})
        conn.request("POST", self.path, body, self.headers)
        reply = conn.getresponse()
        reply.read()
        return 200 <= reply.status < 300


class RedisPublisher:
    """PUBLISH on the bare servers' channel."""

    def __init__(self, redis_url: str, channel: str, pad: int):
        import redis

        self.redis, self.channel, self.pad = redis.Redis.from_url(redis_url), channel, pad

    def send(self, seq: int) -> bool:
        self.redis.publish(self.channel, bench_frame(seq, time.time(), self.pad))
        return True


def publish_loop(publisher, total: int, rate: float, on_half=None) -> dict:
    """Send `total` events at `rate`/s on an absolute schedule, from a pool of threads so
    that a slow call does not hold the next one back; the seqs that succeeded."""
    sent, failures, calls, starts = [], [], [], []
    lock = threading.Lock()

    def one(seq: int) -> None:
        began = time.monotonic()
        try:
            ok = publisher.send(seq)
        except Exception as exc:
            print(f"  publish {seq} failed: {exc!r}", flush=True)
            ok = False
        with lock:
            starts.append(began)
            calls.append((time.monotonic() - began) * 1000)
            (sent if ok else failures).append(seq)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for seq in range(total):
            if on_half is not None and seq == total // 2:
                on_half()
            delay = start + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, seq)
    span = max(starts) - min(starts) if len(starts) > 1 else 0.0
    return {"sent": sorted(sent), "failures": len(failures), "seconds": span,
            "rate": (len(starts) - 1) / span if span else 0.0, "p50_call": pct(calls, .5),
            "p99_call": pct(calls, .99)}


def fanout(kind: str, args, workdir: Path, redis_url: str, *, stop_b: bool, pad: int) -> dict:
    """One fan-out run of `kind` ("ours" or "bare"); see the module doc."""
    flush(redis_url)
    label = f"{'c' if stop_b else 'b'}-{kind}"
    starter = start_ours if kind == "ours" else start_bare
    url = ours_redis(args, redis_url) if kind == "ours" else redis_url
    server_a, port_a = starter(workdir, f"{label}-A", url)
    server_b, port_b = starter(workdir, f"{label}-B", url)
    pool = None
    try:
        n = args.subscribers
        if kind == "ours":
            toks = tokens(TICKET_SUBSCRIBERS, n)
            urls = [f"ws://127.0.0.1:{{}}/ws/support/{TICKET}?token={t}" for t in toks]
        else:
            urls = [f"ws://127.0.0.1:{{}}/ws/bench:{TICKET}"] * n
        specs = []
        for i, url in enumerate(urls):
            spec = {"url": url.format(port_a if i % 2 == 0 else port_b)}
            if stop_b and i % 2 == 1:
                spec["reconnect"] = url.format(port_a)
            specs.append(spec)
        total = int(args.rate * args.duration)
        pool = ClientPool(specs, args.client_procs, hello=kind == "ours",
                          recover=kind == "ours", max_seq=total)
        ready = pool.wait_ready()
        if ready["failed"]:
            print(f"  {label}: {ready['failed']} sockets not ready: {ready['errors']}")
        time.sleep(args.settle)
        servers = [server_a.proc.pid, server_b.proc.pid]
        watched = servers + pool.pids
        before = {pid: cpu_seconds(pid) for pid in watched + args.redis_pids}
        publisher = (RestPublisher(port_a) if kind == "ours"
                     else RedisPublisher(redis_url, f"bench:{TICKET}", pad))
        cpu_b = {}

        def stop_instance_b() -> None:
            cpu_b["at_stop"] = cpu_seconds(server_b.proc.pid)
            server_b.proc.send_signal(signal.SIGTERM)

        started, overflows = time.monotonic(), listen_overflows()
        pub = publish_loop(publisher, total, args.rate, stop_instance_b if stop_b else None)
        result = pool.drain(pub["sent"], args.drain_timeout)
        wall = time.monotonic() - started
        after = {pid: cpu_seconds(pid) for pid in watched + args.redis_pids}
        if stop_b:
            after[server_b.proc.pid] = cpu_b["at_stop"]
        delta = {pid: after[pid] - before[pid] for pid in before}
        result.update(ready=ready, publish=pub, wall=wall, pad=pad,
                      server_cpu=sum(delta[p] for p in servers),
                      client_cpu=sum(delta[p] for p in pool.pids),
                      redis_cpu=sum(delta[p] for p in args.redis_pids),
                      expected=len(pub["sent"]) * ready["ready"],
                      listen_overflows=listen_overflows() - overflows)
        if kind == "ours":
            result["gauge_a"] = open_sockets(f"http://127.0.0.1:{port_a}")
        return result
    finally:
        if pool is not None:
            pool.close()
        server_a.stop()
        server_b.stop()


def bench_b(args, workdir: Path, redis_url: str) -> dict:
    print(f"\n(b) {args.subscribers} subscribers of one channel on 2 instances, {args.rate:g} "
          f"events/s for {args.duration:g} s; load average {load()}", flush=True)
    mine = fanout("ours", args, workdir, redis_url, stop_b=False, pad=0)
    pad = max(0, round(mine["bytes"] / max(1, mine["frames"])) - len(bench_frame(0, 0, 0)))
    theirs = fanout("bare", args, workdir, redis_url, stop_b=False, pad=pad)
    print_fanout(f"(b) results; load average after {load()}", [("ours", mine), ("bare", theirs)],
                 args)
    s_ours, s_bare = summary(mine), summary(theirs)
    print(f"ratios ours/bare: latency p50 {ratio(s_ours['p50'], s_bare['p50'])}, p99 "
          f"{ratio(s_ours['p99'], s_bare['p99'])}, CPU per 1k deliveries "
          f"{ratio(s_ours['cpu_per_k'], s_bare['cpu_per_k'])}")
    print(f"targets: zero lost/duplicated {verdict(mine['lost'] == 0 and mine['dups'] == 0)}; "
          f"p50 <= 1.5x {verdict(s_ours['p50'] <= 1.5 * s_bare['p50'])}; p99 <= 1.5x "
          f"{verdict(s_ours['p99'] <= 1.5 * s_bare['p99'])}; CPU/1k <= 1.5x "
          f"{verdict(s_ours['cpu_per_k'] <= 1.5 * s_bare['cpu_per_k'])}")
    return {"ours": mine, "bare": theirs, "pad": pad}


def bench_c(args, workdir: Path, redis_url: str, pad: int | None) -> dict:
    print(f"\n(c) as (b), instance B stopped (SIGTERM) half way; load average {load()}",
          flush=True)
    mine = fanout("ours", args, workdir, redis_url, stop_b=True, pad=0)
    if pad is None:
        pad = max(0, round(mine["bytes"] / max(1, mine["frames"])) - len(bench_frame(0, 0, 0)))
    theirs = fanout("bare", args, workdir, redis_url, stop_b=True, pad=pad) if args.bare_c else None
    rows = [("ours", mine)] + ([("bare", theirs)] if theirs else [])
    print_fanout(f"(c) results (CPU counts instance B until its SIGTERM); load average after "
                 f"{load()}", rows, args)
    for name, r in rows:
        print_reconnects(name, r)
    print(f"target: ours ends with zero missed and zero duplicated events: "
          f"{verdict(mine['lost'] == 0 and mine['dups'] == 0 and mine['offset_gaps'] == 0)}")
    return {"ours": mine, "bare": theirs}


# --------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Real-time benchmarks: ours vs a bare server.")
    parser.add_argument("which", nargs="*", help="benchmarks to run: a, b, c (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 500 sockets, 100 subscribers, 5 s, 2 client procs")
    parser.add_argument("--sockets", type=int, help="(a) idle sockets (default 5000)")
    parser.add_argument("--subscribers", type=int, help="(b, c) subscribers (default 1000)")
    parser.add_argument("--rate", type=float, default=20.0, help="(b, c) events per second")
    parser.add_argument("--duration", type=float, help="(b, c) seconds of publishing (30)")
    parser.add_argument("--client-procs", type=int, help="client processes (default 4)")
    parser.add_argument("--memory-rounds", type=int, help="(a) connect rounds (default 2)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to let things settle")
    parser.add_argument("--drain-timeout", type=float, default=20.0,
                        help="(b, c) seconds to wait for late deliveries")
    parser.add_argument("--workdir", type=Path,
                        help="keep the servers' logs in this directory (default: a temporary one)")
    parser.add_argument("--redis-url-options", default="",
                        help="query string appended to ours' REDIS_URL, e.g. max_connections=2000 "
                             "(diagnostic: redis-py reads pool options from the URL)")
    parser.add_argument("--no-bare-c", dest="bare_c", action="store_false",
                        help="(c) skip the bare contrast run")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"sockets": (500, 5000), "subscribers": (100, 1000), "duration": (5.0, 30.0),
                "client_procs": (2, 4), "memory_rounds": (1, 2)}
    for name, (small, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if quick:
        args.settle = min(args.settle, 1.0)
    args.which = args.which or ["a", "b", "c"]
    if set(args.which) - {"a", "b", "c"}:
        parser.error(f"unknown benchmark(s) {sorted(set(args.which) - {'a', 'b', 'c'})}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    limit = raise_nofile()
    need = max(args.sockets, args.subscribers) + 200
    if limit < need:
        raise SystemExit(f"open-files limit {limit} is below {need}; raise the hard limit")
    print(f"realtime bench: {' '.join(args.which)}{' (quick)' if args.quick else ''}"
          "; "
          f"{os.cpu_count()} CPUs shared by servers, redis and {args.client_procs} client "
          f"processes; open-files limit {limit}; load average {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hwc3d-rtbench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        redis_proc, redis_url = start_redis(workdir)
        args.redis_pids = [redis_proc.pid]
        try:
            pad = None
            if "a" in args.which:
                bench_a(args, workdir, redis_url)
            if "b" in args.which:
                pad = bench_b(args, workdir, redis_url)["pad"]
            if "c" in args.which:
                bench_c(args, workdir, redis_url, pad)
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
    print(f"\nload average at the end {load()}")


if __name__ == "__main__":
    main()
