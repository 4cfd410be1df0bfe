"""Marketplace search: relevance, suggestion latency, and query time as the catalog grows
(README "Search").

    .venv/bin/python bench/search_bench.py [--sizes 10000,100000] [--queries 200]
        [--scan-queries 5] [--suggest-rounds 10]

1. Relevance over the fixtures: precision@5 and recall@10 of the query set of
   tests/search_queries.py (definitions there), for the relevance search and, beside it,
   the old literal substring scan (a case-insensitive regex over title, description, tags).
2. Suggestions over HTTP: `server.py` (embedded store, fixtures) on a free port;
   p50/p99 of `GET /api/search/suggest?q=` for prefixes of fixture words; then the same
   calls of `documents.search_engine.suggest` in process.
3. Scale: for each size, a fresh embedded store (as the server opens it: reads by `_id` by
   lookup, the search state with its in-process term index) with that many generated public
   models (Zipf-distributed words, tags, categories, creators), seeded through the document
   layer (`insert_many` of the models, `search_index.replace_kind`, then
   `search_index.load_terms` as at start-up), then over a query mix (one and two words, a
   plural, a typo, a prefix): p50/p99 of `documents.model_search.list_models` (relevance,
   page of 20) and of `search_engine.suggest`, through the in-process term index and, in the
   same store, through the store query on `terms` (the scan path: what MongoDB serves with
   its index, which mongomock answers by reading every search document), beside the old
   regex scan; plus the search documents a query touches (its candidates) against the
   catalog size.

Not a test: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bson import ObjectId

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from search_queries import QUERIES, precision_at, recall_at  # noqa: E402

from documents import (  # noqa: E402
    catalog,
    embedded_store,
    model_listing,
    model_search,
    search_engine,
    search_index,
    search_postings,
    seed,
)
from documents.common import search_regex  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def store():
    """An embedded store as `composition.open_services` opens it (without the seed)."""
    db = embedded_store.open_client(tz_aware=True)["bench"]
    search_postings.attach(db, in_process_index=True)
    return db


def timed(values: list[float], start: float) -> None:
    values.append((time.perf_counter() - start) * 1000)


async def regex_scan(db, text: str, limit: int = 20) -> list[dict]:
    """The old literal search: a regex over title, description and tags, newest first."""
    regex = search_regex(text)
    query = {**catalog.PUBLIC_QUERY, "$or": [{"title": regex}, {"description": regex},
                                              {"tags": regex}]}
    return await db[catalog.COLLECTION].find(query).sort(model_listing.SORTS["newest"]).limit(
        limit).to_list(length=limit)


# --------------------------------------------------------------------------- 1. relevance

async def relevance() -> None:
    db = store()
    await seed.load_fixtures(db)
    await search_index.load_terms(db)
    ours = [0.0, 0.0]
    old = [0.0, 0.0]
    for text, _what, relevant in QUERIES:
        docs, _meta, _ = await model_search.list_models(db, {"search": text}, page=1, limit=10,
                                                        sort=None)
        shown = [str(d["_id"]) for d in docs]
        ours[0] += precision_at(shown, relevant)
        ours[1] += recall_at(shown, relevant)
        shown = [str(d["_id"]) for d in await regex_scan(db, text, 10)]
        old[0] += precision_at(shown, relevant)
        old[1] += recall_at(shown, relevant)
    n = len(QUERIES)
    print(f"1. relevance over the fixtures, {n} queries")
    print(f"   relevance search  precision@5 {ours[0] / n:.3f}  recall@10 {ours[1] / n:.3f}")
    print(f"   substring regex   precision@5 {old[0] / n:.3f}  recall@10 {old[1] / n:.3f}")


# --------------------------------------------------------------------------- 2. suggestions

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PREFIXES = [w[:n] for w in ("stone", "wooden", "chair", "robot", "lighthouse", "casey",
                            "furniture", "medieval", "space", "rubber duck") for n in (1, 2, 3, 5)]


def suggestions(rounds: int) -> None:
    port = free_port()
    env = dict(os.environ, RATE_LIMITS_ENABLED="false", LOG_LEVEL="warning",
               DATA_DIR=str(ROOT / "data" / "bench-search"))
    proc = subprocess.Popen([sys.executable, "server.py", "--port", str(port), "--seed"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.1)
        times = []
        for _ in range(rounds):
            for prefix in PREFIXES:
                start = time.perf_counter()
                urllib.request.urlopen(f"{base}/api/search/suggest?q="
                                       + urllib.parse.quote(prefix), timeout=10).read()
                times.append((time.perf_counter() - start) * 1000)
        print(f"2. suggestions over HTTP (fixtures), {len(times)} requests: "
              f"p50 {pct(times, 50):.1f} ms  p99 {pct(times, 99):.1f} ms  max {max(times):.1f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def suggestions_in_process(rounds: int) -> None:
    """The same prefixes through `search_engine.suggest` on a seeded embedded store: the
    suggestion's own cost without HTTP and the server process."""
    db = store()
    await seed.load_fixtures(db)
    await search_index.load_terms(db)
    await search_engine.suggest(db, "models", "a")          # the vocabulary is loaded once
    times = []
    for _ in range(rounds):
        for prefix in PREFIXES:
            start = time.perf_counter()
            await search_engine.suggest(db, "models", prefix)
            times.append((time.perf_counter() - start) * 1000)
    print(f"   in process, {len(times)} calls: p50 {pct(times, 50):.2f} ms  "
          f"p99 {pct(times, 99):.2f} ms")


