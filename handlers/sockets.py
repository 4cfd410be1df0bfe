"""WebSocket endpoints (seed 000 §9, seed 001 §14, docs/architecture.md §6).

    /ws/support/{ticket_id}        support:<ticket_id>        owner, or staff with support.manage
    /ws/community/{community_id}   community:<community_id>   members; anyone signed in reads a
                                                              public active community
    /ws/notifications              notifications:<user_id>    the user's own channel

Auth first: the access token (``?token=``, ``Authorization: Bearer`` or the `access_token`
cookie) is verified and the channel authorized in `prepare`, before the upgrade and before
the socket joins anything. A refusal is still upgraded, then closed at once with 4401 (no,
bad, expired or revoked token), 4403 (not allowed) or 4404 (no such channel, invalid id) and
a reason, so that a browser can tell why (it sees a failed handshake only as 1006).

After `connected` / `presence` / `recovered` (with ``?since=<offset>``) frames, the socket
gets the channel's events. Client frames (JSON objects; an optional ``ref`` string is echoed
in the reply):

    {"type": "message", "content": str, "attachments": [url]}   support, community (writers)
    {"type": "typing", "is_typing": bool}                       support, community (writers)
    {"type": "read", "id": str} | {"type": "read", "all": true}  notifications (one / all read)
    {"type": "read"}                                            support: marks the ticket read
    {"type": "ping"}                                            → pong

A bad frame gets ``{"type": "error", "data": {"error_code", "detail", "field_errors"?}}`` and
the socket stays open. Typing is throttled per socket (same state at most once per 2 s);
`message` frames count against the user's REST rate limit. A socket is closed with 4401
"Access token expired" when its access token expires (the client reconnects with a fresh
token and `since`, losing nothing), and with 4401 and the reason on every instance when its
session or account ends (`Hub.disconnect`: "Signed out", "Session revoked: refresh token
reused", "Password changed", "Password reset", "Account banned", "Account deactivated",
"Account deleted").
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import tornado.websocket
from bson import ObjectId
from marshmallow import fields, validate

from documents import communities, notifications, sessions, support, users
from documents.errors import DomainError, Forbidden, NotFound, RateLimited, Unauthorized
from handlers import jsonbody
from handlers.base import ApiSchema, load, with_status
from realtime import channels
from realtime.connection import control_frame
from realtime.hub import ShuttingDown

log = logging.getLogger("hwc3d.ws")

TYPING_INTERVAL = 2.0
UNAUTHORIZED, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404
PRE_UPGRADE_CODES = {400: "WEBSOCKET_UPGRADE_REQUIRED", 403: "FORBIDDEN",
                     426: "WEBSOCKET_UPGRADE_REQUIRED"}


class Refused(Exception):
    """The socket may not join: closed with `code` and `reason` right after the upgrade."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason[:120]


class FrameError(Exception):
    """A client frame that cannot be acted on: answered with an error frame."""

    def __init__(self, error_code: str, detail: str, field_errors: dict | None = None):
        super().__init__(detail)
        self.error_code, self.detail, self.field_errors = error_code, detail, field_errors


# --------------------------------------------------------------------------- client frames

_REF = fields.String(validate=validate.Length(max=64))


class MessageFrame(ApiSchema):
    type = fields.String(required=True)
    ref = _REF
    content = fields.String(required=True)
    attachments = fields.List(fields.String(), load_default=list)


class TypingFrame(ApiSchema):
    type = fields.String(required=True)
    ref = _REF
    is_typing = fields.Boolean(load_default=True)


class ReadFrame(ApiSchema):
    type = fields.String(required=True)
    ref = _REF
    id = fields.String(validate=validate.Length(max=64))
    all = fields.Boolean()


class PingFrame(ApiSchema):
    type = fields.String(required=True)
    ref = _REF


FRAMES = {"message": MessageFrame, "typing": TypingFrame, "read": ReadFrame, "ping": PingFrame}


