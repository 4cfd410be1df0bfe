"""The WebSocket load client of `bench/realtime_bench.py`, used for ours and the bare server.

    python bench/ws_client.py ws://127.0.0.1:8888/ws/notifications?token=... \
        [--connections 1000] [--processes 4] [--seconds 10]

Light on purpose: several processes (`ClientPool`), each an asyncio loop holding many
connections as plain `asyncio.Protocol`s with a minimal RFC 6455 client (handshake, unmasked
server frames, masked pong and close). A received frame is not JSON-decoded: the benchmark
content ``bench seq=<n> t=<unix time>`` is found with one regex and the ``"offset":<n>}``
tail is read from the last bytes; only control frames (`connected`, `recovered`) are parsed.

Per subscriber it counts each sequence number received (lost, duplicated), checks that
event offsets follow each other (gaps, repeats), and per delivery records the latency from
the time embedded in the content (and from the frame's `ts`). A subscriber given a
`reconnect` target reconnects there when its socket closes (1001 on SIGTERM), with
``&since=<last offset>`` when `recover` is on, and records how long it took.
"""
from __future__ import annotations

import argparse
import array
import asyncio
import base64
import collections
import json
import multiprocessing
import os
import re
import resource
import time
from datetime import datetime
from urllib.parse import urlsplit

SEQ = re.compile(rb"bench seq=(\d+) t=([0-9.]+)")
CONTROL = (b'{"type":"connected"', b'{"type":"recovered"', b'{"type":"error"',
           b'{"type":"resync"')
TS = b'"ts":"'


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A masked client frame (payload under 126 bytes: pong and close only)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:125]))
    return bytes((0x80 | opcode, 0x80 | len(body))) + mask + body


