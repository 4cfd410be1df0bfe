"""Helpers of the API-wide robustness sweep (`tests/test_sweep.py`).

- `operations()` lists every (route, verb) of `handlers.app.collect_routes()` with what its
  decorators declare (auth kind, body/query schema, multipart, WebSocket) and its OpenAPI
  path template, so the sweep follows the routes as they are served.
- `SweepServer` runs `server.py` as a subprocess on a free port (embedded store, seeded
  fixtures, rate limits off, fast bcrypt, temp DATA_DIR); its log goes to a file so that the
  5xx tracebacks can be quoted in a failure message.
- `Client` sends raw HTTP requests over one keep-alive connection (`http.client`), so that
  paths carry exactly the bytes the sweep chooses (`%00`, `%2F`, very long segments).
- `error_format_problem` tells what is wrong with an error body (docs/architecture.md §3, seed 001 §19).
"""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import tornado.websocket

from handlers.app import collect_routes
from handlers.openapi import _defined_verbs, route_path

ROOT = Path(__file__).resolve().parent.parent

# Path-parameter junk, as the raw (already percent-encoded) text placed in the path.
JUNK_IDS = {
    "not-an-id": "not-an-id",
    "zero-id": "000000000000000000000000",
    "nul-byte": "%00",
    "very-long": "a" * 4000,
    "traversal": quote("../etc/passwd", safe=""),
    "invalid-utf8": "%FF%FE",
}
MISSING_ID = "000000000000000000000000"
ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Operation:
    """One verb of one route, with what its decorators declare."""

    pattern: str
    path: str                    # OpenAPI template, e.g. /api/models/{model_id}
    params: tuple[str, ...]      # path parameter names, in order
    verb: str                    # upper case
    handler: type
    auth: str | None             # "public" | "staff" | "roles" | None (token required)
    body_schema: object = None
    query_schema: object = None
    multipart: bool = False
    websocket: bool = False

    @property
    def id(self) -> str:
        return f"{self.verb} {self.path}"

    def url(self, value: str | None = None, **values: str) -> str:
        """The path with every parameter set to `value` (raw text) or to `values[name]`."""
        out = self.path
        for name in self.params:
            out = out.replace("{" + name + "}", values.get(name, value or MISSING_ID))
        return out

    @property
    def denies_buyers(self) -> bool:
        """Staff-only or role-restricted verbs may answer 403 to a buyer before looking at ids."""
        return self.auth in ("staff", "roles")


def operations() -> list[Operation]:
    """Every verb of every route that is one path (catch-alls are left out)."""
    out: list[Operation] = []
    for pattern, handler in collect_routes():
        converted = route_path(pattern, handler)
        if converted is None:
            continue
        path, params = converted
        websocket = issubclass(handler, tornado.websocket.WebSocketHandler)
        for verb in _defined_verbs(handler):
            method = getattr(handler, verb)
            out.append(Operation(
                pattern=pattern, path=path, params=tuple(p["name"] for p in params),
                verb=verb.upper(), handler=handler, auth=getattr(method, "_auth", None),
                body_schema=getattr(method, "_body_schema", None),
                query_schema=getattr(method, "_query_schema", None),
                multipart=bool(getattr(method, "_multipart", None)), websocket=websocket))
    return out


def schema_instance(schema):
    return schema() if isinstance(schema, type) else schema


# --------------------------------------------------------------------------- server

@dataclass
class SweepServer:
    """`server.py` in a subprocess; `base` is its URL, `log_path` its combined output."""

    data_dir: Path
    port: int
    env_extra: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self, timeout: float = 60) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MONGODB", "REDIS", "S3_", "STRIPE", "SMTP"))}
        env.update({"DATA_DIR": str(self.data_dir / "data"), "BCRYPT_ROUNDS": "4",
                    "RATE_LIMITS_ENABLED": "false", "PYTHONUNBUFFERED": "1",
                    "LOG_FORMAT": "text", "ANALYSIS_WORKERS": "1",
                    "SEED_FIXTURES": "true",  # demo data also on a real store
                    **self.env_extra})
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "server.py", "--port", str(self.port)],
                                     cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server.py exited during start-up:\n" + self.log_tail())
            if b"HWC3D server on" in self.log_path.read_bytes():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server.py printed no banner within {timeout}s")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int, chars: int = 3000) -> str:
        data = self.log_path.read_bytes()[offset:]
        return data[-chars:].decode("utf-8", "replace")


# --------------------------------------------------------------------------- client

@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict

    @property
    def json(self):
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class Client:
    """Raw HTTP/1.1 requests to 127.0.0.1:`port` over one keep-alive connection."""

    def __init__(self, port: int, timeout: float = 30):
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, *, token: str | None = None,
                body: bytes | str | None = None, json_body=None,
                content_type: str | None = "application/json") -> Reply:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body)
        if isinstance(body, str):
            body = body.encode()
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        if body is not None and content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                try:
                    self.conn.request(method, path, body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered before reading the whole body: read the answer
                response = self.conn.getresponse()
                data = response.read()
                reply = Reply(response.status, data, {k.lower(): v for k, v in response.getheaders()})
                if reply.headers.get("connection", "").lower() == "close":
                    self.close()
                return reply
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def error_format_problem(reply: Reply) -> str | None:
    """None when `reply` is a JSON error ``{"detail", "error_code", "field_errors"?}``."""
    body = reply.json
    if not isinstance(body, dict):
        return f"error body is not a JSON object: {reply.body[:200]!r}"
    if not isinstance(body.get("detail"), str) or not body["detail"]:
        return f"error body has no string 'detail': {body}"
    if not isinstance(body.get("error_code"), str) or not ERROR_CODE.match(body["error_code"]):
        return f"error body has no UPPER_SNAKE 'error_code': {body}"
    errors = body.get("field_errors")
    if errors is not None and not (isinstance(errors, dict) and all(
            isinstance(v, list) and all(isinstance(m, str) for m in v) for v in errors.values())):
        return f"'field_errors' is not {{field: [message]}}: {body}"
    return None
