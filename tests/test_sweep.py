"""API-wide robustness sweep: the rules of docs/architecture.md §3 hold on EVERY route and verb.

The operations come from `handlers.app.collect_routes()` (the same list the server serves and
`/openapi.json` documents), so a new route is swept without touching this file. Against one
real `server.py` process per module (embedded store, seeded fixtures):

1. without a token, and with a malformed, oversized or unsigned token: `@public` verbs never
   answer 401/5xx, every other verb answers 401 in the error format; WebSockets close with
   4401; a verb a route does not serve is a 405 in the error format;
2. as a buyer, every path parameter set to junk (`not-an-id`, a missing ObjectId, `%00`, a
   4000-character string, `../etc/passwd`, bytes that are not UTF-8): never a 5xx; 404 (403
   for staff/role verbs, 400/422 when the body is validated first) in the error format;
   WebSockets close with 4404;
3. as the superadmin, malformed bodies (`{`, `[]`, `"x"`, `null`, `123`, invalid UTF-8,
   100 000-deep nesting, a 1 MB string) on every POST/PUT/PATCH: 400/422 for JSON routes,
   never a 5xx anywhere; per body field, a value of the wrong type (and an operator object
   such as ``{"$gt": ""}`` for strings) and an unknown field: 422; broken, truncated and
   hostile multipart bodies on every upload route: 4xx;
4. query strings with wrong types (`page=abc`, `limit=-1`, integers beyond 64 bits, a wrong
   value per declared query field) on every GET: 422 for routes with a query schema, never
   a 5xx on the others; an unknown parameter and `limit=1000` (clamped) are not refused;
   regex text, NUL and 3000-character values never a 5xx;
5. a hand-written generator builds schema-shaped bodies from the marshmallow schemas (junk,
   missing and real `*_id`s; all fields or the required ones; ordinary values or values at
   the edge of the validators) for each JSON route and sends them as the superadmin and as a
   buyer, on a second server so that what they create cannot disturb 1-4: never a 5xx;
6. a buyer is refused (403) on every staff-only verb and on every `/api/admin` verb, cannot
   change a creator's model, community, post or profile, and never reads or changes another
   buyer's ticket, conversation, cart, notifications, collection or payout methods.

Cases that fail because of a module another helper is still writing go into KNOWN (xfail,
not strict) with the module and the cause.
"""
from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pyotp
import pytest
import tornado.httpclient
import tornado.websocket
from conftest import free_port
from demo_accounts import (
    ADMIN,
    ADMIN_TOTP_SECRET,
    CREATOR2_ID,
    DEMO_PASSWORD,
    GAME_ASSETS,
    MODERATOR_ID,
    ROBOT,
)
from marshmallow import RAISE, ValidationError, fields, validate
from sweep_support import (
    JUNK_IDS,
    MISSING_ID,
    Client,
    Operation,
    Reply,
    SweepServer,
    error_format_problem,
    operations,
    schema_instance,
)

OPERATIONS = operations()
HTTP_OPS = [op for op in OPERATIONS if not op.websocket]
WS_OPS = [op for op in OPERATIONS if op.websocket]
PARAM_OPS = [op for op in HTTP_OPS if op.params]
WRITE_OPS = [op for op in HTTP_OPS if op.verb in ("POST", "PUT", "PATCH")
             or (op.verb == "DELETE" and op.body_schema is not None)]
BODY_OPS = [op for op in HTTP_OPS if op.body_schema is not None]
GET_OPS = [op for op in HTTP_OPS if op.verb == "GET"]
STAFF_OPS = [op for op in HTTP_OPS if op.auth == "staff" or op.path.startswith("/api/admin/")]

# Public verbs that check credentials they are given (a refresh token, a session): 401 is
# their documented answer when there are none (handlers/auth.py).
PUBLIC_401 = {"POST /api/auth/refresh", "POST /api/auth/logout"}

# Paths whose parameter is a storage key read through a signed URL: an unsigned junk key is
# refused (403 INVALID_SIGNATURE) before it is looked up (handlers/files.py).
SIGNED_PATHS = {"/files/{key}"}

# Verbs the generated-body sweep leaves alone because a *valid* body would end the sessions
# the sweep signs in with.
SESSION_ENDING = {"POST /api/auth/logout", "DELETE /api/users/me/account",
                  "PUT /api/users/me/password"}

# Failures owed to modules other helpers are still writing (reported, not fixed here).
KNOWN: dict[str, str] = {
    # "<case id>": "<module>: <cause>"  (filled from the sweep's findings)
}


def ids(ops: list[Operation]) -> list[str]:
    return [op.id for op in ops]


