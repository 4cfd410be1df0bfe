""": the README's walk-through against a real `server.py` process.

The server runs exactly as a newcomer starts it (embedded default, seeded fixtures), and
the test talks to it over real HTTP: register, login, me, refresh, upload of a real GLB
(poly count computed from the file), approval by the demo admin with TOTP, the model in the
public list, logout.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pyotp
import pytest
import spec_conformance
import trimesh
from conftest import free_port
from demo_accounts import ADMIN, ADMIN_TOTP_SECRET, DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture  # one server per test: the admin TOTP code of a walk is used once
def server(tmp_path_factory, subprocess_store):
    port = free_port()
    data = tmp_path_factory.mktemp("walkthrough")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB", "REDIS", "S3_",
                                                                       "STRIPE", "SMTP"))}
    env.update({"DATA_DIR": str(data), "BCRYPT_ROUNDS": "4", "PYTHONUNBUFFERED": "1",
                "SEED_FIXTURES": "true", **subprocess_store()})  # demo data on any store
    proc = subprocess.Popen([sys.executable, "server.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            pytest.fail("server.py exited during start-up")
        if "HWC3D server on" in line:
            break
    else:
        proc.kill()
        pytest.fail("server.py printed no banner within 60 s")
    yield base
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def call(base: str, method: str, path: str, payload=None, token=None, body=None, headers=None):
    """One HTTP request; returns (status, parsed JSON body)."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if payload is not None:
        body = json.dumps(payload).encode()
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=body, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, kind = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers
    spec_conformance.check(method, path, status, kind.get("Content-Type", ""), raw)
    return status, json.loads(raw or b"null")


def multipart(fields: dict, files: dict) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                  f"{value}\r\n".encode())
    for name, (filename, data) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                  f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_newcomer_walkthrough(server):
    status, page = call(server, "GET", "/api/models?limit=5")
    assert status == 200 and page["total"] >= 30 and len(page["items"]) == 5

    account = {"email": "walker@example.com", "username": "walker3d",
               "password": "Walk3rPass!", "user_type": "creator"}
    status, registered = call(server, "POST", "/api/auth/register", account)
    assert status == 201 and registered["user"]["username"] == "walker3d"

    status, session = call(server, "POST", "/api/auth/login",
                           {"email": account["email"], "password": account["password"]})
    assert status == 200 and session["token_type"] == "bearer"
    token = session["access_token"]
    status, me = call(server, "GET", "/api/auth/me", token=token)
    assert status == 200 and me["user"]["email"] == account["email"]

    status, refreshed = call(server, "POST", "/api/auth/refresh",
                             {"refresh_token": session["refresh_token"]})
    assert status == 200 and refreshed["refresh_token"] != session["refresh_token"]
    token = refreshed["access_token"]

    mesh = trimesh.creation.icosphere(subdivisions=3)
    body, headers = multipart(
        {"title": "Walkthrough sphere", "description": "An icosphere from the README",
         "price": "4.99", "category": "Abstract", "tags": "sphere,walkthrough"},
        {"file": ("sphere.glb", mesh.export(file_type="glb"))})
    status, model = call(server, "POST", "/api/models", body=body, headers=headers, token=token)
    assert status == 201, model
    assert model["poly_count"] == len(mesh.faces) and model["status"] == "pending"

    status, listed = call(server, "GET", "/api/models?search=Walkthrough")
    assert status == 200 and listed["total"] == 0  # pending models stay out of the public list

    otp = pyotp.TOTP(ADMIN_TOTP_SECRET).now()
    status, admin = call(server, "POST", "/api/auth/admin/login",
                         {"email": ADMIN, "password": DEMO_PASSWORD, "otp_code": otp})
    assert status == 200, admin
    status, approved = call(server, "PUT", f"/api/admin/models/{model['id']}/approve",
                            payload={}, token=admin["access_token"])
    assert status == 200 and approved["status"] == "approved"

    status, listed = call(server, "GET", "/api/models?search=Walkthrough")
    assert status == 200 and [m["id"] for m in listed["items"]] == [model["id"]]
    assert listed["items"][0]["price"] == 4.99

    status, _ = call(server, "POST", "/api/auth/logout", payload={}, token=token)
    assert status in (200, 204)
    status, error = call(server, "GET", "/api/auth/me", token=token)
    assert status == 401 and error["error_code"]


def test_a_port_in_use_stops_start_up_at_once(tmp_path):
    """A taken port: one line on stderr and exit 1, before any seeding."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "DATA_DIR": str(tmp_path / "data")}
        done = subprocess.run([sys.executable, "server.py", "--port", str(port)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and f"127.0.0.1:{port}" in done.stderr
    assert "seeded" not in done.stdout + done.stderr


def readme_walkthrough() -> str:
    """The shell block of README "A walk through with curl", as written there."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A walk through with curl\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("```\n", 1)[0]


def test_the_readme_walkthrough_runs_verbatim(server, tmp_path):
    """The README's five journeys, pasted as they are, against a fresh server: every step
    answers, and each prints what its page shows."""
    script = readme_walkthrough()
    assert "API=${API:-http://127.0.0.1:8888/api}" in script
    (tmp_path / ".venv").symlink_to(sys.prefix)   # the project's venv, where the tests run
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          env={**os.environ, "API": f"{server}/api"}, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] and lines[1]                                # a featured title, a category
    assert lines[2].endswith(" faces") and int(lines[2].split()[0]) > 0   # the 3D preview loads
    assert lines[3:6] == ["pending", "approved", "Shiny ball"]  # upload, review, public list
    assert lines[6] == "Shiny ball" and lines[7] == "4.49"      # cart, WELCOME10 on 4.99
    sphere = trimesh.creation.icosphere()
    assert lines[8] == f"{len(sphere.faces)} faces"             # the bought file downloads
    assert lines[9] == "active"                                 # community joined
    assert lines[10:] == ["Bought it, lovely.", "1"]            # comment and reaction
    assert (tmp_path / "bought.glb").stat().st_size > 1000
