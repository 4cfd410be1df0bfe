"""The OpenAPI document: valid OpenAPI 3, every route of the app in it,
each verb's auth, body, query and responses taken from its decorators; /docs and /redoc."""
import re

import pytest
from marshmallow import fields
from openapi_spec_validator import validate

from handlers.app import collect_routes
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    multipart,
    public,
    query,
    responds,
    roles,
    staff,
)
from handlers.openapi import SPEC_SETTING, build_spec, pattern_to_path, route_path


def _verbs(handler):
    import tornado.web

    return [v for v in ("get", "post", "put", "patch", "delete")
            if getattr(handler, v) is not getattr(tornado.web.RequestHandler, v)]


# ----------------------------------------------------------------- a route list to document

class ThingIn(ApiSchema):
    title = fields.String(required=True)
    price = fields.Decimal(as_string=False, places=2)


class ThingOut(ApiSchema):
    id = fields.String()
    title = fields.String()


class ThingQuery(PageQuery):
    category = fields.String()


class ThingsHandler(ApiHandler):
    @public
    @query(ThingQuery)
    @responds(ThingOut, paginated=True)
    async def get(self):
        """List things.

        Approved things only.
        """

    @roles("creator")
    @multipart(file="The 3D file", title="Title of the thing")
    @responds(ThingOut, status=201)
    async def post(self):
        """Upload a thing."""


class ThingHandler(ApiHandler):
    rate_limit = "upload"

    @staff("models.moderate")
    @body(ThingIn)
    @responds(ThingOut)
    async def put(self, thing_id):
        """Change a thing."""

    @responds(None, status=204)
    async def delete(self, thing_id):
        """Delete a thing (with its files, e.g. v1.2
        previews). 409 THING_IN_USE while an order holds it; 202 when it is queued."""


SAMPLE_ROUTES = [(r"/api/things", ThingsHandler), (r"/api/things/(?P<thing_id>[^/]+)", ThingHandler)]


