"""User accounts: the `users` collection, roles and staff permissions, password hashing.

A user document (seed 000 §1 `User`, §2 `UserProfile`, seed 004 `User`)::

    {_id, email (lower-case, unique), username (unique, case-insensitive via username_lower),
     password_hash (bcrypt) | None for OAuth-only accounts, full_name, bio, avatar_url,
     user_type: "buyer" | "creator", staff_role: None | "moderator" | "admin" | "superadmin",
     permissions: [str] (extra staff permissions), is_verified, is_active, is_banned,
     is_verified_creator, profile: {phone, country, city, website, twitter, instagram,
     portfolio_url, skills: [str], software: [str]}, google_id, github_id, discord_id,
     totp_secret (staff), followers_count, following_count, total_models, total_sales_cents,
     rating, tokens_valid_after (datetime: access tokens issued before it are refused),
     ban_reason, banned_at, banned_by (set while banned), deleted_at (set once deleted),
     created_at, updated_at, last_login}

Passwords are hashed with bcrypt in a thread pool (never on the event loop, DESIGN §3).

Account rules kept here (issue 2 item 7, seed 000 §2 and §7, seed 001 §7 and §13):
- who may change which field (`check_changes`): own profile fields by the user; buyer →
  creator by the user; `user_type`, `is_active`, `is_verified`, `is_verified_creator` by
  holders of `users.manage`; `staff_role` only with `staff.manage` (superadmin); a staff
  account is changed by someone else only with `staff.manage`.
- deletion (`delete_account`) anonymises the account instead of removing the document, so
  that purchases, models and messages keep a valid reference: email, username and every
  personal field are replaced, follows are removed (counters fixed), sessions end.
- a ban (`ban`) keeps the account but refuses its access tokens (403 ACCOUNT_DISABLED from
  `sessions.authenticate`) and revokes its refresh tokens; `unban` makes access tokens
  issued before it invalid, so the user signs in again.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import bcrypt
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents.common import object_id, omit, paginate, render, search_regex, utcnow
from documents.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound

COLLECTION = "users"

INDEXES = {
    COLLECTION: [
        IndexModel([("email", ASCENDING)], unique=True),
        IndexModel([("username_lower", ASCENDING)], unique=True),
        IndexModel([("google_id", ASCENDING)], sparse=True),
        IndexModel([("github_id", ASCENDING)], sparse=True),
        IndexModel([("discord_id", ASCENDING)], sparse=True),
        IndexModel([("user_type", ASCENDING), ("created_at", ASCENDING)]),
    ]
}

USER_TYPES = ("buyer", "creator")
STAFF_ROLES = ("moderator", "admin", "superadmin")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,30}$")

# Staff permissions (seed 000 `AdminUser.permissions`). A role holds its own and every
# lower role's; `permissions` on the user document adds single grants.
_MODERATOR = frozenset({
    "models.moderate", "communities.moderate", "reports.resolve", "support.manage",
    "bounties.moderate",
})
_ADMIN = _MODERATOR | {
    "users.manage", "revenue.manage", "content.manage", "analytics.view", "emails.send",
    "settings.manage", "courses.manage", "categories.manage",
}
_SUPERADMIN = _ADMIN | {"users.delete", "staff.manage"}
ROLE_PERMISSIONS = {"moderator": _MODERATOR, "admin": _ADMIN, "superadmin": _SUPERADMIN}

PROFILE_FIELDS = ("phone", "country", "city", "website", "twitter", "instagram",
                  "portfolio_url", "skills", "software")
PRIVATE_FIELDS = ("password_hash", "totp_secret", "username_lower", "tokens_valid_after",
                  "google_id", "github_id", "discord_id", "permissions")
PUBLIC_HIDDEN = PRIVATE_FIELDS + ("email", "last_login", "is_banned", "is_active", "staff_role",
                                  "is_verified", "ban_reason", "banned_at", "banned_by",
                                  "deleted_at")
PUBLIC_HIDDEN_PROFILE = ("phone",)
SELF_FIELDS = ("full_name", "bio", "avatar_url", "username") + PROFILE_FIELDS
ADMIN_FIELDS = ("is_active", "is_verified", "is_verified_creator")
PASSWORD_MIN_BYTES, PASSWORD_MAX_BYTES = 8, 72


# --------------------------------------------------------------------------- roles

def roles_of(user: dict | None) -> list[str]:
    """The token's `roles` claim: the user_type, plus the staff role when there is one."""
    if not user:
        return []
    out = [user.get("user_type", "buyer")]
    if user.get("staff_role"):
        out.append(user["staff_role"])
    return out


