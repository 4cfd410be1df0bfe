"""The embedded store and a MongoDB wire server answer every list, filter, sort and search
route alike (DESIGN §1: mongomock in development, MongoDB in production).

Two instances run side by side — one on the in-memory store, one on a fresh database of the
session's SecantusDB daemon (a MongoDB wire-protocol server) — both seeded from `fixtures/`.
The same requests create the same extra documents on both (a collection, likes, comments, a
follow, a bounty, a blog post, a course, a support ticket), then every GET route of
`/openapi.json` that lists (it takes `page`, `sort`, `search` or `q`) is called on both with
its plain form, a second page, every value of each enum parameter and a sample of each other
filter, as anonymous, buyer, creator or admin as the route allows. Each pair of responses
must be equal: same status, same body. Documents created during the test have different ids
and timestamps on the two stores; those are mapped (ids: from the creating responses, and
position by position for documents written as side effects, such as notifications, each
wire id standing for one embedded id throughout) or
masked (timestamps after the test began), and the `request_id` of error bodies (each
response's own) is left out before comparing — nothing else is.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from conftest import test_settings as settings_for
from demo_accounts import ADMIN, BUYER, BUYER_ID, CREATOR, CREATOR_ID, ROBOT
from instances import start_instance, stop_instance

from documents import sessions, users

pytestmark = pytest.mark.store

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")
LIST_PARAMS = {"page", "sort", "search", "q"}

COMMUNITY = "653000000000000000000001"
COMMUNITY_POST = "655000000000000000000001"

# Sample values of the filters that are neither enums nor booleans, by parameter name.
SAMPLES = {
    "search": ["robot", "a"], "q": ["robot", "creator"], "category": ["Characters"],
    "tags": ["robot"], "tag": ["news"], "min_price": ["5"], "max_price": ["20"],
    "price_range": ["0-15"], "min_poly_count": ["1000"], "max_poly_count": ["20000"],
    "poly_count_range": ["100-5000"], "creator": [CREATOR_ID, "creator"], "assignee": ["me"],
    "user_id": [CREATOR_ID], "seller_id": [CREATOR_ID], "buyer_id": [BUYER_ID],
    "model_id": [ROBOT], "country": ["US"], "skills": ["blender"], "min_member_count": ["1"],
    "max_member_count": ["10"], "member_count_range": ["0-5"], "community_id": [COMMUNITY],
    "to": [BUYER], "min_budget": ["10"], "max_budget": ["500"],
    "creator_id": [BUYER_ID],
}


SIGNED_LINK = "<signed download link>"

class Pair:
    """The two instances, their tokens per account, and the id map wire → embedded."""

    def __init__(self, embedded, wire):
        self.embedded, self.wire = embedded, wire
        self.tokens: dict[str, tuple[str, str]] = {}
        self.ids: dict[str, str] = {}
        self.conflicts: list[str] = []
        self.started = datetime.now(UTC).isoformat()

    async def sign_in(self, name: str, email: str) -> None:
        pair = []
        for instance in (self.embedded, self.wire):
            user = await users.get_by_email(instance.services.db, email)
            tokens = await sessions.start_session(instance.services.db,
                                                  instance.services.settings, user)
            pair.append(tokens["access_token"])
        self.tokens[name] = tuple(pair)

    async def both(self, method: str, path: str, who: str | None = None, body=None):
        """The same request on both; returns ((status, body) embedded, (status, body) wire)."""
        path_wire = self.to_wire(path)
        token_e, token_w = self.tokens[who] if who else (None, None)
        return (await self.embedded.call(method, path, token_e, body),
                await self.wire.call(method, path_wire, token_w, self.to_wire(body)))

    async def create(self, method: str, path: str, who: str, body=None) -> dict:
        """A write on both that must succeed; learns the ids it created. Returns the
        embedded store's body."""
        (status_e, body_e), (status_w, body_w) = await self.both(method, path, who, body)
        assert 200 <= status_e < 300 and status_e == status_w, (path, status_e, body_e,
                                                                status_w, body_w)
        self.learn(body_e, body_w)
        return body_e

    def learn(self, a, b) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in a.keys() & b.keys():
                self.learn(a[key], b[key])
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for x, y in zip(a, b, strict=True):
                self.learn(x, y)
        elif isinstance(a, str) and isinstance(b, str) and a != b and OBJECT_ID.match(a) \
                and OBJECT_ID.match(b):
            if self.ids.get(b, a) != a:
                self.conflicts.append(f"wire id {b} stands for both {self.ids[b]} and {a}")
            self.ids.setdefault(b, a)

    def to_wire(self, value):
        """`value` (a path or a body) with embedded ids replaced by the wire store's."""
        back = {v: k for k, v in self.ids.items()}
        if isinstance(value, str):
            return re.sub(r"[0-9a-f]{24}", lambda m: back.get(m.group(0), m.group(0)), value)
        if isinstance(value, dict | list):
            return json.loads(self.to_wire(json.dumps(value)))
        return value

    def normalize(self, value, wire: bool):
        """Ids of the wire store mapped to the embedded store's; fresh timestamps masked;
        signed download links (a fresh token per answer) masked."""
        if isinstance(value, dict):  # request_id: each response's own
            return {k: SIGNED_LINK if k == "download_url" and isinstance(v, str)
                    else self.normalize(v, wire) for k, v in value.items() if k != "request_id"}
        if isinstance(value, list):
            return [self.normalize(v, wire) for v in value]
        if isinstance(value, str):
            if wire and value in self.ids:
                return self.ids[value]
            if TIMESTAMP.match(value) and value >= self.started[:19]:
                return "<during the test>"
        return value


