"""Opening the document store and creating every module's indexes at start-up.

With `MONGODB_URL` set: motor against that server. Without: mongomock-motor in memory
(docs/architecture.md §1, embedded default; reads by `_id` by lookup:
`documents.embedded_store`). Both with `tz_aware=True`, so datetimes come back as UTC.
"""
from __future__ import annotations

import importlib
import logging

from pymongo import IndexModel

from config import Settings

log = logging.getLogger(__name__)

# Every module of `documents/` that declares `INDEXES = {collection: [IndexModel, ...]}`.
DOCUMENT_MODULES = (
    "documents.users",
    "documents.sessions",
    "documents.follows",
    "documents.categories",
    "documents.catalog",
    "documents.files",
    "documents.outbox",
    "documents.notifications",
    "documents.support",
    "documents.messages",
    "documents.admin_actions",
    "documents.engagement",
    "documents.collections",
    "documents.money",
    "documents.cart",
    "documents.coupons",
    "documents.orders",
    "documents.purchases",
    "documents.downloads",
    "documents.earnings",
    "documents.payouts",
    "documents.communities",
    "documents.blog",
    "documents.subscriptions",
    "documents.posts",
    "documents.reports",
    "documents.content",
    "documents.email_admin",
    "documents.bounties",
    "documents.courses",
    "documents.search_index",
)


def open_client(settings: Settings, event_listeners=()):
    """A motor client for MONGODB_URL (with pymongo's `event_listeners`, e.g. command
    monitoring), or an in-memory mongomock-motor client (which has no commands to monitor)."""
    if settings.embedded_store:
        from documents import embedded_store

        return embedded_store.open_client(tz_aware=True)
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient(settings.mongodb_url, tz_aware=True, uuidRepresentation="standard",
                              event_listeners=list(event_listeners))


async def ensure_indexes(db) -> None:
    """Create the indexes that each module of DOCUMENT_MODULES declares (idempotent)."""
    for name in DOCUMENT_MODULES:
        module = importlib.import_module(name)
        for collection, indexes in getattr(module, "INDEXES", {}).items():
            models = [i if isinstance(i, IndexModel) else IndexModel(i) for i in indexes]
            if models:
                await db[collection].create_indexes(models)


async def ping(db) -> bool:
    """True when the store answers a ping (used by /readyz)."""
    try:
        await db.command("ping")
        return True
    except Exception:
        log.warning("document store ping failed", exc_info=True)
        return False