def is_staff(user: dict | None) -> bool:
    return bool(user and user.get("staff_role") in STAFF_ROLES)


def has_permission(user: dict | None, permission: str) -> bool:
    """True when the staff role of `user` (or an extra grant) includes `permission`."""
    if not is_staff(user):
        return False
    return permission in ROLE_PERMISSIONS[user["staff_role"]] or permission in user.get(
        "permissions", ())


# --------------------------------------------------------------------------- passwords

async def hash_password(password: str, rounds: int) -> str:
    """bcrypt hash of `password` at `rounds`, computed in the default thread pool."""
    loop = asyncio.get_running_loop()
    hashed = await loop.run_in_executor(
        None, lambda: bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)))
    return hashed.decode("ascii")


async def check_password(password: str, password_hash: str | None) -> bool:
    """True when `password` matches `password_hash`; runs bcrypt in the thread pool.

    With no hash (an OAuth-only account) a dummy hash is still checked, so that the time taken
    does not tell which accounts exist.
    """
    target = (password_hash or _DUMMY_HASH).encode("ascii")
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(
        None, lambda: bcrypt.checkpw(password.encode("utf-8"), target))
    return ok and password_hash is not None


_DUMMY_HASH = "$2b$12$xEkbvaI2V7v.NsqFd34WaO2DSmkYOC9uMj0N.qqiZuIBAla7bt5g2"


# --------------------------------------------------------------------------- reads

async def get(db, user_id: Any) -> dict | None:
    """The user with id `user_id` (an ObjectId or hex string), or None."""
    oid = object_id(user_id)
    return await db[COLLECTION].find_one({"_id": oid}) if oid else None


async def get_by_login(db, login: str) -> dict | None:
    """The user whose email or username (both case-insensitive) is `login`, or None."""
    login = login.strip()
    key = {"email": login.lower()} if "@" in login else {"username_lower": login.lower()}
    return await db[COLLECTION].find_one(key)


async def get_by_email(db, email: str) -> dict | None:
    return await db[COLLECTION].find_one({"email": email.strip().lower()})


async def find(db, ref: str) -> dict:
    """The user named by `ref`: an ObjectId hex or a username. Raises NotFound."""
    oid = object_id(ref)
    user = await db[COLLECTION].find_one({"_id": oid} if oid else {"username_lower": ref.lower()})
    if user is None:
        raise NotFound("User not found", "USER_NOT_FOUND")
    return user


