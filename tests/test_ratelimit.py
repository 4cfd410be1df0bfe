"""Rate limits (seed 001 §21, docs/architecture.md §3): counted in Redis when REDIS_URL is
set (so that a limit holds across instances) and in-process otherwise; 429
RATE_LIMIT_EXCEEDED with `retry_after` and `Retry-After`; RATE_LIMITS_ENABLED=false turns
them off. The limited routes here are small test-only handlers added to the real
Application, one per limit kind, so that the counts do not depend on any other area."""

import pytest
import redis
from conftest import test_settings as make_settings
from demo_accounts import ADMIN, BUYER, BUYER2
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from composition import close_services, open_services
from config import RateLimit
from handlers.app import make_app
from handlers.base import ApiHandler, public

pytestmark = pytest.mark.store  # opens instances on the test's store itself

LOW_LIMITS = {"rate_limit_anonymous": RateLimit(3, 60), "rate_limit_default": RateLimit(4, 60),
              "rate_limit_admin": RateLimit(6, 60), "rate_limit_upload": RateLimit(2, 3600),
              "rate_limit_auth": RateLimit(2, 60)}


class OpenPing(ApiHandler):
    """General limit: anonymous 20/min, authenticated 100/min, staff 1000/min."""

    @public
    async def get(self):
        """`{"ok": true}` for anyone."""
        self.write_json({"ok": True})


class MemberPing(ApiHandler):
    async def get(self):
        """`{"ok": true}` for a signed-in user."""
        self.write_json({"ok": True})


class UploadPing(ApiHandler):
    rate_limit = "upload"

    async def post(self):
        """Counted as an upload (10/hour)."""
        self.write_json({"ok": True}, 201)


class CredentialPing(ApiHandler):
    rate_limit = "auth"

    @public
    async def post(self):
        """Counted as a credential route (5/min per client)."""
        self.write_json({"ok": True})


TEST_ROUTES = [(r"/api/_test/open", OpenPing), (r"/api/_test/member", MemberPing),
               (r"/api/_test/upload", UploadPing), (r"/api/_test/credentials", CredentialPing)]


def build_app(services):
    """The real Application plus the test routes (matched before the /api 404)."""
    application = make_app(services)
    application.add_handlers(r".*", [
        (pattern, type(handler.__name__, (handler,), {"route_name": pattern}),
         {"services": services}) for pattern, handler in TEST_ROUTES])
    return application


def redis_db(url: str) -> str:
    """A database of the session's redis-server for this module alone, emptied."""
    url = url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(params=["memory", "redis"])
def backend(request):
    """Where the counters live. Tests name it explicitly: pytest-tornado reaches `app` (and so
    `settings_overrides`) dynamically, which pytest cannot parametrize."""
    return request.param


@pytest.fixture
def limits():
    return LOW_LIMITS


@pytest.fixture
def settings_overrides(request, backend, limits):
    overrides = {"rate_limits_enabled": True, **limits}
    if backend == "redis":
        overrides["redis_url"] = redis_db(request.getfixturevalue("redis_url"))
    return overrides


@pytest.fixture
def app(services):
    return build_app(services)


