"""The wiring every later test relies on: health, JSON 404, error format, request ids."""
import pytest


@pytest.mark.gen_test
async def test_healthz_and_request_id(api):
    reply = await api("GET", "/healthz")
    assert reply.status == 200 and reply.json == {"status": "ok"}
    assert len(reply.headers["X-Request-Id"]) == 32


@pytest.mark.gen_test
async def test_unknown_api_route_is_json_404(api):
    reply = await api("GET", "/api/no/such/route")
    assert reply.status == 404
    assert reply.json["error_code"] == "NOT_FOUND"
    assert reply.headers["Content-Type"].startswith("application/json")


@pytest.mark.gen_test
async def test_readyz_reports_each_dependency(api):
    reply = await api("GET", "/readyz")
    assert reply.status == 200
    assert reply.json["checks"] == {"mongodb": True, "storage": True}


@pytest.mark.gen_test
async def test_fixture_accounts_are_seeded(services):
    count = await services.db.users.count_documents({})
    assert count == 6