async def get_many(db, ids: Iterable) -> dict:
    """Users by id as ``{ObjectId: user}`` (one query), for rendering authors and creators."""
    wanted = list({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {u["_id"]: u async for u in db[COLLECTION].find({"_id": {"$in": wanted}})}


# --------------------------------------------------------------------------- writes

def new_user(email: str, username: str, password_hash: str | None, *, full_name: str | None = None,
             user_type: str = "buyer", staff_role: str | None = None, is_verified: bool = False,
             **extra) -> dict:
    """A fresh user document with every counter at zero."""
    now = utcnow()
    doc = {
        "email": email.strip().lower(), "username": username, "username_lower": username.lower(),
        "password_hash": password_hash, "full_name": full_name, "bio": None, "avatar_url": None,
        "user_type": user_type, "staff_role": staff_role, "permissions": [],
        "is_verified": is_verified, "is_active": True, "is_banned": False,
        "is_verified_creator": False, "profile": {"skills": [], "software": []},
        "followers_count": 0, "following_count": 0, "total_models": 0,
        "total_sales_cents": 0, "rating": 0.0, "tokens_valid_after": None,
        "created_at": now, "updated_at": now, "last_login": None,
    }
    doc.update(extra)
    return doc


async def insert(db, doc: dict) -> dict:
    """Insert a new user. Raises Conflict EMAIL_ALREADY_EXISTS / USERNAME_ALREADY_EXISTS (409)."""
    if await db[COLLECTION].find_one({"email": doc["email"]}, {"_id": 1}):
        raise Conflict("An account with this email already exists", "EMAIL_ALREADY_EXISTS")
    if await db[COLLECTION].find_one({"username_lower": doc["username_lower"]}, {"_id": 1}):
        raise Conflict("This username is taken", "USERNAME_ALREADY_EXISTS")
    try:
        result = await db[COLLECTION].insert_one(doc)
    except DuplicateKeyError as exc:
        code = "EMAIL_ALREADY_EXISTS" if "email" in str(exc) else "USERNAME_ALREADY_EXISTS"
        raise Conflict("An account with these details already exists", code) from None
    doc["_id"] = result.inserted_id
    return doc


async def update(db, user_id, changes: dict) -> dict:
    """Apply `$set` `changes` (plus updated_at) and return the new document. Raises NotFound."""
    changes = {**changes, "updated_at": utcnow()}
    if "username" in changes:
        changes["username_lower"] = changes["username"].lower()
    try:
        user = await db[COLLECTION].find_one_and_update(
            {"_id": user_id}, {"$set": changes}, return_document=True)
    except DuplicateKeyError:
        raise Conflict("This username is taken", "USERNAME_ALREADY_EXISTS") from None
    if user is None:
        raise NotFound("User not found", "USER_NOT_FOUND")
    return user


async def touch_login(db, user_id) -> None:
    await db[COLLECTION].update_one({"_id": user_id}, {"$set": {"last_login": utcnow()}})


async def revoke_all_tokens(db, user_id) -> None:
    """Access tokens of `user_id` issued before now stop working (password reset, deletion)."""
    await db[COLLECTION].update_one({"_id": user_id},
                                    {"$set": {"tokens_valid_after": utcnow()}})


# --------------------------------------------------------------------------- lookups by reference

async def find_existing(db, ref: str) -> dict:
    """`find`, but a deleted account is NotFound too (for profile and admin routes)."""
    user = await find(db, ref)
    if user.get("deleted_at"):
        raise NotFound("User not found", "USER_NOT_FOUND")
    return user


def is_visible(user: dict) -> bool:
    """True when the account shows publicly: not deleted, active, not banned."""
    return bool(user.get("is_active", True) and not user.get("is_banned")
                and not user.get("deleted_at"))


async def find_visible(db, ref: str) -> dict:
    """The user named by `ref` (id hex or username) if its profile is public, else NotFound."""
    user = await find(db, ref)
    if not is_visible(user):
        raise NotFound("User not found", "USER_NOT_FOUND")
    return user


# --------------------------------------------------------------------------- password policy

def password_problems(password: str) -> list[str]:
    """What is wrong with `password` under the registration policy (issue 2 item 6):
    8–72 bytes (UTF-8), at least one letter and one digit. Empty list when it is fine."""
    problems = []
    size = len(password.encode("utf-8"))
    if size < PASSWORD_MIN_BYTES:
        problems.append(f"Password must be at least {PASSWORD_MIN_BYTES} characters")
    if size > PASSWORD_MAX_BYTES:
        problems.append(f"Password must be at most {PASSWORD_MAX_BYTES} bytes")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        problems.append("Password must contain a letter and a digit")
    return problems


async def change_password(db, user: dict, current_password: str, new_password: str,
                          rounds: int) -> dict:
    """Replace the password of `user` after checking `current_password`; returns the new document.

    Raises BadRequest NO_PASSWORD (an OAuth-only account: use forgot-password to set one),
    Invalid (422) when `new_password` breaks the policy or equals the current one,
    BadRequest INVALID_PASSWORD when `current_password` is wrong, Conflict when the password
    changed meanwhile. Ending the other sessions is the caller's (`sessions.end_all_sessions`).
    """
    old_hash = user.get("password_hash")
    if not old_hash:
        raise BadRequest("This account has no password; set one with forgot-password",
                         "NO_PASSWORD")
    problems = password_problems(new_password)
    if problems:
        raise Invalid({"new_password": problems})
    if not await check_password(current_password, old_hash):
        raise BadRequest("Current password is incorrect", "INVALID_PASSWORD",
                         field_errors={"current_password": ["Current password is incorrect"]})
    if current_password == new_password:
        raise Invalid({"new_password": ["New password must differ from the current one"]})
    new_hash = await hash_password(new_password, rounds)
    updated = await db[COLLECTION].find_one_and_update(
        {"_id": user["_id"], "password_hash": old_hash},
        {"$set": {"password_hash": new_hash, "updated_at": utcnow()}}, return_document=True)
    if updated is None:
        raise Conflict("The password was changed meanwhile; try again", "CONFLICT")
    return updated


async def confirm_deletion(user: dict, password: str | None, confirm: str | None) -> None:
    """Check the confirmation of an account deletion (seed 001 §7 Settings).

    An account with a password confirms with it; an OAuth-only account with
    ``confirm == "DELETE"``. Raises BadRequest INVALID_PASSWORD / CONFIRMATION_REQUIRED.
    """
    if user.get("password_hash"):
        if not password or not await check_password(password, user["password_hash"]):
            raise BadRequest("Password is incorrect", "INVALID_PASSWORD",
                             field_errors={"password": ["Password is incorrect"]})
    elif confirm != "DELETE":
        raise BadRequest('Confirm with "confirm": "DELETE"', "CONFIRMATION_REQUIRED",
                         field_errors={"confirm": ['Must be "DELETE"']})


# --------------------------------------------------------------------------- changes

def check_changes(actor: dict, target: dict, changes: dict) -> None:
    """Raise Forbidden unless `actor` may apply `changes` (field → value) to `target`.

    Rules (issue 2 item 7, seed 000 §7): anyone their own profile fields and buyer → creator;
    `users.manage` for other users, `user_type`, `is_active`, `is_verified`,
    `is_verified_creator`; `staff.manage` for `staff_role` and for anyone else's staff
    account; nobody their own `staff_role` or `is_active`.
    """
    is_self = actor["_id"] == target["_id"]
    manage = has_permission(actor, "users.manage")
    if not is_self and not manage:
        raise Forbidden("You can only change your own profile")
    if not is_self and is_staff(target) and not has_permission(actor, "staff.manage"):
        raise Forbidden("Only a superadmin can change a staff account")
    if any(f in changes for f in ADMIN_FIELDS) and not manage:
        raise Forbidden("Only an admin can change account status")
    if "staff_role" in changes and not has_permission(actor, "staff.manage"):
        raise Forbidden("Only a superadmin can change staff roles")
    if is_self and ("staff_role" in changes or changes.get("is_active") is False):
        raise Forbidden("You cannot change your own staff role or deactivate yourself")
    wanted = changes.get("user_type", target.get("user_type"))
    if wanted != target.get("user_type") and not manage and not (
            target.get("user_type") == "buyer" and wanted == "creator"):
        raise Forbidden("An account type can only change from buyer to creator")


def _set_document(changes: dict) -> dict:
    """Flat API fields as a `$set` document: profile fields go under `profile.`."""
    out = {}
    for name, value in changes.items():
        out[f"profile.{name}" if name in PROFILE_FIELDS else name] = value
    return out


async def apply_changes(db, actor: dict, target: dict, changes: dict) -> dict:
    """Check (`check_changes`) and store `changes` to `target`; returns the new document.

    Raises Forbidden, Conflict USERNAME_ALREADY_EXISTS (409), NotFound. Deactivating an
    account revokes its refresh tokens; reactivating it invalidates older access tokens.
    """
    check_changes(actor, target, changes)
    if not changes:
        return target
    username = changes.get("username")
    if username and username.lower() != target["username_lower"]:
        taken = await db[COLLECTION].find_one({"username_lower": username.lower()}, {"_id": 1})
        if taken:
            raise Conflict("This username is taken", "USERNAME_ALREADY_EXISTS")
    updates = _set_document(changes)
    if changes.get("is_active") is True and not target.get("is_active", True):
        updates["tokens_valid_after"] = utcnow()
    user = await update(db, target["_id"], updates)
    if changes.get("is_active") is False:
        await revoke_refresh_tokens(db, target["_id"])
    return user


async def revoke_refresh_tokens(db, user_id) -> None:
    """Revoke every refresh token of `user_id`, leaving access tokens to the account checks."""
    from documents import sessions  # sessions imports this module

    await db[sessions.REFRESH].update_many({"user_id": user_id, "status": {"$ne": "revoked"}},
                                           {"$set": {"status": "revoked", "revoked_at": utcnow()}})


# --------------------------------------------------------------------------- bans

async def ban(db, user_id, admin: dict, reason: str) -> dict:
    """Ban the account (from active to banned) and revoke its refresh tokens; returns it.

    Its access tokens are answered 403 ACCOUNT_DISABLED from the next request on. Raises
    Conflict ALREADY_BANNED (409), NotFound.
    """
    now = utcnow()
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "is_banned": {"$ne": True}},
        {"$set": {"is_banned": True, "ban_reason": reason, "banned_at": now,
                  "banned_by": admin["_id"], "updated_at": now}}, return_document=True)
    if user is None:
        await _require(db, user_id)
        raise Conflict("This account is already banned", "ALREADY_BANNED")
    await revoke_refresh_tokens(db, user_id)
    return user


