"""Observability over real HTTP: `/metrics` labels requests by route template and carries
process, GC and build metrics and the latency/errors of MongoDB, Redis, S3, SMTP and the
payment provider; the access log has its fields; `/readyz` answers 503 once a drain starts (README
"Operations")."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.error
import urllib.request

import pytest
import spec_conformance
from aiosmtpd.controller import Controller
from conftest import free_port
from demo_accounts import ADMIN, BUYER, CREATOR
from mail_support import Inbox, email_status
from processes import Server, clean_env
from upload_support import mesh_bytes, upload

from tests.stripe_stub import stripe_settings

MODEL_ID = "652000000000000000000039"  # a fixture model


async def scrape(api) -> str:
    reply = await api("GET", "/metrics")
    assert reply.status == 200
    return reply.body.decode()


def samples(text: str, name: str) -> dict[str, float]:
    """`name{labels} value` lines of the exposition text, labels text → value."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name) + 1:].rpartition("} ")
            out[labels] = float(value)
    return out


def dependency_calls(text: str, dependency: str) -> float:
    return sum(value for labels, value in samples(text, "hwc3d_dependency_seconds_count").items()
               if f'dependency="{dependency}"' in labels)


@pytest.mark.gen_test(timeout=60)
async def test_request_metrics_are_labelled_by_route_template(api):
    assert (await api("GET", f"/api/models/{MODEL_ID}")).status == 200
    assert (await api("GET", "/api/models/652000000000000000000099")).status == 404
    text = await scrape(api)
    routes = {re.search(r'route="([^"]*)"', labels).group(1)
              for labels in samples(text, "hwc3d_http_requests_total")}
    assert "/api/models/{model_id}" in routes
    assert not [r for r in routes if "(" in r or "[" in r or "\\" in r], routes
    counted = samples(text, "hwc3d_http_requests_total")
    assert counted['method="GET",route="/api/models/{model_id}",status="200"'] == 1
    assert counted['method="GET",route="/api/models/{model_id}",status="404"'] == 1


@pytest.mark.gen_test(timeout=60)
async def test_process_gc_and_build_metrics(api):
    text = await scrape(api)
    assert samples(text, "python_gc_collections_total")
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
    assert re.search(r"^process_cpu_seconds_total \d", text, re.M)
    [labels] = samples(text, "hwc3d_build_info")
    assert 'version="dev"' in labels and 'python="3.' in labels and 'tornado="6.' in labels


class TestRedis:
    @pytest.fixture
    def settings_overrides(self, redis_url):
        return {"redis_url": redis_url, "rate_limits_enabled": True}

    @pytest.mark.gen_test(timeout=60)
    async def test_redis_commands_are_timed(self, api):
        before = dependency_calls(await scrape(api), "redis")
        for _ in range(3):
            assert (await api("GET", "/api/categories")).status == 200  # rate limit counters
        after = dependency_calls(await scrape(api), "redis")
        assert after - before >= 3


class TestS3:
    @pytest.fixture
    def settings_overrides(self, moto_url):
        return {"s3_bucket_name": "hwc3d-metrics", "s3_access_key": "testing",
                "s3_secret_key": "testing", "s3_endpoint_url": moto_url}

    @pytest.mark.gen_test(timeout=90)
    async def test_s3_calls_are_timed(self, api, tokens):
        before = dependency_calls(await scrape(api), "s3")  # the fixtures' files went up
        reply = await upload(api, "/api/upload/model", await tokens(CREATOR),
                             [("file", "a.glb", mesh_bytes("glb"))])
        assert reply.status == 201, reply.json
        assert dependency_calls(await scrape(api), "s3") > before


class TestPayments:
    @pytest.fixture
    def settings_overrides(self, stripe_stub):
        return stripe_settings(stripe_stub)

    @pytest.mark.gen_test(timeout=60)
    async def test_payment_provider_calls_are_timed_and_a_decline_is_no_failure(self, api, tokens):
        admin, buyer = await tokens(ADMIN), await tokens(BUYER)
        course = await api("POST", "/api/admin/courses", token=admin,
                           json={"title": "Texturing", "difficulty": "intermediate",
                                 "price": 29.99, "video_url": "/videos/texturing.mp4"})
        path = f"/api/courses/{course.json['id']}/enroll"
        declined = await api("POST", path, token=buyer, json={"payment_method_token": "tok_chargeDeclined"})
        assert declined.status == 402
        paid = await api("POST", path, token=buyer, json={"payment_method_token": "pm_card_visa"})
        assert paid.status == 201
        text = await scrape(api)
        assert dependency_calls(text, "payments") >= 2
        errors = samples(text, "hwc3d_dependency_errors_total")
        assert not [k for k in errors if 'dependency="payments"' in k], errors


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


