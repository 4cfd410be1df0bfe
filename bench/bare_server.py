"""A bare Tornado JSON server on the same store: the yardstick of `bench/http_bench.py`.

    python bench/bare_server.py --port 9000 [--mongodb-url URL --mongodb-db NAME]

Without `--mongodb-url` it opens an in-memory store of its own — the embedded store of
`documents/embedded_store.py`, as `server.py` does (mongomock-motor whose reads by `_id`
look documents up) — seeded with the same fixture documents as `server.py`; with it, it
reads the very database the measured server reads. Two routes, each running the same store
query as our handler and encoding the documents it gets (orjson; ObjectIds as strings),
nothing else — no auth, no rendering, no creator cards, no logging, no metrics:

- `GET /api/models/{id}`: ``find_one({_id})`` of `models`
- `GET /api/models?limit=N`: one page of approved, published models, newest first, and
  their count (what `documents.common.paginate` asks a full page for)

So hwc3d / bare isolates our own cost on top of the store's. Any other path answers 404.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import orjson
import tornado.web
from bson import ObjectId
from tornado.httpserver import HTTPServer

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = {"status": "approved", "is_published": True}
NEWEST = [("created_at", -1), ("_id", -1)]


def encode(value) -> bytes:
    return orjson.dumps(value, default=str)


class BareHandler(tornado.web.RequestHandler):
    def initialize(self, db) -> None:
        self.db = db

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")


class ModelHandler(BareHandler):
    async def get(self, model_id: str) -> None:
        doc = await self.db["models"].find_one({"_id": ObjectId(model_id)})
        if doc is None:
            raise tornado.web.HTTPError(404)
        self.finish(encode(doc))


class ModelListHandler(BareHandler):
    async def get(self) -> None:
        limit = int(self.get_argument("limit", "20"))
        docs = await self.db["models"].find(PUBLIC).sort(NEWEST).limit(limit).to_list(limit)
        total = await self.db["models"].count_documents(PUBLIC)
        self.finish(encode({"items": docs, "total": total, "page": 1, "limit": limit}))


async def open_store(url: str | None, name: str):
    if url:
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(url, tz_aware=True)[name]
    sys.path.insert(0, str(ROOT))
    from documents import embedded_store, seed  # the store and documents server.py uses

    db = embedded_store.open_client(tz_aware=True)[name]
    for collection, docs in seed.fixture_documents().items():
        if docs:
            await db[collection].insert_many(docs)
    return db


async def serve(port: int, url: str | None, name: str) -> None:
    db = await open_store(url, name)
    app = tornado.web.Application([(r"/api/models", ModelListHandler, {"db": db}),
                                   (r"/api/models/([0-9a-f]{24})", ModelHandler, {"db": db})],
                                  log_function=lambda handler: None)
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    print(f"bare server on http://127.0.0.1:{port} ({'wire store' if url else 'in-memory store'})",
          flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--mongodb-url", default=None, help="the store of the measured server")
    parser.add_argument("--mongodb-db", default="hwc3d")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.mongodb_url, args.mongodb_db))


if __name__ == "__main__":
    main()