async def unban(db, user_id) -> dict:
    """Lift a ban; access tokens issued before now stay invalid. Raises Conflict NOT_BANNED, NotFound."""
    now = utcnow()
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "is_banned": True},
        {"$set": {"is_banned": False, "ban_reason": None, "banned_at": None, "banned_by": None,
                  "tokens_valid_after": now, "updated_at": now}}, return_document=True)
    if user is None:
        await _require(db, user_id)
        raise Conflict("This account is not banned", "NOT_BANNED")
    return user


async def verify_creator(db, user_id) -> tuple[dict, bool]:
    """Mark a creator as a verified creator; returns (user, changed).

    Raises BadRequest NOT_A_CREATOR when the account is not a creator, NotFound.
    """
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "user_type": "creator", "is_verified_creator": {"$ne": True}},
        {"$set": {"is_verified_creator": True, "updated_at": utcnow()}}, return_document=True)
    if user is not None:
        return user, True
    user = await _require(db, user_id)
    if user.get("user_type") != "creator":
        raise BadRequest("Only creators can be verified", "NOT_A_CREATOR")
    return user, False


async def _require(db, user_id) -> dict:
    user = await db[COLLECTION].find_one({"_id": user_id})
    if user is None or user.get("deleted_at"):
        raise NotFound("User not found", "USER_NOT_FOUND")
    return user