def known(case: str) -> None:
    """Mark a case that fails because of a module owned by another helper (xfail, not strict)."""
    if case in KNOWN:
        pytest.xfail(KNOWN[case])


# --------------------------------------------------------------------------- fixtures

def _start(tmp_path_factory, name: str, store_env: dict) -> SweepServer:
    server = SweepServer(tmp_path_factory.mktemp(name), free_port(), env_extra=store_env)
    server.start()
    return server


def _sign_in(client: Client) -> dict[str, str]:
    tokens = {}
    for who in ("buyer", "buyer2", "creator"):
        reply = client.request("POST", "/api/auth/login",
                               json_body={"email": f"{who}@hwc3d.com", "password": DEMO_PASSWORD})
        assert reply.status == 200, reply.body
        tokens[who] = reply.json["access_token"]
    reply = client.request("POST", "/api/auth/admin/login", json_body={
        "email": ADMIN, "password": DEMO_PASSWORD,
        "otp_code": pyotp.TOTP(ADMIN_TOTP_SECRET).now()})
    assert reply.status == 200, reply.body
    tokens["admin"] = reply.json["access_token"]
    return tokens


class Sweep:
    """One server, a client and signed-in tokens; `call` asserts the sweep's invariants."""

    def __init__(self, server: SweepServer):
        self.server = server
        self.client = Client(server.port)
        self.tokens = _sign_in(self.client)

    def call(self, op: Operation, path: str, *, who: str | None = None,
             token: str | None = None, **kwargs) -> Reply:
        """One request as `who` (a signed-in account) or with `token`; fails with the
        server's log when it answers 5xx, and checks the error format of every 4xx."""
        offset = self.server.log_size()
        token = self.tokens[who] if who else token
        who = who or ("a bad token" if token else None)
        reply = self.client.request(op.verb, path, token=token, **kwargs)
        shown = path if len(path) < 200 else path[:200] + "…"
        if reply.status >= 500 and not self.deliberate(reply):
            pytest.fail(f"{op.verb} {shown} as {who or 'anonymous'} -> {reply.status} "
                        f"{reply.body[:300]!r}\nserver log:\n{self.server.log_since(offset)}")
        if reply.status >= 400:
            problem = error_format_problem(reply)
            assert problem is None, f"{op.verb} {shown} -> {reply.status}: {problem}"
        return reply

    @staticmethod
    def deliberate(reply: Reply) -> bool:
        """A 503 for a feature this server has no credentials for (OAuth providers) is the
        documented answer, not a crash."""
        body = reply.json or {}
        return reply.status == 503 and str(body.get("error_code", "")).endswith("NOT_CONFIGURED")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, subprocess_store):
    server = _start(tmp_path_factory, "sweep", subprocess_store())
    state = Sweep(server)
    yield state
    state.client.close()
    assert server.stop() == 0, server.log_tail()


@pytest.fixture(scope="module")
def generated(tmp_path_factory, subprocess_store):
    """A second server for the generated bodies, which may create and change things."""
    server = _start(tmp_path_factory, "generated", subprocess_store())
    state = Sweep(server)
    yield state
    state.client.close()
    assert server.stop() == 0, server.log_tail()


def expect(reply: Reply, allowed: set[int], what: str) -> None:
    assert reply.status in allowed, f"{what}: {reply.status} not in {sorted(allowed)}: {reply.body[:300]!r}"


# --------------------------------------------------------------------------- 1. no token

@pytest.mark.parametrize("op", HTTP_OPS, ids=ids(HTTP_OPS))
def test_without_token(sweep, op):
    known(f"anonymous {op.id}")
    reply = sweep.call(op, op.url(MISSING_ID))
    if op.auth == "public":
        if op.id not in PUBLIC_401:
            assert reply.status != 401, f"public {op.id} answered 401: {reply.body[:200]!r}"
    else:
        expect(reply, {401}, f"{op.id} without a token")
        assert reply.json["error_code"] == "UNAUTHORIZED"


BAD_TOKENS = {"garbage": "not.a.jwt", "long": "x" * 5000,
              "forged": "eyJhbGciOiJub25lIn0.eyJzdWIiOiI2NTAwMDAwMDAwMDAwMDAwMDAwMDAwMDEifQ."}


@pytest.mark.parametrize("op", HTTP_OPS, ids=ids(HTTP_OPS))
def test_bad_tokens(sweep, op):
    """A malformed, oversized or unsigned (`alg: none`) token is no token: 401 on protected
    verbs, anonymous on public ones, never a 5xx."""
    for name, token in BAD_TOKENS.items():
        known(f"token {name} {op.id}")
        reply = sweep.call(op, op.url(MISSING_ID), token=token)
        if op.auth != "public":
            expect(reply, {401}, f"{op.id} with a {name} token")
        elif op.id not in PUBLIC_401:
            assert reply.status != 401, f"public {op.id} answered 401 to a {name} token"


