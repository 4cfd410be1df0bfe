"""Staff changes to communities, each recorded in the admin audit log (seed 000 §7, seed 001
§13 "Community Management"; docs/architecture.md §4 "Side effects beside the write").

The change itself is made by `documents.communities` (create, edit) or
`documents.community_removal` (delete), which owners also use; once it is stored, the
change is recorded as an admin action on target `community` (`community_created`,
`community_updated`, `community_deleted`; approval, which only staff make, is recorded by
`communities.approve`). A failure to record is logged and never undoes the change.
"""
from __future__ import annotations

from typing import Any

from documents import admin_actions, communities, community_removal
from documents.errors import Conflict


async def create(db, admin: dict, data: dict) -> dict:
    """Create a community that is active at once, with `admin` as its admin member (fields
    as `communities.create`); records `community_created` ``{name}``. Returns the stored
    document. Raises Conflict COMMUNITY_NAME_TAKEN (409)."""
    doc = await communities.create(db, admin, data, status="active")
    await admin_actions.record_after(db, admin, "community_created", "community", doc["_id"],
                                     {"name": doc["name"]})
    return doc


async def update(db, admin: dict, community_id: Any, changes: dict) -> dict:
    """Edit any field of a community, or suspend/reactivate it (`status` active or
    suspended); records `community_updated` with `changes` as its details. Returns the new
    document. Raises NotFound, Conflict COMMUNITY_NAME_TAKEN, Conflict
    COMMUNITY_NOT_APPROVED (409) for ``status: active`` on a pending community (approval
    activates it)."""
    community = await communities.require(db, community_id)
    if changes.get("status") == "active" and community["status"] == "pending":
        raise Conflict("A pending community is activated by approving it",
                       "COMMUNITY_NOT_APPROVED")
    after = await communities.update(db, community, changes)
    await admin_actions.record_after(db, admin, "community_updated", "community",
                                     community["_id"], dict(changes))
    return after


async def remove(db, admin: dict, community_id: Any) -> dict:
    """Delete a community with its members, chat and posts
    (`community_removal.remove_community`); records `community_deleted` ``{name}``. Returns
    the deleted document. Raises NotFound."""
    community = await communities.require(db, community_id)
    await community_removal.remove_community(db, community)
    await admin_actions.record_after(db, admin, "community_deleted", "community",
                                     community["_id"], {"name": community["name"]})
    return community