class Link(asyncio.Protocol):
    """One WebSocket connection of a `Subscriber`."""

    def __init__(self, sub: Subscriber, host: str, port: int, path: str):
        self.sub, self.host, self.port, self.path = sub, host, port, path
        self.buf = bytearray()
        self.open = False
        self.closed = False
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                        .encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        now = time.time()
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:buf.find(b"\r\n")])
            del buf[:end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.closed = True
                self.transport.close()
                self.sub.failed(status.decode(errors="replace"), now)
                return
            self.open = True
            self.sub.opened(self, now)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            length, head = buf[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if size - pos < head + length:
                break
            opcode = buf[pos] & 0x0F
            payload = bytes(buf[pos + head:pos + head + length])
            pos += head + length
            if opcode in (1, 2):
                self.sub.frame(payload, now)
            elif opcode == 9:
                self.transport.write(client_frame(0xA, payload))
            elif opcode == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.transport.write(client_frame(8, payload[:2]))
                self.shut(code, now)
                break
        if pos:
            del buf[:pos]

    def shut(self, code: int, now: float) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()
            self.sub.closed(self, code, now)

    def close(self) -> None:
        """Client-side close (1000), used at the end of a run."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.write(client_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if self.open:
            self.shut(1006, time.time())
        elif not self.closed:
            self.closed = True
            self.sub.failed(f"connection lost before the upgrade: {exc!r}", time.time())


class Subscriber:
    """One logical subscriber: its current `Link`, what it received, its reconnects."""

    def __init__(self, worker: Worker, spec: dict):
        self.w = worker
        self.url = spec["url"]
        self.reconnect_url = spec.get("reconnect")
        self.counts = bytearray(worker.max_seq + 1)
        self.unique = self.dups = self.foreign = self.resyncs = 0
        self.last_offset: int | None = None
        self.offset_gaps = self.offset_repeats = 0
        self.link: Link | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.pending: dict | None = None   # the reconnect being timed
        self.reconnects: list[dict] = []
        self.closes: list[int] = []

    async def connect(self, url: str) -> None:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: Link(self, parts.hostname, parts.port, path),
                                         parts.hostname, parts.port)
        except OSError as exc:
            self.failed(f"connect: {exc!r}", time.time())

    # ---------------------------------------------------------------- link events

    def opened(self, link: Link, now: float) -> None:
        self.link = link
        if self.pending is not None:
            self.pending["upgraded"] = now
        if not self.w.hello:
            self._ready(now)

    def _ready(self, now: float) -> None:
        if not self.ready.done():
            self.ready.set_result(True)
        if self.pending is not None and self.pending.get("ready") is None:
            self.pending["ready"] = now
            if not self.w.recover:
                self._finish_reconnect()

    def _finish_reconnect(self) -> None:
        record, self.pending = self.pending, None
        self.reconnects.append(record)

    def failed(self, why: str, now: float) -> None:
        self.w.errors[why[:80]] += 1
        if not self.ready.done():
            self.ready.set_result(False)
        if self.pending is not None:
            self.pending["failed"] = why
            self._finish_reconnect()

    def closed(self, link: Link, code: int, now: float) -> None:
        self.closes.append(code)
        if not self.ready.done():
            self.ready.set_result(False)
            self.w.errors[f"closed {code} before ready"] += 1
            return
        if self.w.stopping or not self.reconnect_url or self.pending is not None:
            return
        self.pending = {"closed": now, "code": code, "ready": None}
        url = self.reconnect_url
        if self.w.recover and self.last_offset:
            url += f"&since={self.last_offset}"
        asyncio.get_running_loop().create_task(self.connect(url))

    # ---------------------------------------------------------------- frames

    def frame(self, payload: bytes, now: float) -> None:
        w = self.w
        w.frames += 1
        w.bytes += len(payload)
        if payload.startswith(CONTROL):
            self.control(json.loads(payload), now)
            return
        tail = payload[-40:]
        at = tail.rfind(b'"offset":')
        if at >= 0 and tail[at + 9:at + 10] != b"n":
            self.offset(int(tail[at + 9:-1]))
        match = SEQ.search(payload)
        if match is None:
            return
        seq = int(match[1])
        if seq > w.max_seq:
            self.foreign += 1
            return
        seen = self.counts[seq]
        if seen == 0:
            self.unique += 1
        else:
            self.dups += 1
        self.counts[seq] = min(seen + 1, 255)
        if w.watch[0] <= seq < w.watch[1]:
            w.watch_last = max(w.watch_last, now)
        w.latency.append((now - float(match[2])) * 1000.0)
        start = payload.find(TS)
        if start >= 0:
            stamp = payload[start + 6:payload.find(b'"', start + 6)]
            sent = w.stamps.get(stamp)
            if sent is None:
                sent = w.stamps[stamp] = datetime.fromisoformat(stamp.decode()).timestamp()
            w.hub_latency.append((now - sent) * 1000.0)

    def offset(self, offset: int) -> None:
        last = self.last_offset
        if last:
            if offset <= last:
                self.offset_repeats += 1
                return
            self.offset_gaps += offset - last - 1
        self.last_offset = offset

    def control(self, frame: dict, now: float) -> None:
        data = frame.get("data") or {}
        if frame["type"] == "connected":
            if self.pending is not None:
                self.pending["connected"] = now
            if self.last_offset is None:
                self.last_offset = data.get("offset")
            self._ready(now)
        elif frame["type"] == "recovered" and self.pending is not None:
            self.pending.update(recovered=data.get("recovered"), missed=data.get("missed"),
                                reason=data.get("reason"), ready=now)
            self._finish_reconnect()
        elif frame["type"] == "error":
            self.w.errors[f"error frame {data.get('error_code')}"] += 1
        elif frame["type"] == "resync":
            self.resyncs += 1


class Worker:
    """One client process: its subscribers and the per-process tallies."""

    def __init__(self, specs: list[dict], options: dict):
        self.max_seq = options.get("max_seq", 0)
        self.hello = options.get("hello", False)       # ready on `connected`, not on upgrade
        self.recover = options.get("recover", False)   # reconnect with &since=<last offset>
        self.concurrency = options.get("concurrency", 25)
        self.watch = options.get("watch") or (0, 0)     # seqs whose last arrival is kept
        self.watch_last = 0.0
        self.ready_timeout = options.get("ready_timeout", 120.0)
        self.specs = specs
        self.subs: list[Subscriber] = []
        self.errors: collections.Counter = collections.Counter()
        self.latency = array.array("d")
        self.hub_latency = array.array("d")
        self.stamps: dict[bytes, float] = {}
        self.frames = self.bytes = 0
        self.stopping = False

    async def open_all(self) -> dict:
        started = time.monotonic()
        self.subs = [Subscriber(self, spec) for spec in self.specs]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(sub: Subscriber) -> None:
            async with gate:
                await sub.connect(sub.url)
                try:
                    await asyncio.wait_for(asyncio.shield(sub.ready), self.ready_timeout)
                except TimeoutError:
                    self.errors["not ready in time"] += 1

        await asyncio.gather(*(one(sub) for sub in self.subs))
        ok = sum(1 for s in self.subs if s.ready.done() and s.ready.result())
        return {"subs": len(self.subs), "ready": ok, "failed": len(self.subs) - ok,
                "connect_seconds": time.monotonic() - started, "errors": dict(self.errors)}

    async def drain(self, expected: list[int], timeout: float) -> dict:
        """Wait until every subscriber has every `expected` seq (or `timeout`), then tally."""
        deadline = time.monotonic() + timeout
        want = len(expected)
        while time.monotonic() < deadline:
            if all(s.unique >= want for s in self.subs) and not any(s.pending for s in self.subs):
                break
            await asyncio.sleep(0.05)
        return self.tally(expected)

    def tally(self, expected: list[int]) -> dict:
        lost = lost_subs = 0
        for sub in self.subs:
            missing = sum(1 for seq in expected if sub.counts[seq] == 0)
            lost += missing
            lost_subs += missing > 0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "subs": len(self.subs), "frames": self.frames, "bytes": self.bytes,
            "deliveries": sum(s.unique + s.dups for s in self.subs),
            "lost": lost, "lost_subs": lost_subs, "dups": sum(s.dups for s in self.subs),
            "dup_subs": sum(1 for s in self.subs if s.dups),
            "resyncs": sum(s.resyncs for s in self.subs), "watch_last": self.watch_last,
            "foreign": sum(s.foreign for s in self.subs),
            "offset_gaps": sum(s.offset_gaps for s in self.subs),
            "offset_repeats": sum(s.offset_repeats for s in self.subs),
            "latency": self.latency.tobytes(), "hub_latency": self.hub_latency.tobytes(),
            "reconnects": [r for s in self.subs for r in s.reconnects]
            + [{**s.pending, "unfinished": True} for s in self.subs if s.pending],
            "closes": dict(collections.Counter(c for s in self.subs for c in s.closes)),
            "errors": dict(self.errors), "cpu": usage.ru_utime + usage.ru_stime,
        }

    def close_all(self) -> None:
        self.stopping = True
        for sub in self.subs:
            if sub.link is not None:
                sub.link.close()


def worker_main(pipe, specs: list[dict], options: dict) -> None:
    """A client process: open `specs`, report ready, then obey commands from `pipe`:
    ("drain", {"expected": [...], "timeout": s}) → tally; ("tally", None); ("close", None)."""
    raise_nofile()
    asyncio.run(_serve(pipe, specs, options))


async def _serve(pipe, specs: list[dict], options: dict) -> None:
    worker = Worker(specs, options)
    pipe.send(("ready", await worker.open_all()))
    commands: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    while True:
        command, arg = await commands.get()
        if command == "drain":
            pipe.send(("result", await worker.drain(arg["expected"], arg["timeout"])))
        elif command == "tally":
            pipe.send(("result", worker.tally([])))
        elif command == "close":
            worker.close_all()
            await asyncio.sleep(0.2)
            pipe.send(("closed", None))
            return


class ClientPool:
    """`processes` client processes sharing `specs` ({"url", "reconnect"?}) round-robin."""

    def __init__(self, specs: list[dict], processes: int, **options):
        context = multiprocessing.get_context("fork")
        self.pipes, self.procs = [], []
        for index in range(processes):
            chunk = specs[index::processes]
            if not chunk:
                continue
            parent, child = context.Pipe()
            proc = context.Process(target=worker_main, args=(child, chunk, options), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _gather(self, timeout: float) -> list:
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise SystemExit(f"a client process did not answer within {timeout:.0f} s")
            out.append(pipe.recv()[1])
        return out

    def wait_ready(self, timeout: float = 300) -> dict:
        """All connections opened (and `connected` received when hello): merged summary."""
        parts = self._gather(timeout)
        return {"subs": sum(p["subs"] for p in parts), "ready": sum(p["ready"] for p in parts),
                "failed": sum(p["failed"] for p in parts),
                "connect_seconds": max(p["connect_seconds"] for p in parts),
                "errors": merge_counts(p["errors"] for p in parts)}

    def drain(self, expected: list[int], timeout: float) -> dict:
        """Wait for every subscriber to hold `expected`, then the merged tally."""
        for pipe in self.pipes:
            pipe.send(("drain", {"expected": expected, "timeout": timeout}))
        return merge(self._gather(timeout + 60))

    def tally(self) -> dict:
        for pipe in self.pipes:
            pipe.send(("tally", None))
        return merge(self._gather(60))

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("close", None))
            except OSError:
                pass
        for pipe in self.pipes:
            pipe.poll(30)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def merge_counts(parts) -> dict:
    total: collections.Counter = collections.Counter()
    for part in parts:
        total.update(part)
    return dict(total)


def merge(parts: list[dict]) -> dict:
    out = {key: sum(p[key] for p in parts) for key in
           ("subs", "frames", "bytes", "deliveries", "lost", "lost_subs", "dups", "dup_subs",
            "foreign", "offset_gaps", "offset_repeats", "cpu", "resyncs")}
    out["watch_last"] = max((p.get("watch_last", 0.0) for p in parts), default=0.0)
    for key in ("latency", "hub_latency"):
        values = array.array("d")
        for part in parts:
            values.frombytes(part[key])
        out[key] = values
    out["reconnects"] = [r for p in parts for r in p["reconnects"]]
    out["closes"] = merge_counts(p["closes"] for p in parts)
    out["errors"] = merge_counts(p["errors"] for p in parts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Hold N WebSocket connections and count frames.")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    raise_nofile()
    pool = ClientPool([{"url": args.url}] * args.connections, args.processes)
    try:
        ready = pool.wait_ready()
        print(f"ready {ready['ready']}/{ready['subs']} in {ready['connect_seconds']:.1f} s; "
              f"errors {ready['errors']}")
        time.sleep(args.seconds)
        result = pool.tally()
        print(f"frames {result['frames']} ({result['frames'] / args.seconds:.0f}/s), "
              f"client CPU {result['cpu']:.2f} s, closes {result['closes']}")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
