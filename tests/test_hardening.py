"""Safe defaults and input limits over real HTTP: no demo data in production, JSON bodies
bounded by MAX_JSON_KB before buffering (and the server's memory with them), JSON media type
and storable text, JSON errors for unknown paths and protocol errors, bounded image decoding
and a memory limit on model analysis (README "Configuration" and "Operations")."""
from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import trimesh
from conftest import free_port, test_settings
from demo_accounts import ADMIN, BUYER, CREATOR, DEMO_PASSWORD
from instances import Instance, stop_instance
from PIL import Image
from processes import SERVER, Server, clean_env
from tornado.httpserver import HTTPServer
from upload_support import mesh_bytes, upload

from composition import open_services
from config import ConfigError, load_settings
from handlers.app import make_app
from storage.images import MAX_PIXELS

STRONG_SECRET = "s" * 48
PRODUCTION = {"ENV": "production", "JWT_SECRET_KEY": STRONG_SECRET,
              "MONGODB_URL": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500"}


# --------------------------------------------------------------------------- raw HTTP

async def raw_exchange(port: int, head: bytes, chunks=(), timeout: float = 30) -> tuple[int, dict, bytes]:
    """Send `head` then each of `chunks` on one connection; returns (status, headers, body)
    of the reply, read until the server closes or the Content-Length is complete."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return await asyncio.wait_for(read_reply(reader), timeout)
    finally:
        writer.close()


async def read_reply(reader) -> tuple[int, dict, bytes]:
    status_line = await reader.readline()
    while status_line.startswith(b"HTTP/1.1 100"):
        await reader.readline()
        status_line = await reader.readline()
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return int(status_line.split()[1]), headers, body


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# --------------------------------------------------------------------------- JSON limits

@pytest.mark.gen_test(timeout=60)
async def test_declared_json_body_over_the_limit_is_413_before_reading_it(http_server, base_url,
                                                                         services):
    limit = services.settings.max_json_bytes
    head = (f"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {95 * 1024 * 1024}\r\n\r\n").encode()
    status, headers, body = await raw_exchange(port_of(base_url), head)  # no body sent at all
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    reply = json.loads(body)
    assert reply["error_code"] == "PAYLOAD_TOO_LARGE"
    assert f"{limit // 1024} KB" in reply["detail"]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings_overrides", [{"max_json_bytes": 64 * 1024}])
async def test_chunked_json_body_is_refused_once_past_the_limit(base_url, api, settings_overrides):
    head = (b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    pieces = [chunk(b'{"email": "' + b"a" * 16 * 1024)] + [chunk(b"a" * 16 * 1024)] * 4
    status, _, body = await raw_exchange(port_of(base_url), head, pieces)
    assert status == 413 and json.loads(body)["error_code"] == "PAYLOAD_TOO_LARGE"
    # under the limit the same route parses the body (and answers on it)
    reply = await api("POST", "/api/auth/register", json={"email": "a" * 1000})
    assert reply.status == 422


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings_overrides", [{"max_json_bytes": 4 * 1024}])
async def test_upload_routes_keep_their_own_limits(api, tokens, settings_overrides):
    """Only JSON routes take MAX_JSON_KB: a model upload larger than it is accepted."""
    data = mesh_bytes("stl", trimesh.creation.icosphere(subdivisions=3))
    assert len(data) > 4 * 1024
    reply = await upload(api, "/api/upload/model", await tokens(CREATOR),
                         [("file", "ball.stl", data)])
    assert reply.status == 201, reply.json


@pytest.mark.gen_test(timeout=30)
async def test_non_json_body_on_a_json_route_is_415(api):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/csv"):
        reply = await api("POST", "/api/auth/login", headers={"Content-Type": content_type},
                          body=b'{"email": "buyer@hwc3d.com", "password": "DemoPass123!"}')
        assert reply.status == 415, content_type
        assert reply.json["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
        assert content_type in reply.json["detail"]
    reply = await api("POST", "/api/auth/login", headers={"Content-Type": "application/json; charset=utf-8"},
                      body=json.dumps({"email": BUYER, "password": DEMO_PASSWORD}))
    assert reply.status == 200


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("path, raw, field", [
    ("/api/auth/login", '{"email": "buyer@hwc3d.com", "password": "Demo\\ud800Pass1"}', "password"),
    ("/api/auth/login", '{"email": "buyer@hwc3d.com\\u0000", "password": "DemoPass123!"}', "email"),
    ("/api/auth/register", '{"email": "n@example.com", "username": "\\udfff", '
                           '"password": "Secret123!"}', "username"),
    ("/api/auth/register", '{"email": "n@example.com", "tags": ["ok", "x\\ud83d"]}', "tags.1"),
    ("/api/auth/register", '{"profile": {"bio": "\\u0000"}}', "profile.bio"),
])
async def test_unstorable_text_is_422_naming_the_field(api, path, raw, field):
    reply = await api("POST", path, body=raw.encode())
    assert reply.status == 422, reply.json
    assert reply.json["error_code"] == "VALIDATION_ERROR"
    assert list(reply.json["field_errors"]) == [field]


@pytest.mark.gen_test(timeout=30)
async def test_paths_outside_api_answer_in_the_error_format(api):
    for method, path in (("GET", "/nope"), ("GET", "/favicon.ico"), ("POST", "/admin"),
                         ("GET", "/api/no/such/route")):
        reply = await api(method, path)
        assert reply.status == 404, path
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.json["error_code"] == "NOT_FOUND" and reply.json["detail"]


# --------------------------------------------------------------------------- production start

@pytest.mark.gen_test(timeout=60)
async def test_production_start_on_an_empty_store_creates_no_demo_account(tmp_path):
    environ = {**PRODUCTION, "ADMIN_EMAIL": "owner@example.com", "ADMIN_PASSWORD": "Owner12345"}
    settings = load_settings(environ=environ, dotenv_path=None)
    assert settings.seed_fixtures is False
    # no MongoDB on this machine: the same settings on the in-memory store
    settings = dataclasses.replace(settings, mongodb_url=None, data_dir=tmp_path, bcrypt_rounds=4)
    with pytest.raises(ConfigError, match="refused in production"):
        await open_services(settings, seed_fixtures=True)
    services = await open_services(settings)
    server = HTTPServer(make_app(services))
    port = free_port()
    server.listen(port, "127.0.0.1")
    instance = Instance(services, server, f"http://127.0.0.1:{port}")
    try:
        status, reply = await instance.call("POST", "/api/auth/login",
                                            body={"email": ADMIN, "password": DEMO_PASSWORD})
        assert status == 401
        status, reply = await instance.call("GET", "/api/categories")
        assert status == 200 and (reply["items"] if isinstance(reply, dict) else reply) == []
        accounts = await services.db["users"].find({}).to_list(None)
        assert [(a["email"], a.get("staff_role")) for a in accounts] == [
            ("owner@example.com", "superadmin")]
    finally:
        await stop_instance(instance)


def test_seed_in_production_is_refused_at_start_up(tmp_path):
    for args, env, named in ((["--seed"], {}, "--seed"),
                             ([], {"SEED_FIXTURES": "true"}, "SEED_FIXTURES")):
        proc = subprocess.run([sys.executable, str(SERVER), "--port", str(free_port()), *args],
                              cwd=tmp_path, env=clean_env(**PRODUCTION, **env), check=False,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0] and "refused in production" in lines[0]
        assert "ADMIN_EMAIL" in lines[0]


# --------------------------------------------------------------------------- the process

@pytest.fixture
def server(tmp_path):
    process = Server(tmp_path, free_port(), clean_env(RATE_LIMITS_ENABLED="false",
                                                      MAX_HEADER_KB="16"))
    process.wait_for("HWC3D server on", timeout=60)
    yield process
    process.proc.send_signal(signal.SIGTERM)
    process.proc.wait(timeout=30)
    process.stderr.close()


def raw_call(port: int, data: bytes, send_after: bytes = b"", timeout: float = 30) -> tuple[int, dict]:
    """Send `data` on a plain socket and read the whole reply (the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if send_after:
            sock.sendall(send_after)
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < int(
                _header(received, b"content-length") or 0):
            part = sock.recv(65536)
            if not part:
                break
            received += part
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _header(received: bytes, name: bytes) -> bytes | None:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def test_oversized_headers_and_malformed_requests_get_json_errors(server):
    big = b"GET /api/categories HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 40_000 + b"\r\n\r\n"
    status, reply = raw_call(server.port, big)
    assert status == 431 and reply["error_code"] == "HEADERS_TOO_LARGE" and "16 KB" in reply["detail"]
    long_path = b"GET /api/models?q=" + b"x" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert raw_call(server.port, long_path)[0] == 431
    bad = b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n"
    status, reply = raw_call(server.port, bad)
    assert status == 400 and reply["error_code"] == "BAD_REQUEST"
    assert server.get("/healthz")[0] == 200


def send_hostile_json(port: int, size: int, chunked: bool) -> None:
    """POST `size` bytes of JSON to the anonymous login route; the server may close early."""
    piece = b"[" + b"1," * (512 * 1024 - 1) + b"1]"  # 1 MB of valid JSON text
    head = b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head)
            sent = 0
            while sent < size:
                sock.sendall(chunk(piece) if chunked else piece)
                sent += len(piece)
    except OSError:
        pass  # refused and closed by the server: what is being measured is its memory


def test_server_memory_grows_less_than_50_mb_for_95_mb_json_bodies(server):
    before = server.rss_kb()
    peak = [before]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_kb())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    size = 95 * 1024 * 1024
    for chunked in (False, True):
        send_hostile_json(server.port, size, chunked)
    senders = [threading.Thread(target=send_hostile_json, args=(server.port, size, i % 2 == 0))
               for i in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=120)
    assert server.get("/healthz") == (200, {"status": "ok"})
    done.set()
    watcher.join()
    growth_mb = (peak[0] - before) / 1024
    assert growth_mb < 50, f"server RSS grew by {growth_mb:.1f} MB"


