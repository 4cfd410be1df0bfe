"""`config/nginx.conf` in front of two `server.py` processes, with a real nginx (docs/architecture.md §1, §9).

The module renders the production configuration with free ports and a temporary prefix
(every line marked ``[test]`` is rewritten, nothing else), starts Debian's `nginx` as the
current user in front of two `server.py` processes (each seeded from `fixtures/`, both on
the session's `redis-server` with the same JWT_SECRET_KEY) and talks to nginx only:

- REST reaches both instances with X-Request-ID passed through (or nginx's own id), and
  nginx's own errors come in the API's error format;
- a socket on one instance receives the event of a REST write that nginx sent to the other;
- SIGTERM on the socket's instance closes it with 1001; REST goes on through the other
  instance, and the client reconnects through nginx with ``since`` and gets the event
  published meanwhile, then live ones, with no gap and no duplicate;
- the instances see the client's address (X-Real-IP / X-Forwarded-For, `xheaders=True`),
  observed through the Redis rate-limit counters, which are keyed by client IP — so the
  instances run with rate limits ON at limits far above what the tests send;
- a 20 MB model upload passes nginx's upload location to ``POST /api/upload/model``.

`nginx` missing is a failure, not a skip: CI installs it (`.ci/run`).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import redis
from conftest import free_port
from demo_accounts import BUYER, CREATOR, DEMO_PASSWORD, MODERATOR
from nginx_support import nginx_binary, render_config
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "config" / "nginx.conf"
TICKET = "657000000000000000000001"            # buyer's fixture ticket
CLIENT_IP = "127.0.0.7"                        # a loopback source address the test binds to
HIGH_LIMIT = "100000/minute"


# --------------------------------------------------------------------------- config


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    """Poll `predicate` until true; fail after `timeout` s or when `proc` exits."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"{what}: the process exited ({proc.returncode})\n{tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {timeout} s")
        time.sleep(0.02)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- processes

@dataclass
class Instance:
    """One `server.py` process; `log` is its combined output."""

    name: str
    workdir: Path
    env: dict
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    started_at: int = 0                        # log size when the process was spawned

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.started_at = out.tell()
            self.proc = subprocess.Popen(
                [sys.executable, "server.py", "--port", str(self.port)], cwd=ROOT,
                env={**self.env, "DATA_DIR": str(self.workdir / "data")},
                stdout=out, stderr=subprocess.STDOUT)

    def wait_started(self, timeout: float = 45) -> None:
        wait_until(lambda: b"HWC3D server on" in self.log.read_bytes()[self.started_at:], timeout,
                   f"{self.name}: start-up banner", self.proc, self.log)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


@dataclass
class Cluster:
    nginx: subprocess.Popen
    prefix: Path
    port: int
    instances: list[Instance]
    redis_url: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> str:
        path = self.prefix / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ensure_running(self) -> None:
        """Restart an instance that an earlier test stopped."""
        stopped = [i for i in self.instances if not i.running()]
        for instance in stopped:
            instance.spawn()
        for instance in stopped:
            instance.wait_started()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, redis_url, subprocess_store):
    binary = nginx_binary()
    root = tmp_path_factory.mktemp("nginx")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MONGODB", "REDIS", "S3_", "STRIPE", "SMTP", "RATE_LIMIT"))}
    env.update({"REDIS_URL": redis_url, "JWT_SECRET_KEY": "nginx-test-" + secrets.token_hex(24),
                "SEED_FIXTURES": "true", "BCRYPT_ROUNDS": "4", "PYTHONUNBUFFERED": "1", "LOG_FORMAT": "text",
                "ANALYSIS_WORKERS": "1", "RATE_LIMITS_ENABLED": "true",
                **{f"RATE_LIMIT_{kind}": HIGH_LIMIT
                   for kind in ("AUTH", "UPLOAD", "DEFAULT", "ANONYMOUS", "ADMIN")},
                **subprocess_store()})  # on the wire store both instances share one database
    instances = [Instance(name, root / name, env) for name in ("a", "b")]
    prefix = root / "prefix"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render_config(NGINX_CONF.read_text(), prefix, port,
                                  [i.port for i in instances], _user_name()))
    nginx = None
    try:
        for instance in instances:
            instance.workdir.mkdir()
            instance.spawn()
        for instance in instances:
            instance.wait_started()
        nginx = subprocess.Popen([binary, "-p", str(prefix), "-e", str(prefix / "error.log"),
                                  "-c", str(conf)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT)
        wait_until(lambda: accepts(port), 15, "nginx listening", nginx, prefix / "error.log")
        yield Cluster(nginx, prefix, port, instances, redis_url)
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(timeout=5)
        for instance in instances:
            instance.stop()


def _user_name() -> str:
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def nginx(cluster):
    cluster.ensure_running()
    return cluster


# --------------------------------------------------------------------------- client

async def call(cluster: Cluster, method: str, path: str, payload=None, token=None,
               headers=None, body=None, **options) -> tuple[int, dict | None, dict]:
    """One request through nginx; returns (status, parsed JSON body, headers)."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if payload is not None:
        body = json.dumps(payload)
        all_headers["Content-Type"] = "application/json"
    if body is None and method in ("POST", "PUT"):
        body = b""
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(cluster.base + path, method=method, headers=all_headers, body=body,
                    request_timeout=30, **options), raise_error=False)
    data = json.loads(response.body) if response.body else None
    return response.code, data, response.headers


async def login(cluster: Cluster, email: str) -> str:
    status, data, _ = await call(cluster, "POST", "/api/auth/login",
                                 {"email": email, "password": DEMO_PASSWORD})
    assert status == 200, data
    return data["access_token"]


async def open_socket(cluster: Cluster, token: str, **params):
    """A support socket on TICKET through nginx, its opening frames read; (conn, probe) where
    `probe` is a query value that the serving instance's access log shows."""
    probe = uuid.uuid4().hex
    query = "&".join(f"{k}={v}" for k, v in {"token": token, "probe": probe, **params}.items())
    url = cluster.base.replace("http", "ws", 1) + f"/ws/support/{TICKET}?{query}"
    conn = await websocket_connect(HTTPRequest(url, connect_timeout=5, request_timeout=5))
    connected = await next_frame(conn, "connected")
    assert connected["channel"] == f"support:{TICKET}"
    return conn, probe


async def next_frame(conn, type: str, timeout: float = 10.0) -> dict:
    """The next frame of `type`, skipping others (presence, ...)."""
    async def read():
        while True:
            raw = await conn.read_message()
            assert raw is not None, f"socket closed ({conn.close_code}) waiting for {type}"
            got = json.loads(raw)
            if got["type"] == type:
                return got
    return await asyncio.wait_for(read(), timeout)


async def served_by(cluster: Cluster, marker: str, timeout: float = 10.0) -> Instance:
    """The instance whose log shows `marker` (a request id or a socket probe)."""
    deadline = time.monotonic() + timeout
    while True:
        hits = [i for i in cluster.instances if marker in i.text()]
        if hits:
            assert len(hits) == 1, f"{marker} served by both instances"
            return hits[0]
        assert time.monotonic() < deadline, f"no instance logged {marker}"
        await asyncio.sleep(0.02)


async def staff_reply(cluster: Cluster, token: str, content: str) -> tuple[dict, Instance]:
    """The moderator's reply on TICKET through nginx; (message, instance that stored it)."""
    request_id = f"reply-{uuid.uuid4().hex}"
    status, data, headers = await call(cluster, "POST",
                                       f"/api/admin/support/tickets/{TICKET}/messages",
                                       {"content": content}, token=token,
                                       headers={"X-Request-ID": request_id})
    assert status == 201, data
    assert headers["X-Request-ID"] == request_id
    return data, await served_by(cluster, request_id)


# --------------------------------------------------------------------------- tests

@pytest.mark.gen_test(timeout=40)
async def test_rest_reaches_both_instances_with_request_ids(nginx):
    seen: dict[str, list[str]] = {}
    deadline = time.monotonic() + 15
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only {list(seen)} served requests"
        request_id = f"probe-{uuid.uuid4().hex}"
        status, data, headers = await call(nginx, "GET", "/api/categories",
                                           headers={"X-Request-ID": request_id})
        assert status == 200 and len(data["items"]) == 10
        assert headers["X-Request-ID"] == request_id
        instance = await served_by(nginx, request_id)
        seen.setdefault(instance.name, []).append(request_id)

    # No X-Request-ID from the client: nginx's $request_id reaches the instance, which
    # answers with it; nginx's access log has the same id.
    status, _, headers = await call(nginx, "GET", "/healthz")
    assert status == 200 and re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])
    await served_by(nginx, headers["X-Request-ID"])
    deadline = time.monotonic() + 5
    while f"rid={headers['X-Request-ID']}" not in nginx.access_log():
        assert time.monotonic() < deadline, "nginx did not log its request id"
        await asyncio.sleep(0.02)

    # nginx's own refusals speak the API's error format; /metrics stays per instance.
    status, data, _ = await call(nginx, "POST", "/api/auth/login",
                                 {"email": BUYER, "password": "x" * (3 * 1024 * 1024)})
    assert status == 413 and data["error_code"] == "FILE_TOO_LARGE"
    status, data, _ = await call(nginx, "GET", "/metrics")
    assert status == 404 and data["error_code"] == "NOT_FOUND"


