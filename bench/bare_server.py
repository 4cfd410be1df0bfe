"""A bare Tornado JSON server: the yardstick of `bench/http_bench.py` (issue 2 §12b).

    python bench/bare_server.py --port 9000 [--body /detail=detail.json --body /list=list.json]

One handler answering a fixed JSON body per path (each `--body PATH=FILE` gives the bytes of
a path; any other path answers a small model-like document), with the same headers an API
response carries. No auth, no database, no logging: what one Tornado process can do at best
on this machine.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal

import tornado.web
from tornado.httpserver import HTTPServer

SAMPLE = {"id": "652000000000000000000001", "title": "Bare model", "price": 9.99,
          "description": "x" * 400, "tags": ["a", "b", "c"], "views": 1, "likes": 2}


class FixedJsonHandler(tornado.web.RequestHandler):
    def initialize(self, payloads: dict[str, bytes], default: bytes) -> None:
        self.payloads = payloads
        self.default = default

    def get(self, _path: str) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(self.payloads.get(self.request.path, self.default))


async def serve(port: int, payloads: dict[str, bytes]) -> None:
    default = json.dumps(SAMPLE).encode()
    app = tornado.web.Application(
        [(r"/(.*)", FixedJsonHandler, {"payloads": payloads, "default": default})],
        log_function=lambda handler: None)
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    sizes = ", ".join(f"{path}: {len(body)} bytes" for path, body in payloads.items())
    print(f"bare server on http://127.0.0.1:{port} ({sizes or 'sample only'})", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--body", action="append", default=[], metavar="PATH=FILE",
                        help="answer PATH with the bytes of FILE (repeatable)")
    args = parser.parse_args()
    payloads = {}
    for item in args.body:
        path, _, filename = item.partition("=")
        with open(filename, "rb") as handle:
            payloads[path] = handle.read()
    asyncio.run(serve(args.port, payloads))


if __name__ == "__main__":
    main()