# --------------------------------------------------------------------------- 3. scale

SYLLABLES = ("ka ro mi ta ne lu so ve di pa gor lin tur mes bra qui zan fel dor sim hal cre "
             "wob nix pel tav rum gis ost").split()
CATEGORIES = ("Characters", "Vehicles", "Architecture", "Props", "Weapons", "Nature",
              "Animals", "Furniture", "Sci-Fi", "Abstract")


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def zipf_pick(rng: random.Random, words: list[str], weights: list[float], k: int) -> list[str]:
    return rng.choices(words, weights=weights, k=k)


def generate(n: int, seed_: int = 7) -> tuple[list[dict], list[dict], list[str], list[float]]:
    rng = random.Random(seed_)
    words = vocabulary(6000, rng)
    weights = [1 / (i + 1) for i in range(len(words))]
    creators = [{"_id": ObjectId(), "username": f"maker{i}", "full_name": f"Maker {w.title()}"}
                for i, w in enumerate(words[:500])]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    models = []
    for i in range(n):
        title = zipf_pick(rng, words, weights, rng.randint(2, 3))
        price = rng.choice((0, 499, 999, 1999, 4999, 7999))
        models.append({
            "_id": ObjectId(), "creator_id": rng.choice(creators)["_id"],
            "title": " ".join(w.title() for w in title),
            "description": " ".join(zipf_pick(rng, words, weights, rng.randint(8, 14))),
            "tags": sorted(set(zipf_pick(rng, words[:1500], weights[:1500], 4))),
            "category": rng.choice(CATEGORIES), "price_cents": price, "is_free": price == 0,
            "file_format": "GLB", "file_formats": ["GLB"], "poly_count": rng.randint(10, 200_000),
            "has_animations": rng.random() < 0.1, "has_rigging": rng.random() < 0.1,
            "views": rng.randint(0, 5000), "likes": rng.randint(0, 500),
            "downloads": rng.randint(0, 800), "sales_count": 0, "status": "approved",
            "is_published": True, "created_at": start + timedelta(minutes=i),
        })
    return models, creators, words, weights