def _missing_verbs(op_list: list[Operation]) -> list[tuple[str, str]]:
    by_path: dict[str, set[str]] = {}
    for op in op_list:
        by_path.setdefault(op.path, set()).add(op.verb)
    verbs = ("GET", "POST", "PUT", "PATCH", "DELETE")
    return [(path, next(v for v in verbs if v not in have)) for path, have in by_path.items()
            if any(v not in have for v in verbs)]


UNSERVED = _missing_verbs(HTTP_OPS)


@pytest.mark.parametrize("path,verb", UNSERVED, ids=[f"{v} {p}" for p, v in UNSERVED])
def test_unserved_verb_is_405(sweep, path, verb):
    """A verb the route does not serve is a 405 in the error format, with or without token."""
    op = Operation(pattern=path, path=path, params=tuple(
        part[1:-1] for part in path.split("/") if part.startswith("{")), verb=verb,
        handler=object, auth=None)
    for who in (None, "buyer"):
        reply = sweep.call(op, op.url(MISSING_ID), who=who)
        expect(reply, {405}, f"{verb} {path} as {who or 'anonymous'}")


def _websocket_close(sweep: Sweep, path: str, token: str | None) -> int | None:
    """Connect to `path` and return the close code the server sends first."""
    async def run() -> int | None:
        url = f"ws://127.0.0.1:{sweep.server.port}{path}"
        if token:
            url += ("&" if "?" in url else "?") + "token=" + token
        try:
            conn = await asyncio.wait_for(tornado.websocket.websocket_connect(url), 10)
        except tornado.websocket.WebSocketClosedError:
            return None
        except tornado.httpclient.HTTPClientError as exc:  # refused before the upgrade
            return exc.code
        while await asyncio.wait_for(conn.read_message(), 10) is not None:
            pass
        return conn.close_code

    return asyncio.run(run())


@pytest.mark.parametrize("op", WS_OPS, ids=ids(WS_OPS))
def test_websocket_without_token_closes_4401(sweep, op):
    assert _websocket_close(sweep, op.url(MISSING_ID), None) == 4401


# --------------------------------------------------------------------------- 2. junk ids

WS_PARAM_OPS = [op for op in WS_OPS if op.params]


@pytest.mark.parametrize("op", WS_PARAM_OPS, ids=ids(WS_PARAM_OPS))
def test_websocket_junk_ids_close_4404(sweep, op):
    for value in ("not-an-id", MISSING_ID, "a" * 300):
        code = _websocket_close(sweep, op.url(value), sweep.tokens["buyer"])
        assert code in (4404, 4403), f"{op.id} with {value[:30]!r}: close code {code}"


@pytest.mark.parametrize("op", PARAM_OPS, ids=ids(PARAM_OPS))
def test_junk_path_parameters(sweep, op):
    """Invalid ids are a 404 (403 first for staff/role verbs; 400/422 first when a body is
    validated before the id is looked up), never a 5xx."""
    allowed = {404}
    if op.denies_buyers or op.path in SIGNED_PATHS:
        allowed.add(403)
    if op.body_schema is not None or op.multipart:
        allowed |= {400, 422}
    for name, raw in JUNK_IDS.items():
        known(f"junk {name} {op.id}")
        reply = sweep.call(op, op.url(raw), who="buyer")
        # a path segment that is not UTF-8 may be refused before routing (400)
        expect(reply, allowed | ({400} if name == "invalid-utf8" else set()),
               f"{op.id} as buyer with {name}")


# --------------------------------------------------------------------------- 3. bodies

MALFORMED = {
    "truncated": b"{",
    "array": b"[]",
    "string": b'"x"',
    "null": b"null",
    "number": b"123",
    "invalid-utf8": b'{"title": "\xff\xfe"}',
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "megabyte-string": b'"' + b"x" * (1 << 20) + b'"',
}


@pytest.mark.parametrize("op", WRITE_OPS, ids=ids(WRITE_OPS))
def test_malformed_bodies(sweep, op):
    """JSON routes answer 400 (not JSON) or 422 (JSON of the wrong shape); others never 5xx."""
    for name, raw in MALFORMED.items():
        known(f"malformed {name} {op.id}")
        reply = sweep.call(op, op.url(MISSING_ID), who="admin", body=raw)
        if op.body_schema is not None:
            allowed = {400} if name in ("truncated", "invalid-utf8") else {400, 422}
            if name == "megabyte-string":  # over MAX_JSON_KB (1024 KB by default)
                allowed = {413}
            expect(reply, allowed, f"{op.id} with a {name} body")
            if name == "truncated":
                assert reply.json["error_code"] == "BAD_REQUEST"


