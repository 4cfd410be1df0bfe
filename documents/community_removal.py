"""Deleting a community with everything that hangs off it (docs/architecture.md §4).

Removal reaches several collections — the community, its members and chat
(`documents.communities`), its posts (`documents.posts`) and the reports about them
(`documents.reports`) — so it lives above those modules, which never import this one.
"""
from __future__ import annotations

from documents import communities, posts, reports


async def remove_community(db, community: dict) -> None:
    """Delete `community` (seed 000 §5 DELETE): the community, its members, chat messages
    and posts (hard delete: the name becomes free); pending reports about its content are
    dismissed. Raises NotFound when it was already gone (nothing else is touched then)."""
    await communities.delete(db, community)
    await posts.remove_all_of_community(db, community["_id"])
    await reports.dismiss_for_community(db, community["_id"], "The community was deleted")
