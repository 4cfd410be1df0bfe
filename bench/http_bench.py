"""HTTP throughput of the API beside a bare Tornado handler on the same store.

    .venv/bin/python bench/http_bench.py [--store both|embedded|wire] [--duration 10]
        [--connections 50] [--client auto]

For each store — the in-memory one (`embedded`) and a SecantusDB wire server (`wire`,
`secantusd-py` of requirements-dev, started on a free port) — starts `server.py` (seeded
fixtures, RATE_LIMITS_ENABLED=false) and `bench/bare_server.py`, which runs the same store
query and encodes the documents it gets, nothing else (same database for the wire store; the
same fixture documents for the embedded one). Loads each with `--connections` concurrent
keep-alive connections for `--duration` seconds per route:

- `GET /api/models/{id}` (the first id of `GET /api/models?limit=1`)
- `GET /api/models?limit=20`

and prints requests/s, p50 and p99 latency for hwc3d and bare, the ratio hwc3d/bare, and each
server's CPU milliseconds per request (from /proc: steadier than requests/s when the machine is
shared, since other load stretches the clock but not the work per request).

Load client: `wrk` when it is installed (`apt-get install wrk`; one thread, it is not the
bottleneck), else a Python client: several processes each running asyncio keep-alive
HTTP/1.1 connections. Not a test: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child process whose stdout is read by a thread, so we can wait for a line."""

    def __init__(self, argv: list[str], cwd: Path, env: dict, log: Path):
        self.log = open(log, "w")  # closed in stop()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(x) for x in self.proc.stdout],
                         daemon=True).start()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.lines.get(timeout=max(0.01, deadline - time.monotonic())):
                    return
            except queue.Empty:
                break
        raise SystemExit(f"no {text!r} from {self.proc.args} within {timeout}s "
                         f"(see {self.log.name})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --------------------------------------------------------------------------- wrk

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, duration: float, connections: int) -> dict:
    """One wrk run: {"rps", "p50", "p99" (ms), "errors", "requests"}."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency",
                          url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
        return float(value) * _UNITS[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return {"rps": rps, "p50": percentile("50"), "p99": percentile("99"), "errors": errors,
            "requests": requests}


# --------------------------------------------------------------------------- Python client

async def _connection(host: str, port: int, path: str, deadline: float,
                      latencies: list, errors: list) -> None:
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Connection: keep-alive\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if not head.startswith(b"HTTP/1.1 2"):
                errors.append(head.split(b"\r\n", 1)[0])
    finally:
        writer.close()


def _client_process(host: str, port: int, path: str, duration: float, connections: int,
                    results) -> None:
    latencies: list[float] = []
    errors: list = []
    deadline = time.perf_counter() + duration

    async def run():
        await asyncio.gather(*(_connection(host, port, path, deadline, latencies, errors)
                               for _ in range(connections)))

    asyncio.run(run())
    results.put((latencies, len(errors)))


def run_python(url: str, duration: float, connections: int, processes: int) -> dict:
    """The Python client: `processes` processes sharing `connections` connections."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    results: multiprocessing.Queue = multiprocessing.Queue()
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    workers = [multiprocessing.Process(target=_client_process,
                                       args=(host, port, path, duration, n, results))
               for n in shares if n]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    errors = 0
    for _ in workers:
        part, bad = results.get(timeout=duration + 60)
        latencies += part
        errors += bad
    for worker in workers:
        worker.join()
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / duration, "p50": cuts[49], "p99": cuts[98],
            "errors": errors, "requests": len(latencies)}


# --------------------------------------------------------------------------- the run

def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process `pid` (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, args: argparse.Namespace, client: str, server: Process) -> dict:
    """Warm up, then measure `url`; adds "cpu_ms": the server's CPU milliseconds per request
    (steadier than requests/s on a shared machine: other load slows the clock, not the work)."""
    if client == "wrk":
        run_wrk(url, 2, args.connections)  # warm-up
    else:
        run_python(url, 2, args.connections, args.client_processes)
    before = cpu_seconds(server.proc.pid)
    if client == "wrk":
        result = run_wrk(url, args.duration, args.connections)
    else:
        result = run_python(url, args.duration, args.connections, args.client_processes)
    after = cpu_seconds(server.proc.pid)
    result["cpu_ms"] = (1000 * (after - before) / result["requests"]
                        if before is not None and after is not None and result["requests"]
                        else float("nan"))
    return result


def targets(base: str) -> list[tuple[str, str]]:
    """[(label, path)] to measure: one public model and the first page of the catalog."""
    status, raw = fetch(f"{base}/api/models?limit=1")
    items = json.loads(raw).get("items") if status == 200 else None
    if not items:
        raise SystemExit(f"GET /api/models?limit=1 answered {status} with no items")
    model_id = items[0]["id"]
    return [("GET /api/models/{id}", f"/api/models/{model_id}"),
            ("GET /api/models?limit=20", "/api/models?limit=20")]