HUGE_NUMBERS = ["9" * 30 + ".99", 10 ** 30, 1e308, -(10 ** 30)]


def wrong_values(field: fields.Field) -> list[Any]:
    """Values of the wrong type (or out of any sane range) for a body field."""
    if isinstance(field, (fields.Integer, fields.Float, fields.Decimal, fields.Number)):
        return ["abc", [1], {"$gt": 0}, *HUGE_NUMBERS]
    if type(field).__module__.startswith("handlers"):  # custom fields: money amounts, ...
        return [[1], {"$gt": 0}, *HUGE_NUMBERS]
    if isinstance(field, fields.Boolean):
        return ["maybe", [True]]
    if isinstance(field, (fields.DateTime, fields.Date)):
        return ["not-a-date", 12]
    if isinstance(field, fields.List):
        return ["not-a-list", {"$in": []}]
    if isinstance(field, (fields.Dict, fields.Nested)):
        return ["not-an-object", [1]]
    if isinstance(field, fields.String):
        return [12345, {"$gt": ""}, ["x"]]
    return []


def body_fields(schema) -> dict[str, fields.Field]:
    """Loadable fields of `schema` by the key a client sends."""
    return {(f.data_key or name): f for name, f in schema_instance(schema).load_fields.items()}


@pytest.mark.parametrize("op", BODY_OPS, ids=ids(BODY_OPS))
def test_wrong_field_types_and_unknown_fields(sweep, op):
    """Each field with a value of the wrong type, and an unknown field: 422, never 5xx."""
    known(f"fields {op.id}")
    schema = schema_instance(op.body_schema)
    for key, field in body_fields(schema).items():
        for value in wrong_values(field):
            reply = sweep.call(op, op.url(MISSING_ID), who="admin", json_body={key: value})
            expect(reply, {400, 422} | ({404} if op.params else set()),
                   f"{op.id} with {key}={value!r}")
    reply = sweep.call(op, op.url(MISSING_ID), who="admin", json_body={"zz_unknown": 1})
    if schema.unknown == RAISE:
        expect(reply, {422}, f"{op.id} with an unknown field")
        assert "zz_unknown" in reply.json.get("field_errors", {}), reply.json
    else:
        pytest.fail(f"{op.id}: body schema {type(schema).__name__} does not reject unknown fields")


# --------------------------------------------------------------------------- 4. queries

INT64_OVERFLOW = ["99999999999999999999", "-99999999999999999999"]


def wrong_query_values(field: fields.Field, name: str = "") -> list[str]:
    """Values a query field must refuse with 422 (an integer beyond 64 bits cannot reach
    MongoDB: BSON has no such integer)."""
    if isinstance(field, fields.Integer):
        return ["abc", "1.5", *INT64_OVERFLOW]
    if isinstance(field, (fields.Float, fields.Decimal, fields.Number)):
        return ["abc", "nan", "inf"]
    if isinstance(field, fields.Boolean):
        return ["maybe"]
    if isinstance(field, (fields.DateTime, fields.Date)):
        return ["not-a-date"]
    if isinstance(field, fields.String):
        choices = [v for v in field.validators if isinstance(v, validate.OneOf)]
        values = ["zz-not-a-choice"] if choices else []
        if name.endswith("_range"):  # "low-high" text read as numbers
            values += ["0-" + "9" * 25, "9" * 25 + "-", "abc-def"]
        return values
    return []


def nasty_query_values(field: fields.Field, key: str) -> list[str]:
    """Values of the right type that must not break a query (regex text, NUL, length)."""
    if isinstance(field, fields.String) and not any(
            isinstance(v, validate.OneOf) for v in field.validators):
        values = ["%5B(*%5C", "%00", "x" * 3000, "%24where"]
        if key.endswith("_id") or key == "id":
            values += ["not-an-id", MISSING_ID]
        return values
    if isinstance(field, fields.List):
        return ["%5B(*,%00,not-an-id"]
    return []


QUERY_CASES = ["page=abc", "limit=-1", "page=0", "page=99999999999999999999"]
# ignored (a cache buster) or clamped (a limit past its maximum): never refused
LENIENT_CASES = ["zz_unknown=1", "_=1733240000000", "limit=1000"]