# --------------------------------------------------------------------------- images and models

def png_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.gen_test(timeout=180)
async def test_images_over_the_pixel_cap_are_refused_and_under_it_decoded(api, tokens):
    token = await tokens(CREATOR)
    side = int(MAX_PIXELS ** 0.5) + 1
    reply = await upload(api, "/api/upload/image", token, [("file", "huge.png", png_bytes(side, side))])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    assert "megapixels" in reply.json["detail"]
    reply = await upload(api, "/api/upload/image", token, [("file", "big.png", png_bytes(4000, 3000))])
    assert reply.status == 201, reply.json
    assert (reply.json["width"], reply.json["height"]) == (4000, 3000)


@pytest.mark.gen_test(timeout=180)
@pytest.mark.parametrize("settings_overrides", [{"analysis_memory_bytes": 360 * 1024 * 1024}])
async def test_model_needing_more_than_the_analysis_memory_is_413(api, tokens, settings_overrides):
    data = mesh_bytes("glb", trimesh.creation.icosphere(subdivisions=8))
    reply = await upload(api, "/api/models/analyze", await tokens(CREATOR), [("file", "ball.glb", data)])
    assert reply.status == 413, reply.json
    assert reply.json["error_code"] == "MODEL_TOO_COMPLEX" and "360 MB" in reply.json["detail"]


@pytest.mark.gen_test(timeout=180)
async def test_same_model_is_analysed_under_the_default_memory_limit(api, tokens):
    data = mesh_bytes("glb", trimesh.creation.icosphere(subdivisions=7))
    reply = await upload(api, "/api/models/analyze", await tokens(CREATOR), [("file", "ball.glb", data)])
    assert reply.status == 200 and reply.json["poly_count"] == 327_680


@pytest.mark.gen_test(timeout=60)
async def test_test_settings_keep_seeding_on_the_in_memory_store(tmp_path):
    assert test_settings(tmp_path).seed_fixtures is True
    real_store = load_settings(environ={"MONGODB_URL": "mongodb://db:27017"}, dotenv_path=None)
    assert real_store.seed_fixtures is False


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("path", ["/ws/notifications", f"/ws/community/{'6' * 24}"])
async def test_a_plain_request_to_a_socket_route_is_answered_in_the_error_format(api, path):
    reply = await api("GET", path)
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json["error_code"] == "WEBSOCKET_UPGRADE_REQUIRED"
    assert reply.json["statusCode"] == 400 and "Upgrade" in reply.json["detail"]
