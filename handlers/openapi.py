"""The OpenAPI document of the API (DESIGN §3, seed 002): `/openapi.json`, Swagger UI at
`/docs` and ReDoc at `/redoc`.

The document is generated from the route lists (`handlers.app.collect_routes`) and the
decorators of `handlers.base` on each verb: `@public`/`@staff`/`@roles` give the security,
`@body`/`@query`/`@multipart` the request, `@responds` the success response, and the
marshmallow schemas become components through apispec's MarshmallowPlugin. It is built
once per Application, on first request, and kept in the Application's settings.
"""
from __future__ import annotations

import inspect
import json
import re
import sys
from decimal import Decimal
from typing import Any

import tornado.web
import tornado.websocket
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import Schema, fields

from handlers.base import ApiHandler, public

TITLE = "HWC3D API"
VERSION = "1.0.0"
VERBS = ("get", "post", "put", "patch", "delete")
SPEC_SETTING = "openapi_spec"

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
    request_id = fields.String(metadata={"description": "Same as the X-Request-ID header"})


# status → (component name, description)
ERROR_RESPONSES = {
    400: ("BadRequest", "Malformed request (e.g. the body is not valid JSON)"),
    401: ("Unauthorized", "Missing, expired or revoked access token"),
    403: ("Forbidden", "Authenticated, but not allowed to do this"),
    404: ("NotFound", "No such resource (also any id that is not a valid ObjectId)"),
    413: ("PayloadTooLarge", "Upload larger than the limit"),
    422: ("ValidationError", "Input failed validation; see `field_errors`"),
    429: ("RateLimited", "Rate limit exceeded; see `retry_after` and `Retry-After`"),
}

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
    doc = inspect.getdoc(method) or ""
    summary, _, rest = doc.partition("\n")
    return summary.strip() or method.__name__.upper(), rest.strip()


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
    return [401]


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
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body_schema}}}
        errors += [400, 422]
    parts = getattr(method, "_multipart", None)
    if parts:
        operation["requestBody"] = _multipart_body(parts)
        errors += [400, 413, 422]
    return errors


def _success(method, handler: type) -> dict[str, dict]:
    if issubclass(handler, tornado.websocket.WebSocketHandler):
        return {"101": {"description": "Switching Protocols (WebSocket upgrade)"}}
    declared = getattr(method, "_response", None)
    if not declared:
        return {"200": {"description": "Success"}}
    schema = declared["schema"]
    status = str(declared["status"])
    if schema is None:
        return {status: {"description": "Success"}}
    if declared["paginated"]:
        body = {"type": "object", "required": ["items", "total", "page", "limit", "pages"],
                "properties": {"items": {"type": "array", "items": schema},
                               "total": {"type": "integer"}, "page": {"type": "integer"},
                               "limit": {"type": "integer"}, "pages": {"type": "integer"}}}
    elif declared["many"]:
        body = {"type": "array", "items": schema}
    else:
        body = schema
    return {status: {"description": "Success",
                     "content": {"application/json": {"schema": body}}}}


def operation_for(handler: type, verb: str, path: str, path_params: list[dict]) -> dict:
    """The OpenAPI Operation of `handler.<verb>` served at `path`."""
    method = getattr(handler, verb)
    summary, description = _docs(method)
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    operation: dict[str, Any] = {
        "operationId": f"{verb}_{slug}", "summary": summary, "description": description,
        "tags": [_tag(handler)], "parameters": [dict(p) for p in path_params],
    }
    errors = _security(method, operation) + _request(method, operation)
    if path_params:
        errors.append(404)
    if getattr(handler, "rate_limit", None) is not None:
        operation["x-rate-limit"] = handler.rate_limit
        errors.append(429)
    operation["responses"] = _success(method, handler)
    for status in sorted(set(errors)):
        operation["responses"][str(status)] = {
            "$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    if not operation["description"]:
        del operation["description"]
    return operation


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
    for pattern, handler in routes:
        converted = route_path(pattern, handler)
        if converted is None:
            continue
        path, path_params = converted
        operations = {verb: operation_for(handler, verb, path, path_params)
                      for verb in _defined_verbs(handler)}
        if operations:
            spec.path(path=path, operations=operations)
            tags.setdefault(_tag(handler), _tag_description(handler.__module__))
    for name, description in sorted(tags.items()):
        spec.tag({"name": name, "description": description} if description else {"name": name})
    # Round trip: validator bounds and defaults may be Decimal, datetime, ObjectId…
    return json.loads(json.dumps(spec.to_dict(), default=_json_value))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def application_spec(application: tornado.web.Application) -> dict:
    """The spec of `application`, built on first use and kept in its settings."""
    spec = application.settings.get(SPEC_SETTING)
    if spec is None:
        from handlers.app import collect_routes  # app imports this module

        spec = build_spec(collect_routes())
        application.settings[SPEC_SETTING] = spec
    return spec


# --------------------------------------------------------------------------- handlers

SWAGGER_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>HWC3D API - Swagger UI</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: true});
</script></body></html>
"""

REDOC_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>HWC3D API - ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head><body><redoc spec-url="/openapi.json"></redoc>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>
</body></html>
"""


class OpenApiHandler(ApiHandler):
    rate_limit = None

    @public
    async def get(self) -> None:
        """The OpenAPI 3.0 document of every route of this server (JSON)."""
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(json.dumps(application_spec(self.application), separators=(",", ":")))


class _HtmlPage(ApiHandler):
    rate_limit = None
    html = ""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "text/html; charset=UTF-8")

    @public
    async def get(self) -> None:
        """An HTML page that renders `/openapi.json` (scripts from the jsDelivr CDN)."""
        self.finish(self.html)


class SwaggerHandler(_HtmlPage):
    html = SWAGGER_HTML

    @public
    async def get(self) -> None:
        """Swagger UI for `/openapi.json` (HTML)."""
        await super().get()


class RedocHandler(_HtmlPage):
    html = REDOC_HTML

    @public
    async def get(self) -> None:
        """ReDoc for `/openapi.json` (HTML)."""
        await super().get()


routes = [
    (r"/openapi.json", OpenApiHandler),
    (r"/docs", SwaggerHandler),
    (r"/redoc", RedocHandler),
]