@pytest.mark.parametrize("op", GET_OPS, ids=ids(GET_OPS))
def test_query_strings(sweep, op):
    """Routes with a query schema answer 422 to wrong types, and ignore unknown parameters
    and clamp `limit` (docs/architecture.md §3); every GET survives them (no 5xx)."""
    base = op.url(MISSING_ID)
    if op.query_schema is None:
        known(f"query {op.id}")
        sweep.call(op, base + "?page=abc&limit=-1&zz_unknown=%00", who="admin")
        return
    schema = schema_instance(op.query_schema)
    allowed = {400, 422} | ({404} if op.params else set())
    keys = {field.data_key or name for name, field in schema.load_fields.items()}
    cases = [case for case in QUERY_CASES if case.split("=")[0] in keys]
    for name, field in schema.load_fields.items():
        key = field.data_key or name
        cases += [f"{key}={value}" for value in wrong_query_values(field, key)
                  if not (key == "limit" and value == INT64_OVERFLOW[0])]   # clamped
    for case in cases:
        known(f"query {case} {op.id}")
        reply = sweep.call(op, f"{base}?{case}", who="admin")
        expect(reply, allowed, f"{op.id}?{case}")
    plain = sweep.call(op, base, who="admin").status
    for case in LENIENT_CASES:
        known(f"query {case} {op.id}")
        reply = sweep.call(op, f"{base}?{case}", who="admin")
        assert reply.status == plain, (f"{op.id}?{case}", reply.status, plain)
    for name, field in schema.load_fields.items():
        key = field.data_key or name
        for value in nasty_query_values(field, key):
            known(f"query {key} {op.id}")
            sweep.call(op, f"{base}?{key}={value}", who="admin")


FILE_WORDS = ("file", "image", "thumbnail", "avatar", "attachment", "document", "preview")
MULTIPART_OPS = [op for op in HTTP_OPS if op.multipart]


def multipart_body(parts: dict[str, tuple[str | None, bytes]], boundary: str = "sweepBoundary",
                   close: bool = True) -> bytes:
    """A multipart/form-data body: name → (filename or None, content)."""
    out = b""
    for name, (filename, content) in parts.items():
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


def multipart_cases(op: Operation) -> dict[str, tuple[str, bytes]]:
    """Broken or hostile multipart requests for `op`: name → (Content-Type, body)."""
    declared = getattr(op.handler, op.verb.lower())._multipart
    junk_file = os.urandom(2048)
    files = {n: ("junk.glb", junk_file) for n in declared if any(w in n.lower() for w in FILE_WORDS)}
    texts = {n: (None, b"\x00abc" * 3) for n in declared if n not in files}
    form = "multipart/form-data; boundary=sweepBoundary"
    return {
        "no-boundary": ("multipart/form-data", b"--x\r\n\r\n"),
        "garbage": (form, b"garbage that is not multipart"),
        "empty-form": (form, b"--sweepBoundary--\r\n"),
        "truncated": (form, multipart_body({**texts, **files}, close=False)[:-40]),
        "junk-file": (form, multipart_body({**texts, **files})),
        "traversal-name": (form, multipart_body({n: ("../../etc/passwd\x00.glb", c)
                                                 for n, (_, c) in files.items()})),
        "wrong-field-types": (form, multipart_body(texts)),
        "unknown-part": (form, multipart_body({"zz_unknown": (None, b"1"), **files})),
    }


@pytest.mark.parametrize("op", MULTIPART_OPS, ids=ids(MULTIPART_OPS))
def test_broken_multipart_uploads(sweep, op):
    """Broken, truncated and hostile multipart bodies (random bytes as the file, a traversal
    file name, NUL bytes in fields) are refused with a 4xx, never stored, never a 5xx."""
    model = {name: "652000000000000000000001" for name in op.params}
    for name, (content_type, raw) in multipart_cases(op).items():
        known(f"multipart {name} {op.id}")
        reply = sweep.call(op, op.url(**model), who="admin", body=raw, content_type=content_type)
        expect(reply, {400, 403, 404, 413, 415, 422}, f"{op.id} with a {name} body")


@pytest.mark.parametrize("op", GET_OPS, ids=ids(GET_OPS))
def test_reads_with_real_ids_and_every_choice(sweep, op):
    """Every GET with real ids (seeded documents), as a buyer, a creator and the superadmin,
    and with each choice of each enumerated query field (sorts, statuses, types): never a
    5xx; a 2xx body is JSON (or the page/file it serves)."""
    path = op.url(**{name: id_for(name, "real") for name in op.params})
    for who in ("buyer", "creator", "admin"):
        known(f"read {who} {op.id}")
        reply = sweep.call(op, path, who=who)
        if reply.status < 300 and "json" in reply.headers.get("content-type", ""):
            assert reply.json is not None or not reply.body, f"{op.id}: body is not JSON"
    if op.query_schema is None:
        return
    for name, field in schema_instance(op.query_schema).load_fields.items():
        for choice in (c for v in field.validators if isinstance(v, validate.OneOf)
                       for c in v.choices):
            known(f"read {name}={choice} {op.id}")
            sweep.call(op, f"{path}?{field.data_key or name}={choice}", who="admin")


