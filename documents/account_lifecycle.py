"""Account changes that reach beyond the `users` collection: applying profile and status
changes, bans and deletion (docs/architecture.md §2, §4).

- deactivating an account (`apply_changes` with `is_active: false`) or banning it (`ban`)
  revokes its refresh tokens; its access tokens are then refused by the account checks of
  `sessions.authenticate` (403 ACCOUNT_DISABLED); reactivating it invalidates older access
  tokens;
- deletion (`delete_account`) anonymises the account instead of removing the document, so
  that purchases, models and messages keep a valid reference: email, username and every
  personal field are replaced, follows are removed (counters fixed), sessions end.

This module sits above `users`, `sessions` and `follows`; none of them imports it.
"""
from __future__ import annotations

from datetime import timedelta

from documents import admin_actions, follows, search_kinds, sessions, users
from documents.common import utcnow
from documents.errors import Conflict, NotFound

COLLECTION = users.COLLECTION


async def apply_changes(db, actor: dict, target: dict, changes: dict) -> dict:
    """Check (`check_changes`) and store `changes` to `target`; returns the new document.

    Raises Forbidden, Conflict USERNAME_ALREADY_EXISTS (409), NotFound. Deactivating an
    account revokes its refresh tokens; reactivating it invalidates older access tokens.
    """
    users.check_changes(actor, target, changes)
    if not changes:
        return target
    username = changes.get("username")
    if username and username.lower() != target["username_lower"]:
        taken = await db[COLLECTION].find_one({"username_lower": username.lower()}, {"_id": 1})
        if taken:
            raise Conflict("This username is taken", "USERNAME_ALREADY_EXISTS")
    updates = users.set_document(users.with_derived_name(target, changes))
    if changes.get("is_active") is True and not target.get("is_active", True):
        updates["tokens_valid_after"] = utcnow()
    user = await users.update(db, target["_id"], updates)
    if changes.get("is_active") is False:
        await sessions.revoke_refresh_tokens(db, target["_id"])
    if actor["_id"] != target["_id"]:
        await admin_actions.record(db, actor, "user_updated", "user", user["_id"],
                                   {"fields": sorted(changes)})
    return user


async def ban(db, user_id, admin: dict, reason: str) -> dict:
    """Ban the account (from active to banned) and revoke its refresh tokens; returns it.

    Its access tokens are answered 403 ACCOUNT_DISABLED from the next request on; recorded as
    `user_banned` in the admin log. Raises
    Conflict ALREADY_BANNED (409), NotFound.
    """
    now = utcnow()
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "is_banned": {"$ne": True}},
        {"$set": {"is_banned": True, "ban_reason": reason, "banned_at": now,
                  "banned_by": admin["_id"], "updated_at": now}}, return_document=True)
    if user is None:
        await users.require_account(db, user_id)
        raise Conflict("This account is already banned", "ALREADY_BANNED")
    await sessions.revoke_refresh_tokens(db, user_id)
    await admin_actions.record(db, admin, "user_banned", "user", user_id, {"reason": reason})
    await search_kinds.index_user(db, user)
    return user


def _anonymised(user_id, now) -> dict:
    """The `$set` that removes every personal field of an account."""
    return {
        "email": f"deleted-{user_id}@deleted.invalid", "username": f"deleted-{user_id}",
        "username_lower": f"deleted-{user_id}", "password_hash": None, "full_name": None,
        "bio": None, "avatar_url": None, "profile": {"skills": [], "software": []},
        "staff_role": None, "permissions": [], "totp_secret": None, "is_active": False,
        "is_verified": False, "is_verified_creator": False, "followers_count": 0,
        "following_count": 0, "last_login": None, "deleted_at": now, "updated_at": now,
        # every token issued up to the end of this second is refused (iat has 1 s resolution)
        "tokens_valid_after": now.replace(microsecond=0) + timedelta(seconds=1),
    }


async def delete_account(db, user_id, *, by: dict | None = None) -> dict:
    """Delete an account: anonymise it, end its sessions, remove its follows; returns the document.

    The document stays (ids referenced by orders and content keep resolving) with no
    personal data: email and username become `deleted-<id>`, profile, names, avatar,
    password, OAuth links and TOTP secret are removed, `is_active` false, `deleted_at` set.
    When `by` (a staff account) deletes someone else, the deletion is recorded as
    `user_deleted` with the former username. Raises NotFound when there is no such
    (undeleted) account.
    """
    before = await users.get(db, user_id) if by is not None and by["_id"] != user_id else None
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "deleted_at": None},
        {"$set": _anonymised(user_id, utcnow()),
         "$unset": {"google_id": "", "github_id": "", "discord_id": ""}},
        return_document=True)
    if user is None:
        raise NotFound("User not found", "USER_NOT_FOUND")
    await sessions.revoke_refresh_tokens(db, user_id)
    await follows.remove_all(db, user_id)
    await db[COLLECTION].update_one({"_id": user_id},
                                    {"$set": {"followers_count": 0, "following_count": 0}})
    if before is not None:
        await admin_actions.record(db, by, "user_deleted", "user", user_id,
                                   {"username": before["username"]})
    await search_kinds.index_user(db, user, renamed=True)
    return user
