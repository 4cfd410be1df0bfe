"""One socket's side of the hub: a bounded outbound queue, recovery buffering, dedupe by offset.

A `Connection` knows nothing of Tornado: it gets `send(text) -> awaitable` (the socket's
`write_message`, whose Future is the flow control) and `close(code, reason)`. A writer task
sends queued frames one at a time, awaiting each write, so a client that does not read stops
the writer and frames pile up in the queue instead of in Tornado's unbounded stream buffer;
when the queue holds `limit` frames, the socket is closed with 4008 "slow consumer" (the
client reconnects and recovers with `since`). Other sockets are never held up: fan-out only
appends to queues.

While the hub sets the connection up (subscribe, presence, history) live frames are held
in a buffer; `go_live` then sends the history and the buffer, dropping any event whose
offset is not above the last one sent, so the client sees no gap and no duplicate.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import uuid
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


class Connection:
    """The hub's handle on one socket (see module doc).

    `info` is the presence info of the socket's user (``user_id``, ``username``...).
    `on_slow` is called once when the queue overflows (metrics).
    """

    def __init__(self, send: Callable[[str], Awaitable], close: Callable[[int, str], None], *,
                 limit: int, info: dict, on_slow: Callable[[Connection], None] | None = None):
        self.id = uuid.uuid4().hex[:16]
        self.info = info
        self.channel: str | None = None
        self.presence_key: str | None = None
        self.left = False
        self.closed = False
        self._send, self._close, self._limit, self._on_slow = send, close, limit, on_slow
        self._queue: collections.deque = collections.deque()
        self._wake = asyncio.Event()
        self._buffer: list | None = []
        self._last_offset: int | None = None
        self._writer = asyncio.create_task(self._write_loop())

    # ---------------------------------------------------------------- inbound from the hub

    def deliver(self, offset: int | None, frame: str) -> None:
        """A channel event for this socket (called by the hub's fan-out; never blocks)."""
        if self.closed:
            return
        if self._buffer is not None:
            self._buffer.append((offset, frame))
            if len(self._buffer) > self._limit:
                self.overflow()
            return
        self._send_event(offset, frame)

    def _send_event(self, offset: int | None, frame: str, force: bool = False) -> None:
        if offset is not None:
            if self._last_offset is not None and offset <= self._last_offset:
                return
            self._last_offset = offset
        self.push(frame, force=force)

    def push(self, item: str | list, force: bool = False) -> bool:
        """Queue one frame (or a list of frames written in a row); False once closed."""
        if self.closed:
            return False
        if len(self._queue) >= self._limit and not force:
            self.overflow()
            return False
        self._queue.append(item)
        self._wake.set()
        return True

    def go_live(self, history: list[tuple[int, str]], position: int | None) -> None:
        """Send `history` (offset order), mark `position` as seen, then flush held live frames."""
        frames = [frame for offset, frame in history if position is None or offset <= position]
        if frames:
            self.push(frames, force=True)
        if position is not None:
            self._last_offset = position
        buffered, self._buffer = self._buffer or [], None
        for offset, frame in buffered:
            self._send_event(offset, frame, force=True)

    # ---------------------------------------------------------------- outbound to the socket

    async def _write_loop(self) -> None:
        try:
            while not self.closed:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                item = self._queue.popleft()
                for text in item if isinstance(item, list) else (item,):
                    await self._send(text)
        except Exception as exc:
            log.debug("socket write stopped: %r", exc)
            self.closed = True
            self._queue.clear()

    def overflow(self) -> None:
        """Close as a slow consumer: 4008 "slow consumer", queue dropped."""
        if self.closed:
            return
        log.info("closing slow consumer %s on %s (%d frames queued)", self.id, self.channel,
                 len(self._queue))
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
        """Stop writing and drop what is queued (the writer ends at its next turn; a write
        in flight is not cancelled, it fails when Tornado drops the stream)."""
        self.closed = True
        self._queue.clear()
        self._buffer = None
        self._wake.set()