# --------------------------------------------------------------------------- 6. access

@pytest.mark.parametrize("op", STAFF_OPS, ids=ids(STAFF_OPS))
def test_buyer_refused_on_staff_verbs(sweep, op):
    """Every staff-only verb and every `/api/admin` verb answers 403 to a buyer."""
    known(f"staff {op.id}")
    reply = sweep.call(op, op.url(MISSING_ID), who="buyer")
    expect(reply, {403}, f"{op.id} as a buyer")


PAID_MODEL = "652000000000000000000001"
SEEDED_TICKET = "657000000000000000000001"  # buyer's, with messages
OTHERS_THINGS = [  # seeded documents of creator (650…03) that a buyer may not change
    ("PUT", f"/api/models/{PAID_MODEL}", {"title": "Hijacked title"}),
    ("DELETE", f"/api/models/{PAID_MODEL}", None),
    ("POST", f"/api/models/{PAID_MODEL}/toggle-publish", None),
    ("GET", f"/api/models/{PAID_MODEL}/analytics", None),
    ("GET", f"/api/analytics/models/{PAID_MODEL}", None),
    ("PUT", "/api/communities/653000000000000000000001", {"description": "Hijacked"}),
    ("DELETE", "/api/communities/653000000000000000000001", None),
    ("PUT", "/api/communities/653000000000000000000001/members/650000000000000000000003",
     {"role": "member"}),
    ("DELETE", "/api/communities/653000000000000000000001/members/650000000000000000000003",
     None),
    ("PUT", "/api/posts/655000000000000000000001", {"content": "Hijacked"}),
    ("DELETE", "/api/posts/655000000000000000000001", None),
    ("PUT", "/api/posts/655000000000000000000001/pin", {"is_pinned": True}),
    ("PATCH", "/api/users/650000000000000000000003", {"bio": "Hijacked"}),
    ("POST", "/api/users/650000000000000000000003/ban", {"reason": "x"}),
]


@pytest.mark.parametrize("method,path,payload", OTHERS_THINGS,
                         ids=[f"{m} {p}" for m, p, _ in OTHERS_THINGS])
def test_buyer_cannot_change_what_creator_owns(sweep, method, path, payload):
    """A buyer gets 403/404 on a creator's model, community, post and profile."""
    known(f"owner {method} {path}")
    op = Operation(pattern=path, path=path, params=(), verb=method, handler=object, auth=None)
    reply = sweep.call(op, path, who="buyer", json_body=payload)
    expect(reply, {403, 404}, f"buyer {method} {path}")


