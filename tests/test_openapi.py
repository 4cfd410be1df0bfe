"""The OpenAPI document (issue 2 item 10): valid OpenAPI 3, every route of the app in it,
each verb's auth, body, query and responses taken from its decorators; /docs and /redoc."""
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
        """Delete a thing."""


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
    assert set(change["responses"]) == {"200", "400", "401", "403", "404", "422", "429"}
    assert change["responses"]["429"] == {"$ref": "#/components/responses/RateLimited"}
    assert spec["components"]["schemas"]["ThingIn"]["required"] == ["title"]

    delete = spec["paths"]["/api/things/{thing_id}"]["delete"]
    assert delete["responses"]["204"] == {"description": "Success"}
    assert set(delete["responses"]) == {"204", "401", "404", "429"}
    error = spec["components"]["schemas"]["Error"]
    assert {"detail", "error_code", "field_errors", "retry_after"} <= set(error["properties"])


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
