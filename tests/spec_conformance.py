"""Every HTTP answer the tests receive, checked against the server's own `/openapi.json`.

`SpecChecker(spec).problems(method, path, status, content_type, body)` finds the operation
(a literal path before a templated one, as the routes are ordered), then lists what does not
hold: the status is not among the operation's declared responses, or the JSON body does not
match the declared schema (OpenAPI 3.0 schema semantics, `$ref`s resolved in the spec).

`check(...)` runs it on every reply of the `api` fixture (`tests/conftest.py`) and of the
in-process instances' `call` (`tests/instances.py`), and fails the test on a problem. With
`SPEC_CONFORMANCE=record` it appends the problems to `$SPEC_CONFORMANCE_LOG` (default
`spec-conformance.log` in the temporary directory) instead of failing, to survey the whole
suite at once after a change to the spec.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from functools import cache
from urllib.parse import urlsplit

from openapi_schema_validator import OAS30Validator

RECORD = os.environ.get("SPEC_CONFORMANCE", "assert") == "record"
LOG = os.environ.get("SPEC_CONFORMANCE_LOG") or os.path.join(tempfile.gettempdir(),
                                                             "spec-conformance.log")


class SpecChecker:
    def __init__(self, spec: dict):
        self.spec = spec
        literal, templated = [], []
        for path, item in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
            (templated if "{" in path else literal).append((pattern, path, item))
        # fewer parameters first: /api/users/me/followers before /api/users/{id}/followers
        templated.sort(key=lambda entry: entry[1].count("{"))
        self.paths = literal + templated

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        for pattern, template, item in self.paths:
            if pattern.match(path) and method.lower() in item:
                return template, item[method.lower()]
        return None

    def problems(self, method: str, url: str, status: int, content_type: str,
                 body: bytes) -> list[str]:
        path = urlsplit(url).path
        if method in ("HEAD", "OPTIONS") or not (path.startswith("/api/") or path in (
                "/openapi.json", "/healthz", "/readyz")):
            return []
        found = self.operation(method, path)
        if found is None:
            return []  # an unknown route or method: the 404/405 of the error format
        template, operation = found
        name = f"{method} {template}"
        response = operation["responses"].get(str(status))
        if response is None:
            return [f"{name}: status {status} not declared "
                    f"(declared {sorted(operation['responses'])})"]
        if "$ref" in response:
            response = self.resolve(response["$ref"])
        schema = (response.get("content") or {}).get("application/json", {}).get("schema")
        if schema is None or not body or "json" not in content_type:
            return []
        errors = sorted(self.validator(json.dumps(schema, sort_keys=True)).iter_errors(
            json.loads(body)), key=lambda e: list(e.absolute_path))
        return [f"{name} {status}: {'/'.join(map(str, e.absolute_path)) or '(body)'}: "
                f"{e.message[:200]}" for e in errors[:5]]

    def resolve(self, ref: str) -> dict:
        node = self.spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    @cache  # noqa: B019 - one checker per spec, kept for the session
    def validator(self, schema_json: str) -> OAS30Validator:
        # the components ride along, so that "#/components/..." resolves inside the schema
        return OAS30Validator({"components": self.spec["components"],
                               "allOf": [json.loads(schema_json)]})


@cache
def checker() -> SpecChecker:
    """The checker of `/openapi.json` (the spec is the same for every server of the suite:
    it is built from the route table, as `/openapi.json` is)."""
    from handlers.app import collect_routes
    from handlers.openapi import build_spec

    return SpecChecker(build_spec(collect_routes()))


def check(method: str, url: str, status: int, content_type: str, body: bytes) -> None:
    """Fail (or record) when the answer does not match `/openapi.json`."""
    report(checker().problems(method, url, status, content_type, body))


def report(problems: list[str]) -> None:
    """Fail on `problems`, or (record mode) append them to the log."""
    if not problems:
        return
    if RECORD:
        with open(LOG, "a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in problems)
        return
    raise AssertionError("answer does not match /openapi.json:\n" + "\n".join(problems))