def start_wire_store(workdir: Path) -> tuple[Process, str]:
    """A SecantusDB daemon (`secantusd-py`, requirements-dev) on a free port; its URL."""
    binary = Path(sys.executable).with_name("secantusd-py")
    if not binary.exists():
        raise SystemExit("secantusd-py is not installed (pip install -r requirements-dev.txt)")
    port = free_port()
    store = Process([str(binary), "--host", "127.0.0.1", "--port", str(port), "--storage-path",
                     str(workdir / "secantus"), "--log-level", "WARNING"], workdir,
                    dict(os.environ), workdir / "secantusd.log")
    url = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return store, url
        except OSError:
            if time.monotonic() > deadline or store.proc.poll() is not None:
                store.stop()
                raise SystemExit(f"secantusd-py did not start (see {workdir / 'secantusd.log'})") from None
            time.sleep(0.1)


def start_ours(workdir: Path, store_url: str | None) -> tuple[Process, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB", "REDIS"))}
    env.update({"RATE_LIMITS_ENABLED": "false", "SEED_FIXTURES": "true", "PYTHONUNBUFFERED": "1",
                "DATA_DIR": str(workdir / "data")})
    if store_url:
        env.update({"MONGODB_URL": store_url, "MONGODB_DB": "bench"})
    ours = Process([sys.executable, str(ROOT / "server.py"), "--port", str(port), "--seed"],
                   workdir, env, workdir / "server.log")
    ours.wait_for("HWC3D server on")
    return ours, port


def start_bare(workdir: Path, store_url: str | None) -> tuple[Process, int]:
    """The bare server on the same store (the same database for the wire store; the same
    fixture documents in an in-memory store of its own for the embedded one)."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "bare_server.py"), "--port", str(port)]
    if store_url:
        argv += ["--mongodb-url", store_url, "--mongodb-db", "bench"]
    bare = Process(argv, workdir, dict(os.environ), workdir / "bare.log")
    bare.wait_for("bare server on")
    return bare, port


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP benchmark: ours vs a bare Tornado handler.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--client-processes", type=int, default=2,
                        help="processes of the Python client")
    parser.add_argument("--store", choices=("embedded", "wire", "both"), default="both",
                        help="the in-memory store, a SecantusDB wire server, or both in turn")
    args = parser.parse_args()
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    if client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk), use --client python")
    how = ("wrk (1 thread)" if client == "wrk"
           else f"Python asyncio keep-alive client ({args.client_processes} processes)")
    print(f"client: {how}; {args.connections} connections, {args.duration:g} s per run; "
          f"{os.cpu_count()} CPUs shared by servers and client; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'store':<8} {'route':<26} {'server':<6} {'bytes':>6} {'req/s':>8} {'p50 ms':>8}"
          f" {'p99 ms':>8} {'errors':>6} {'cpu ms/req':>10}  ratio")
    stores = ("embedded", "wire") if args.store == "both" else (args.store,)
    for store in stores:
        with tempfile.TemporaryDirectory(prefix="hwc3d-bench-") as tmp:
            workdir = Path(tmp)
            running: list[Process] = []
            try:
                url = None
                if store == "wire":
                    daemon, url = start_wire_store(workdir)
                    running.append(daemon)
                ours, port = start_ours(workdir, url)
                running.append(ours)
                base = f"http://127.0.0.1:{port}"
                measured = targets(base)  # also: the store is seeded before bare reads it
                bare, bare_port = start_bare(workdir, url)
                running.append(bare)
                report(args, client, store, measured, (base, ours),
                       (f"http://127.0.0.1:{bare_port}", bare))
            finally:
                for process in reversed(running):
                    process.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f} (the machine is shared: compare ratios "
          f"and CPU per request, not absolute figures, across runs)")


def report(args, client, store, measured, ours_server, bare_server) -> None:
    """Measure each route on ours and bare (`*_server`: (base URL, Process)) and print:
    the ratio is ours/bare of requests/s, and of CPU per request (bare/ours: 1.0 = no cost
    of our own)."""
    (base, ours_process), (bare_base, bare_process) = ours_server, bare_server
    for label, path in measured:
        size = len(fetch(base + path)[1])
        bare_size = len(fetch(bare_base + path)[1])
        ours = load(base + path, args, client, ours_process)
        bare = load(bare_base + path, args, client, bare_process)
        for name, result, nbytes in (("hwc3d", ours, size), ("bare", bare, bare_size)):
            print(f"{store:<8} {label:<26} {name:<6} {nbytes:>6} {result['rps']:>8.0f}"
                  f" {result['p50']:>8.2f} {result['p99']:>8.2f} {result['errors']:>6}"
                  f" {result['cpu_ms']:>10.3f}")
        print(f"{store:<8} {label:<26} ratio hwc3d/bare: {ours['rps'] / bare['rps']:.2f} of the "
              f"requests/s, {bare['cpu_ms'] / ours['cpu_ms']:.2f} of the CPU per request "
              f"(bare/hwc3d), p50 x{ours['p50'] / bare['p50']:.1f}, "
              f"p99 x{ours['p99'] / bare['p99']:.1f}", flush=True)


if __name__ == "__main__":
    main()
