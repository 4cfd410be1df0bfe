"""The OpenAPI document of the API (docs/architecture.md §3, seed 002): `/openapi.json`
(Swagger UI at `/docs` and ReDoc at `/redoc`: `handlers.docs_pages`).

The document is generated from the route lists (`handlers.app.collect_routes`) and the
decorators of `handlers.base` on each verb: `@public`/`@staff`/`@roles` give the security,
`@body`/`@query`/`@multipart` the request, `@responds` the success response, and the
marshmallow schemas become components through apispec's MarshmallowPlugin. It is built
once per Application, on first request, and kept in the Application's settings.

Examples: `@body(..., example=)` and `@responds(..., example=)` give an operation's own;
`openapi_examples.json` beside this module holds answers the server gave for the demo data,
``{"METHOD /path": {"request"?: body, "status"?: code, "response"?: body}}``, used where
the decorators give none.
"""
from __future__ import annotations

import inspect
import json
import re
import sys
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import tornado.web
import tornado.websocket
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import EXCLUDE, Schema, fields

from handlers import rendering
from handlers.base import ApiHandler, public, responds
from handlers.schemas_catalog import DocumentOut

TITLE = "HWC3D API"
VERSION = "1.0.0"
VERBS = ("get", "post", "put", "patch", "delete")
SPEC_SETTING = "openapi_spec"
ROUTES_SETTING = "hwc3d_routes"  # the (pattern, handler) pairs, set by handlers.app.make_app

DESCRIPTION = """\
Backend of HWC3D, a marketplace and community for 3D models.

* JSON with snake_case keys; ids are strings; timestamps ISO 8601 UTC; money as decimals.
* Errors: `{"detail", "error_code", "field_errors"?}`.
* Lists: `page` (default 1), `limit` (default 20, max 100) →
  `{"items", "total", "page", "limit", "pages"}`.
* Auth: `Authorization: Bearer <access token>` (15 minutes); refresh with
  `POST /api/auth/refresh`.
* Rate limits: auth 5/min, uploads 10/hour, 100/min authenticated, 20/min anonymous,
  1000/min staff; 429 `RATE_LIMIT_EXCEEDED` with `retry_after` and `Retry-After`.
"""


