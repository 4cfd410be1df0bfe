"""The shared base handler: auth, validation, rate limits, errors and JSON output.

Every API handler subclasses `ApiHandler`. What a verb needs is declared with decorators on
the verb, which both drive the request (in `prepare`) and feed the OpenAPI document:

    class ModelHandler(ApiHandler):
        @public                       # opt out of auth (deny by default)
        @query(ModelQuerySchema)      # validated into self.query, 422 on bad input
        async def get(self, model_id): ...

        @staff("models.moderate")     # staff with that permission, else 403
        @body(RejectSchema)           # validated JSON body into self.body
        async def put(self, model_id): ...

A verb with no auth decorator requires a valid access token (401 otherwise).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import marshmallow
import orjson
import tornado.web
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate
from tornado import httputil

from documents import sessions, users
from documents.errors import DomainError, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from handlers import jsonbody, rendering
from handlers.verbs import (  # noqa: F401 - the handler kit: handlers import them from here
    body,
    multipart,
    public,
    query,
    responds,
    roles,
    schema_instance,
    staff,
)

log = logging.getLogger("hwc3d.api")

MAX_LIMIT = 100
# The JSON encoder of responses: orjson (compact UTF-8; non-JSON values — ObjectId, datetime,
# Decimal — as str(), as the standard library's encoder with default=str gives them).
_ORJSON_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_DATACLASS)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def encode_json(payload: Any) -> bytes:
    """`payload` as compact JSON bytes (orjson; the standard encoder for what orjson refuses,
    such as integers beyond 64 bits)."""
    try:
        return orjson.dumps(payload, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        return _ENCODER.encode(payload).encode()


INT64_MAX = 2 ** 63 - 1


# --------------------------------------------------------------------------- schemas

class ApiSchema(Schema):
    """Base of every request schema: unknown fields are a field error (docs/architecture.md §3)."""

    class Meta:
        unknown = RAISE


def _too_big(value: Any) -> bool:
    """Whether `value` is, or holds, an integer outside the signed 64-bit range."""
    if isinstance(value, int) and not isinstance(value, bool):
        return not -INT64_MAX - 1 <= value <= INT64_MAX
    if isinstance(value, dict):
        return any(_too_big(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_too_big(item) for item in value)
    return False


class PageQuery(ApiSchema):
    """`page` ≥ 1 (default 1) and `limit` 1..100 (default 20), seed 001 §22."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_LIMIT))


