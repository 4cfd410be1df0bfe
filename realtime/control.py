"""Closing sockets on every instance when their sign-in ends (docs/architecture.md §6).

Logout, a password change or reset, a ban, an account's deactivation or deletion and a
refresh-token reuse end sessions; the sockets opened with their access tokens must not
outlive them. `Hub.disconnect(user_id, session=..., reason=...)` closes, on every instance,
the user's sockets (only those of `session` when given) with **4401** and `reason`.

The signal travels on the broker's control channel `CONTROL` (Redis pub/sub, to which every
instance is subscribed for as long as it runs): ``{"type": "disconnect", "data": {"user_id",
"session", "reason"}}``. The instance that ends the session closes its own sockets at once;
while Redis is unreachable the signal waits in the outbox like an event (no offset, no
history) and goes out when Redis is back. Closing a socket twice is harmless.
"""
from __future__ import annotations

import json
import logging

log = logging.getLogger("hwc3d.realtime")

CONTROL = "~control"
REVOKED = 4401


class HubControl:
    """The control side of `realtime.hub.Hub` (see module doc)."""

    async def disconnect(self, user_id, *, session: str | None = None,
                         reason: str = "Session ended") -> None:
        """Close `user_id`'s sockets (of `session` only, when given) on every instance with
        4401 and `reason`. Never raises for a broker failure (the signal is queued)."""
        data = {"user_id": str(user_id), "session": session, "reason": reason[:120]}
        self._close_sockets(data)
        head = json.dumps({"type": "disconnect", "data": data},
                          separators=(",", ":"))[:-1] + ',"offset":'
        if not self.outbox.entries and self.broker.connected:
            try:
                await self.broker.publish(CONTROL, head, history=False)
                return
            except Exception as exc:
                log.warning("disconnect signal waits in the outbox: %s", exc)
        self.outbox.put(CONTROL, head, self._joins, history=False)

    def _control(self, frame: str | bytes) -> None:
        """A message of the control channel (from any instance, this one included)."""
        try:
            message = json.loads(frame)
        except ValueError:
            log.warning("unreadable control message: %r", frame[:200])
            return
        if message.get("type") == "disconnect":
            self._close_sockets(message.get("data") or {})

    def _close_sockets(self, data: dict) -> None:
        user, session = data.get("user_id"), data.get("session")
        reason = data.get("reason") or "Session ended"
        for members in list(self._channels.values()):
            for conn in list(members):
                if conn.info.get("user_id") == user and (session is None
                                                         or conn.session == session):
                    conn.close(REVOKED, reason)
                    self.release(conn)
