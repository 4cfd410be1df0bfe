"""This instance's copy of the latest history events of each channel, to rebuild what Redis loses.

A Redis restarted without persistence comes back empty: offset counters and history streams
are gone. Every instance keeps the history frames it published or received lately (per
channel, at most `per_channel` frames, `max_bytes` in all, forgotten after `ttl` seconds
without an event) and, each time its pub/sub connection comes back, writes them back with
`RESTORE_SCRIPT`:

- the channel's counter is gone: the stream is rebuilt from these frames (same offsets, same
  text) and the counter set to the newest of them, so the next event takes the next offset
  and a client's ``since`` still finds every event inside the window;
- the counter is there (another instance restored or published first): frames newer than it
  are appended (the counter follows); the others must already be in the stream with the same
  text. When one is missing or different (the stream restarted from a fresh counter, or an
  offset was given to another event), the channel's history no longer bridges the outage:
  the script answers 1 and the hub publishes a ``resync`` event on the channel.

Publishing uses the newest known offset as the base of a counter that Redis lost (instead
of the clock-based base of `broker.offset_base`), so offsets go on without a jump.
"""
from __future__ import annotations

import bisect
import collections
import time

PER_CHANNEL, MAX_BYTES = 1000, 32 * 1024 * 1024

# KEYS: counter, stream   ARGV: maxlen, ttl, then offset, frame pairs: consecutive offsets in
# order. Returns 1 when the history cannot bridge these frames (see module doc), else 0.
RESTORE_SCRIPT = """
local ours, newest = {}, tonumber(ARGV[#ARGV - 1])
for i = 3, #ARGV, 2 do ours[tonumber(ARGV[i])] = ARGV[i + 1] end
local function rebuild()
  redis.call('DEL', KEYS[2])
  for i = 3, #ARGV, 2 do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'f', ARGV[i + 1])
  end
end
local top = redis.call('GET', KEYS[1])
local lost = 0
if not top then
  rebuild()
  redis.call('SET', KEYS[1], ARGV[#ARGV - 1])
else
  top = tonumber(top)
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if top == newest and #last > 0 and last[1][1] == ARGV[#ARGV - 1] .. '-0'
      and last[1][2][2] == ARGV[#ARGV]
      and tonumber(string.match(head[1][1], '^(%d+)')) <= tonumber(ARGV[3]) then
    return 0                    -- Redis kept its data: nothing to do
  end
  local entries = redis.call('XRANGE', KEYS[2], '-', '+')
  local mergeable, above = true, {}
  for _, entry in ipairs(entries) do
    local offset = tonumber(string.match(entry[1], '^(%d+)'))
    if offset > newest then
      if #above == 0 and offset ~= newest + 1 then mergeable = false break end
      above[#above + 1] = {entry[1], entry[2][2]}
    elseif ours[offset] ~= entry[2][2] then mergeable = false break end
  end
  if mergeable then
    -- what Redis has since it came back is among ours or follows right after ours: ours,
    -- then those newer events, is the better history
    rebuild()
    for _, entry in ipairs(above) do
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], entry[1], 'f', entry[2])
    end
    if newest > top then redis.call('SET', KEYS[1], ARGV[#ARGV - 1]) end
    local final = #above > 0 and tonumber(string.match(above[#above][1], '^(%d+)')) or newest
    if top > final then lost = 1 end
  else
    local first = #entries > 0 and tonumber(string.match(entries[1][1], '^(%d+)')) or nil
    for i = 3, #ARGV, 2 do
      local offset = tonumber(ARGV[i])
      if offset > top then
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'f', ARGV[i + 1])
        redis.call('SET', KEYS[1], ARGV[i])
        top = offset
      elseif first ~= nil and offset >= first then
        local entry = redis.call('XRANGE', KEYS[2], ARGV[i] .. '-0', ARGV[i] .. '-0')
        if #entry == 0 or entry[1][2][2] ~= ARGV[i + 1] then lost = 1 end
      end
    end
    if first == nil or newest < first then lost = 1 end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return lost
"""


class _Frames:
    __slots__ = ("frames", "touched")

    def __init__(self, size: int, touched: float):
        self.frames: collections.deque = collections.deque(maxlen=size)
        self.touched = touched


class RecentFrames:
    """Latest history frames per channel, bounded (see module doc)."""

    def __init__(self, per_channel: int = PER_CHANNEL, max_bytes: int = MAX_BYTES,
                 ttl: float = 86400.0, clock=time.monotonic):
        self._size, self._max_bytes, self._ttl, self._clock = per_channel, max_bytes, ttl, clock
        self._channels: collections.OrderedDict[str, _Frames] = collections.OrderedDict()
        self._bytes = 0

    def add(self, channel: str, offset: int, frame: str | bytes) -> None:
        """Keep history event `offset` of `channel` (its frame text or UTF-8 bytes)."""
        if isinstance(frame, str):
            frame = frame.encode()
        now = self._clock()
        kept = self._channels.get(channel)
        if kept is None or now - kept.touched > self._ttl:
            if kept is not None:
                self._bytes -= sum(len(f) for _o, f in kept.frames)
            kept = self._channels[channel] = _Frames(self._size, now)
        else:
            self._channels.move_to_end(channel)
            kept.touched = now
        frames = kept.frames
        if frames and offset == frames[-1][0]:    # (its publisher receives it back)
            return
        if not frames or offset > frames[-1][0]:
            if len(frames) == self._size:
                self._bytes -= len(frames[0][1])
            frames.append((offset, frame))
        else:                           # (rare) an older event arrives after a newer one
            offsets = [o for o, _f in frames]
            at = bisect.bisect_left(offsets, offset)
            if at < len(offsets) and offsets[at] == offset or at == 0 and len(frames) == self._size:
                return
            if len(frames) == self._size:
                self._bytes -= len(frames.popleft()[1])
                at -= 1
            frames.insert(at, (offset, frame))
        self._bytes += len(frame)
        while self._bytes > self._max_bytes and len(self._channels) > 1:
            _channel, oldest = self._channels.popitem(last=False)
            self._bytes -= sum(len(f) for _o, f in oldest.frames)

    def top(self, channel: str) -> int | None:
        """The newest offset kept for `channel`, None when none is (or they are too old)."""
        kept = self._channels.get(channel)
        if kept is None or not kept.frames or self._clock() - kept.touched > self._ttl:
            return None
        return kept.frames[-1][0]

    def channels(self) -> list[tuple[str, list[tuple[int, bytes]]]]:
        """[(channel, [(offset, frame bytes)...])] of every live channel: the newest frames
        with consecutive offsets (this instance may have seen only some of a channel's
        events, e.g. the ones it published)."""
        now = self._clock()
        out = []
        for channel, kept in self._channels.items():
            if not kept.frames or now - kept.touched > self._ttl:
                continue
            frames = list(kept.frames)
            start = len(frames) - 1
            while start > 0 and frames[start - 1][0] == frames[start][0] - 1:
                start -= 1
            out.append((channel, frames[start:]))
        return out

    @property
    def size_bytes(self) -> int:
        return self._bytes
