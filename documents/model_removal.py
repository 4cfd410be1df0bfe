"""Taking a model off the platform with everything that hangs off it (docs/architecture.md §4).

Removal reaches several collections (the model in `catalog`, its entries in `collections`,
its likes, comments, views and media in `engagement`) and checks `purchases`, so it lives
above those modules, which never import this one.
"""
from __future__ import annotations

from documents import collections, engagement, model_writes, purchases
from documents.common import require_id
from documents.errors import Conflict


async def remove_model(db, model_id, *, by_staff: bool = False) -> tuple[dict, list[str]]:
    """Take a model off the platform with everything that hangs off it (seed 000 §3 DELETE).

    A creator cannot delete a model somebody bought (409 MODEL_HAS_PURCHASES: buyers keep
    their downloads; unpublish it instead); staff can, for moderation. Likes, comments, view
    records, media and collection entries go with the model. Returns (the deleted document,
    storage keys of its media for the caller to delete). Raises NotFound, Conflict.
    """
    oid = require_id(model_id, "Model")
    if not by_staff and await purchases.has_buyers(db, oid):
        raise Conflict("This model has buyers; unpublish it instead of deleting it",
                       "MODEL_HAS_PURCHASES")
    doc = await model_writes.delete_model(db, oid)
    await collections.remove_model_everywhere(db, oid)
    return doc, await engagement.remove_for_model(db, oid)