def query_mix(words: list[str], count: int, rng: random.Random) -> list[str]:
    """One and two common/rare words, a plural, a typo, a prefix, in turn."""
    out = []
    for i in range(count):
        a, b = rng.choice(words[:300]), rng.choice(words[:3000])
        kind = i % 5
        if kind == 0:
            out.append(b)
        elif kind == 1:
            out.append(f"{a} {b}")
        elif kind == 2:
            out.append(b + "s")
        elif kind == 3:
            cut = rng.randrange(1, len(b) - 1)
            out.append(b[:cut] + b[cut + 1] + b[cut] + b[cut + 2:] if len(b) >= 5 else b)
        else:
            out.append(b[:max(3, len(b) - 2)])
    return out


async def seeded(size: int) -> tuple:
    """A store with `size` generated models and their search documents (module docstring);
    returns (store, words, seconds to generate and store, seconds to build the term index)."""
    started = time.perf_counter()
    models, creators, words, _weights = generate(size)
    db = store()
    await db["users"].insert_many(creators)
    await db[catalog.COLLECTION].insert_many(models)
    by_id = {c["_id"]: c for c in creators}
    docs = [search_index.model_document(m, by_id[m["creator_id"]]) for m in models]
    await search_index.replace_kind(db, "models", docs)
    stored = time.perf_counter() - started
    started = time.perf_counter()
    await search_index.load_terms(db)
    return db, words, stored, time.perf_counter() - started


async def measure(db, mix: list[str], *, list_too: bool = True) -> dict:
    """Timings (ms) of the list search and of suggestions over `mix`, and the matches."""
    out: dict = {"list": [], "suggest": [], "found": []}
    for text in mix:
        if list_too:
            start = time.perf_counter()
            _docs, meta, _ = await model_search.list_models(db, {"search": text}, page=1,
                                                            limit=20, sort=None)
            timed(out["list"], start)
            out["found"].append(meta["total"])
        start = time.perf_counter()
        await search_engine.suggest(db, "models", text[:4])
        timed(out["suggest"], start)
    return out


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"   {name:<34} —"
    return (f"   {name:<34} p50 {pct(values, 50):9.2f} ms  p99 {pct(values, 99):9.2f} ms  "
            f"({len(values)} runs)")


async def scale(size: int, queries: int, scan_queries: int) -> None:
    db, words, stored, built = await seeded(size)
    mix = query_mix(words, queries, random.Random(size))
    state = search_postings.state_of(db)
    index = state.terms
    await measure(db, mix[:2])                   # vocabulary loaded once
    ours = await measure(db, mix)
    touched = []
    for text in mix:
        words_ = await search_engine.expansions(db, "models", text)
        touched.append(len(index.candidates("models", words_)) if words_ else 0)
    state.terms = None                           # the same store, through the store query
    scan = await measure(db, mix[:scan_queries])
    state.terms = index
    old = []
    for text in mix[:scan_queries]:
        start = time.perf_counter()
        await regex_scan(db, text)
        timed(old, start)
    print(f"3. {size:>7,} models (generated and stored in {stored:.0f} s, term index built "
          f"from the search documents in {built:.1f} s):")
    print(line("list search, in-process term index", ours["list"])
          + f"  median {statistics.median(ours['found']):.0f} matches")
    print(line("list search, store query on terms", scan["list"]))
    print(line("regex scan (old literal search)", old))
    print(line("suggest, in-process term index", ours["suggest"]))
    print(line("suggest, store query on terms", scan["suggest"]))
    print(f"   search documents a query touches: median {statistics.median(touched):.0f}, "
          f"max {max(touched)} of {size:,} ({100 * statistics.median(touched) / size:.2f} %; "
          f"the store query reads 100 % on mongomock)")


async def main(args: argparse.Namespace) -> None:
    await relevance()
    suggestions(args.suggest_rounds)
    await suggestions_in_process(args.suggest_rounds)
    for size in (int(s) for s in args.sizes.split(",") if s):
        await scale(size, args.queries, args.scan_queries)


if __name__ == "__main__":
    import urllib.parse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--scan-queries", type=int, default=5,
                        help="queries per size through the scan paths (slow: whole catalog)")
    parser.add_argument("--suggest-rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