def assert_rate_limited(reply, window: int = 60):
    assert reply.status == 429
    body = reply.json
    assert body["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= body["retry_after"] <= window
    assert reply.headers["Retry-After"] == str(body["retry_after"])
    assert str(body["retry_after"]) in body["detail"]


async def statuses(api, n, method="GET", path="/api/_test/open", **kwargs):
    return [(await api(method, path, **kwargs)).status for _ in range(n)]


# ----------------------------------------------------------------- both backends

@pytest.mark.gen_test
async def test_anonymous_limit_answers_429_with_retry_after(api, services, backend):
    assert type(services.rate_limiter).__name__ == ("RedisRateLimiter" if backend == "redis"
                                                    else "MemoryRateLimiter")
    assert await statuses(api, 3) == [200, 200, 200]
    assert_rate_limited(await api("GET", "/api/_test/open"))
    assert (await api("GET", "/healthz")).status == 200  # operations routes are never limited


@pytest.mark.gen_test
async def test_authenticated_staff_and_upload_limits_are_separate(api, tokens):
    buyer = await tokens(BUYER)
    admin = await tokens(ADMIN)
    assert await statuses(api, 3) == [200] * 3            # anonymous, from the same address
    assert_rate_limited(await api("GET", "/api/_test/open"))
    assert await statuses(api, 4, token=buyer) == [200] * 4   # authenticated: its own count
    assert_rate_limited(await api("GET", "/api/_test/member", token=buyer))
    assert await statuses(api, 2, "POST", "/api/_test/upload", token=buyer) == [201, 201]
    assert_rate_limited(await api("POST", "/api/_test/upload", token=buyer), window=3600)
    assert await statuses(api, 6, token=admin) == [200] * 6   # staff: the admin limit
    assert_rate_limited(await api("GET", "/api/_test/member", token=admin))
    other = await tokens(BUYER2)
    assert (await api("GET", "/api/_test/member", token=other)).status == 200


@pytest.mark.gen_test
async def test_credential_routes_are_limited_per_client(api, backend):
    assert await statuses(api, 2, "POST", "/api/_test/credentials") == [200, 200]
    assert_rate_limited(await api("POST", "/api/_test/credentials"))


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"rate_limits_enabled": False, "rate_limit_anonymous": RateLimit(1, 60)}])
async def test_rate_limits_enabled_false_turns_them_off(api, backend, limits):
    assert await statuses(api, 8) == [200] * 8


# ----------------------------------------------------------------- the seed's numbers

@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{}])
async def test_default_limits_20_anonymous_100_authenticated_more_for_staff(api, tokens, services,
                                                                            limits):
    settings = services.settings
    assert (settings.rate_limit_auth, settings.rate_limit_upload, settings.rate_limit_default,
            settings.rate_limit_anonymous, settings.rate_limit_admin) == (
        RateLimit(5, 60), RateLimit(10, 3600), RateLimit(100, 60), RateLimit(20, 60),
        RateLimit(1000, 60))
    assert await statuses(api, 20) == [200] * 20
    assert_rate_limited(await api("GET", "/api/_test/open"))
    buyer = await tokens(BUYER)
    assert set(await statuses(api, 100, token=buyer)) == {200}
    assert_rate_limited(await api("GET", "/api/_test/member", token=buyer))
    admin = await tokens(ADMIN)
    assert set(await statuses(api, 101, token=admin)) == {200}


# ----------------------------------------------------------------- across instances

@pytest.mark.gen_test
@pytest.mark.parametrize("backend", ["redis"])
async def test_limit_holds_across_two_instances_sharing_redis(api, services, tmp_path, backend):
    second = await open_services(make_settings(tmp_path / "second", **{
        k: getattr(services.settings, k) for k in ("redis_url", "rate_limits_enabled",
                                                   *LOW_LIMITS)}))
    sock, port = bind_unused_port()
    server = HTTPServer(build_app(second))
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)

    async def on_second(path="/api/_test/open"):
        response = await client.fetch(HTTPRequest(f"http://127.0.0.1:{port}{path}"),
                                      raise_error=False)
        return response.code, response.headers.get("Retry-After")

    try:
        assert (await api("GET", "/api/_test/open")).status == 200
        assert (await on_second())[0] == 200
        assert (await api("GET", "/api/_test/open")).status == 200
        code, retry_after = await on_second()          # the 4th request, on the other instance
        assert code == 429 and 1 <= int(retry_after) <= 60
        assert_rate_limited(await api("GET", "/api/_test/open"))
    finally:
        client.close()
        server.stop()
        await close_services(second)


# ----------------------------------------------------------------- Redis down



@pytest.mark.gen_test
async def test_requests_pass_when_redis_is_down(own_redis, tmp_path, caplog):
    services = await open_services(make_settings(tmp_path, redis_url=own_redis.url,
                                                  rate_limits_enabled=True,
                                                  rate_limit_anonymous=RateLimit(1, 60)))
    sock, port = bind_unused_port()
    server = HTTPServer(build_app(services))
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        fetch = f"http://127.0.0.1:{port}/api/_test/open"
        assert (await client.fetch(fetch, raise_error=False)).code == 200
        assert (await client.fetch(fetch, raise_error=False)).code == 429
        own_redis.stop()
        codes = [(await client.fetch(fetch, raise_error=False)).code for _ in range(3)]
        assert codes == [200, 200, 200]
        assert "Redis unreachable" in caplog.text
    finally:
        client.close()
        server.stop()
        await close_services(services)