def test_decorators_shape_each_operation():
    spec = build_spec(SAMPLE_ROUTES)
    validate(spec)
    listing = spec["paths"]["/api/things"]["get"]
    assert listing["summary"] == "List things." and listing["description"] == "Approved things only."
    assert "security" not in listing
    assert {p["name"] for p in listing["parameters"]} == {"page", "limit", "category"}
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/ThingOut"}
    assert set(listing["responses"]) == {"200", "422", "429"}

    upload = spec["paths"]["/api/things"]["post"]
    assert upload["security"] == [{"bearerAuth": []}] and upload["x-roles"] == ["creator"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert form["file"]["format"] == "binary" and form["title"]["type"] == "string"
    assert {"201", "401", "403", "413"} <= set(upload["responses"])

    change = spec["paths"]["/api/things/{thing_id}"]["put"]
    assert change["x-permission"] == "models.moderate" and "Staff only" in change["description"]
    assert change["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ThingIn"}
    assert change["parameters"] == [{"in": "path", "name": "thing_id", "required": True,
                                     "schema": {"type": "string"}}]
    assert set(change["responses"]) == {"200", "400", "401", "403", "404", "413", "415", "422", "429"}
    assert change["responses"]["429"] == {"$ref": "#/components/responses/RateLimited"}
    assert spec["components"]["schemas"]["ThingIn"]["required"] == ["title"]

    delete = spec["paths"]["/api/things/{thing_id}"]["delete"]
    assert delete["responses"]["204"] == {"description": "Success"}
    assert delete["responses"]["202"] == {"description": "Success"}
    # 401/403 (any token), 404 (path), 429 (limits) and the statuses its docstring names
    assert set(delete["responses"]) == {"202", "204", "401", "403", "404", "409", "429"}
    assert delete["summary"] == "Delete a thing (with its files, e.g. v1.2 previews)."
    assert delete["description"].startswith("409 THING_IN_USE")
    error = spec["components"]["schemas"]["Error"]
    assert {"detail", "error_code", "field_errors", "retry_after", "statusCode", "message",
            "error"} <= set(error["properties"])


@pytest.mark.parametrize("pattern, path", [
    (r"/api/models/(?P<model_id>[^/]+)", "/api/models/{model_id}"),
    (r"/api/models/(?P<model_id>[0-9a-f]{24})/like/?$", "/api/models/{model_id}/like"),
    (r"^/api/a/([^/]+)/b/(?P<b_id>\w+)$", "/api/a/{arg1}/b/{b_id}"),
    (r"/openapi\.json", "/openapi.json"),
    (r"/api/models/(?!featured$|upload$)([^/]+)", "/api/models/{arg1}"),
    (r"/api/.*", None),
    (r"/api/(?:a|b)", None),
])
def test_route_patterns_become_openapi_paths(pattern, path):
    converted = pattern_to_path(pattern)
    assert (converted[0] if converted else None) == path


def test_unnamed_groups_take_the_verb_argument_names():
    class Model(ApiHandler):
        async def get(self, model_id, version):
            """One version."""

    assert route_path(r"/api/models/(?!featured$)([^/]+)/v/(\d+)", Model)[0] == \
        "/api/models/{model_id}/v/{version}"


def test_path_alternatives_become_an_enum():
    _, params = pattern_to_path(r"/api/auth/oauth/(?P<provider>google|github|discord)")
    assert params[0]["schema"]["enum"] == ["google", "github", "discord"]


# ----------------------------------------------------------------- the served document

@pytest.mark.gen_test
async def test_openapi_json_is_valid_openapi_3(api):
    reply = await api("GET", "/openapi.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    spec = reply.json
    assert spec["openapi"].startswith("3.")
    validate(spec)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.gen_test
async def test_every_route_of_the_app_is_in_the_spec(api):
    spec = (await api("GET", "/openapi.json")).json
    missing = []
    for pattern, handler in collect_routes():
        converted = route_path(pattern, handler)
        assert converted is not None, f"route {pattern} cannot be written as an OpenAPI path"
        operations = spec["paths"].get(converted[0], {})
        missing += [f"{verb.upper()} {pattern}" for verb in _verbs(handler) if verb not in operations]
    assert not missing
    assert {"/openapi.json", "/docs", "/redoc", "/healthz"} <= set(spec["paths"])


@pytest.mark.gen_test
async def test_each_json_body_verb_carries_its_schema(api):
    spec = (await api("GET", "/openapi.json")).json
    schemas = spec["components"]["schemas"]
    for pattern, handler in collect_routes():
        path = route_path(pattern, handler)[0]
        for verb in _verbs(handler):
            method = getattr(handler, verb)
            operation = spec["paths"][path][verb]
            if getattr(method, "_auth", None) == "public":
                assert "security" not in operation, f"{verb} {pattern}"
            else:
                assert operation["security"] == [{"bearerAuth": []}], f"{verb} {pattern}"
            declared = getattr(method, "_body_schema", None)
            if declared is None:
                continue
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            component = schemas[ref.rsplit("/", 1)[1]]
            instance = declared() if isinstance(declared, type) else declared
            names = {f.data_key or name for name, f in instance.load_fields.items()}
            assert names <= set(component.get("properties", {})), f"{verb} {pattern}"


@pytest.mark.gen_test
async def test_spec_is_built_once_per_application(api, app):
    first = await api("GET", "/openapi.json")
    assert app.settings[SPEC_SETTING]["openapi"].startswith("3.")
    kept = app.settings[SPEC_SETTING]
    second = await api("GET", "/openapi.json")
    assert app.settings[SPEC_SETTING] is kept and first.body == second.body


@pytest.mark.gen_test
@pytest.mark.parametrize("path, marker", [("/docs", "swagger-ui"), ("/redoc", "<redoc")])
async def test_docs_pages_serve_html(api, path, marker):
    reply = await api("GET", path)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    text = reply.body.decode()
    assert marker in text and "/openapi.json" in text


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_load_assets_from_this_server_and_answer_head(api, path):
    page = await api("GET", path)
    head = await api("HEAD", path)
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Type"].startswith("text/html")
    assert int(head.headers["Content-Length"]) == len(page.body)
    html = page.body.decode()
    assert "http://" not in html and "https://" not in html  # nothing from another host
    assets = re.findall(r'(?:src|href)="(/docs/static/[^"]+)"', html)
    assert assets
    for asset in assets:
        reply = await api("GET", asset)
        assert reply.status == 200 and len(reply.body) > 100, asset
        kind = "text/css" if asset.split("?")[0].endswith(".css") else "javascript"
        assert kind in reply.headers["Content-Type"], asset
        head = await api("HEAD", asset)
        assert head.status == 200 and head.body == b""
    assert (await api("GET", "/docs/static/../server.py")).status in (403, 404)
    assert (await api("GET", "/docs/static/swagger-ui/nope.js")).status == 404


# ----------------------------------------------------------------- bodies and examples

# The operations of the API reference (seed 000), as paths of this server.
SEED_000_OPERATIONS = (
    "POST /api/auth/register",
    "POST /api/auth/login",
    "POST /api/auth/admin/login",
    "POST /api/auth/forgot-password",
    "POST /api/auth/reset-password",
    "POST /api/auth/verify-email",
    "POST /api/auth/oauth/{provider}",
    "POST /api/auth/refresh",
    "GET /api/users/me",
    "PUT /api/users/me",
    "GET /api/users/{user_id_or_username}",
    "POST /api/users/{user_id_or_username}/follow",
    "DELETE /api/users/{user_id_or_username}/follow",
    "GET /api/users/{user_id_or_username}/followers",
    "GET /api/users/{user_id_or_username}/following",
    "POST /api/models",
    "GET /api/models",
    "GET /api/models/{model_id}",
    "PUT /api/models/{model_id}",
    "DELETE /api/models/{model_id}",
    "POST /api/models/{model_id}/like",
    "DELETE /api/models/{model_id}/like",
    "POST /api/models/{model_id}/comments",
    "GET /api/models/{model_id}/comments",
    "POST /api/models/{model_id}/view",
    "POST /api/cart",
    "GET /api/cart",
    "DELETE /api/cart/{model_id}",
    "POST /api/checkout",
    "GET /api/purchases",
    "GET /api/purchases/{model_id}/download",
    "POST /api/transactions/{transaction_id}/refund",
    "GET /api/communities",
    "POST /api/communities",
    "GET /api/communities/{community_id}",
    "PUT /api/communities/{community_id}",
    "DELETE /api/communities/{community_id}",
    "POST /api/communities/{community_id}/join",
    "DELETE /api/communities/{community_id}/leave",
    "GET /api/communities/{community_id}/members",
    "POST /api/communities/{community_id}/posts",
    "GET /api/communities/{community_id}/posts",
    "PUT /api/posts/{post_id}",
    "DELETE /api/posts/{post_id}",
    "POST /api/posts/{post_id}/react",
    "DELETE /api/posts/{post_id}/react",
    "POST /api/posts/{post_id}/comments",
    "GET /api/posts/{post_id}/comments",
    "POST /api/posts/{post_id}/share",
    "POST /api/posts/{post_id}/report",
    "POST /api/support/tickets",
    "GET /api/support/tickets",
    "GET /api/support/tickets/{ticket_id}",
    "POST /api/support/tickets/{ticket_id}/messages",
    "PUT /api/support/tickets/{ticket_id}/status",
    "PUT /api/support/tickets/{ticket_id}/assign",
    "GET /api/admin/stats",
    "GET /api/admin/users",
    "PUT /api/admin/users/{user_id_or_username}",
    "GET /api/admin/models",
    "PUT /api/admin/models/{model_id}/approve",
    "PUT /api/admin/models/{model_id}/reject",
    "GET /api/admin/communities",
    "PUT /api/admin/communities/{community_id}/approve",
    "DELETE /api/admin/communities/{community_id}",
    "GET /api/admin/reports",
    "PUT /api/admin/reports/{report_id}/resolve",
    "GET /api/admin/transactions",
    "GET /api/admin/analytics",
    "POST /api/admin/announcements",
    "POST /api/upload/model",
    "POST /api/upload/image",
    "POST /api/upload/avatar",
    "DELETE /api/upload/{file_id}",
    "GET /api/analytics/dashboard",
    "GET /api/analytics/models/{model_id}",
    "GET /api/leaderboard",
    "GET /api/bounties",
    "POST /api/bounties",
    "GET /api/bounties/{bounty_id}",
    "POST /api/bounties/{bounty_id}/apply",
    "PUT /api/bounties/{bounty_id}/select-winner",
    "GET /api/courses",
    "GET /api/courses/{course_id}",
    "POST /api/courses/{course_id}/enroll",
)


def _operations(spec):
    for path, item in spec["paths"].items():
        for verb, operation in item.items():
            if verb in ("get", "post", "put", "patch", "delete"):
                yield f"{verb.upper()} {path}", operation


def _example_problems(spec, name, media):
    from openapi_schema_validator import OAS30Validator

    validator = OAS30Validator({"components": spec["components"], "allOf": [media["schema"]]})
    return [f"{name}: {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:160]}"
            for e in validator.iter_errors(media["example"])]


def test_every_operation_answering_json_documents_its_body():
    spec = build_spec(collect_routes())
    undocumented = []
    for name, operation in _operations(spec):
        if name.split(" ", 1)[1].startswith("/ws/"):
            continue
        success = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        if set(success) == {"204"} or not success and "302" in operation["responses"]:
            continue
        if not any("content" in response for response in success.values()):
            undocumented.append(name)
    assert undocumented == []


def test_every_operation_answering_json_shows_an_example_answer():
    spec = build_spec(collect_routes())
    bare = [f"{name} {status}" for name, operation in _operations(spec)
            if name != "GET /openapi.json"          # the document itself
            for status, response in operation["responses"].items()
            if status.startswith("2")
            and "example" not in response.get("content", {}).get("application/json", {"example": 0})]
    assert bare == []


def test_reference_operations_carry_examples_that_match_their_schemas():
    spec = build_spec(collect_routes())
    operations = dict(_operations(spec))
    missing, invalid = [], []
    for name in SEED_000_OPERATIONS:
        operation = operations[name]
        media = [(f"{name} request", body) for body in
                 [operation.get("requestBody", {}).get("content", {}).get("application/json")]
                 if body]
        media += [(f"{name} {status}", response["content"]["application/json"])
                  for status, response in operation["responses"].items()
                  if status.startswith("2") and "content" in response]
        missing += [label for label, item in media if "example" not in item]
        if not media and set(operation["responses"]) & {"200", "201", "202"}:
            missing.append(f"{name}: no JSON body documented")
        for label, item in media:
            if "example" in item:
                invalid += _example_problems(spec, label, item)
    assert missing == []
    assert invalid == []


def test_examples_of_every_operation_match_their_schemas():
    spec = build_spec(collect_routes())
    invalid = []
    for name, operation in _operations(spec):
        media = list(operation.get("requestBody", {}).get("content", {}).values())
        media += [r.get("content", {}).get("application/json", {})
                  for r in operation["responses"].values()]
        for item in media:
            if "example" in item:
                invalid += _example_problems(spec, name, item)
    assert invalid == []