def test_buyer_cannot_touch_another_buyers_data(sweep):
    """buyer2 neither reads nor changes what buyer owns (docs/architecture.md §3 "authorization on every
    resource"); the owner still sees it unchanged afterwards."""
    c, t = sweep.client, sweep.tokens
    buyer_id = c.request("GET", "/api/auth/me", token=t["buyer"]).json["user"]["id"]
    buyer2_id = c.request("GET", "/api/auth/me", token=t["buyer2"]).json["user"]["id"]

    ticket = c.request("POST", "/api/support/tickets", token=t["buyer"], json_body={
        "subject": "Sweep ticket", "category": "Other", "priority": "low",
        "message": "Something private about my account."})
    assert ticket.status == 201, ticket.body
    ticket_id = ticket.json["id"]
    collection = c.request("POST", "/api/collections", token=t["buyer"], json_body={
        "name": "Private sweep", "is_public": False})
    assert collection.status == 201, collection.body
    collection_id = collection.json["id"]
    message = c.request("POST", "/api/messages", token=t["buyer"], json_body={
        "recipient_id": "650000000000000000000003", "content": "hello creator"})
    assert message.status in (200, 201), message.body
    conversation_id = (message.json.get("conversation_id")
                       or message.json.get("conversation", {}).get("id"))

    attempts = [
        ("GET", f"/api/support/tickets/{ticket_id}", None),
        ("POST", f"/api/support/tickets/{ticket_id}/messages", {"content": "not mine"}),
        ("GET", f"/api/collections/{collection_id}", None),
        ("GET", f"/api/collections/{collection_id}/models", None),
        ("PUT", f"/api/collections/{collection_id}", {"name": "stolen"}),
        ("DELETE", f"/api/collections/{collection_id}", None),
        ("POST", f"/api/collections/{collection_id}/add-model",
         {"model_id": "650000000000000000000101"}),
        ("PATCH", f"/api/users/{buyer_id}", {"bio": "hijacked"}),
    ]
    if conversation_id:
        attempts += [("GET", f"/api/messages/{conversation_id}", None),
                     ("POST", f"/api/messages/{conversation_id}/send", {"content": "hi"}),
                     ("PUT", f"/api/messages/{conversation_id}/read", None)]
    # what buyer owns by other means: a notification (buyer2 follows buyer), a cart line, a
    # payout method, and the seeded ticket of buyer (fixtures/data/support_tickets.json)
    assert c.request("POST", f"/api/users/{buyer_id}/follow", token=t["buyer2"]).status in (200, 201)
    notes = c.request("GET", "/api/notifications", token=t["buyer"]).json["items"]
    assert notes, "following buyer should notify buyer"
    note_id = notes[0]["id"]
    cart = c.request("POST", "/api/cart", token=t["buyer"],
                     json_body={"model_id": PAID_MODEL})
    assert cart.status in (200, 201), cart.body
    method = c.request("POST", "/api/users/me/payout-methods", token=t["buyer"], json_body={
        "type": "paypal", "email": "buyer-paypal@example.com"})
    attempts += [
        ("PUT", f"/api/notifications/{note_id}/read", None),
        ("DELETE", f"/api/notifications/{note_id}", None),
        ("DELETE", f"/api/cart/{PAID_MODEL}", None),
        ("GET", f"/api/support/tickets/{SEEDED_TICKET}", None),
        ("POST", f"/api/support/tickets/{SEEDED_TICKET}/messages", {"content": "not mine"}),
    ]
    for method_name, path, payload in attempts:
        op = Operation(pattern=path, path=path, params=(), verb=method_name, handler=object,
                       auth=None)
        reply = sweep.call(op, path, who="buyer2", json_body=payload)
        expect(reply, {403, 404}, f"buyer2 {method_name} {path}")

    assert c.request("GET", f"/api/collections/{collection_id}",
                     token=t["buyer"]).json["name"] == "Private sweep"
    assert c.request("GET", f"/api/support/tickets/{ticket_id}",
                     token=t["buyer"]).status == 200
    listed = c.request("GET", "/api/support/tickets", token=t["buyer2"]).json
    assert ticket_id not in [item["id"] for item in listed["items"]]
    assert not c.request("GET", "/api/notifications", token=t["buyer"]).json["items"][0].get(
        "is_read"), "buyer2 marked buyer's notification read"
    assert note_id in [n["id"] for n in c.request("GET", "/api/notifications",
                                                  token=t["buyer"]).json["items"]]
    assert PAID_MODEL in json.dumps(c.request("GET", "/api/cart", token=t["buyer"]).json)
    if method.status in (200, 201):
        listed = c.request("GET", "/api/users/me/payout-methods", token=t["buyer2"]).json
        assert "buyer-paypal" not in json.dumps(listed)
    own = c.request("GET", "/api/users/me", token=t["buyer"]).json
    assert (own.get("user") or own).get("bio") != "hijacked"
    assert buyer2_id != buyer_id


# --------------------------------------------------------------------------- 5. generated

# Seeded documents (fixtures/data) by the name of the id that refers to them; the user is
# creator2, who is never signed in here, so what the superadmin does to them ends no session.
REAL_IDS = {"model": ROBOT, "category": "651000000000000000000001",
            "community": GAME_ASSETS, "post": "655000000000000000000001",
            "ticket": "657000000000000000000001", "user": CREATOR2_ID,
            "recipient": CREATOR2_ID, "creator": CREATOR2_ID,
            "assignee": MODERATOR_ID, "winner": CREATOR2_ID,
            "instructor": CREATOR2_ID}
NASTY_TEXT = "$where (.*[ \\x00 {{\"$gt\": \"\"}} ../../etc/passwd <script>"


def id_for(key: str, ids_from: str) -> str:
    """`ids_from` "junk" / "missing" / "real": the value of an id-like field or parameter."""
    if ids_from == "junk":
        return "not-an-id"
    if ids_from == "missing":
        return MISSING_ID
    name = key.lower().removesuffix("_ids").removesuffix("_id").removesuffix("_or_username")
    return REAL_IDS.get(name.rsplit("_", 1)[-1], MISSING_ID)


def is_id(key: str) -> bool:
    lowered = key.lower()
    return lowered == "id" or lowered.endswith(("_id", "_ids", "_or_username"))


