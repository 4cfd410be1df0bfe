"""`/asyncapi.json`: a valid AsyncAPI 3.0 document of the three hubs, and true of them.

Validated against the AsyncAPI Initiative's JSON Schema of AsyncAPI 3.0.0 (vendored in
`tests/asyncapi/`), then checked against the running hubs: the frames a real socket receives
match the documented payloads, documented client frames are accepted, and a refused socket
closes with a documented close code.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest
from demo_accounts import BUYER
from tornado.websocket import websocket_connect

SCHEMA = json.loads((Path(__file__).parent / "asyncapi" / "asyncapi-3.0.0.schema.json")
                    .read_text())


async def frame(conn, timeout: float = 10) -> dict:
    message = await asyncio.wait_for(conn.read_message(), timeout)
    assert message is not None, "socket closed"
    return json.loads(message)


def payload(doc: dict, message: str) -> dict:
    return doc["components"]["messages"][message]["payload"]


@pytest.mark.gen_test
async def test_document_is_valid_asyncapi_3(api):
    reply = await api("GET", "/asyncapi.json")
    assert reply.status == 200
    doc = reply.json
    errors = [e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(doc)]
    assert errors == []
    assert doc["asyncapi"] == "3.0.0"
    assert {c["address"] for c in doc["channels"].values()} == {
        "/ws/support/{ticket_id}", "/ws/community/{community_id}", "/ws/notifications"}
    assert {"4401", "4403", "4404", "4008", "1001"} <= set(doc["x-close-codes"])
    support = doc["channels"]["support"]["messages"]
    assert {"message_received", "typing_indicator", "ticket_status_changed", "presence_joined",
            "client_message", "client_typing", "client_read", "client_ping"} <= set(support)
    notifications = doc["channels"]["notifications"]["messages"]
    assert {"new_follower", "model_liked", "announcement", "client_read"} <= set(notifications)
    assert "client_message" not in notifications and "client_typing" not in notifications
    assert "since" in doc["channels"]["community"]["bindings"]["ws"]["query"]["properties"]
    # a client frame's payload is the schema the hub validates it with (unknown fields refused)
    assert payload(doc, "client_message")["additionalProperties"] is False
    assert set(payload(doc, "client_message")["required"]) == {"type", "content"}


@pytest.mark.gen_test
async def test_real_frames_match_the_document(api, tokens, base_url):
    doc = (await api("GET", "/asyncapi.json")).json
    ws = base_url.replace("http", "ws", 1)
    conn = await websocket_connect(f"{ws}/ws/notifications?token={await tokens(BUYER)}")
    try:
        connected = await frame(conn)
        assert connected["type"] == "connected"
        jsonschema.validate(connected, payload(doc, "connected"))
        ping = {"type": "ping", "ref": "r1"}
        jsonschema.validate(ping, payload(doc, "client_ping"))
        await conn.write_message(json.dumps(ping))
        pong = await frame(conn)
        jsonschema.validate(pong, payload(doc, "pong"))
        assert pong["data"]["ref"] == "r1"
        typing = {"type": "typing", "is_typing": True}
        jsonschema.validate(typing, payload(doc, "client_typing"))  # valid, but not here:
        await conn.write_message(json.dumps(typing))
        error = await frame(conn)
        jsonschema.validate(error, payload(doc, "error"))
        assert error["data"]["error_code"] == "NOT_ALLOWED"
    finally:
        conn.close()

    refused = await websocket_connect(f"{ws}/ws/notifications")
    assert await refused.read_message() is None
    assert str(refused.close_code) in doc["x-close-codes"] and refused.close_code == 4401
