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
     created_at, updated_at, last_login}

Passwords are hashed with bcrypt in a thread pool (never on the event loop, DESIGN §3).
"""
from __future__ import annotations

import asyncio
import re
from typing import Any, Iterable

import bcrypt
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents.common import object_id, omit, render, utcnow
from documents.errors import Conflict, NotFound

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
PUBLIC_HIDDEN = PRIVATE_FIELDS + ("email", "last_login", "is_banned", "is_active", "staff_role")


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
    """The user as anyone sees them (public profile): no email, no account state, no secrets."""
    return render(omit(user, PUBLIC_HIDDEN))


def render_brief(user: dict | None) -> dict | None:
    """The few fields shown next to content: id, username, full_name, avatar_url, verified."""
    if not user:
        return None
    return {"id": str(user["_id"]), "username": user["username"],
            "full_name": user.get("full_name"), "avatar_url": user.get("avatar_url"),
            "is_verified_creator": user.get("is_verified_creator", False)}