@pytest.mark.gen_test(timeout=40)
async def test_socket_receives_rest_writes_made_on_the_other_instance(nginx):
    buyer, moderator = await login(nginx, BUYER), await login(nginx, MODERATOR)
    conn, probe = await open_socket(nginx, buyer)
    socket_on = await served_by(nginx, probe)
    writers = set()
    for n in range(8):                     # round robin: the other instance comes up soon
        message, stored_on = await staff_reply(nginx, moderator, f"Through nginx #{n}")
        event = await next_frame(conn, "message_received")
        assert event["data"]["id"] == message["id"]
        assert event["data"]["content"] == f"Through nginx #{n}"
        writers.add(stored_on.name)
        if stored_on is not socket_on:
            break
    assert writers - {socket_on.name}, "no reply was served by the other instance"
    conn.close()

    # nginx logs the socket when it closes, with its access token masked.
    deadline = time.monotonic() + 10
    while probe not in nginx.access_log():
        assert time.monotonic() < deadline, "nginx did not log the socket"
        await asyncio.sleep(0.02)
    line = next(x for x in nginx.access_log().splitlines() if probe in x)
    assert f"/ws/support/{TICKET}?token=***&probe={probe}" in line and " 101 " in line
    assert buyer not in nginx.access_log() and moderator not in nginx.access_log()


