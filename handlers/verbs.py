"""The decorators that declare what a verb of an `ApiHandler` needs (docs/architecture.md §3).

Each one marks the verb; `ApiHandler.prepare` reads the marks to authenticate, authorize and
validate before the verb runs, and `handlers/openapi.py` reads the same marks to describe the
operation, so behaviour and spec come from one declaration:

- `@public`: no access token needed (`current_user` is still set when one is sent);
- `@staff(permission)`, `@roles(*names)`: who may call it (403 otherwise);
- `@body(schema)`, `@query(schema)`: the JSON body and the query string, validated (422);
- `@responds(schema, status, ...)`, `@multipart(...)`: what it answers and takes, for the spec.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema

from documents import users


def schema_instance(schema: type[Schema] | Schema) -> Schema:
    """`schema` itself, or an instance of it when it is a class."""
    return schema() if isinstance(schema, type) else schema


def public(method: Callable) -> Callable:
    """Opt a verb out of authentication; `self.current_user` is still set when a token is sent."""
    method._auth = "public"
    return method


def staff(permission: str | None = None) -> Callable:
    """Require a staff account (moderator, admin, superadmin) holding `permission` (seed `AdminUser`).

    Raises ValueError at import time when `permission` is not in the role table of
    `documents.users`, so that a misspelt permission cannot lock a route for everyone.
    """
    if permission is not None and permission not in users.ROLE_PERMISSIONS["superadmin"]:
        raise ValueError(f"unknown staff permission {permission!r}")

    def mark(method: Callable) -> Callable:
        method._auth = "staff"
        method._permission = permission
        return method

    return mark


def roles(*allowed: str) -> Callable:
    """Require a user whose roles (user_type or staff role) include one of `allowed`."""

    def mark(method: Callable) -> Callable:
        method._auth = "roles"
        method._roles = frozenset(allowed)
        return method

    return mark


def body(schema: type[Schema] | Schema, example: Any = None) -> Callable:
    """Validate the JSON body with `schema` before the verb runs; the result is `self.body`.
    `example`: a request body shown in the OpenAPI document."""

    def mark(method: Callable) -> Callable:
        method._body_schema, method._body_example = schema, example
        method._body_loader = schema_instance(schema)  # built once: loads keep no state on it
        return method

    return mark


def query(schema: type[Schema] | Schema) -> Callable:
    """Validate the query string with `schema` before the verb runs; the result is `self.query`."""

    def mark(method: Callable) -> Callable:
        method._query_schema = schema
        method._query_loader = schema_instance(schema)  # built once: loads keep no state on it
        return method

    return mark


def responds(schema: type[Schema] | Schema | None = None, status: int = 200,
             many: bool = False, paginated: bool = False, items: bool = False,
             alternates: tuple[int, ...] = (), example: Any = None, media: str | None = None,
             envelope: dict[str, Any] | None = None) -> Callable:
    """Declare the success response of a verb: the OpenAPI document shows it, and the body is
    rendered through it (`handlers.rendering`: only the fields `schema` declares are sent).

    The body is one `schema` object; with `many` a bare array of them; with `items`
    ``{"items": [...]}``; with `paginated` the envelope ``{items, total, page, limit, pages}``.
    `envelope`: more fields of an `items`/`paginated` envelope, ``{name: JSON schema}``
    (e.g. the facet counts beside a page of models), sent only when the verb sets them.
    `alternates`: other statuses answered with the same body (e.g. 503 of a readiness check).
    `example`: a whole response body (envelope included) shown in the OpenAPI document;
    `media`: the media type of a body that is not JSON (a string, e.g. ``text/html``)."""

    def mark(method: Callable) -> Callable:
        method._response = {"schema": schema, "status": status, "many": many,
                            "paginated": paginated, "items": items,
                            "alternates": alternates, "example": example, "media": media,
                            "envelope": envelope or {}}
        return method

    return mark


def multipart(**parts: str) -> Callable:
    """Document a multipart/form-data body for OpenAPI: part name → description."""

    def mark(method: Callable) -> Callable:
        method._multipart = parts
        return method

    return mark
