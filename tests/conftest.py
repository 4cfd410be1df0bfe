"""Shared test fixtures: a real server per test on the embedded store, a real redis-server.

- `settings_overrides` (dict) — override in a test module or test to change `Settings`.
- `services`, `app` — a fresh instance seeded from `fixtures/` (pytest-tornado serves `app`
  on a free port: `base_url`, `http_client`).
- `api` — JSON HTTP calls against that server: ``await api("POST", "/api/x", json={...},
  token=...)`` returns a `Reply` with `.status`, `.json`, `.headers`.
- `tokens` — ``await tokens("buyer@hwc3d.com")`` signs a demo account in (a real session,
  issued by `documents.sessions`) and returns its access token.
- `stripe_stub` — the local Stripe API stand-in that the real `stripe` library talks to.
- `redis_url` — a `redis-server` started for the session on a free port; `own_redis` — one
  of the test's own (`RedisProcess`: `.url`, `.kill()`, `.start()`).
"""
from __future__ import annotations

import json as jsonlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from config import load_settings
from documents import sessions, users
from handlers.app import close_services, make_app, open_services

DEMO_PASSWORD = "DemoPass123!"
ADMIN_TOTP_SECRET = "STNA4PQI7ZN2U5XYMVSNCCE4SNBTYVCY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_settings(tmp_path: Path, **overrides):
    """Settings for a test instance: embedded parts, fast bcrypt, rate limits off."""
    base = {"bcrypt_rounds": 4, "data_dir": tmp_path / "data", "rate_limits_enabled": False,
            "env": "test", "analysis_workers": 1}
    base.update(overrides)
    return load_settings(environ={}, dotenv_path=None, **base)


@pytest.fixture
def settings_overrides() -> dict:
    return {}


@pytest.fixture
def services(io_loop, tmp_path, settings_overrides):
    settings = test_settings(tmp_path, **settings_overrides)
    svc = io_loop.run_sync(lambda: open_services(settings), timeout=30)
    yield svc
    io_loop.run_sync(lambda: close_services(svc), timeout=30)


@pytest.fixture
def app(services):
    return make_app(services)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict

    @property
    def json(self):
        return jsonlib.loads(self.body) if self.body else None


@pytest.fixture
def api(http_client, base_url):
    async def call(method: str, path: str, json=None, token: str | None = None,
                   headers: dict | None = None, body: bytes | str | None = None,
                   timeout: float = 30) -> Reply:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            body = jsonlib.dumps(json)
            all_headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        request = HTTPRequest(base_url + path, method=method, headers=all_headers, body=body,
                              allow_nonstandard_methods=True, request_timeout=timeout,
                              follow_redirects=False)
        response = await http_client.fetch(request, raise_error=False)
        return Reply(response.code, response.body or b"", dict(response.headers))

    return call


@pytest.fixture
def tokens(services):
    async def sign_in(email: str) -> str:
        user = await users.get_by_email(services.db, email)
        assert user is not None, email
        pair = await sessions.start_session(services.db, services.settings, user)
        return pair["access_token"]

    return sign_in


class RedisProcess:
    """A redis-server of the tests' own (the Debian package `redis-server`) on a free port,
    that a test can kill and start again on the same port."""

    def __init__(self, workdir):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.port, self.workdir, self.proc = free_port(), workdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait (10 s at most) until it accepts connections."""
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.proc.kill()
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)

    def kill(self) -> None:
        """Stop it (SIGKILL) and wait for the process to end."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def stripe_stub(io_loop):
    """The local stand-in for Stripe's API (`tests/stripe_stub.py`) on a free port."""
    from stripe_stub import StripeStub

    stub = StripeStub()
    stub.start(free_port())
    yield stub
    stub.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The URL of a redis-server shared by the whole test session."""
    process = RedisProcess(tmp_path_factory.mktemp("redis"))
    process.start()
    yield process.url
    process.stop()


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test alone, so that the test can kill and restart it."""
    process = RedisProcess(tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _http_client_defaults():
    AsyncHTTPClient.configure(None, max_clients=64)
    os.environ.setdefault("ASYNC_TEST_TIMEOUT", "30")
