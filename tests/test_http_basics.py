"""HTTP basics every route shares (docs/architecture.md §3, §9): CORS for configured
origins, request ids, the JSON error format (400/404/405/422/500), metrics and readiness.

Two small test-only handlers are added to the real Application: one with a JSON body
schema, one that fails with an unexpected exception."""
import logging

import pytest
from demo_accounts import BUYER
from marshmallow import fields, validate

from handlers.app import make_app
from handlers.base import ApiHandler, ApiSchema, body, public

ORIGIN = "https://app.hwc3d.example"


class EchoSchema(ApiSchema):
    title = fields.String(required=True, validate=validate.Length(max=20))
    count = fields.Integer()


class EchoHandler(ApiHandler):
    @public
    @body(EchoSchema)
    async def post(self):
        """Answers the validated body."""
        self.write_json(self.body, 201)


class BoomHandler(ApiHandler):
    @public
    async def get(self):
        """Fails like a bug would."""
        raise RuntimeError("secret internals: mongodb://admin:hunter2@db")


TEST_ROUTES = [(r"/api/_test/echo", EchoHandler), (r"/api/_test/boom", BoomHandler)]


@pytest.fixture
def settings_overrides():
    return {"cors_origins": (ORIGIN,)}


@pytest.fixture
def app(services):
    application = make_app(services)
    application.add_handlers(r".*", [
        (pattern, type(handler.__name__, (handler,), {"route_name": pattern}),
         {"services": services}) for pattern, handler in TEST_ROUTES])
    return application


# ----------------------------------------------------------------- CORS

@pytest.mark.gen_test
async def test_cors_headers_only_for_configured_origins(api):
    allowed = await api("GET", "/healthz", headers={"Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    other = await api("GET", "/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Origin" not in (await api("GET", "/healthz")).headers


@pytest.mark.gen_test
async def test_cors_headers_on_error_responses_too(api):
    """A browser can read the error body only if the error carries the CORS headers."""
    for method, path in (("GET", "/api/no/such/thing"), ("POST", "/api/_test/echo")):
        reply = await api(method, path, body=b"{bad", headers={"Origin": ORIGIN})
        assert reply.status in (400, 404)
        assert reply.headers.get("Access-Control-Allow-Origin") == ORIGIN, (method, path)


@pytest.mark.gen_test
async def test_cors_preflight(api):
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "Authorization, Content-Type"}
    reply = await api("OPTIONS", "/api/_test/echo", headers=headers)
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in reply.headers["Access-Control-Allow-Headers"]
    refused = await api("OPTIONS", "/api/_test/echo",
                        headers={**headers, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Methods" not in refused.headers


# ----------------------------------------------------------------- request ids

@pytest.mark.gen_test
async def test_request_id_is_echoed_or_generated(api):
    echoed = await api("GET", "/healthz", headers={"X-Request-ID": "client-abc-123"})
    assert echoed.headers["X-Request-Id"] == "client-abc-123"
    generated = [(await api("GET", "/healthz")).headers["X-Request-Id"] for _ in range(2)]
    assert all(len(rid) == 32 for rid in generated) and generated[0] != generated[1]
    hostile = await api("GET", "/healthz", headers={"X-Request-ID": "a b\"<script>" + "x" * 80})
    assert len(hostile.headers["X-Request-Id"]) == 32


@pytest.mark.gen_test
async def test_error_bodies_carry_the_request_id(api):
    reply = await api("GET", "/api/no/such/thing", headers={"X-Request-ID": "trace-42"})
    assert reply.headers["X-Request-Id"] == "trace-42"
    assert reply.json["request_id"] == "trace-42"


# ----------------------------------------------------------------- the error format

@pytest.mark.gen_test
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_api_route_is_json_404(api, method):
    reply = await api(method, "/api/definitely/not/here")
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json["error_code"] == "NOT_FOUND" and reply.json["detail"]


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b'{"title": "a",}'])
async def test_malformed_json_is_400_bad_request(api, raw):
    reply = await api("POST", "/api/_test/echo", body=raw,
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert reply.json["error_code"] == "BAD_REQUEST"


@pytest.mark.gen_test
async def test_validation_errors_are_422_with_field_errors(api):
    reply = await api("POST", "/api/_test/echo",
                      json={"title": "t" * 21, "count": "many", "admin": True})
    assert reply.status == 422
    assert reply.json["error_code"] == "VALIDATION_ERROR"
    assert set(reply.json["field_errors"]) == {"title", "count", "admin"}
    missing = await api("POST", "/api/_test/echo", json={})
    assert missing.status == 422 and "title" in missing.json["field_errors"]
    assert (await api("POST", "/api/_test/echo", json={"title": "ok"})).json == {"title": "ok"}


@pytest.mark.gen_test
async def test_wrong_method_is_json_405(api, tokens):
    """A verb the route does not have: 405, signed in or not (not 401)."""
    for token in (None, await tokens(BUYER)):
        reply = await api("DELETE", "/healthz", token=token)
        assert reply.status == 405, token
        assert reply.json["error_code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.gen_test
async def test_unexpected_exception_is_generic_500_logged_with_traceback(api, caplog):
    caplog.set_level(logging.ERROR)
    reply = await api("GET", "/api/_test/boom")
    assert reply.status == 500
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json
    assert body["detail"] == "Internal server error" and body["error_code"] == "INTERNAL_ERROR"
    text = reply.body.decode()
    assert "secret" not in text and "hunter2" not in text and "Traceback" not in text
    assert "RuntimeError" not in text
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert logged, "the traceback is logged"


# ----------------------------------------------------------------- metrics

@pytest.mark.gen_test
async def test_metrics_count_requests_by_route(api):
    await api("GET", "/healthz")
    await api("GET", "/api/no/such/thing")
    reply = await api("GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    text = reply.body.decode()
    assert 'hwc3d_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'status="404"' in text
    assert "hwc3d_http_request_seconds_bucket" in text


# ----------------------------------------------------------------- readiness with Redis



class TestReadiness:
    @pytest.fixture
    def settings_overrides(self, own_redis):
        return {"redis_url": own_redis.url}

    @pytest.mark.gen_test
    async def test_readyz_reports_redis_and_503_when_it_is_gone(self, api, own_redis):
        reply = await api("GET", "/readyz")
        assert reply.status == 200
        assert reply.json == {"status": "ready",
                              "checks": {"mongodb": True, "storage": True, "redis": True}}
        own_redis.stop()
        reply = await api("GET", "/readyz")
        assert reply.status == 503
        assert reply.json["status"] == "unavailable" and reply.json["checks"]["redis"] is False
        assert (await api("GET", "/healthz")).status == 200


@pytest.mark.gen_test
async def test_access_log_never_contains_tokens_from_the_query_string(api, caplog):
    caplog.set_level("INFO", logger="hwc3d.access")
    reply = await api("GET", "/healthz?token=s3cret-token-value&since=4")
    assert reply.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "hwc3d.access"]
    assert any("/healthz?token=***&since=4" in line for line in lines)
    assert not any("s3cret-token-value" in line for line in lines)