class LenientPageQuery(PageQuery):
    """Pagination for list routes whose clients send extra, ignored parameters."""

    class Meta:
        unknown = EXCLUDE


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as ``{"field.sub": ["message", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "_schema"
            for field_name, msgs in flatten_errors(value, name).items():
                out.setdefault(field_name, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            out.update(flatten_errors(value, f"{prefix}.{index}"))
    else:
        out[prefix or "_schema"] = [str(messages)]
    return out


def load(schema: type[Schema] | Schema, data: Any, unknown: str | None = None) -> dict:
    """Validate `data` with `schema`; raises Invalid (422 with field_errors).

    What the schema loads (after its post_load hooks) must also fit in BSON: an integer
    outside 64 bits, which MongoDB cannot take in a query or a document, is a field error.
    """
    try:
        loaded = schema_instance(schema).load(data, unknown=unknown)
    except marshmallow.ValidationError as exc:
        raise Invalid(flatten_errors(exc.messages)) from None
    items = loaded.items() if isinstance(loaded, dict) else [("_schema", loaded)]
    too_big = {key.removesuffix("_cents"): ["Number is too large."]
               for key, value in items if _too_big(value)}
    if too_big:
        raise Invalid(too_big)
    return loaded


def load_query(schema: Schema, data: dict) -> dict:
    """Validate a query string (docs/architecture.md §3): unknown parameters (cache busters
    such as ``_=``) are ignored and a `limit` above its range is clamped; else as `load`."""
    ceiling = next((v.max for v in getattr(schema.fields.get("limit"), "validators", ())
                    if isinstance(v, validate.Range)), None)
    if ceiling and str(data.get("limit", "")).strip().isdecimal() and int(data["limit"]) > ceiling:
        data = {**data, "limit": ceiling}
    return load(schema, data, unknown=EXCLUDE)


# --------------------------------------------------------------------------- handler

class ApiHandler(tornado.web.RequestHandler):
    """Base of every `/api` handler. Dependencies arrive through `initialize(services=...)`.

    Class attribute `rate_limit` picks the limit of seed 001 §21: "default" (100/min
    authenticated, 20/min anonymous, 1000/min staff), "auth" (5/min per client) or
    "upload" (10/hour per user). `None` turns limiting off for the handler.
    """

    rate_limit: str | None = "default"

    def initialize(self, services) -> None:
        self.services = services
        self.settings_ = services.settings
        self.db = services.db
        self.body: dict = {}
        self.query: dict = {}
        self.claims: dict | None = None
        self.request_id = self._incoming_request_id() or uuid.uuid4().hex
        self._started = time.monotonic()

    # ---------------------------------------------------------------- request lifecycle

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        if hasattr(self, "request_id"):  # after clear() (error pages): keep the id and CORS
            self.set_header("X-Request-ID", self.request_id)
            self._cors()

    def compute_etag(self) -> str | None:
        """No validator for an answer that no cache may keep (``Cache-Control: no-store``,
        every API answer unless a handler says otherwise): it would only cost a hash."""
        if self._headers.get("Cache-Control") == "no-store":
            return None
        return super().compute_etag()

    def _incoming_request_id(self) -> str | None:
        value = self.request.headers.get("X-Request-ID", "")
        return value if 0 < len(value) <= 64 and value.replace("-", "").isalnum() else None

    def _verb(self) -> Callable | None:
        return getattr(self, self.request.method.lower(), None)

    async def prepare(self) -> None:
        """Resolve the user, apply auth, rate limit and validation before the verb (deny by default)."""
        self.set_header("X-Request-ID", self.request_id)
        self.services.log_context.set(self.request_id)
        self._cors()
        if self.request.method == "OPTIONS":
            return
        verb = self._verb()
        if verb is None or getattr(type(self), self.request.method.lower(), None) is getattr(
                tornado.web.RequestHandler, self.request.method.lower(), None):
            raise tornado.web.HTTPError(405)
        await self._authenticate(optional=getattr(verb, "_auth", None) == "public")
        self._authorize(verb)
        await self._rate_limit()
        if verb is not None:
            self._validate(verb)

    async def _authenticate(self, optional: bool) -> None:
        token = self.access_token()
        if token is None:
            if not optional:
                raise Unauthorized("Authentication required")
            return
        try:
            self.current_user, self.claims = await sessions.authenticate(
                self.db, self.settings_, token)
        except Unauthorized:
            if not optional:
                raise
            self.current_user, self.claims = None, None

    def _authorize(self, verb: Callable | None) -> None:
        kind = getattr(verb, "_auth", None)
        user = self.current_user
        if kind == "staff":
            if not users.is_staff(user):
                raise Forbidden("Staff access required")
            permission = getattr(verb, "_permission", None)
            if permission and not users.has_permission(user, permission):
                raise Forbidden(f"Missing permission: {permission}")
        elif kind == "roles":
            if not set(users.roles_of(user)) & verb._roles:
                raise Forbidden("Your account type cannot do this")

    async def _rate_limit(self) -> None:
        if self.rate_limit is None or not self.settings_.rate_limits_enabled:
            return
        user = self.current_user
        if self.rate_limit == "auth":
            await self.limit("auth", self.settings_.rate_limit_auth, f"ip:{self.request.remote_ip}")
        elif self.rate_limit == "upload" and user:
            await self.limit("upload", self.settings_.rate_limit_upload, f"user:{user['_id']}")
        elif user and users.is_staff(user):
            await self.limit("admin", self.settings_.rate_limit_admin, f"user:{user['_id']}")
        elif user:
            await self.limit("default", self.settings_.rate_limit_default, f"user:{user['_id']}")
        else:
            await self.limit("anon", self.settings_.rate_limit_anonymous,
                             f"ip:{self.request.remote_ip}")

    async def limit(self, scope: str, rule, key: str) -> None:
        """Count one request against `rule` for `scope:key`; raises RateLimited (429) past it."""
        if not self.settings_.rate_limits_enabled:
            return
        allowed, retry_after = await self.services.rate_limiter.hit(f"{scope}:{key}", rule)
        if not allowed:
            raise RateLimited(retry_after)

    def _validate(self, verb: Callable) -> None:
        schema = getattr(verb, "_query_loader", None) or getattr(verb, "_query_schema", None)
        if schema is not None:
            schema = schema_instance(schema)
            self.query = load_query(schema, self.query_arguments(schema))
        schema = getattr(verb, "_body_loader", None) or getattr(verb, "_body_schema", None)
        if schema is not None:
            self.body = load(schema, self.json_body())

    # ---------------------------------------------------------------- input

    def access_token(self) -> str | None:
        """The access token from `Authorization: Bearer`, or the `access_token` cookie."""
        header = self.request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip() or None
        return self.get_cookie("access_token") or None

    def json_body(self) -> Any:
        """The request body parsed as JSON (an empty body is `{}`); 415 for a body that is not
        `application/json`, 400 when malformed or too deep, 422 naming a field whose text holds
        NUL or an unpaired surrogate (`handlers/jsonbody.py`)."""
        return jsonbody.parse(self.request.headers.get("Content-Type", ""), self.request.body)

    def query_arguments(self, schema: Schema | None = None) -> dict[str, Any]:
        """The query string as a dict: one value a name, all values for list fields."""
        out: dict[str, Any] = {}
        list_fields = set()
        if schema is not None:
            list_fields = {name for name, f in schema.fields.items()
                           if isinstance(f, fields.List)}
        for name, values in self.request.query_arguments.items():
            decoded = [v.decode("utf-8", "replace") for v in values]
            if name in list_fields:
                out[name] = [part.strip() for v in decoded for part in v.split(",") if part.strip()]
            else:
                out[name] = decoded[-1]
        return out

    # ---------------------------------------------------------------- output

    def write_json(self, payload: Any, status: int = 200) -> None:
        """Finish the request with `payload` as JSON and `status`; a success body is
        rendered through the verb's `@responds` schema (`handlers.rendering`)."""
        declared = getattr(self._verb(), "_response", None)
        if declared is not None and 200 <= status < 300:
            payload = rendering.render(declared, payload)
        self.set_status(status)
        self.finish(encode_json(payload))

    def write_page(self, items: list, meta: dict, **extra) -> None:
        """Finish with the pagination envelope ``{items, total, page, limit, pages}`` (seed 001 §22)."""
        self.write_json({"items": items, **meta, **extra})

    def no_content(self) -> None:
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    # ---------------------------------------------------------------- errors

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one error renderer: ``{"detail", "error_code", "field_errors"?}`` (seed 001 §19)
        plus the camelCase auth contract's `statusCode`, `message` and `error` (`with_status`)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DomainError):
            payload = {"detail": exc.detail, "error_code": exc.error_code}
            if exc.field_errors:
                payload["field_errors"] = exc.field_errors
            payload.update(exc.extra)
            if isinstance(exc, RateLimited):
                self.set_header("Retry-After", str(exc.retry_after))
            if exc.status == 401:
                self.set_header("WWW-Authenticate", "Bearer")
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            payload = {"detail": exc.log_message or self._reason,
                       "error_code": _HTTP_CODES.get(status_code, "BAD_REQUEST")}
        elif status_code < 500:
            payload = {"detail": self._reason, "error_code": _HTTP_CODES.get(status_code, "BAD_REQUEST")}
        else:
            payload = {"detail": "Internal server error", "error_code": "INTERNAL_ERROR"}
        payload["request_id"] = self.request_id
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(with_status(payload, self.get_status())))

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DomainError):
            status_code = exc.status
            kwargs["reason"] = None
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:
        """Domain and HTTP errors are expected: one warning line. Anything else: a traceback."""
        if isinstance(value, DomainError):
            log.info("%s %s -> %s %s", self.request.method, self.request.path,
                     value.status, value.error_code)
        elif isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)
        else:
            log.error("Uncaught exception %s %s (request %s)", self.request.method,
                      self.request.path, self.request_id, exc_info=(typ, value, tb))

    # ---------------------------------------------------------------- CORS

    def _cors(self) -> None:
        origin = self.request.headers.get("Origin")
        if not origin or origin not in self.settings_.cors_origins:
            return
        self.set_header("Access-Control-Allow-Origin", origin)
        self.set_header("Access-Control-Allow-Credentials", "true")
        self.set_header("Vary", "Origin")
        self.set_header("Access-Control-Expose-Headers",
                        "X-Request-ID, Retry-After, X-Total-Count, Link")

    @public
    def options(self, *args: Any) -> None:
        """CORS preflight: the allowed methods and headers for configured origins."""
        if self.request.headers.get("Origin") in self.settings_.cors_origins:
            self.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
            self.set_header("Access-Control-Allow-Headers",
                            "Authorization, Content-Type, Idempotency-Key, X-Request-ID")
            self.set_header("Access-Control-Max-Age", "600")
        self.no_content()

    # ---------------------------------------------------------------- helpers

    def require_user(self) -> dict:
        """The authenticated user document (the verb has already denied anonymous callers)."""
        if not self.current_user:
            raise Unauthorized("Authentication required")
        return self.current_user

    def is_staff(self) -> bool:
        return users.is_staff(self.current_user)

    def on_finish(self) -> None:
        self.services.metrics.observe_request(self, time.monotonic() - self._started)


def with_status(payload: dict, status: int) -> dict:
    """An error body with the camelCase contract's fields beside ours: `statusCode` (the
    HTTP status), `message` (`detail`, or for a 422 the list of ``"field: message"``
    strings) and `error` (the reason phrase, e.g. "Unprocessable Entity")."""
    field_errors = payload.get("field_errors")
    message: Any = payload["detail"]
    if status == 422 and field_errors:
        message = [f"{name}: {text}" for name, texts in field_errors.items() for text in texts]
    return {**payload, "statusCode": status, "message": message,
            "error": httputil.responses.get(status, "Error")}


_HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "FILE_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR", 429: "RATE_LIMIT_EXCEEDED", 431: "HEADERS_TOO_LARGE",
}


class NotFoundHandler(ApiHandler):
    """JSON 404 for every unknown `/api/...` route."""

    rate_limit = None

    async def prepare(self) -> None:
        self.set_header("X-Request-ID", self.request_id)
        raise NotFound(f"No route {self.request.method} {self.request.path}")