# --------------------------------------------------------------------------- deletion

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


async def delete_account(db, user_id) -> dict:
    """Delete an account: anonymise it, end its sessions, remove its follows; returns the document.

    The document stays (ids referenced by orders and content keep resolving) with no
    personal data: email and username become `deleted-<id>`, profile, names, avatar,
    password, OAuth links and TOTP secret are removed, `is_active` false, `deleted_at` set.
    Raises NotFound when there is no such (undeleted) account.
    """
    from documents import follows  # follows imports this module

    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "deleted_at": None},
        {"$set": _anonymised(user_id, utcnow()),
         "$unset": {"google_id": "", "github_id": "", "discord_id": ""}},
        return_document=True)
    if user is None:
        raise NotFound("User not found", "USER_NOT_FOUND")
    await revoke_refresh_tokens(db, user_id)
    await follows.remove_all(db, user_id)
    await db[COLLECTION].update_one({"_id": user_id},
                                    {"$set": {"followers_count": 0, "following_count": 0}})
    return user


# --------------------------------------------------------------------------- administration

def list_query(search: str | None = None, user_type: str | None = None,
               is_verified: bool | None = None, status: str | None = None) -> dict:
    """The filter of the admin user list (seed 000 §7 GET /api/admin/users).

    `search` matches username, email or full_name literally (case-insensitive); `status`
    is active (active, not banned), banned, or inactive (deactivated or deleted).
    """
    query: dict = {}
    if search:
        rx = search_regex(search)
        query["$or"] = [{"username": rx}, {"email": rx}, {"full_name": rx}]
    if user_type:
        query["user_type"] = user_type
    if is_verified is not None:
        query["is_verified"] = is_verified
    if status == "active":
        query.update({"is_active": True, "is_banned": {"$ne": True}})
    elif status == "banned":
        query["is_banned"] = True
    elif status == "inactive":
        query["is_active"] = False
    return query


