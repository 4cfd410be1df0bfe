"""Shared test fixtures: a real server per test on the embedded store, a real redis-server.

- `settings_overrides` (dict) — override in a test module or test to change `Settings`.
- `services`, `app` — a fresh instance seeded from `fixtures/` (pytest-tornado serves `app`
  on a free port: `base_url`, `http_client`).
- `api` — JSON HTTP calls against that server: ``await api("POST", "/api/x", json={...},
  token=...)`` returns a `Reply` with `.status`, `.json`, `.headers`; a body goes out as
  `application/json` unless `headers` name another Content-Type. Every reply is checked
  against `/openapi.json` (`tests/spec_conformance.py`): an undeclared status or a body that
  does not match its declared schema fails the test.
- `tokens` — ``await tokens("buyer@hwc3d.com")`` signs a demo account in (a real session,
  issued by `documents.sessions`) and returns its access token.
- `stripe_stub` — the local Stripe API stand-in that the real `stripe` library talks to.
- `redis_url` — a `redis-server` started for the session on a free port; `own_redis` — one
  of the test's own (`RedisProcess`: `.url`, `.kill()`, `.start()`); `redis_cluster` — a
  3-master Redis Cluster for the session (`tests/redis_cluster.py`: `.nodes`, `.url`).

The document store: `HWC3D_TEST_STORE=mongomock` (default) keeps each test's documents in
memory; `HWC3D_TEST_STORE=wire` starts one SecantusDB daemon (`secantusd-py`, a MongoDB
wire-protocol server) for the session on a free port, and gives every test a database of its
own (dropped after the test); `test_settings()` points at it, so every instance a test opens
shares it. `subprocess_store()` gives `server.py` subprocesses (module-scoped servers) the
environment of a database of their own. Tests that use the store carry the `store` marker
(applied to every test that uses `services`, `app` or `subprocess_store`; modules that open
instances themselves mark themselves); the wire run selects them with `-m store`.
"""
from __future__ import annotations

import asyncio
import json
import json as jsonlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import spec_conformance
from demo_accounts import DEMO_PASSWORD
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from composition import close_services, open_services
from config import load_settings
from documents import sessions, users
from handlers.app import make_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TEST_STORE = os.environ.get("HWC3D_TEST_STORE", "mongomock")
if TEST_STORE not in ("mongomock", "wire"):
    raise pytest.UsageError(f"HWC3D_TEST_STORE must be mongomock or wire, not {TEST_STORE!r}")
WIRE = TEST_STORE == "wire"

# The database of the running test on the wire store ({} on mongomock): mongodb_url/mongodb_db.
_current_store: dict = {}


def store_settings() -> dict:
    """`Settings` fields of the running test's document store ({} for the in-memory store)."""
    return dict(_current_store)


# periodic jobs run only in the tests that ask for them (tests/test_jobs_periodic.py)
QUIET_CRON = {name: "0 0 1 1 *" for name in ("cron_renewals", "cron_earnings", "cron_reclaim",
                                             "cron_uploads")}


def test_settings(tmp_path: Path, **overrides):
    """Settings for a test instance: the test's store, fast bcrypt, rate limits off, failed
    preview builds retried at once."""
    base = {"bcrypt_rounds": 4, "data_dir": tmp_path / "data", "rate_limits_enabled": False,
            "env": "test", "analysis_workers": 1, "preview_retry_seconds": 0.1,
            **QUIET_CRON, **store_settings()}
    base.update(overrides)
    return load_settings(environ={}, dotenv_path=None, **base)


@pytest.fixture
def settings_overrides() -> dict:
    return {}


async def eventually(probe, *, timeout: float = 20.0, what: str = "the expected state"):
    """Await `probe()` (a coroutine function) until it returns something truthy, and return
    that; fail after `timeout` seconds. For effects a handler completes after its response
    (emails, notifications), which a real store may show a little later than the in-memory one."""

    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {timeout:g} s")
        await asyncio.sleep(0.02)


