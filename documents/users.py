"""User accounts: the `users` collection, roles and staff permissions, password hashing.

A user document (seed 000 §1 `User`, §2 `UserProfile`, seed 004 `User`)::

    {_id, email (lower-case, unique), username (unique, case-insensitive via username_lower),
     password_hash (bcrypt) | None for OAuth-only accounts, full_name, first_name, last_name
     (optional; full_name is derived from them when not given), bio, avatar_url,
     user_type: "buyer" | "creator", staff_role: None | "moderator" | "admin" | "superadmin",
     permissions: [str] (extra staff permissions), is_verified, is_active, is_banned,
     is_verified_creator, profile: {phone, country, city, website, twitter, instagram,
     portfolio_url, skills: [str], software: [str]}, google_id, github_id, discord_id,
     totp_secret (staff), followers_count, following_count, total_models, total_sales_cents,
     rating, tokens_valid_after (datetime: access tokens issued before it are refused),
     ban_reason, banned_at, banned_by (set while banned), deleted_at (set once deleted),
     created_at, updated_at, last_login}

Passwords are hashed with bcrypt in a thread pool (never on the event loop, docs/architecture.md §3).

Account rules kept here (seed 000 §2 and §7, seed 001 §7 and §13):
- who may change which field (`check_changes`): own profile fields by the user; buyer →
  creator by the user; `user_type`, `is_active`, `is_verified`, `is_verified_creator` by
  holders of `users.manage`; `staff_role` only with `staff.manage` (superadmin); a staff
  account is changed by someone else only with `staff.manage`.
- `unban` makes access tokens issued before it invalid, so the user signs in again.

Changes that reach other collections (changes that end sessions, bans, deletion) live in
`documents.account_lifecycle`, which calls this module, `sessions` and `follows`.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

import bcrypt
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import cards, search_kinds
from documents.common import object_id, omit, render, utcnow
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
                                  "deleted_at", "email_notifications")
PUBLIC_HIDDEN_PROFILE = ("phone",)
SELF_FIELDS = ("full_name", "first_name", "last_name", "bio", "avatar_url", "username",
               "email_notifications") + PROFILE_FIELDS
ADMIN_FIELDS = ("is_active", "is_verified", "is_verified_creator")
PASSWORD_MIN_BYTES, PASSWORD_MAX_BYTES = 8, 72


# --------------------------------------------------------------------------- roles

def roles_of(user: dict | None) -> list[str]:
    """The token's `roles` claim: user_type, `"user"` (every account), the staff role, and
    `"super_admin"` beside `"superadmin"`, e.g. ``["buyer", "user", "superadmin", "super_admin"]``."""
    if not user:
        return []
    out = [user.get("user_type", "buyer"), "user"]
    if user.get("staff_role"):
        out.append(user["staff_role"])
        if user["staff_role"] == "superadmin":
            out.append("super_admin")
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


async def count(db, query: dict) -> int:
    """How many accounts match the MongoDB `query` (deleted ones unless it excludes them)."""
    return await db[COLLECTION].count_documents(query)


async def find_where(db, query: dict, projection: dict, *, limit: int) -> list[dict]:
    """At most `limit` accounts matching `query`, oldest id first, with `projection`'s fields."""
    return await db[COLLECTION].find(query, projection).sort("_id", ASCENDING).to_list(
        length=limit)


async def get_by_provider(db, provider_field: str, provider_id: str) -> dict | None:
    """The account linked to an OAuth identity (`provider_field` e.g. "github_id"), or None."""
    return await db[COLLECTION].find_one({provider_field: provider_id})


async def any_account(db) -> bool:
    """True when the store holds at least one account (deleted ones included)."""
    return await db[COLLECTION].find_one({}, {"_id": 1}) is not None


# The fields `render_brief` shows: the only ones fetched for an author's or creator's card.
BRIEF_PROJECTION = cards.CARD_PROJECTION


async def brief_cards(db, ids: Iterable) -> dict:
    """The accounts `ids` as ``{ObjectId: user}`` with only the fields of their brief card
    (`render_brief`): from the process's card cache where it runs (`documents.cards`), else
    in one query."""
    return await cards.creator_cards(db, COLLECTION, ids)


# --------------------------------------------------------------------------- writes

async def move_counters(db, user_id, **steps: int) -> None:
    """Add `steps` (counter name → signed step, e.g. ``followers_count=1``) to the account's
    counters in one update; nothing when the account is gone."""
    await db[COLLECTION].update_one({"_id": user_id}, {"$inc": steps})


async def link_provider(db, user_id, provider_field: str, provider_id: str) -> dict | None:
    """Link an OAuth identity to the account unless it is linked to another identity of the
    same provider; marks the email verified. Returns the new document, or None when refused."""
    return await db[COLLECTION].find_one_and_update(
        {"_id": user_id, provider_field: {"$in": [None, provider_id]}},
        {"$set": {provider_field: provider_id, "is_verified": True}}, return_document=True)