class ErrorSchema(Schema):
    """The one error body of the API (seed 001 §19)."""

    detail = fields.String(required=True, metadata={"description": "Human-readable message"})
    error_code = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    field_errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                               metadata={"description": "Per-field messages (422 only)"})
    retry_after = fields.Integer(metadata={"description": "Seconds to wait (429 only)"})
    reason = fields.String(metadata={"description": "A 404's precise code beside NOT_FOUND",
                                     "example": "MODEL_NOT_FOUND"})
    request_id = fields.String(metadata={"description": "Same as the X-Request-ID header"})
    statusCode = fields.Integer(required=True, metadata={
        "description": "The HTTP status (the camelCase auth contract)"})
    message = fields.Raw(required=True, metadata={
        "description": "The detail, or for a 422 the list of `field: message` strings",
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
    error = fields.String(required=True, metadata={
        "description": "The HTTP reason phrase", "example": "Unprocessable Entity"})

    order_id = fields.String(metadata={"description": "The order a declined payment belongs to (402)"})
    decline_code = fields.String(allow_none=True, metadata={
        "description": "The payment provider's decline code (402)", "example": "card_declined"})
    payment_intent_id = fields.String(metadata={
        "description": "The PaymentIntent waiting for authentication (402 PAYMENT_REQUIRES_ACTION)"})
    client_secret = fields.String(metadata={
        "description": "Its client secret, to complete 3-D Secure in the browser (402)"})
    next_action = fields.Dict(allow_none=True, metadata={
        "description": "The provider's next step, e.g. a redirect for 3-D Secure (402)"})

    class Meta:
        unknown = EXCLUDE


# status → (component name, description)
ERROR_RESPONSES = {
    400: ("BadRequest", "Malformed request (e.g. the body is not valid JSON)"),
    401: ("Unauthorized", "Missing, expired or revoked access token"),
    402: ("PaymentFailed", "The payment was declined or needs another step"),
    403: ("Forbidden", "Not allowed to do this (also: the account is disabled)"),
    404: ("NotFound", "No such resource (also any id that is not a valid ObjectId)"),
    409: ("Conflict", "The resource's state does not allow this, or it already exists"),
    413: ("PayloadTooLarge", "Body or upload larger than the limit"),
    415: ("UnsupportedMediaType", "The body is not `application/json`"),
    422: ("ValidationError", "Input failed validation; see `field_errors`"),
    429: ("RateLimited", "Rate limit exceeded; see `retry_after` and `Retry-After`"),
    502: ("BadGateway", "An outside provider answered with an error"),
    503: ("Unavailable", "A needed service is not configured or not reachable"),
}
SUCCESS = (200, 201, 202, 204)
# Statuses a verb's docstring names ("409 ALREADY_FOLLOWING", "204", "402 PAYMENT_FAILED")
_STATUS_IN_TEXT = re.compile(r"(?<![\w.§/-])([2-5]\d\d)(?![\w.]\d)")

_LOOKAROUNDS = ("?=", "?!", "?<=", "?<!")
_FILE_WORDS = ("file", "image", "thumbnail", "avatar", "attachment", "document", "preview")


# --------------------------------------------------------------------------- paths

def _group_end(text: str, start: int) -> int:
    """Index of the `)` closing the group that opens at `text[start]`."""
    depth, i, in_class = 0, start, False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if text[i + 1:i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced group in route pattern {text!r}")


def _path_parameter(name: str, regex: str) -> dict:
    schema: dict[str, Any] = {"type": "string"}
    if re.fullmatch(r"[\w-]+(\|[\w-]+)+", regex):
        schema["enum"] = regex.split("|")
    return {"in": "path", "name": name, "required": True, "schema": schema}


def pattern_to_path(pattern: str, names: list[str] | tuple[str, ...] = ()
                    ) -> tuple[str, list[dict]] | None:
    """A Tornado route regex as an OpenAPI path and its path parameters.

    ``/api/models/(?P<model_id>[^/]+)`` → ``("/api/models/{model_id}", [parameter])``;
    the n-th unnamed group takes the n-th of `names` (the verb's arguments), else ``argN``;
    lookarounds such as ``(?!featured$)`` are dropped; a trailing ``/?`` is dropped. Returns
    None for patterns that are not one path (catch-alls such as ``/api/.*``).
    """
    text = pattern.removeprefix("^").removesuffix("$").removesuffix("/?")
    out: list[str] = []
    params: list[dict] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == "(":
            end = _group_end(text, i)
            inner = text[i + 1:end]
            i = end + 1
            if inner.startswith(_LOOKAROUNDS):
                continue
            if inner.startswith("?P<"):
                name, _, regex = inner[3:].partition(">")
            elif inner.startswith("?"):
                return None
            else:
                n = len(params)
                name, regex = (names[n] if n < len(names) else f"arg{n + 1}"), inner
            out.append("{" + name + "}")
            params.append(_path_parameter(name, regex))
        elif ch in "[]*+?|{}^$":
            return None
        else:
            out.append(ch)
            i += 1
    return "".join(out) or "/", params


# --------------------------------------------------------------------------- operations

def _defined_verbs(handler: type) -> list[str]:
    """The HTTP verbs `handler` implements itself (not Tornado's 405 defaults)."""
    return [verb for verb in VERBS
            if getattr(handler, verb, None) is not getattr(tornado.web.RequestHandler, verb)]


def _argument_names(handler: type) -> list[str]:
    """Names of the path arguments of the first verb `handler` implements."""
    for verb in _defined_verbs(handler):
        try:
            parameters = list(inspect.signature(getattr(handler, verb)).parameters.values())
        except (TypeError, ValueError):
            continue
        return [p.name for p in parameters[1:]
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return []


def route_path(pattern: str, handler: type) -> tuple[str, list[dict]] | None:
    """`pattern_to_path` with unnamed groups named after `handler`'s verb arguments."""
    return pattern_to_path(pattern, _argument_names(handler))


def _tag(handler: type) -> str:
    return handler.__module__.removeprefix("handlers.")


def _docs(method) -> tuple[str, str]:
    """(summary, description): the docstring's first sentence, whole, and the text after it."""
    doc = (inspect.getdoc(method) or "").strip()
    paragraph = doc.split("\n\n", 1)[0]
    match = re.match(r"(.+?[.!?])(?=\s+[A-Z0-9`\"(*]|\s*$)", paragraph, re.S)
    head = match.group(1) if match else paragraph
    summary = " ".join(head.split()) or method.__name__.upper()
    return summary, doc[len(head):].strip()


def declared_statuses(method) -> set[int]:
    """The statuses a verb's docstring names, among those the API answers with."""
    text = inspect.getdoc(method) or ""
    return {int(code) for code in _STATUS_IN_TEXT.findall(text)
            if int(code) in SUCCESS or int(code) in ERROR_RESPONSES}


def _security(method, operation: dict) -> list[int]:
    """Set security on `operation`; returns the auth error statuses it can answer."""
    kind = getattr(method, "_auth", None)
    if kind == "public":
        return []
    operation["security"] = [{"bearerAuth": []}]
    if kind == "staff":
        permission = getattr(method, "_permission", None)
        note = "**Staff only** (moderator, admin, superadmin)"
        if permission:
            note += f"; permission `{permission}`"
            operation["x-permission"] = permission
        operation["description"] = f"{note}.\n\n{operation['description']}".strip()
        return [401, 403]
    if kind == "roles":
        allowed = sorted(method._roles)
        operation["x-roles"] = allowed
        operation["description"] = (f"**Roles:** {', '.join(allowed)}.\n\n"
                                    f"{operation['description']}").strip()
        return [401, 403]
    return [401, 403]  # 403 ACCOUNT_DISABLED: a banned or deactivated account's token


def _multipart_body(parts: dict[str, str]) -> dict:
    properties = {}
    for name, description in parts.items():
        is_file = any(word in name.lower() for word in _FILE_WORDS)
        properties[name] = ({"type": "string", "format": "binary", "description": description}
                            if is_file else {"type": "string", "description": description})
    return {"required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object",
                                                            "properties": properties}}}}


def _request(method, operation: dict) -> list[int]:
    """Set the query parameters and request body; returns the input error statuses."""
    errors = []
    query_schema = getattr(method, "_query_schema", None)
    if query_schema is not None:
        operation["parameters"].append({"in": "query", "schema": query_schema})
        errors.append(422)
    body_schema = getattr(method, "_body_schema", None)
    if body_schema is not None:
        media = {"schema": body_schema}
        if getattr(method, "_body_example", None) is not None:
            media["example"] = method._body_example
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
        errors += [400, 413, 415, 422]
    parts = getattr(method, "_multipart", None)
    if parts:
        operation["requestBody"] = _multipart_body(parts)
        errors += [400, 413, 422]
    return errors


def _response_schema(schema):
    """A response schema as documented (closed to other fields by `rendering.closed`, as the
    body is rendered through it)."""
    return resolve_schema_cls(schema)(unknown=EXCLUDE) if isinstance(schema, type) else schema


def _success(method, handler: type) -> dict[str, dict]:
    """The success responses: the `@responds` one, and other 2xx statuses its docstring names
    (with the same body, except 204 which has none)."""
    if issubclass(handler, tornado.websocket.WebSocketHandler):
        return {"101": {"description": "Switching Protocols (WebSocket upgrade)"},
                "400": {"description": "Not a WebSocket upgrade request"}}
    declared = getattr(method, "_response", None) or {
        "schema": None, "status": 200, "many": False, "paginated": False, "items": False}
    schema = declared["schema"]
    status = declared["status"]
    out = {str(status): {"description": "Success"}}
    if schema is not None:
        schema = _response_schema(schema)
        if declared["paginated"]:
            body = {"type": "object", "required": ["items", "total", "page", "limit", "pages"],
                    "properties": {"items": {"type": "array", "items": schema},
                                   "total": {"type": "integer"}, "page": {"type": "integer"},
                                   "limit": {"type": "integer"}, "pages": {"type": "integer"}}}
        elif declared.get("items"):
            body = {"type": "object", "required": ["items"],
                    "properties": {"items": {"type": "array", "items": schema}}}
        elif declared["many"]:
            body = {"type": "array", "items": schema}
        else:
            body = schema
        if declared.get("envelope"):
            body["properties"].update(declared["envelope"])
        media = {"schema": body}
        if declared.get("example") is not None:
            media["example"] = declared["example"]
        out[str(status)]["content"] = {"application/json": media}
    elif declared.get("media"):
        binary = {} if declared["media"].startswith("text/") else {"format": "binary"}
        out[str(status)]["content"] = {declared["media"]: {"schema": {"type": "string", **binary}}}
    for other in sorted(declared_statuses(method) & set(SUCCESS) - {status}):
        out[str(other)] = ({"description": "No content"} if other == 204
                           else {**out[str(status)], "description": "Success"})
    return out


def _names_a_resource(method) -> bool:
    """Whether the query or body takes a `*_id` field: an unknown one answers 404."""
    for attr in ("_query_schema", "_body_schema"):
        schema = getattr(method, attr, None)
        if schema is not None and any(
                name.endswith("_id") for name in resolve_schema_cls(schema)().fields):
            return True
    return False


def operation_for(handler: type, verb: str, path: str, path_params: list[dict],
                  example: dict | None = None) -> dict:
    """The OpenAPI Operation of `handler.<verb>` served at `path`; `example` is shown when
    `openapi_examples.json` has none for this operation (the answer recorded for the same
    method served under another path or verb)."""
    method = getattr(handler, verb)
    summary, description = _docs(method if inspect.getdoc(method) else handler)
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    operation: dict[str, Any] = {
        "operationId": f"{verb}_{slug}", "summary": summary, "description": description,
        "tags": [_tag(handler)], "parameters": [dict(p) for p in path_params],
    }
    errors = _security(method, operation) + _request(method, operation)
    errors += [code for code in declared_statuses(method) if code not in SUCCESS]
    if path_params or _names_a_resource(method):
        errors.append(404)
    if getattr(handler, "rate_limit", None) is not None:
        operation["x-rate-limit"] = handler.rate_limit
        errors.append(429)
    operation["responses"] = _success(method, handler)
    for status in sorted(set(errors)):
        operation["responses"][str(status)] = {
            "$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    declared = getattr(method, "_response", None) or {}
    for status in declared.get("alternates", ()):
        success = operation["responses"][str(declared["status"])]
        operation["responses"][str(status)] = {**success, "description": "Same body"}
    _attach_example(operation, recorded_examples().get(f"{verb.upper()} {path}", example))
    if not operation["description"]:
        del operation["description"]
    return operation


@cache
def recorded_examples() -> dict[str, dict]:
    """The examples of `openapi_examples.json`: operation (``"GET /api/cart"``) →
    ``{"request"?: body, "status"?: code, "response"?: body}``."""
    return json.loads(Path(__file__).with_name("openapi_examples.json").read_text("utf-8"))


def _attach_example(operation: dict, example: dict | None) -> None:
    """Show a recorded request and response body on `operation`, unless its decorators
    gave their own."""
    if not example:
        return
    request = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if request is not None and "request" in example:
        request.setdefault("example", example["request"])
    response = operation["responses"].get(str(example.get("status")), {})
    media = response.get("content", {}).get("application/json")
    if media is not None and "response" in example:
        media.setdefault("example", example["response"])


# --------------------------------------------------------------------------- spec

def _schema_namer():
    """A schema name resolver for one spec: ``ThingSchema`` → ``Thing``; a second class of
    the same name is qualified by its module (``handlers.support.Email`` → ``SupportEmail``)."""
    taken: dict[str, type] = {}

    def name_of(schema) -> str:
        cls = resolve_schema_cls(schema)
        name = cls.__name__.removesuffix("Schema") or cls.__name__
        if taken.setdefault(name, cls) is not cls:
            prefix = cls.__module__.rsplit(".", 1)[-1].title().replace("_", "")
            name = prefix + name
            taken.setdefault(name, cls)
        return name

    return name_of


def _new_spec() -> APISpec:
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin(schema_name_resolver=_schema_namer())],
                   info={"description": DESCRIPTION})
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("Error", schema=ErrorSchema)
    for name, description in ERROR_RESPONSES.values():
        spec.components.response(name, {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    return spec


def _tag_description(module_name: str) -> str:
    module = sys.modules.get(module_name)
    doc = inspect.getdoc(module) if module else None
    return (doc or "").split("\n\n")[0].replace("\n", " ")


def build_spec(routes: list[tuple[str, type]]) -> dict:
    """The OpenAPI 3.0 document (a dict) of `routes`, ``[(pattern, handler class), ...]``.

    Patterns that are not a single path (catch-alls) are left out. Raises ValueError on a
    pattern with unbalanced groups.
    """
    spec = _new_spec()
    tags: dict[str, str] = {}
    served = [(handler, *converted) for pattern, handler in routes
              if (converted := route_path(pattern, handler)) is not None]
    recorded, by_method = recorded_examples(), {}
    for handler, path, _ in served:      # a method served twice shows one recorded answer
        for verb in _defined_verbs(handler):
            if f"{verb.upper()} {path}" in recorded:
                by_method.setdefault(getattr(handler, verb), recorded[f"{verb.upper()} {path}"])
    for handler, path, path_params in served:
        operations = {verb: operation_for(handler, verb, path, path_params,
                                          by_method.get(getattr(handler, verb)))
                      for verb in _defined_verbs(handler)}
        if operations:
            spec.path(path=path, operations=operations)
            tags.setdefault(_tag(handler), _tag_description(handler.__module__))
    for name, description in sorted(tags.items()):
        spec.tag({"name": name, "description": description} if description else {"name": name})
    # Round trip: validator bounds and defaults may be Decimal, datetime, ObjectId…
    return rendering.closed(json.loads(json.dumps(spec.to_dict(), default=_json_value)))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def application_spec(application: tornado.web.Application) -> dict:
    """The spec of `application`, built on first use and kept in its settings."""
    spec = application.settings.get(SPEC_SETTING)
    if spec is None:
        spec = build_spec(application.settings.get(ROUTES_SETTING, []))
        application.settings[SPEC_SETTING] = spec
    return spec


# --------------------------------------------------------------------------- handlers

class OpenApiHandler(ApiHandler):
    rate_limit = None

    @public
    @responds(DocumentOut)
    async def get(self) -> None:
        """The OpenAPI 3.0 document of every route of this server (JSON)."""
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(json.dumps(application_spec(self.application), separators=(",", ":")))


routes = [
    (r"/openapi.json", OpenApiHandler),
]