class WireStore:
    """A SecantusDB daemon (`secantusd-py` of the PyPI package `SecantusDB`, test-only) on a
    free port with its data in `workdir`."""

    def __init__(self, workdir: Path):
        self.binary = Path(sys.executable).with_name("secantusd-py")
        if not self.binary.exists():
            pytest.fail("secantusd-py is not installed (pip install -r requirements-dev.txt)")
        self.port, self.workdir, self.proc = free_port(), workdir, None
        self.url = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        """Start it and wait (60 s at most) until it answers a ping."""
        import pymongo

        self.log = open(self.workdir / "secantusd.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", str(self.workdir / "data"), "--log-level", "WARNING"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                pytest.fail("secantusd-py exited: " + (self.workdir / "secantusd.log").read_text())
            try:
                with pymongo.MongoClient(self.url, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                return
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("secantusd-py did not answer within 60 s")
                time.sleep(0.1)

    def drop(self, name: str) -> None:
        import pymongo

        with pymongo.MongoClient(self.url) as client:
            client.drop_database(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def wire_store(tmp_path_factory):
    """The session's SecantusDB daemon, started on first use (the wire run; the comparison of
    both stores in any run)."""
    store = WireStore(tmp_path_factory.mktemp("secantus"))
    store.start()
    yield store
    store.stop()


@pytest.fixture(autouse=True)
def store_db(request):
    """The running test's database on the wire store (a fresh one, dropped after the test);
    None on the in-memory store, where every instance starts empty anyway."""
    if not WIRE or request.node.get_closest_marker("store") is None:
        yield None
        return
    store = request.getfixturevalue("wire_store")
    name = f"t_{uuid.uuid4().hex[:16]}"
    _current_store.update(mongodb_url=store.url, mongodb_db=name)
    try:
        yield name
    finally:
        _current_store.clear()
        store.drop(name)


@pytest.fixture(scope="module")
def subprocess_store(request):
    """``new()`` returns the environment (`MONGODB_URL`, `MONGODB_DB`) of a fresh database on
    the wire store for a `server.py` subprocess — {} on mongomock, where each process keeps
    its own in-memory store. The databases are dropped at the end of the module."""
    if not WIRE:
        yield dict
        return
    wire_store = request.getfixturevalue("wire_store")
    names: list[str] = []

    def new() -> dict:
        names.append(f"m_{uuid.uuid4().hex[:16]}")
        return {"MONGODB_URL": wire_store.url, "MONGODB_DB": names[-1]}

    yield new
    for name in names:
        wire_store.drop(name)


STORE_FIXTURES = {"services", "app", "subprocess_store"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses the document store with `store` (see the module docstring):
    tests using `services`/`app`, and those of modules marked `store` themselves (tests that
    start their own servers)."""
    for item in items:
        if STORE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.store)


@pytest.fixture
def services(io_loop, tmp_path, settings_overrides, store_db):
    settings = test_settings(tmp_path, **settings_overrides)
    svc = io_loop.run_sync(lambda: open_services(settings), timeout=30)
    yield svc
    io_loop.run_sync(lambda: close_services(svc), timeout=30)


PAST_SALES = ("orders", "transactions", "purchases", "ledger_entries", "seller_balances",
              "counters")


@pytest.fixture
def no_past_sales(services, io_loop):
    """A store without the demo past sales of the fixtures (for tests that count sales,
    purchases or balances from zero): those collections are emptied and the models'
    `sales_count` set back to 0."""
    async def clear():
        for name in PAST_SALES:
            await services.db[name].delete_many({})
        await services.db.models.update_many({}, {"$set": {"sales_count": 0}})

    io_loop.run_sync(clear, timeout=30)


@pytest.fixture
def no_demo_content(services, io_loop):
    """A store without the blog posts and testimonials the fixtures give a fresh site (for
    tests that count those from zero); the posts' search documents go with them."""
    from documents import search_index

    async def clear():
        for post in await services.db.blog_posts.find({}, {"_id": 1}).to_list(None):
            await search_index.remove(services.db, "blog", post["_id"])
        await services.db.blog_posts.delete_many({})
        await services.db.testimonials.delete_many({})

    io_loop.run_sync(clear, timeout=30)


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
        if body:  # the API's media type, unless the test sends another one
            all_headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        request = HTTPRequest(base_url + path, method=method, headers=all_headers, body=body,
                              allow_nonstandard_methods=True, request_timeout=timeout,
                              follow_redirects=False)
        response = await http_client.fetch(request, raise_error=False)
        reply = Reply(response.code, response.body or b"", dict(response.headers))
        spec_conformance.check(method, path, reply.status, reply.headers.get("Content-Type", ""),
                               reply.body)
        return reply

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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A real 3-master Redis Cluster shared by the session, started on first use
    (`tests/redis_cluster.py`; `.nodes` for `redis_cluster_nodes`)."""
    from redis_cluster import ClusterStartError, RedisClusterProcess

    try:
        cluster = RedisClusterProcess(tmp_path_factory.mktemp("redis-cluster"))
        cluster.start()
    except ClusterStartError as exc:
        pytest.fail(str(exc))
    yield cluster
    cluster.stop()


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


@pytest.fixture(scope="module")
def moto_url():
    """The endpoint URL of a moto S3 server of the module's own, on a free port (the tests
    that store files in S3)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def fast_demo_passwords(services, io_loop):
    """The demo accounts' password (DemoPass123!) re-hashed at 4 bcrypt rounds, for speed."""
    quick = bcrypt.hashpw(DEMO_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    io_loop.run_sync(lambda: services.db.users.update_many(
        {"password_hash": {"$ne": None}}, {"$set": {"password_hash": quick}}))


@pytest.fixture
def post_from(http_client, base_url):
    """POST JSON to the server from the loopback address `source`; returns (status, body, headers)."""
    url = base_url.replace("localhost", "127.0.0.1")

    async def post(source: str, path: str, payload: dict):
        request = HTTPRequest(url + path, method="POST", body=json.dumps(payload),
                              headers={"Content-Type": "application/json"},
                              network_interface=source, request_timeout=30)
        response = await http_client.fetch(request, raise_error=False)
        return response.code, json.loads(response.body), response.headers

    return post