def plausible(field: fields.Field, key: str, ids_from: str, extreme: bool) -> Any:
    """A value of the right type for `field`: ordinary, or at the edge of what its validators
    allow (`extreme`: longest strings full of operators, largest numbers, 64-bit overflow
    where no maximum is declared, odd mapping keys)."""
    lowered = key.lower()
    if isinstance(field, fields.List):
        length = next((v for v in field.validators if isinstance(v, validate.Length)), None)
        count = (length.max if length and length.max else 200) if extreme else 1
        return [plausible(field.inner, key.removesuffix("s"), ids_from, extreme)] * count
    if isinstance(field, fields.Nested):
        return generate(field.schema, ids_from, extreme)
    if isinstance(field, fields.Dict):
        return {"$where": "1", "a.b": {"$gt": ""}} if extreme else {}
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.DateTime):
        return "9999-12-31T23:59:59Z" if extreme else "2030-01-01T00:00:00Z"
    if isinstance(field, fields.Date):
        return "9999-12-31" if extreme else "2030-01-01"
    bounds = [v for v in field.validators if isinstance(v, validate.Range)]
    if isinstance(field, (fields.Integer, fields.Float, fields.Decimal, fields.Number)):
        low = next((b.min for b in bounds if b.min is not None), 1)
        high = next((b.max for b in bounds if b.max is not None), None)
        if extreme:
            value = high if high is not None else 2 ** 64
        else:
            value = low
        return int(value) if isinstance(field, fields.Integer) else float(value)
    choices = [v for v in field.validators if isinstance(v, validate.OneOf)]
    if choices:
        return list(choices[0].choices)[-1 if extreme else 0]
    if isinstance(field, fields.Email) or "email" in lowered:
        return "sweep@example.com"
    if isinstance(field, fields.Url) or lowered.endswith("url"):
        return "https://example.com/sweep.png"
    if is_id(lowered):
        return id_for(lowered, ids_from)
    if "password" in lowered:
        return "SweepPass123!"
    length = next((v for v in field.validators if isinstance(v, validate.Length)), None)
    text = NASTY_TEXT * 400 if extreme else "sweep value"
    if length is not None and length.min:
        text = text.ljust(length.min, "x")
    if length is not None and length.max is not None:
        text = text[:length.max]
    huge = ["9" * 30 + ".99", "9" * 30] if extreme else []
    return first_valid(field, [text, *huge, *TEXT_CANDIDATES])


# Strings that pass the usual text validators (patterns, codes, amounts, handles, phones).
TEXT_CANDIDATES = ["sweep_value", "sweep-value", "Sweep value", "123456", "19.99", "@sweep",
                   "+14155550123", "110000000", "000123456789", "https://example.com/sweep",
                   "sweep@example.com", "2030-01-01T00:00:00Z", "Abstract", "Characters"]


def first_valid(field: fields.Field, candidates: list[Any]) -> Any:
    """The first candidate `field` accepts (its own validators decide), else the first."""
    for candidate in candidates:
        try:
            field.deserialize(candidate)
        except ValidationError:
            continue
        except Exception as exc:
            pytest.fail(f"{type(field).__name__} raised {exc!r} on {candidate!r} instead of "
                        "a ValidationError: the server answers 500")
        return candidate
    return candidates[0]


def generate(schema, ids_from: str, extreme: bool = False, required_only: bool = False) -> dict:
    return {key: plausible(field, key, ids_from, extreme)
            for key, field in body_fields(schema).items()
            if field.required or not required_only}


GEN_OPS = [op for op in BODY_OPS if op.id not in SESSION_ENDING]
# (ids from, extreme values, required fields only)
VARIANTS = [("junk", False, False), ("missing", False, False), ("real", False, False),
            ("real", False, True), ("real", True, False)]


@pytest.mark.parametrize("op", GEN_OPS, ids=ids(GEN_OPS))
def test_generated_bodies(generated, op):
    """Schema-shaped bodies (junk, missing and real ids; ordinary and extreme values), as the
    superadmin and as a buyer: never a 5xx, every 4xx in the error format."""
    for ids_from, extreme, required_only in VARIANTS:
        body = generate(op.body_schema, ids_from, extreme, required_only)
        path = op.url(**{name: id_for(name, ids_from) for name in op.params})
        for who in ("admin", "buyer"):
            known(f"generated {who} {op.id}")
            generated.call(op, path, who=who, json_body=body)


def test_generated_sessions_survive(generated):
    """The generated bodies ended no session (SESSION_ENDING is complete)."""
    for who, token in generated.tokens.items():
        assert generated.client.request("GET", "/api/auth/me", token=token).status == 200, who


def test_spec_lists_every_swept_route(sweep):
    """`/openapi.json` documents exactly the operations this sweep walks."""
    spec = sweep.client.request("GET", "/openapi.json").json
    documented = {f"{verb.upper()} {path}" for path, item in spec["paths"].items()
                  for verb in item if verb in ("get", "post", "put", "patch", "delete")}
    assert documented == {op.id for op in OPERATIONS}
    assert json.dumps(spec)  # serialisable