@pytest.fixture
def pair(io_loop, tmp_path, wire_store):
    name = f"parity_{uuid.uuid4().hex[:12]}"
    embedded_settings = settings_for(tmp_path / "embedded", mongodb_url=None, mongodb_db="hwc3d")
    wire_settings = settings_for(tmp_path / "wire", mongodb_url=wire_store.url, mongodb_db=name)
    assert embedded_settings.embedded_store and not wire_settings.embedded_store

    async def start():
        return Pair(await start_instance(embedded_settings), await start_instance(wire_settings))

    both = io_loop.run_sync(start, timeout=120)
    yield both
    io_loop.run_sync(lambda: stop_instance(both.embedded), timeout=30)
    io_loop.run_sync(lambda: stop_instance(both.wire), timeout=30)
    wire_store.drop(name)


async def create_documents(pair: Pair) -> dict[str, str]:
    """The same writes on both stores; returns the embedded ids of what the lists need."""
    for name, email in (("buyer", BUYER), ("creator", CREATOR),
                        ("admin", ADMIN)):
        await pair.sign_in(name, email)
    made = {}
    collection = await pair.create("POST", "/api/collections", "creator",
                                   {"name": "Robots and friends", "is_public": True})
    made["collection_id"] = collection["id"]
    for position, model in enumerate((ROBOT, "652000000000000000000002",
                                      "652000000000000000000003")):
        await pair.create("POST", f"/api/collections/{collection['id']}/add-model", "creator",
                          {"model_id": model, "position": position})
    for model in (ROBOT, "652000000000000000000004"):
        await pair.create("POST", f"/api/models/{model}/like", "buyer")
    first = await pair.create("POST", f"/api/models/{ROBOT}/comments", "buyer",
                              {"content": "Lovely topology"})
    await pair.create("POST", f"/api/models/{ROBOT}/comments", "creator",
                      {"content": "Thank you!", "parent_id": first["id"]})
    await pair.create("POST", f"/api/users/{CREATOR_ID}/follow", "buyer")
    await pair.create("POST", "/api/bounties", "buyer", {
        "title": "A rigged robot arm", "description": "Six axes, game-ready, under 5k tris.",
        "budget": 120, "deadline": (datetime.now(UTC) + timedelta(days=100)).strftime("%Y-%m-%d"),
        "category": "Characters", "tags": ["robot", "rigged"]})
    post = await pair.create("POST", "/api/admin/blog/posts", "admin", {
        "title": "Robots of the month", "content": "Our favourite robots this month.",
        "category": "showcase", "tags": ["robot"], "status": "published"})
    made["blog_post_id"] = post["id"]
    await pair.create("POST", f"/api/blog/posts/{post['id']}/comments", "buyer",
                      {"content": "Great picks"})
    await pair.create("POST", "/api/admin/courses", "admin", {
        "title": "Rigging robots", "description": "From bones to poses.", "difficulty":
        "beginner", "category": "Characters", "is_free": True, "is_published": True,
        "instructor_id": CREATOR_ID, "duration": 90, "tags": ["rigging"]})
    await pair.create("POST", "/api/support/tickets", "buyer", {
        "subject": "Download link", "category": "Technical", "message": "The link expired."})
    await pair.create("POST", f"/api/posts/{COMMUNITY_POST}/comments", "creator",
                      {"content": "Nice post"})
    return made


