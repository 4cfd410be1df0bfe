"""A bare Tornado WebSocket fan-out server: the yardstick of `bench/realtime_bench.py`.

    python bench/bare_ws_server.py --port 9100 --redis redis://127.0.0.1:6379/0

One route, ``/ws/<channel>``: the socket joins `<channel>`; whatever is PUBLISHed to
`<channel>` in Redis is written, as it is, to every local socket of that channel. One Redis
pub/sub connection per process, subscribed to the channels that have local sockets. No
auth, no history, no presence, no queues, no logging: the least code that does the job. On
SIGTERM the sockets are closed with 1001, as ours does.
"""
from __future__ import annotations

import argparse
import asyncio
import signal

import redis.asyncio as aioredis
import tornado.web
import tornado.websocket


class Fanout:
    """channel → local sockets, and the one pub/sub connection that feeds them."""

    def __init__(self, url: str):
        self.pubsub = aioredis.from_url(url).pubsub()
        self.channels: dict[str, set] = {}
        self.reader: asyncio.Task | None = None

    async def join(self, channel: str, socket) -> None:
        members = self.channels.setdefault(channel, set())
        members.add(socket)
        if len(members) == 1:
            await self.pubsub.subscribe(channel)
            if self.reader is None:
                self.reader = asyncio.create_task(self.read())

    def leave(self, channel: str, socket) -> None:
        members = self.channels.get(channel, set())
        members.discard(socket)
        if not members and self.channels.pop(channel, None) is not None:
            asyncio.ensure_future(self.pubsub.unsubscribe(channel))

    async def read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] == "message":
                for socket in list(self.channels.get(message["channel"].decode(), ())):
                    try:
                        socket.write_message(message["data"])  # bytes, sent as a text frame
                    except tornado.websocket.WebSocketClosedError:
                        pass


class ChannelSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, fanout: Fanout) -> None:
        self.fanout = fanout
        self.channel = None

    def check_origin(self, origin: str) -> bool:
        return True

    async def open(self, channel: str) -> None:
        self.channel = channel
        await self.fanout.join(channel, self)

    def on_close(self) -> None:
        if self.channel is not None:
            self.fanout.leave(self.channel, self)


async def serve(port: int, redis_url: str) -> None:
    fanout = Fanout(redis_url)
    app = tornado.web.Application([(r"/ws/(.+)", ChannelSocket, {"fanout": fanout})],
                                  log_function=lambda handler: None)
    server = app.listen(port, "127.0.0.1")
    print(f"bare ws server on ws://127.0.0.1:{port}/ws/<channel>", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    for members in list(fanout.channels.values()):
        for socket in list(members):
            socket.close(1001, "server shutting down")
    await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="REDIS_URL")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.redis))


if __name__ == "__main__":
    main()