async def list_page(db, filters: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of users matching `list_query(**filters)`, newest first, in the admin view."""
    docs, meta = await paginate(db[COLLECTION], list_query(**filters), page=page, limit=limit,
                                sort=[("created_at", -1), ("_id", -1)])
    return [render_private(d) for d in docs], meta


async def create_by_admin(db, actor: dict, data: dict, rounds: int) -> dict:
    """An account created by an admin (POST /api/users) with a password; returns the document.

    `data`: email, username, password, and optional full_name, user_type, staff_role,
    is_verified. Raises Forbidden when `staff_role` is set without `staff.manage`, Invalid
    for a weak password, Conflict for a taken email or username.
    """
    if data.get("staff_role") and not has_permission(actor, "staff.manage"):
        raise Forbidden("Only a superadmin can create staff accounts")
    problems = password_problems(data["password"])
    if problems:
        raise Invalid({"password": problems})
    password_hash = await hash_password(data["password"], rounds)
    doc = new_user(data["email"], data["username"], password_hash,
                   full_name=data.get("full_name"), user_type=data.get("user_type", "buyer"),
                   staff_role=data.get("staff_role"), is_verified=data.get("is_verified", False))
    return await insert(db, doc)


# --------------------------------------------------------------------------- rendering

def render_private(user: dict) -> dict:
    """The user as they see themselves (GET /api/users/me): everything but secrets."""
    out = render(omit(user, PRIVATE_FIELDS))
    out["roles"] = roles_of(user)
    out["is_staff"] = is_staff(user)
    out["has_password"] = bool(user.get("password_hash"))
    out["two_factor_enabled"] = bool(user.get("totp_secret"))
    return out


def render_public(user: dict) -> dict:
    """The user as anyone sees them (public profile): no email, phone, account state or secrets."""
    out = render(omit(user, PUBLIC_HIDDEN))
    out["profile"] = omit(out.get("profile") or {}, PUBLIC_HIDDEN_PROFILE)
    return out


def render_brief(user: dict | None) -> dict | None:
    """The few fields shown next to content: id, username, full_name, avatar_url, verified."""
    if not user:
        return None
    return {"id": str(user["_id"]), "username": user["username"],
            "full_name": user.get("full_name"), "avatar_url": user.get("avatar_url"),
            "is_verified_creator": user.get("is_verified_creator", False)}
