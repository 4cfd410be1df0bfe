"""Building the whole search index from the store (README "Search"): at the seed, at the
first start of a store that has none, and by hand (`python -m documents.search_build`).

It reads every searchable collection (the models through `documents.catalog`; users,
communities, blog posts and community posts by their owners' collection names, read-only) and replaces each
kind's search documents and vocabulary in `documents.search_index`, so it lives above all.
"""
from __future__ import annotations

from documents import (
    blog,
    catalog,
    communities,
    posts,
    search_index,
    search_kinds,
    search_postings,
    users,
)


def _reader(collection: str, build):
    async def read(db) -> list[dict]:
        return [build(doc) async for doc in db[collection].find({})]
    return read


BUILDERS = (
    ("models", catalog.search_documents),
    ("users", _reader(users.COLLECTION, search_kinds.user_document)),
    ("communities", _reader(communities.COMMUNITIES, search_kinds.community_document)),
    ("blog", _reader(blog.POSTS, search_kinds.blog_document)),
    ("posts", _reader(posts.POSTS, search_kinds.post_document)),
)


async def rebuild(db) -> dict[str, int]:
    """Build every kind's search documents from the store. Returns {kind: documents}."""
    counts = {}
    for kind, build in BUILDERS:
        docs = await build(db)
        await search_index.replace_kind(db, kind, docs)
        counts[kind] = len(docs)
    await search_index.mark_built(db, counts)
    return counts


async def ensure_built(db) -> bool:
    """Build the index when the store has none yet (an existing deployment's first start
    with search documents). Returns True when it was built."""
    if await search_index.is_built(db):
        return False
    await rebuild(db)
    return True


async def open_search(db, *, in_process_index: bool) -> int:
    """Give the store handle `db` its search state at start-up (`documents.search_postings`;
    README "Search", docs/architecture.md §4): the vocabularies kept in memory and, with
    `in_process_index` (the embedded store only: one process by nature), the term index,
    built here from `search_docs`. A handle that already has a state (instances of one
    process sharing an embedded store) keeps it. Returns the search documents indexed in
    memory (0 when none were)."""
    if search_postings.state_of(db) is not None:
        return 0
    search_postings.attach(db, in_process_index=in_process_index)
    return await search_index.load_terms(db)


if __name__ == "__main__":      # pragma: no cover - operations entry point
    import asyncio

    from config import load_settings
    from documents import db as documents_db

    async def _main() -> None:
        settings = load_settings()
        client = documents_db.open_client(settings)
        print(await rebuild(client[settings.mongodb_db]))

    asyncio.run(_main())