def path_values(made: dict[str, str]) -> dict[str, str]:
    return {"model_id": ROBOT, "user_id_or_username": "creator", "ref": "creator",
            "community_id": COMMUNITY, "post_id": COMMUNITY_POST, **made}


def list_routes(spec: dict) -> list[tuple[str, dict]]:
    """(path template, GET operation) of every listing route of the OpenAPI document."""
    routes = []
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        names = {p["name"] for p in (get or {}).get("parameters", ()) if p["in"] == "query"}
        if get and names & LIST_PARAMS:
            routes.append((path, get))
    return routes


def queries(operation: dict) -> list[dict]:
    """The plain request, a second page, and each filter value on its own."""
    found = [{}]
    for param in operation.get("parameters", ()):
        if param["in"] != "query":
            continue
        name, schema = param["name"], param.get("schema", {})
        if name == "page":
            found.append({"page": 2, "limit": 2})
        elif "enum" in schema:
            found += [{name: value} for value in schema["enum"]]
        elif schema.get("type") == "boolean":
            found += [{name: "true"}, {name: "false"}]
        elif name in SAMPLES:
            found += [{name: value} for value in SAMPLES[name]]
        elif name != "limit":
            raise AssertionError(f"no sample value for the query parameter {name!r}: "
                                 "add one to SAMPLES")
    return found


def callers(path: str, operation: dict) -> list[str | None]:
    if path.startswith("/api/admin/"):
        return ["admin"]
    if operation.get("security"):
        return ["buyer", "creator", "admin"]
    return [None, "creator", "admin"]


@pytest.mark.gen_test(timeout=600)
async def test_both_stores_answer_every_list_filter_sort_and_search_alike(pair):
    made = await create_documents(pair)
    status, spec = await pair.embedded.call("GET", "/openapi.json")
    assert status == 200
    values = path_values(made)
    differences, compared = [], 0
    routes = list_routes(spec)
    assert len(routes) >= 40, [p for p, _ in routes]
    for template, operation in routes:
        missing = set(re.findall(r"{(\w+)}", template)) - values.keys()
        assert not missing, f"{template}: no fixture id for {missing}: add it to path_values"
        path = re.sub(r"{(\w+)}", lambda m: values[m.group(1)], template.replace(
            "/blog/posts/{post_id}", "/blog/posts/{blog_post_id}"))
        for query in queries(operation):
            url = f"{path}?{urlencode(query)}" if query else path
            for who in callers(template, operation):
                (status_e, body_e), (status_w, body_w) = await pair.both("GET", url, who)
                compared += 1
                pair.learn(body_e, body_w)  # ids of documents written as side effects
                if (status_e, pair.normalize(body_e, False)) != (status_w,
                                                                 pair.normalize(body_w, True)):
                    differences.append((url, who, status_e, body_e, status_w, body_w))
    shown = "\n\n".join(f"GET {url} as {who or 'anonymous'}:\n  embedded {se}: "
                        f"{json.dumps(be)[:600]}\n  wire     {sw}: {json.dumps(bw)[:600]}"
                        for url, who, se, be, sw, bw in differences[:10])
    assert not differences, f"{len(differences)} of {compared} responses differ:\n{shown}"
    assert not pair.conflicts, pair.conflicts[:10]
    assert compared > 300, compared
