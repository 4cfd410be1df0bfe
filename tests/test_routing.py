"""The route index answers every path as Tornado's rule-by-rule lookup does."""
from __future__ import annotations

import re

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import url

from handlers.routing import RouteIndex, path_head, pattern_head


def request_for(path: str) -> HTTPServerRequest:
    return HTTPServerRequest(start_line=RequestStartLine("GET", path, "HTTP/1.1"),
                             headers=HTTPHeaders({"Host": "localhost"}))


def linear(rules, path):
    request = request_for(path)
    for rule in rules:
        if rule.matcher.match(request) is not None:
            return rule
    return None


def indexed(index, path):
    request = request_for(path)
    for rule in index.candidates(request.path):
        if rule.matcher.match(request) is not None:
            return rule
    return None


def sample_paths(rules):
    """Paths made from every pattern (each group filled with a plausible segment), plus
    near misses and paths no route names."""
    paths = {"/", "/api", "/api/", "/api/nope", "/api/models", "/api/models/", "/ws",
             "/healthz", "/files/a/b.png", "/api/modelsx/1", "/apix/models", "/docs/static/x.js"}
    for rule in rules:
        pattern = rule.matcher.regex.pattern.rstrip("$")
        for filler in ("652000000000000000000039", "featured", "x"):
            path = re.sub(r"\([^)]*\)", filler, pattern).replace("\\", "").replace("?", "")
            paths.update({path, path + "/extra", path.rstrip("/") + "x"})
    return sorted(paths)


def test_the_index_finds_the_same_route_as_a_linear_scan(app):
    rules = app.wildcard_router.rules
    index = RouteIndex(rules)
    paths = sample_paths(rules)
    assert len(paths) > 500
    for path in paths:
        assert indexed(index, path) is linear(rules, path), path


@pytest.mark.gen_test
async def test_routes_late_in_the_table_and_unknown_paths_answer(api):
    assert (await api("GET", "/api/models/652000000000000000000039")).status == 200
    missing = await api("GET", "/api/models/652000000000000000000039/nothing-here")
    assert missing.status == 404 and missing.json["error_code"] == "NOT_FOUND"
    assert (await api("GET", "/nowhere/at/all")).status == 404


def test_heads_of_paths_and_patterns():
    assert path_head("/api/models/1") == ("api", "models") and path_head("/healthz") is None
    index = RouteIndex([])
    assert index.candidates("/api/models") == []
    assert pattern_head(url(r"/api/models/([^/]+)", object)) == ("api", "models")
    assert pattern_head(url(r"/api/models", object)) == ("api", "models")
    assert pattern_head(url(r"/api/model(s)?", object)) is None
    assert pattern_head(url(r"/healthz", object)) is None