@pytest.mark.gen_test(timeout=30)
async def test_client_address_reaches_the_instances(nginx):
    client = redis.Redis.from_url(nginx.redis_url)
    try:
        for _ in nginx.instances:          # one request per instance, whichever they hit
            status, _, _ = await call(nginx, "GET", "/api/categories",
                                      headers={"X-Forwarded-For": "203.0.113.9"},
                                      network_interface=CLIENT_IP)
            assert status == 200
        # The anonymous limit counts per client IP: the address nginx saw (X-Real-IP), not
        # nginx's own 127.0.0.1 nor a forged X-Forwarded-For.
        keys = [k.decode() for k in client.scan_iter(match="hwc3d:rl:anon:ip:*", count=1000)]
        assert any(k.startswith(f"hwc3d:rl:anon:ip:{CLIENT_IP}:") for k in keys), keys
        assert not any("203.0.113.9" in k for k in keys), keys
    finally:
        client.close()


@pytest.mark.gen_test(timeout=40)
async def test_twenty_megabyte_model_upload_through_nginx(nginx):
    token = await login(nginx, CREATOR)
    triangles = 400_000                    # binary STL: 84 + 50 bytes per triangle = 20 MB
    rows = np.zeros(triangles, np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)),
                                         ("attr", "<u2")]))
    rows["v"] = np.random.default_rng(7).random((triangles, 3, 3), dtype=np.float32)
    stl = b"\0" * 80 + np.uint32(triangles).tobytes() + rows.tobytes()
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.stl"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + stl + f"\r\n--{boundary}--\r\n".encode())
    assert len(body) > 20 * 1000 * 1000
    status, data, _ = await call(nginx, "POST", "/api/upload/model", token=token, body=body,
                                 headers={"Content-Type":
                                          f"multipart/form-data; boundary={boundary}"})
    assert status == 201, data
    assert data["file_size"] == len(stl) and data["file_format"] == "STL"
    assert data["poly_count"] == triangles


@pytest.mark.gen_test(timeout=40)
async def test_sigterm_closes_with_1001_and_the_client_recovers_through_nginx(nginx):
    buyer, moderator = await login(nginx, BUYER), await login(nginx, MODERATOR)
    conn, probe = await open_socket(nginx, buyer)
    victim = await served_by(nginx, probe)
    survivor = next(i for i in nginx.instances if i is not victim)
    first, _ = await staff_reply(nginx, moderator, "Before the restart")
    seen = await next_frame(conn, "message_received")
    assert seen["data"]["id"] == first["id"]

    victim.proc.send_signal(signal.SIGTERM)
    while (raw := await asyncio.wait_for(conn.read_message(), 15)) is not None:
        assert json.loads(raw)["type"] != "message_received", raw
    assert conn.close_code == 1001
    assert await asyncio.get_running_loop().run_in_executor(None, victim.proc.wait, 30) == 0

    # REST goes on: nginx skips the stopped instance.
    for _ in range(4):
        status, _, _ = await call(nginx, "GET", "/api/categories")
        assert status == 200
    missed, stored_on = await staff_reply(nginx, moderator, "While you were away")
    assert stored_on is survivor

    conn, probe = await open_socket(nginx, buyer, since=seen["offset"])
    assert await served_by(nginx, probe) is survivor
    recovered = await next_frame(conn, "recovered")
    assert recovered["data"]["recovered"] is True and recovered["data"]["missed"] == 1
    replayed = await next_frame(conn, "message_received")
    assert replayed["data"]["id"] == missed["id"] and replayed["offset"] > seen["offset"]
    live, _ = await staff_reply(nginx, moderator, "Welcome back")
    after = await next_frame(conn, "message_received")
    assert after["data"]["id"] == live["id"] and after["offset"] > replayed["offset"]
    conn.close()


def test_websocket_keepalive_is_below_the_nginx_idle_timeout(app):
    """Tornado pings each socket before nginx's 60 s idle timeout closes it, and a peer that
    stops answering is dropped within that time too."""
    interval = app.settings["websocket_ping_interval"]
    timeout = app.settings["websocket_ping_timeout"]
    assert 0 < interval < 60 and 0 < timeout < 60
    assert app.settings["websocket_max_message_size"] > 0
