"""`server.py` as a process of its own, for the tests of start-up, signals and protocol limits."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import spec_conformance

SERVER = Path(__file__).resolve().parent.parent / "server.py"


def clean_env(**extra) -> dict:
    """The process environment without any HWC3D variable of the developer's shell."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "PYTHONUNBUFFERED": "1", **extra}


class Server:
    """`python server.py` in a fresh folder (no `.env`), its stdout read by a thread."""

    def __init__(self, cwd: Path, port: int, env: dict, args: tuple[str, ...] = ()):
        self.port = port
        self.stderr = open(cwd / "stderr.log", "w+")
        self.proc = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), *args],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: list[str] = []

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The first stdout line containing `text`; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        pytest.fail(f"no line with {text!r} within {timeout}s; stdout: {self.seen}; "
                    f"stderr: {self.log()[-2000:]}")

    def get(self, path: str) -> tuple[int, dict]:
        """GET `path`: (status, parsed JSON body), the answer checked against the spec."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as reply:
            status, raw = reply.status, reply.read()
            spec_conformance.check("GET", path, status, reply.headers.get("Content-Type", ""), raw)
            return status, json.loads(raw)

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.stderr.close()

    def rss_kb(self) -> int:
        """The process's resident set size now (kB, /proc/<pid>/status)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")
