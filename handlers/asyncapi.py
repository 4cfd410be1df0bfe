"""The AsyncAPI 3.0 document of the three WebSocket hubs: `GET /asyncapi.json`.

Generated from what the hubs run on (`handlers.sockets`, `realtime`), never written by hand:
the channel addresses from the socket routes; the client frames from `sockets.FRAMES` (the
marshmallow schemas `parse_frame` validates with), and which hub takes which from the
`frame_<type>` verbs each socket class overrides; the server events from each socket class's
`events` (notifications: `documents.notifications.TYPES`); the close codes from the
constants the sockets and the hub close with; the frame envelope of
`realtime.connection.control_frame` and `Hub.publish`. Recovery: `?since=<offset>`.
"""
from __future__ import annotations

import json

from apispec.ext.marshmallow import OpenAPIConverter

from handlers import sockets
from handlers.base import ApiHandler, public, responds
from handlers.openapi import TITLE, VERSION, pattern_to_path
from handlers.schemas_catalog import DocumentOut
from realtime.connection import SLOW_CONSUMER
from realtime.hub import GOING_AWAY

ASYNCAPI_SETTING = "asyncapi_spec"
CLOSE_CODES = {
    sockets.UNAUTHORIZED: "No, bad, expired or revoked access token (also when it expires)",
    sockets.FORBIDDEN: "The user may not join this channel",
    sockets.NOT_FOUND: "No such channel (unknown or invalid id)",
    SLOW_CONSUMER: "Slow consumer: the outbound queue filled up; reconnect with `since`",
    GOING_AWAY: "The instance is shutting down; reconnect (to another) with `since`",
}
# Control frames every hub sends besides its channel's events (offset null, not in history)
CONTROL = {
    "connected": "On joining: `data.offset` is the channel's latest offset",
    "presence": "On joining (support, community): who is online, `staff_online`",
    "recovered": "After `connected` when `?since=` was given; `data.recovered` false when the "
                 "history no longer reaches back",
    "resync": "A gap could not be bridged: reload the state over REST",
    "ack": "Reply to a client frame (`data.for` its type, `data.ref` its ref)",
    "pong": "Reply to `ping`",
    "error": "A client frame was refused: `data.error_code`, `data.detail`, "
             "`data.field_errors`?; the socket stays open",
}
SOCKETS = ((r"/ws/support/(?P<ticket_id>[^/]+)", sockets.SupportSocket, "support"),
           (r"/ws/community/(?P<community_id>[^/]+)", sockets.CommunitySocket, "community"),
           (r"/ws/notifications", sockets.NotificationsSocket, "notifications"))


def _frame_schema(type_name: str, data: dict | None = None) -> dict:
    """The server frame envelope ``{type, channel, offset, data, ts}`` for `type_name`."""
    return {"type": "object", "required": ["type", "channel", "offset", "data", "ts"],
            "properties": {
                "type": {"type": "string", "const": type_name},
                "channel": {"type": ["string", "null"]},
                "offset": {"type": ["integer", "null"],
                           "description": "Per-channel position; null for transient frames"},
                "data": data or {"type": "object"},
                "ts": {"type": "string", "format": "date-time"}}}


def accepted_frames(socket: type) -> list[str]:
    """The client frame types `socket` acts on (a `frame_<type>` that is not the refusal)."""
    base = sockets.ChannelSocket
    out = []
    for name in sockets.FRAMES:
        verb = getattr(socket, f"frame_{name}")
        refuses = verb is getattr(base, f"frame_{name}") and name == "message"
        writes = socket.default_access == "write" or name not in ("message", "typing")
        if not refuses and writes:
            out.append(name)
    return out


def build_asyncapi() -> dict:
    """The AsyncAPI 3.0.0 document (a dict) of the hubs."""
    converter = OpenAPIConverter("3.0.3", lambda schema: None, None)
    messages, channels, operations = {}, {}, {}
    for name, schema in sockets.FRAMES.items():
        payload = converter.schema2jsonschema(schema)
        payload["properties"]["type"] = {"type": "string", "const": name}
        messages[f"client_{name}"] = {"name": name, "title": f"client frame `{name}`",
                                      "payload": payload}
    for name, description in CONTROL.items():
        messages[name] = {"name": name, "summary": description, "payload": _frame_schema(name)}
    for pattern, socket, hub in SOCKETS:
        address, params = pattern_to_path(pattern)
        events = sorted(set(socket.events) | {"presence_joined", "presence_left"}
                        if socket.presence else set(socket.events))
        for event in events:
            messages.setdefault(event, {"name": event, "summary": f"Event `{event}`",
                                        "payload": _frame_schema(event)})
        server = [*CONTROL, *events]
        client = accepted_frames(socket)
        channels[hub] = {
            "address": address, "title": (socket.__doc__ or hub).strip().splitlines()[0],
            "parameters": {p["name"]: {"description": f"The {p['name'].replace('_', ' ')}"}
                           for p in params},
            "messages": {**{m: {"$ref": f"#/components/messages/{m}"} for m in server},
                         **{f"client_{m}": {"$ref": f"#/components/messages/client_{m}"}
                            for m in client}},
            "bindings": {"ws": {"query": {"type": "object", "properties": {
                "token": {"type": "string", "description": "The access token (or the "
                          "Authorization header, or the access_token cookie)"},
                "since": {"type": "integer", "description": "Recover the events after this "
                          "offset (from the last frame seen) before live ones"}}}}},
        }
        operations[f"{hub}_events"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{hub}"},
            "summary": f"The server's frames on the {hub} hub",
            "messages": [{"$ref": f"#/channels/{hub}/messages/{m}"} for m in server],
            "security": [{"$ref": "#/components/securitySchemes/bearer"},
                         {"$ref": "#/components/securitySchemes/queryToken"}]}
        operations[f"{hub}_client_frames"] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{hub}"},
            "summary": f"The frames a client sends on the {hub} hub",
            "messages": [{"$ref": f"#/channels/{hub}/messages/client_{m}"} for m in client]}
    return json.loads(json.dumps({
        "asyncapi": "3.0.0",
        "info": {"title": f"{TITLE} WebSockets", "version": VERSION,
                 "description": (sockets.__doc__ or "").strip()},
        "defaultContentType": "application/json",
        "channels": channels, "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "queryToken": {"type": "httpApiKey", "name": "token", "in": "query"}},
        },
        "x-close-codes": {str(code): text for code, text in CLOSE_CODES.items()},
    }, default=str))


class AsyncApiHandler(ApiHandler):
    rate_limit = None

    @public
    @responds(DocumentOut)
    async def get(self) -> None:
        """The AsyncAPI 3.0 document of the WebSocket hubs (JSON)."""
        spec = self.application.settings.get(ASYNCAPI_SETTING)
        if spec is None:
            spec = self.application.settings[ASYNCAPI_SETTING] = build_asyncapi()
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(json.dumps(spec, separators=(",", ":")))


routes = [(r"/asyncapi.json", AsyncApiHandler)]
