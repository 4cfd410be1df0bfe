"""Benchmark (not a test): upload a ~100 MB GLB while polling /healthz.

    .venv/bin/python bench/upload_bench.py [--subdivisions 9] [--poll-ms 10]

Starts `python server.py --port <free> --no-seed` as a subprocess (RATE_LIMITS_ENABLED=false,
DATA_DIR in a temp dir), registers a creator, warms the analysis pool with a small upload,
then streams a generated ~94 MB GLB (an icosphere with 5.2 M faces) to
`POST /api/upload/model` while a thread polls `/healthz` every 10 ms. Prints the server's
peak RSS growth (VmHWM and sampled VmRSS from /proc/<pid>/status, against VmRSS before the
upload) and the /healthz latency p50/p99 while the body streams in and while the server
checks, analyses and stores it. Targets: RSS growth < 50 MB, p99 < 50 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import trimesh
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 256 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def make_glb(path: Path, subdivisions: int) -> int:
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    path.write_bytes(mesh.export(file_type="glb"))
    return len(mesh.faces)


class Poller(threading.Thread):
    """GET /healthz every `interval` s on a keep-alive connection; records (t, latency ms)."""

    def __init__(self, port: int, interval: float, pid: int):
        super().__init__(daemon=True)
        self.port, self.interval, self.pid = port, interval, pid
        self.samples: list[tuple[float, float]] = []
        self.rss_peak_kb = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop_event.is_set():
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            self.samples.append((start, 1000 * (time.perf_counter() - start)))
            self.rss_peak_kb = max(self.rss_peak_kb, proc_status(self.pid)["VmRSS"])
            time.sleep(self.interval)
        conn.close()

    def window(self, start: float, end: float) -> list[float]:
        return [ms for t, ms in self.samples if start <= t <= end]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def register(client, base: str) -> str:
    name = f"bench{uuid.uuid4().hex[:8]}"
    body = {"email": f"{name}@example.com", "username": name, "password": "BenchPass123!",
            "user_type": "creator"}
    reply = await client.fetch(f"{base}/api/auth/register", method="POST", body=json.dumps(body),
                               headers={"Content-Type": "application/json"})
    return json.loads(reply.body)["access_token"]


async def post_file(client, base: str, token: str, path: Path, sent: dict) -> dict:
    """Stream `path` as the `file` part of a multipart body; `sent["at"]` = body fully sent."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: model/gltf-binary\r\n\r\n').encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(head) + path.stat().st_size + len(tail)

    async def producer(write):
        await write(head)
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                await write(chunk)
        await write(tail)
        sent["at"] = time.perf_counter()

    request = HTTPRequest(f"{base}/api/upload/model", method="POST", body_producer=producer,
                          headers={"Authorization": f"Bearer {token}",
                                   "Content-Length": str(size),
                                   "Content-Type": f"multipart/form-data; boundary={boundary}"},
                          request_timeout=600)
    reply = await client.fetch(request, raise_error=False)
    return {"status": reply.code, "body": json.loads(reply.body or b"{}")}


def start_server(port: int, data_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, RATE_LIMITS_ENABLED="false", DATA_DIR=str(data_dir), LOG_LEVEL="warning")
    return subprocess.Popen([sys.executable, "server.py", "--port", str(port), "--no-seed"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(client, base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            await client.fetch(f"{base}/healthz", request_timeout=1)
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


def report(label: str, values: list[float]) -> None:
    print(f"  /healthz during {label:<22} n={len(values):5d}  p50={percentile(values, 50):6.2f} ms  "
          f"p99={percentile(values, 99):6.2f} ms  max={max(values, default=float('nan')):7.2f} ms")


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="hwc3d-bench-"))
    glb = work / "big.glb"
    faces = make_glb(glb, args.subdivisions)
    size_mb = glb.stat().st_size / 1e6  # (the work folder is gone by the time we print)
    small = work / "small.glb"
    make_glb(small, 2)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(port, work / "data")
    client = AsyncHTTPClient(force_instance=True, max_body_size=1 << 30)
    try:
        await wait_ready(client, base, proc)
        token = await register(client, base)
        warm = await post_file(client, base, token, small, {})
        assert warm["status"] == 201, warm
        await asyncio.sleep(0.5)
        before = proc_status(proc.pid)
        poller = Poller(port, args.poll_ms / 1000, proc.pid)
        poller.start()
        idle_start = time.perf_counter()
        await asyncio.sleep(args.idle_seconds)
        idle_end = time.perf_counter()
        sent: dict = {}
        started = time.perf_counter()
        result = await post_file(client, base, token, glb, sent)
        finished = time.perf_counter()
        await asyncio.sleep(0.2)
        poller.stop_event.set()
        poller.join()
        after = proc_status(proc.pid)
        workers = {pid: proc_status(pid) for pid in children(proc.pid)}
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(other processes compete for the CPU when it is above the CPU count)")
    body = result["body"]
    print(f"upload of a {size_mb:.1f} MB GLB ({faces} faces): HTTP {result['status']}, "
          f"poly_count={body.get('poly_count')}, analyzed={body.get('analyzed')}, "
          f"total {finished - started:.2f} s (body sent after {sent.get('at', finished) - started:.2f} s)")
    growth_hwm = (after["VmHWM"] - before["VmRSS"]) / 1024
    growth_sampled = (poller.rss_peak_kb - before["VmRSS"]) / 1024
    print(f"  server RSS before {before['VmRSS'] / 1024:.1f} MB, VmHWM after "
          f"{after['VmHWM'] / 1024:.1f} MB, VmRSS after {after['VmRSS'] / 1024:.1f} MB")
    print(f"  server peak RSS growth: {max(growth_hwm, growth_sampled):.1f} MB "
          f"(VmHWM-based {growth_hwm:.1f} MB, sampled {growth_sampled:.1f} MB)  target < 50 MB")
    for pid, status in workers.items():
        print(f"  (analysis worker pid {pid}: VmHWM {status['VmHWM'] / 1024:.1f} MB, "
              f"separate process)")
    upload_phase = poller.window(started, sent.get("at", finished))
    analysis_phase = poller.window(sent.get("at", finished), finished)
    report("idle (no upload)", poller.window(idle_start, idle_end))
    report("body upload", upload_phase)
    report("check+analysis+store", analysis_phase)
    report("whole request", upload_phase + analysis_phase)
    print("  target: p99 < 50 ms")
    slow = sorted(((ms, t - started) for t, ms in poller.samples if ms > 20), reverse=True)[:5]
    if slow:
        print("  slowest polls (ms at s after start): "
              + ", ".join(f"{ms:.0f}@{at:.2f}" for ms, at in slow))
    if upload_phase + analysis_phase:
        print(f"  mean {statistics.mean(upload_phase + analysis_phase):.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subdivisions", type=int, default=9)
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--idle-seconds", type=float, default=3.0,
                        help="poll this long before the upload, for a baseline")
    asyncio.run(main(parser.parse_args()))
