"""Issue 2 "What it must show": the README's walk-through against a real `server.py` process.

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
import trimesh
from conftest import ADMIN_TOTP_SECRET, DEMO_PASSWORD, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    data = tmp_path_factory.mktemp("walkthrough")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB", "REDIS", "S3_",
                                                                       "STRIPE", "SMTP"))}
    env.update({"DATA_DIR": str(data), "BCRYPT_ROUNDS": "4", "PYTHONUNBUFFERED": "1"})
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
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


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
                         {"email": "admin@hwc3d.com", "password": DEMO_PASSWORD, "otp_code": otp})
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
