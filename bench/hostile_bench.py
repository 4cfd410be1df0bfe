"""Benchmark (not a test): the server's memory under hostile inputs, beside the idle server.

    .venv/bin/python bench/hostile_bench.py

Starts `python server.py --port <free>` (embedded default, seeded, RATE_LIMITS_ENABLED=false,
DATA_DIR in a temp dir) and measures, from /proc/<pid>/status sampled every 5 ms, the peak
RSS growth over the idle RSS of the server process (and of its image workers) while it gets

1. one 95 MB JSON body with a Content-Length, to the anonymous login route;
2. the same body chunked (no Content-Length);
3. four of them at once (two of each);
4. three PNG uploads of 24.0 megapixels (just under the pixel cap) at once.

Targets: JSON bodies < 50 MB of growth; one image decode under ~200 MB (per worker).
"""
from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.images import MAX_PIXELS  # noqa: E402

BODY_MB = 95


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/task/{current}/children") as handle:
                kids = [int(p) for p in handle.read().split()]
        except OSError:
            kids = []
        out.extend(kids)
        todo.extend(kids)
    return out


class Watch:
    """Samples the server's RSS and the largest RSS of any of its worker processes."""

    def __init__(self, pid: int):
        self.pid, self.server_peak, self.worker_peak = pid, 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            self.server_peak = max(self.server_peak, rss_kb(self.pid))
            for child in descendants(self.pid):
                self.worker_peak = max(self.worker_peak, rss_kb(child))
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def hostile_json(port: int, chunked: bool) -> str:
    piece = b"[" + b"1," * (512 * 1024 - 1) + b"1]"
    size = BODY_MB * 1024 * 1024
    head = b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += (b"Transfer-Encoding: chunked\r\n\r\n" if chunked
             else f"Content-Length: {size}\r\n\r\n".encode())
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head)
            sent = 0
            while sent < size:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            answer = sock.recv(200)
    except OSError as exc:
        return f"closed by the server ({type(exc).__name__})"
    return answer.split(b"\r\n", 1)[0].decode()


def login(port: int, email: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/api/auth/login", json.dumps({"email": email, "password": "DemoPass123!"}),
                 {"Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())["access_token"]


def upload_png(port: int, token: str, data: bytes, results: list) -> None:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", "/api/upload/image", body,
                 {"Content-Type": f"multipart/form-data; boundary={boundary}",
                  "Authorization": f"Bearer {token}"})
    results.append(conn.getresponse().status)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
           "RATE_LIMITS_ENABLED": "false", "DATA_DIR": str(tmp / "data"), "LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--port", str(port)],
                              cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    try:
        for line in server.stdout:
            if "HWC3D server on" in line:
                break
        token = login(port, "creator@hwc3d.com")
        time.sleep(2)
        idle = rss_kb(server.pid)
        print(f"idle server RSS (baseline): {idle / 1024:.1f} MB")
        rows = []

        for label, chunked in (("one 95 MB JSON body, Content-Length", False),
                               ("one 95 MB JSON body, chunked", True)):
            with Watch(server.pid) as watch:
                answer = hostile_json(port, chunked)
            rows.append((label, watch.server_peak - idle, answer))

        answers: list[str] = []
        with Watch(server.pid) as watch:
            threads = [threading.Thread(target=lambda c=(i % 2 == 0): answers.append(hostile_json(port, c)))
                       for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        rows.append(("four 95 MB JSON bodies at once", watch.server_peak - idle,
                     "; ".join(sorted(set(answers)))))

        side = int(MAX_PIXELS ** 0.5) - 1
        out = io.BytesIO()
        Image.new("RGB", (side, side), (30, 90, 160)).save(out, "PNG")
        png = out.getvalue()
        statuses: list[int] = []
        before = rss_kb(server.pid)
        with Watch(server.pid) as watch:
            threads = [threading.Thread(target=upload_png, args=(port, token, png, statuses))
                       for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        rows.append((f"three {side}x{side} PNGs ({side * side / 1e6:.1f} MP) at once",
                     watch.server_peak - before, f"statuses {sorted(statuses)}; largest image worker "
                     f"RSS {watch.worker_peak / 1024:.0f} MB"))

        print(f"{'input':<48} {'server RSS growth':>18}  answer")
        for label, growth, answer in rows:
            print(f"{label:<48} {growth / 1024:>15.1f} MB  {answer}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
