"""Helpers of the job-queue tests (README "Background jobs"): reading `/metrics`, waiting
for a condition with a deadline, JSON calls on a `server.py` process, and model uploads
whose preview is built by the queue.

- `metric(text, 'hwc3d_jobs_total{function="x",outcome="complete"}')` — the sample's value
  in a Prometheus text page (0.0 when absent).
- `until(check, timeout, what)` — poll a synchronous `check()` until it returns something
  truthy, and return that; fail after `timeout` seconds.
- `call(port, method, path, body=None)` — a JSON call on 127.0.0.1:`port`; (status, body).
- `icosphere_glb(subdivisions)`, `upload_model(api, token, data, name)` (the two-step upload:
  `POST /api/upload/model`, then `POST /api/models` with its `file_id`), `wait_model(api,
  model_id, token, done, deadline)`; `api` is the `api` fixture or `instance_api(base_url)`
  (the same calls on a server of `tests/instances.py`).
"""
from __future__ import annotations

import asyncio
import json
import json as jsonlib
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
import spec_conformance
import trimesh
import upload_support
from tornado.httpclient import AsyncHTTPClient, HTTPRequest


def metric(text: str, sample: str) -> float:
    """The value of `sample` (name with its labels, as printed) in the page `text`."""
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def until(check, timeout: float, what: str):
    """`check()` once it is truthy; fails after `timeout` seconds (polled every 0.05 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {timeout:g} s")
        time.sleep(0.05)


def call(port: int, method: str, path: str, body=None) -> tuple[int, object]:
    """A JSON call on the server process at `port`: (status, parsed body or text)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status, raw, kind = reply.status, reply.read(), reply.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    spec_conformance.check(method, path, status, kind, raw)
    return status, json.loads(raw) if "json" in kind else raw.decode()


@dataclass
class Answer:
    status: int
    json: object


def instance_api(base_url: str):
    """``await api(method, path, json=, token=, headers=, body=, timeout=)`` on `base_url`,
    answering `.status` and `.json` like the `api` fixture (and checked against the spec
    like it)."""
    async def call_api(method: str, path: str, json=None, token: str | None = None,
                       headers: dict | None = None, body: bytes | None = None,
                       timeout: float = 30) -> Answer:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            body = jsonlib.dumps(json).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        reply = await AsyncHTTPClient().fetch(HTTPRequest(
            base_url + path, method=method, headers=all_headers, body=body,
            request_timeout=timeout), raise_error=False)
        spec_conformance.check(method, path, reply.code, reply.headers.get("Content-Type", ""),
                               reply.body or b"")
        return Answer(reply.code, jsonlib.loads(reply.body) if reply.body else None)

    return call_api


def icosphere_glb(subdivisions: int = 3) -> bytes:
    return trimesh.creation.icosphere(subdivisions=subdivisions).export(file_type="glb")


def _multipart(files: list) -> tuple[bytes, dict]:
    return upload_support.multipart(files=files)


async def upload_model(api, token: str, data: bytes, name: str = "ball.glb") -> tuple[dict, dict]:
    """Upload `data` and create a model with it (the upload page's two steps); returns
    (the upload's reply, the created model)."""
    body, headers = _multipart([("file", name, data)])
    uploaded = await api("POST", "/api/upload/model", token=token, headers=headers, body=body,
                         timeout=60)
    assert uploaded.status == 201, uploaded.json
    created = await api("POST", "/api/models", token=token, json={
        "title": "Queued preview", "description": "Built by a job", "price": "3.00",
        "category": "Abstract", "file_id": uploaded.json["file_id"]})
    assert created.status == 201, created.json
    return uploaded.json, created.json


async def wait_model(api, model_id: str, token: str, done, deadline: float = 120.0) -> dict:
    """Poll `GET /api/models/{id}` until `done(model)` holds; fails after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        reply = await api("GET", f"/api/models/{model_id}", token=token)
        assert reply.status == 200, reply.json
        if done(reply.json):
            return reply.json
        assert time.monotonic() < end, reply.json
        await asyncio.sleep(0.1)