def parse_frame(message: str | bytes) -> dict:
    """A client frame validated by its type's schema; raises FrameError, or Invalid for text
    that cannot be stored (NUL, lone surrogates)."""
    if isinstance(message, bytes):
        raise FrameError("INVALID_FRAME", "Binary frames are not supported; send JSON text")
    try:
        frame = json.loads(message)
    except ValueError:
        raise FrameError("INVALID_JSON", "Frame is not valid JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("INVALID_FRAME", "A frame is a JSON object with a string `type`")
    jsonbody.check(frame)        # NUL or a lone surrogate: a field error, never a failed write
    schema = FRAMES.get(frame["type"])
    if schema is None:
        raise FrameError("UNKNOWN_FRAME_TYPE", f"Unknown frame type {frame['type'][:40]!r}; "
                         f"expected one of {', '.join(FRAMES)}")
    return load(schema, frame)


# --------------------------------------------------------------------------- the handler

class ChannelSocket(tornado.websocket.WebSocketHandler):
    """Shared protocol of the three sockets; subclasses implement `authorize` and verbs.

    An open socket keeps little (thousands are idle at once): the user's id, the
    `Connection` (whose `info` holds user_id, username, avatar_url and the staff flag) and
    one timer handle for the token's expiry. The user document and the token claims are
    dropped once the socket is open; a `message` frame reloads the user.
    """

    presence = True
    # What `/asyncapi.json` documents (handlers.asyncapi): the channel's event types, and
    # whether its members usually write (message, typing) or only read.
    events: tuple[str, ...] = ()
    default_access = "read"
    # Defaults as class attributes: an instance stores only what it changes.
    user: dict | None = None            # during prepare/open only
    user_id: ObjectId | None = None
    channel: str | None = None
    access = "read"
    refusal: Refused | None = None
    conn = None
    _expiry: Any = None                 # the token's exp (prepare), then its call_at handle
    session: str | None = None          # the token's sign-in session (claim sid)
    _typing: tuple[bool, float] | None = None

    def initialize(self, services) -> None:
        self.services = services

    @property
    def hub(self):
        return self.services.hub

    @property
    def db(self):
        return self.services.db

    def check_origin(self, origin: str) -> bool:
        """Allowed: the configured CORS origins and this host (no Origin: allowed by Tornado)."""
        if origin in self.services.settings.cors_origins:
            return True
        return urlsplit(origin).netloc.lower() == self.request.host.lower()

    def token(self) -> str | None:
        """The access token from ``?token=``, ``Authorization: Bearer`` or the cookie."""
        token = self.get_query_argument("token", None)
        header = self.request.headers.get("Authorization", "")
        if not token and header[:7].lower() == "bearer ":
            token = header[7:].strip()
        return token or self.get_cookie("access_token") or None

    def finish(self, chunk: Any = None):
        """Before the upgrade, Tornado refuses a request that is no WebSocket handshake (no
        ``Upgrade: websocket``, a foreign origin) with a plain-text 400/403/426: those go out in
        the API's error format instead (docs/architecture.md §3)."""
        status = self.get_status()
        if isinstance(chunk, str) and status >= 400:
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            code = PRE_UPGRADE_CODES.get(status, "BAD_REQUEST")
            chunk = json.dumps(with_status({"detail": chunk, "error_code": code,
                                            "field_errors": None}, status))
        return super().finish(chunk)

    async def prepare(self) -> None:
        """Authenticate and authorize before the upgrade; a refusal is kept for `open`."""
        try:
            token = self.token()
            if not token:
                raise Refused(UNAUTHORIZED, "Authentication required")
            try:
                self.user, claims = await sessions.authenticate(
                    self.db, self.services.settings, token)
                self.current_user, self.user_id = self.user, self.user["_id"]
                self._expiry, self.session = claims["exp"], claims.get("sid")
            except (Unauthorized, Forbidden) as exc:
                raise Refused(UNAUTHORIZED, exc.detail) from None
            self.channel = await self.authorize(**self.path_kwargs)
        except Refused as refusal:
            self.refusal = refusal
        except DomainError as exc:
            self.refusal = Refused(FORBIDDEN if exc.status == 403 else NOT_FOUND, exc.detail)

    async def authorize(self, **kwargs: str) -> str:
        """The channel this user may join; raises Refused (or Forbidden/NotFound)."""
        raise NotImplementedError

    def presence_info(self) -> dict:
        user = self.user
        return {"user_id": str(user["_id"]), "username": user.get("username"),
                "avatar_url": user.get("avatar_url"), "is_staff": users.is_staff(user)}

    def since(self) -> tuple[int | None, bool]:
        """(`since` offset, whether the client asked for recovery); None when malformed."""
        raw = self.get_query_argument("since", None)
        if raw is None:
            return None, False
        return (int(raw), True) if raw.isdigit() and len(raw) <= 18 else (None, True)

    async def open(self, **_kwargs: str) -> None:
        """Close a refused socket with its code; else join the channel (docs/architecture.md §6)."""
        if self.refusal is not None:
            self.close(self.refusal.code, self.refusal.reason)
            return
        conn = self.conn = self.hub.connection(self.send_text, self.close,
                                               self.presence_info(), self.session)
        self.user = self.current_user = None          # the access log has been written
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_at(loop.time() + max(0.0, self._expiry - time.time()),
                                    conn.close, UNAUTHORIZED, "Access token expired")
        since, recover = self.since()
        try:
            await self.hub.join(self.conn, self.channel, since=since, recover=recover,
                                presence=self.presence)
        except ShuttingDown:
            self.conn.close(1001, "server shutting down")

    def send_text(self, text: str | bytes):
        """Write one text frame (`text`, or its UTF-8 bytes); the Future resolves once it is
        flushed to the kernel. Raises WebSocketClosedError (or StreamClosedError) when the
        socket is gone.

        The same bytes on the wire as `write_message`, without the Task Tornado wraps
        around every write (only to rename StreamClosedError): the hub's fan-out writes each
        event to every socket, so that Task was most of the per-socket cost. Falls back to
        `write_message` when the socket compresses (not configured) or Tornado's internals
        differ.
        """
        ws = self.ws_connection
        if ws is None or ws.is_closing():
            raise tornado.websocket.WebSocketClosedError()
        write_frame = getattr(ws, "_write_frame", None)
        if write_frame is None or getattr(ws, "_compressor", True) is not None:
            return self.write_message(text)
        data = text if isinstance(text, bytes) else text.encode()
        ws._message_bytes_out += len(data)
        return write_frame(True, 0x1, data)

    def on_close(self) -> None:
        """Leave the channel; the socket closed (either side)."""
        if isinstance(self._expiry, asyncio.TimerHandle):
            self._expiry.cancel()
        if self.conn is not None:
            self.hub.release(self.conn)

    async def on_message(self, message: str | bytes) -> None:
        """Handle one client frame; any problem is answered with an error frame."""
        if self.conn is None or self.conn.closed:
            return
        ref = None
        try:
            frame = parse_frame(message)
            ref = frame.get("ref")
            await getattr(self, f"frame_{frame['type']}")(frame)
        except FrameError as exc:
            self.send_error_frame(exc.error_code, exc.detail, exc.field_errors, ref)
        except DomainError as exc:
            self.send_error_frame(exc.error_code, exc.detail, exc.field_errors, ref, **exc.extra)
        except Exception:
            log.exception("frame on %s failed", self.channel)
            self.send_error_frame("INTERNAL_ERROR", "The frame could not be processed", None, ref)

    # ---------------------------------------------------------------- replies

    def send_frame(self, type: str, data: Any) -> None:
        self.conn.push(control_frame(type, self.channel, data))

    def send_error_frame(self, code: str, detail: str, field_errors: dict | None,
                         ref: str | None, **extra: Any) -> None:
        """``{"type": "error", "data": {"error_code", "detail", "field_errors"?, "ref"?,
        ...extra (retry_after)}}``."""
        data = {"error_code": code, "detail": detail, **extra}
        if field_errors:
            data["field_errors"] = field_errors
        if ref is not None:
            data["ref"] = ref
        self.send_frame("error", data)

    def ack(self, frame: dict, **data: Any) -> None:
        self.send_frame("ack", {"for": frame["type"], "ref": frame.get("ref"), **data})

    # ---------------------------------------------------------------- client frames

    async def sender(self) -> dict:
        """The socket's user document, reloaded for a `message` frame; raises Unauthorized
        when the account is gone, Forbidden when it was disabled meanwhile."""
        user = await users.get(self.db, self.user_id)
        if user is None:
            raise Unauthorized("Account no longer exists", "INVALID_TOKEN")
        sessions.ensure_active(user)
        return user

    async def count_write(self, user: dict) -> None:
        """Count a `message` frame of `user` against their REST budget (seed 001 §21,
        "default" 100/min; staff 1000/min); raises RateLimited past it."""
        settings = self.services.settings
        if not settings.rate_limits_enabled:
            return
        scope, rule = ("admin", settings.rate_limit_admin) if users.is_staff(user) \
            else ("default", settings.rate_limit_default)
        allowed, retry_after = await self.services.rate_limiter.hit(
            f"{scope}:user:{user['_id']}", rule)
        if not allowed:
            raise RateLimited(retry_after)

    def require_write(self, what: str) -> None:
        if self.access != "write":
            raise FrameError("NOT_ALLOWED", f"You cannot send {what} on this channel")

    async def frame_ping(self, frame: dict) -> None:
        self.send_frame("pong", {"ref": frame.get("ref")})

    async def frame_read(self, frame: dict) -> None:
        self.ack(frame)

    async def frame_message(self, frame: dict) -> None:
        raise FrameError("NOT_ALLOWED", "Messages cannot be sent on this channel")

    async def frame_typing(self, frame: dict) -> None:
        """Publish `typing_indicator` ({user_id, username, is_typing}), not persisted; the
        same state at most once per 2 s per socket."""
        self.require_write("typing indicators")
        state, now = frame["is_typing"], time.monotonic()
        if self._typing and self._typing[0] == state and now - self._typing[1] < TYPING_INTERVAL:
            return
        self._typing = (state, now)
        info = self.conn.info
        await self.hub.publish(self.channel, channels.TYPING_INDICATOR,
                               {"user_id": info["user_id"], "username": info["username"],
                                "is_typing": state}, history=False)


class SupportSocket(ChannelSocket):
    """The live channel of one support ticket for its owner and support staff.

    ``/ws/support/{ticket_id}`` (seed 000 §9)."""

    events = channels.SUPPORT_EVENTS
    default_access = "write"

    async def authorize(self, ticket_id: str) -> str:
        ticket = await support.get_ticket(self.db, ticket_id)
        if ticket is None:
            raise Refused(NOT_FOUND, "Ticket not found")
        if not support.can_access(ticket, self.user):
            raise Refused(FORBIDDEN, "Not your ticket")
        self.access = "write"
        self.ticket_id = ticket["_id"]
        return channels.support(ticket["_id"])

    def presence_info(self) -> dict:
        return {**super().presence_info(), "is_staff": support.is_support_staff(self.user)}

    async def frame_message(self, frame: dict) -> None:
        """Persist the message exactly as ``POST /api/support/tickets/{id}/messages`` does;
        it reaches everyone (the sender too) as `message_received`."""
        user = await self.sender()
        await self.count_write(user)
        ticket = await support.ticket_for(self.db, self.ticket_id, user)
        message = await support.add_message(self.db, self.hub, ticket, user,
                                            frame["content"], frame["attachments"],
                                            settings=self.services.settings,
                                            mailer=self.services.mailer)
        self.ack(frame, id=message["id"])

    async def frame_read(self, frame: dict) -> None:
        """The caller has read the ticket (`support.mark_read`): ack with `unread_count` 0."""
        await support.mark_read(self.db, self.ticket_id, await self.sender())
        self.ack(frame, ticket_id=str(self.ticket_id), unread_count=0)


class CommunitySocket(ChannelSocket):
    """The live channel of one community: members chat.

    ``/ws/community/{community_id}``: a public community's feed is readable
    by anyone signed in (seed 000 §9: new_post, new_comment, new_reaction, member_joined)."""

    events = channels.COMMUNITY_EVENTS
    default_access = "write"

    async def authorize(self, community_id: str) -> str:
        community = await communities.get(self.db, community_id)
        if community is None:
            raise Refused(NOT_FOUND, "Community not found")
        member = await communities.membership(self.db, community["_id"], self.user["_id"])
        self.access = communities.chat_access(community, member, self.user)
        self.community_id = community["_id"]
        return channels.community(community["_id"])

    async def frame_message(self, frame: dict) -> None:
        """Store a chat message (members) and publish it as `message_received`."""
        self.require_write("messages")
        user = await self.sender()
        await self.count_write(user)
        community = await communities.get(self.db, self.community_id)
        if community is None:
            raise NotFound("Community not found", "COMMUNITY_NOT_FOUND")
        message = await communities.add_chat_message(
            self.db, self.hub, community, user, frame["content"], frame["attachments"],
            settings=self.services.settings)
        self.ack(frame, id=message["id"])


class NotificationsSocket(ChannelSocket):
    """The signed-in user's own live notification channel.

    ``/ws/notifications`` (seed 001 §14)."""

    presence = False
    events = notifications.TYPES

    async def authorize(self) -> str:
        self.access = "read"
        return channels.notifications(self.user_id)

    async def frame_read(self, frame: dict) -> None:
        """Mark one notification (`id`) or all (`all: true`) read; ack with what changed."""
        if frame.get("all"):
            changed = await notifications.mark_all_read(self.db, self.user_id)
            self.ack(frame, updated=changed)
        elif frame.get("id"):
            await notifications.mark_read(self.db, self.user_id, frame["id"])
            self.ack(frame, id=frame["id"], updated=1)
        else:
            raise FrameError("VALIDATION_ERROR", "Send `id` or `all: true`",
                             {"id": ["Missing data for required field."]})


routes = [
    (r"/ws/support/(?P<ticket_id>[^/]+)", SupportSocket),
    (r"/ws/community/(?P<community_id>[^/]+)", CommunitySocket),
    (r"/ws/notifications", NotificationsSocket),
]
