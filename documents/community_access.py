"""Who may do what in a community (seed 000 §5, seed 001 §8 and §13; docs/architecture.md §6):
the rules of `documents.communities` that read no collection.

- `chat_access`: "write" for active members and staff holding `communities.moderate`,
  "read" for anyone signed in on a public active community; NotFound for a community that
  is not active (staff excepted), Forbidden NOT_A_MEMBER for a private one;
- `can_read` / `require_read`: posts and members are public on a public active community,
  for active members and staff on a private one;
- `can_manage` / `require_manage`: community admins and moderators (active) and staff.
"""
from __future__ import annotations

from documents import users
from documents.errors import Forbidden, NotFound

MODERATE = "communities.moderate"
ROLES = ("member", "moderator", "admin")
MANAGER_ROLES = ("admin", "moderator")


def chat_access(community: dict, member: dict | None, user: dict) -> str:
    """``"write"`` or ``"read"`` for `user` (with `member`, its membership record or None).

    Raises NotFound when the community is not active (staff excepted) and Forbidden for a
    private community the user is not an active member of.
    """
    staff = users.has_permission(user, MODERATE)
    active_member = bool(member and member.get("status") == "active")
    if community.get("status") != "active" and not staff:
        raise NotFound("Community not found", "COMMUNITY_NOT_FOUND")
    if active_member or staff:
        return "write"
    if community.get("is_private"):
        raise Forbidden("This community is private; join it first", "NOT_A_MEMBER")
    return "read"


def is_moderator(user: dict | None) -> bool:
    """True for staff holding `communities.moderate` (seed 000 `AdminUser`)."""
    return users.has_permission(user, MODERATE)


def is_active_member(member: dict | None) -> bool:
    return bool(member and member.get("status") == "active")


def can_manage(member: dict | None, user: dict | None) -> bool:
    """Community admins/moderators (active) and staff with `communities.moderate`."""
    return is_moderator(user) or bool(is_active_member(member)
                                      and member.get("role") in MANAGER_ROLES)


def can_read(community: dict, member: dict | None, user: dict | None) -> bool:
    """Who sees posts and members: anyone for a public active community; active members and
    staff for a private one."""
    if is_moderator(user):
        return True
    if community.get("status") != "active":
        return False
    return not community.get("is_private") or is_active_member(member)


def require_read(community: dict, member: dict | None, user: dict | None) -> None:
    """Raise Forbidden NOT_A_MEMBER unless `can_read`."""
    if not can_read(community, member, user):
        raise Forbidden("This community is private; join it first", "NOT_A_MEMBER")


def require_manage(member: dict | None, user: dict | None) -> None:
    """Raise Forbidden unless `can_manage` (community admin/moderator or staff)."""
    if not can_manage(member, user):
        raise Forbidden("Only the community's admins and moderators can do this",
                        "NOT_A_COMMUNITY_MODERATOR")