class TestSmtp:
    @pytest.fixture
    def settings_overrides(self, smtp_server):
        return {"smtp_host": "127.0.0.1", "smtp_port": smtp_server[1], "smtp_starttls": False}

    async def _verification_email(self, api, services, name: str) -> dict:
        reply = await api("POST", "/api/auth/register", json={
            "email": f"{name}@example.com", "username": name, "password": "Secret123!"})
        assert reply.status == 201, reply.json
        deadline = time.monotonic() + 20
        while (record := await services.db.emails.find_one({"to": f"{name}@example.com"})) is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        return record

    @pytest.mark.gen_test(timeout=60)
    async def test_smtp_connections_and_messages_are_timed_and_refusals_counted(
            self, api, services, smtp_server):
        inbox, _ = smtp_server
        record = await self._verification_email(api, services, "timedmail")
        await email_status(services.db, record["_id"], "sent")
        assert len(inbox.messages) == 1
        text = await scrape(api)
        assert dependency_calls(text, "smtp") >= 2                      # connect and send
        errors = samples(text, "hwc3d_dependency_errors_total")
        assert not [k for k in errors if 'dependency="smtp"' in k], errors

        inbox.refuse = True                                             # the server says 554
        record = await self._verification_email(api, services, "refusedmail")
        await email_status(services.db, record["_id"], "failed")
        errors = samples(await scrape(api), "hwc3d_dependency_errors_total")
        assert sum(v for k, v in errors.items()
                   if 'dependency="smtp"' in k and 'operation="send"' in k) >= 1, errors


# --------------------------------------------------------------------------- the process

def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict]:
    """GET `path` of the server on `port`; the answer is checked against /openapi.json."""
    url = f"http://127.0.0.1:{port}{path}"
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status, content_type, body = reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as error:
        status, content_type, body = error.code, error.headers["Content-Type"], error.read()
    spec_conformance.check("GET", url, status, content_type or "", body)
    return status, json.loads(body)


def test_access_log_has_template_client_ip_agent_bytes_and_request_id(tmp_path):
    server = Server(tmp_path, free_port(), clean_env(LOG_FORMAT="json", RATE_LIMITS_ENABLED="false"))
    try:
        server.wait_for("HWC3D server on", timeout=60)
        status, _ = get(server.port, f"/api/models/{MODEL_ID}",
                        {"X-Real-IP": "203.0.113.9", "User-Agent": "probe/1.0",
                         "X-Request-ID": "req-observe-1"})
        assert status == 200
        deadline = time.monotonic() + 30
        record = None
        while record is None and time.monotonic() < deadline:
            for line in server.log().splitlines():
                if line.startswith("{") and '"req-observe-1"' in line and '"hwc3d.access"' in line:
                    record = json.loads(line)
            time.sleep(0.05)
        assert record is not None, server.log()[-2000:]
        assert record["method"] == "GET" and record["route"] == "/api/models/{model_id}"
        assert record["client_ip"] == "203.0.113.9" and record["user_agent"] == "probe/1.0"
        assert record["status"] == 200 and record["bytes_sent"] > 100
        assert record["request_id"] == "req-observe-1" and record["duration_ms"] >= 0
    finally:
        server.stop()


def test_readyz_answers_503_as_soon_as_a_drain_starts(tmp_path):
    server = Server(tmp_path, free_port(), clean_env(SHUTDOWN_GRACE_SECONDS="5"))
    try:
        server.wait_for("HWC3D server on", timeout=60)
        assert get(server.port, "/readyz")[0] == 200
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        answer = None
        while time.monotonic() < deadline:
            answer = get(server.port, "/readyz")
            if answer[0] == 503:
                break
        assert answer == (503, {"status": "draining"})
        assert get(server.port, "/healthz")[0] == 200  # still serving while it drains
        assert server.proc.wait(timeout=60) == 0
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=60)
async def test_mongodb_commands_are_timed_on_a_real_store(api, services):
    assert (await api("GET", f"/api/models/{MODEL_ID}")).status == 200
    calls = dependency_calls(await scrape(api), "mongodb")
    if services.settings.embedded_store:
        assert calls == 0  # the in-memory store sends no wire commands to time
    else:
        finds = samples(await scrape(api), "hwc3d_dependency_seconds_count")
        assert finds.get('dependency="mongodb",operation="find"', 0) >= 1, finds
