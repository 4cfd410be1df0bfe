"""The hub's presence side (DESIGN §4; docs/architecture.md §6): who is online in a channel.

Joining adds the socket to the channel's presence (`presence.add`, O(1)); leaving takes it
out. Who hears about it depends on the channel:

- support tickets and small communities: ``presence_joined`` on a user's first socket,
  ``presence_left`` when their last one goes (a person needs to know: is an agent there);
- a community with more than `PRESENCE_COALESCE_ABOVE` users present: no per-user event
  (each would go to every socket: n joins cost n² frames). The channel is marked and gets a
  ``presence_count`` frame ``{"count", "staff_online"}`` at most once per second
  (`COUNT_INTERVAL`, claimed across instances with one ``SET NX PX``) while its presence
  changes, so n joins cost O(n) frames per second.

The opening `presence` frame of a socket is bounded whatever the channel's size: at most
`presence.SNAPSHOT_LIMIT` users, with the exact `count` and `staff_online`. A heartbeat task
keeps this instance alive in Redis, puts its counts back when its mark had lapsed (Redis
restarted, or it looked dead) and sweeps the counts of dead instances.
"""
from __future__ import annotations

import asyncio
import logging

from realtime import channels
from realtime.connection import Connection
from realtime.presence import SNAPSHOT_LIMIT

log = logging.getLogger("hwc3d.realtime")

COALESCE_ABOVE = 200
COUNT_INTERVAL = 1.0
PRESENCE_COUNT = "presence_count"


class HubPresence:
    """Presence methods of `realtime.hub.Hub` (see module doc)."""

    def _coalesced(self, channel: str, users: int | None = None) -> bool:
        """True when `channel`'s presence changes go out as `presence_count` frames."""
        if channels.kind_of(channel) != channels.COMMUNITY:
            return False
        if users is not None:
            self._users[channel] = users
        return self._users.get(channel, 0) > self._coalesce_above

    async def _announce(self, channel: str, type: str, info: dict, users: int | None) -> None:
        """`presence_joined` / `presence_left` of `info`, or a due `presence_count`."""
        if self._coalesced(channel, users):
            self._uncounted.add(channel)
            self._count_due.set()
        else:
            await self.publish(channel, type, info, history=False)

    async def _add_presence(self, conn: Connection, channel: str) -> None:
        try:
            first, users = await self.presence.add(channel, conn.info)
        except Exception as exc:
            log.warning("presence of %s unavailable: %s", channel, exc)
            return
        conn.present = True
        if conn.left:
            await self._remove_presence(conn, channel)
        elif first:
            await self._announce(channel, "presence_joined", conn.info, users)

    async def _remove_presence(self, conn: Connection, channel: str) -> None:
        conn.present = False
        try:
            info, users = await self.presence.remove(channel, conn.info)
        except Exception as exc:
            log.warning("presence removal on %s failed: %s", channel, exc)
            return
        if info is not None:
            await self._announce(channel, "presence_left", info, users + 1)

    def _local_presence(self, channel: str) -> dict[str, tuple[int, dict]]:
        """{user_id: (sockets, info)} of this instance's sockets counted in `channel`."""
        local: dict[str, tuple[int, dict]] = {}
        for conn in self._channels.get(channel, ()):
            if conn.present:
                count, _info = local.get(conn.info["user_id"], (0, conn.info))
                local[conn.info["user_id"]] = (count + 1, conn.info)
        return local

    def _presence_channels(self) -> list[str]:
        return [c for c, members in self._channels.items() if any(m.present for m in members)]

    async def _restore_presence(self, channel: str) -> None:
        """Put this instance's counts of `channel` back (Redis lost them, or this instance
        was swept as dead); announce users whose removal was missed meanwhile."""
        for info in await self.presence.restore(channel, self._local_presence(channel)):
            await self._announce(channel, "presence_left", info, None)

    async def presence_snapshot(self, channel: str) -> dict:
        """``{"users": [info...] (at most presence.SNAPSHOT_LIMIT), "count", "staff_online"}``
        for `channel` (all instances; this instance's sockets when presence is down)."""
        try:
            return await self.presence.snapshot(channel)
        except Exception:
            users = list({c.info["user_id"]: c.info
                          for c in self._channels.get(channel, ())}.values())
        return {"users": users[:SNAPSHOT_LIMIT], "count": len(users),
                "staff_online": any(u.get("is_staff") for u in users)}

    async def _count_presence(self) -> None:
        """Send the due `presence_count` frames, each channel at most once per interval."""
        while True:
            await self._count_due.wait()
            self._count_due.clear()
            for channel in sorted(self._uncounted):
                try:
                    if channel not in self._channels:
                        self._uncounted.discard(channel)
                    elif await self.presence.claim_count(channel, COUNT_INTERVAL):
                        self._uncounted.discard(channel)
                        counts = await self.presence.counts(channel)
                        self._users[channel] = counts["count"]
                        await self.publish(channel, PRESENCE_COUNT, counts, history=False)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("presence_count of %s failed: %s", channel, exc)
            if self._uncounted:         # claimed elsewhere or failed: try again later
                await asyncio.sleep(COUNT_INTERVAL / 4)
                self._count_due.set()

    async def _beat(self) -> None:
        while True:
            try:
                channels = self._presence_channels()
                if await self.presence.heartbeat(channels):
                    for channel in channels:
                        await self._restore_presence(channel)
                for channel, info in await self.presence.sweep(channels):
                    await self._announce(channel, "presence_left", info, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("presence heartbeat failed: %s", exc)
            await asyncio.sleep(self._heartbeat)
