"""Success bodies are rendered through their `@responds` schema (docs/api-contract.md §2):
the client gets the fields `/openapi.json` declares and no other, at every level."""
from __future__ import annotations

import pytest
from bson import ObjectId
from marshmallow import Schema, fields

from handlers.rendering import closed, render


class CardOut(Schema):
    id = fields.String()
    name = fields.String()


class NodeOut(Schema):
    id = fields.String()
    owner = fields.Nested(CardOut, allow_none=True)
    cards = fields.List(fields.Nested(CardOut))
    replies = fields.List(fields.Nested(lambda: NodeOut()))
    meta = fields.Dict()
    next_page = fields.String(data_key="nextPage")


NODE = {"id": "1", "secret": "s", "owner": {"id": "u", "name": "Ann", "email": "a@x"},
        "cards": [{"id": "c", "name": "C", "key": "k"}], "meta": {"free": {"form": 1}},
        "nextPage": "p2", "next_page": "dropped",
        "replies": [{"id": "2", "secret": "t", "replies": [{"id": "3", "secret": "u"}]}]}
RENDERED = {"id": "1", "owner": {"id": "u", "name": "Ann"}, "cards": [{"id": "c", "name": "C"}],
            "meta": {"free": {"form": 1}}, "nextPage": "p2",
            "replies": [{"id": "2", "replies": [{"id": "3"}]}]}


def test_an_object_keeps_its_declared_fields_at_every_level():
    assert render({"schema": NodeOut}, NODE) == RENDERED
    assert render({"schema": NodeOut}, {"id": "1", "owner": None}) == {"id": "1", "owner": None}


def test_arrays_and_envelopes_are_rendered_item_by_item():
    assert render({"schema": CardOut, "many": True}, [NODE["owner"]]) == [{"id": "u", "name": "Ann"}]
    page = {"items": [NODE], "total": 1, "page": 1, "limit": 20, "pages": 1, "debug": True,
            "facets": {"category": []}}
    declared = {"schema": NodeOut, "paginated": True, "envelope": {"facets": {"type": "object"}}}
    assert render(declared, page) == {"items": [RENDERED], "total": 1, "page": 1, "limit": 20,
                                      "pages": 1, "facets": {"category": []}}
    assert render({"schema": NodeOut, "items": True}, {"items": [NODE], "total": 1}) == {
        "items": [RENDERED]}


def test_a_verb_without_a_schema_sends_its_body_unchanged():
    assert render({"schema": None}, {"anything": 1}) == {"anything": 1}


def test_the_published_schemas_are_closed_except_free_form_objects():
    spec = closed({"a": {"type": "object", "properties": {"x": {}}},
                   "b": {"type": "object", "additionalProperties": {"type": "string"}},
                   "c": [{"properties": {}}]})
    assert spec["a"]["additionalProperties"] is False
    assert spec["b"]["additionalProperties"] == {"type": "string"}
    assert spec["c"][0]["additionalProperties"] is False


@pytest.mark.gen_test
async def test_a_stored_field_the_schema_does_not_declare_never_reaches_a_client(api, services):
    listed = (await api("GET", "/api/models?limit=1")).json["items"][0]
    await services.db.models.update_one({"_id": ObjectId(listed["id"])}, {"$set": {
        "moderator_note": "internal", "legacy_score": 7}})
    for path in (f"/api/models/{listed['id']}", "/api/models?limit=1"):
        reply = await api("GET", path)
        assert reply.status == 200, reply.body
        item = reply.json if "items" not in reply.json else reply.json["items"][0]
        assert item["id"] == listed["id"] and item["title"] == listed["title"]
        assert "moderator_note" not in item and "legacy_score" not in item
        assert item["creator"]["username"] and "email" not in item["creator"]
