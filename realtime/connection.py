"""One socket's side of the hub: bounded unflushed frames, recovery buffering, dedupe by offset.

A `Connection` knows nothing of Tornado: it gets `send(text) -> awaitable` (the socket's
`write_message`, whose Future resolves once the frame is flushed to the kernel) and
`close(code, reason)`. Frames are written at once, in order, with no task or queue of our
own; the Future of each live frame is only counted while it is unflushed. A client that does
not read stops the flushing, so the unflushed count grows; when it would exceed `limit`
frames the socket is closed with 4008 "slow consumer" (the client reconnects and recovers
with `since`), so Tornado's stream buffer never holds more than `limit` live frames. Other
sockets are never held up: fan-out only writes to buffers.

While the hub sets the connection up (subscribe, presence, history) live frames are held
in a buffer (a list created when the first one arrives); `go_live` then sends the history
and the buffer, dropping any event whose offset is not above the last one sent, so the
client sees no gap and no duplicate. History and held frames are written without counting
against the limit (the bound applies to live traffic).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("hwc3d.realtime")

SLOW_CONSUMER = 4008


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a Z (the frames' `ts`)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def control_frame(type: str, channel: str | None, data: Any) -> str:
    """A server frame that is not a channel event (offset null): connected, presence, error..."""
    return json.dumps({"type": type, "channel": channel, "offset": None, "data": data,
                       "ts": now_iso()}, separators=(",", ":"), default=str)


def _retrieve(future: asyncio.Future) -> None:
    """Done callback of a forced write: consume its outcome (a closed stream is expected)."""
    if not future.cancelled():
        future.exception()


class Connection:
    """The hub's handle on one socket (see module doc).

    `info` is the presence info of the socket's user (``user_id``, ``username``,
    ``is_staff``...). `on_slow` is called once when the socket overflows (metrics).
    """

    __slots__ = ("info", "channel", "present", "left", "closed", "seq", "session", "_send", "_close",
                 "_limit", "_on_slow", "_held", "_live", "_last_offset", "_unflushed")

    def __init__(self, send: Callable[[str], Awaitable], close: Callable[[int, str], None], *,
                 limit: int, info: dict, on_slow: Callable[[Connection], None] | None = None):
        self.info = info
        self.channel: str | None = None
        self.present = False            # counted in the channel's presence
        self.left = False
        self.closed = False
        self.seq = 0                    # join order on this instance (set by the hub)
        self.session: str | None = None  # the sign-in session of its token
        self._send, self._close, self._limit, self._on_slow = send, close, limit, on_slow
        self._held: list | None = None  # live frames that arrive before go_live
        self._live = False
        self._last_offset: int | None = None
        self._unflushed = 0

    # ---------------------------------------------------------------- inbound from the hub

    def deliver(self, offset: int | None, frame: str | bytes) -> None:
        """A channel event for this socket (called by the hub's fan-out; never blocks).
        `frame` is the frame's text, or its UTF-8 bytes (sent as a text frame)."""
        if self.closed:
            return
        if not self._live:
            if self._held is None:
                self._held = []
            self._held.append((offset, frame))
            if len(self._held) > self._limit:
                self.overflow()
            return
        if offset is not None:          # (the hot path: _send_event and push inlined)
            last = self._last_offset
            if last is not None and offset <= last:
                return
            self._last_offset = offset
        if self._unflushed >= self._limit:
            self.overflow()
            return
        self._write(frame, False)

    def _send_event(self, offset: int | None, frame: str, force: bool = False) -> None:
        if offset is not None:
            if self._last_offset is not None and offset <= self._last_offset:
                return
            self._last_offset = offset
        self.push(frame, force=force)

    def push(self, item: str | list, force: bool = False) -> bool:
        """Write one frame (or a list of frames, in a row); False once closed.

        A frame that is not `force`d counts as unflushed until Tornado has flushed it; past
        `limit` unflushed frames the socket is closed as a slow consumer.
        """
        if self.closed:
            return False
        if not force and self._unflushed >= self._limit:
            self.overflow()
            return False
        for text in item if isinstance(item, list) else (item,):
            if not self._write(text, force):
                return False
        return True

    def _write(self, text: str, force: bool) -> bool:
        try:
            future = self._send(text)
        except Exception as exc:        # WebSocketClosedError: the stream is gone
            log.debug("socket write stopped: %r", exc)
            self.stop()
            return False
        if not isinstance(future, asyncio.Future):    # (cheaper than iscoroutine first)
            if future is None:
                return not self.closed
            future = asyncio.ensure_future(future)
        if future.done():
            self._flushed(future, counted=False)
            return not self.closed
        if force:
            future.add_done_callback(_retrieve)
        else:
            self._unflushed += 1
            future.add_done_callback(self._flushed)
        return True

    def _flushed(self, future: asyncio.Future, counted: bool = True) -> None:
        if counted:
            self._unflushed -= 1
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None and not self.closed:
            log.debug("socket write stopped: %r", exc)
            self.stop()

    def go_live(self, history: list[tuple[int, str]], position: int | None) -> None:
        """Send `history` (offset order), mark `position` as seen, then flush held live frames."""
        frames = [frame for offset, frame in history if position is None or offset <= position]
        if frames:
            self.push(frames, force=True)
        if position is not None:
            self._last_offset = position
        held, self._held, self._live = self._held or (), None, True
        for offset, frame in held:
            self._send_event(offset, frame, force=True)

    # ---------------------------------------------------------------- closing

    def overflow(self) -> None:
        """Close as a slow consumer: 4008 "slow consumer"."""
        if self.closed:
            return
        log.info("closing slow consumer %x on %s (%d frames unflushed)", id(self), self.channel,
                 self._unflushed)
        if self._on_slow is not None:
            self._on_slow(self)
        self.close(SLOW_CONSUMER, "slow consumer")

    def close(self, code: int, reason: str) -> None:
        """Stop writing and close the socket with `code` and `reason`."""
        if self.closed:
            return
        self.stop()
        try:
            self._close(code, reason)
        except Exception:
            log.debug("close failed", exc_info=True)

    def stop(self) -> None:
        """Stop writing and drop held frames (writes in flight are not cancelled: they fail
        when Tornado drops the stream)."""
        self.closed = True
        self._held = None