def new_user(email: str, username: str, password_hash: str | None, *, full_name: str | None = None,
             user_type: str = "buyer", staff_role: str | None = None, is_verified: bool = False,
             first_name: str | None = None, last_name: str | None = None, **extra) -> dict:
    """A fresh user document with every counter at zero; `full_name` defaults to the
    first and last names joined."""
    now = utcnow()
    doc = {
        "email": email.strip().lower(), "username": username, "username_lower": username.lower(),
        "password_hash": password_hash, "full_name": full_name or joined_name(first_name, last_name),
        "first_name": first_name, "last_name": last_name, "bio": None, "avatar_url": None,
        "user_type": user_type, "staff_role": staff_role, "permissions": [],
        "is_verified": is_verified, "is_active": True, "is_banned": False,
        "is_verified_creator": False, "profile": {"skills": [], "software": []},
        "followers_count": 0, "following_count": 0, "total_models": 0,
        "total_sales_cents": 0, "rating": 0.0, "tokens_valid_after": None,
        "created_at": now, "updated_at": now, "last_login": None,
    }
    doc.update(extra)
    return doc


def joined_name(first_name: str | None, last_name: str | None) -> str | None:
    """``"Ada Lovelace"`` from the two names (either may be missing); None when both are."""
    return " ".join(part for part in (first_name, last_name) if part) or None


def with_derived_name(target: dict, changes: dict) -> dict:
    """`changes` plus `full_name` rebuilt from first/last names when they change and no
    `full_name` is given (PATCH/PUT with `firstName`/`lastName`)."""
    if "full_name" in changes or not ({"first_name", "last_name"} & changes.keys()):
        return changes
    first = changes.get("first_name", target.get("first_name"))
    last = changes.get("last_name", target.get("last_name"))
    return {**changes, "full_name": joined_name(first, last)}


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
    await search_kinds.index_user(db, doc)
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
    cards.evict(db, user_id)
    await search_kinds.index_user(db, user, renamed=bool({"username", "full_name"} & set(changes)))
    return user


async def touch_login(db, user_id) -> None:
    await db[COLLECTION].update_one({"_id": user_id}, {"$set": {"last_login": utcnow()}})


async def clear_avatar(db, user_id, url: str) -> None:
    """Unset `user_id`'s `avatar_url` when it is still `url` (its file was deleted)."""
    await db[COLLECTION].update_one({"_id": user_id, "avatar_url": url},
                                    {"$set": {"avatar_url": None, "updated_at": utcnow()}})
    cards.evict(db, user_id)


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
    """What is wrong with a new password: the one password policy of every route that sets
    one (register, change, reset, admin creation, the first superadmin).

    8–72 bytes in UTF-8 (72 is bcrypt's limit), at least one letter and one digit. Returns
    the list of problems, empty when the password is fine.
    """
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

    Rules (seed 000 §7): anyone their own profile fields and buyer → creator;
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


def set_document(changes: dict) -> dict:
    """Flat API fields as a `$set` document: profile fields go under `profile.`."""
    out = {}
    for name, value in changes.items():
        out[f"profile.{name}" if name in PROFILE_FIELDS else name] = value
    return out


# --------------------------------------------------------------------------- bans

async def require_account(db, user_id) -> dict:
    user = await db[COLLECTION].find_one({"_id": user_id})
    if user is None or user.get("deleted_at"):
        raise NotFound("User not found", "USER_NOT_FOUND")
    return user


# --------------------------------------------------------------------------- rendering

def render_private(user: dict) -> dict:
    """The user as they see themselves (GET /api/users/me): everything but secrets, plus the
    camelCase contract's `firstName`, `lastName`, `isActive`, `createdAt`, `updatedAt`."""
    out = render(omit(user, PRIVATE_FIELDS))
    out["roles"] = roles_of(user)
    out["is_staff"] = is_staff(user)
    out["has_password"] = bool(user.get("password_hash"))
    out["two_factor_enabled"] = bool(user.get("totp_secret"))
    out["email_notifications"] = user.get("email_notifications", True) is not False
    return _with_camel(out)


def render_public(user: dict) -> dict:
    """The user as anyone sees them (public profile): no email, phone, account state or secrets."""
    out = render(omit(user, PUBLIC_HIDDEN))
    out["profile"] = omit(out.get("profile") or {}, PUBLIC_HIDDEN_PROFILE)
    return _with_camel(out)


def render_for_admin(user: dict) -> dict:
    """The public profile plus what staff with `users.manage` see: email, roles, isActive."""
    out = render_public(user)
    out["email"] = user.get("email")
    out["roles"] = roles_of(user)
    out["is_active"] = out["isActive"] = user.get("is_active", True)
    return out


_CAMEL = (("firstName", "first_name"), ("lastName", "last_name"), ("isActive", "is_active"),
          ("createdAt", "created_at"), ("updatedAt", "updated_at"))


def _with_camel(out: dict) -> dict:
    """Copy the rendered snake_case fields under the camelCase contract's names (first and
    last names null when never given)."""
    out.setdefault("first_name", None)
    out.setdefault("last_name", None)
    for camel, snake in _CAMEL:
        if snake in out:
            out[camel] = out[snake]
    return out


def render_brief(user: dict | None) -> dict | None:
    """The few fields shown next to content: id, username, full_name, avatar_url, verified."""
    if not user:
        return None
    return {"id": str(user["_id"]), "username": user["username"],
            "full_name": user.get("full_name"), "avatar_url": user.get("avatar_url"),
            "is_verified_creator": user.get("is_verified_creator", False)}
