"""Sessions: access tokens (JWT), refresh tokens (opaque, rotated), one-time tokens.

- Access token: JWT (JWT_ALGORITHM, ACCESS_TOKEN_EXPIRE_MINUTES) with claims `sub`, `roles`,
  `type="access"`, `jti`, `sid` (the session family), `iat`, `exp` (DESIGN §3, seed 001 §20).
  Refused once its `jti` is revoked (logout), once the user's `tokens_valid_after` passes its
  `iat` (password reset, account deletion), or when the account is banned or inactive.
- Refresh token: 32 random bytes, stored as a SHA-256 hash in `refresh_tokens` with its
  family; every use rotates it (the old one is marked `rotated`); presenting a rotated or
  revoked token revokes the whole family (reuse detection).
- One-time tokens (`one_time_tokens`): email verification, password reset, admin OTP
  challenges; single-use through a conditional update, hashed at rest, with an expiry.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta, timezone

import jwt
from pymongo import ASCENDING, IndexModel

from config import Settings
from documents import users
from documents.common import utcnow
from documents.errors import Forbidden, Unauthorized

REFRESH = "refresh_tokens"
REVOKED = "revoked_access_tokens"
ONE_TIME = "one_time_tokens"

INDEXES = {
    REFRESH: [
        IndexModel([("token_hash", ASCENDING)], unique=True),
        IndexModel([("family_id", ASCENDING)]),
        IndexModel([("user_id", ASCENDING)]),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
    ],
    REVOKED: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    ONE_TIME: [
        IndexModel([("token_hash", ASCENDING)], unique=True),
        IndexModel([("user_id", ASCENDING), ("purpose", ASCENDING)]),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
    ],
}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- access tokens

def issue_access_token(settings: Settings, user: dict, session_id: str | None = None) -> tuple[str, int]:
    """A signed access token for `user`; returns (token, lifetime in seconds)."""
    now = utcnow()
    lifetime = settings.access_token_expire_minutes * 60
    claims = {
        "sub": str(user["_id"]), "roles": users.roles_of(user), "type": "access",
        "jti": uuid.uuid4().hex, "sid": session_id, "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
    }
    return jwt.encode(claims, settings.jwt_secret_key, algorithm=settings.jwt_algorithm), lifetime


def decode_access_token(settings: Settings, token: str) -> dict:
    """The verified claims of `token`; raises Unauthorized (TOKEN_EXPIRED / INVALID_TOKEN)."""
    try:
        claims = jwt.decode(token, settings.jwt_secret_key, algorithms=[settings.jwt_algorithm],
                            options={"require": ["sub", "exp", "iat", "jti", "type"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Access token expired", "TOKEN_EXPIRED") from None
    except jwt.PyJWTError:
        raise Unauthorized("Invalid access token", "INVALID_TOKEN") from None
    if claims.get("type") != "access":
        raise Unauthorized("Not an access token", "INVALID_TOKEN")
    return claims


async def authenticate(db, settings: Settings, token: str) -> tuple[dict, dict]:
    """The (user, claims) an access token stands for.

    Raises Unauthorized when the token is bad, expired, revoked or older than the user's
    `tokens_valid_after`, or the user is gone; Forbidden (ACCOUNT_DISABLED) when the account
    is banned or inactive.
    """
    claims = decode_access_token(settings, token)
    if await db[REVOKED].find_one({"_id": claims["jti"]}, {"_id": 1}):
        raise Unauthorized("Access token revoked", "TOKEN_REVOKED")
    user = await users.get(db, claims["sub"])
    if user is None:
        raise Unauthorized("Account no longer exists", "INVALID_TOKEN")
    valid_after = user.get("tokens_valid_after")
    if valid_after and claims["iat"] < int(valid_after.timestamp()):
        raise Unauthorized("Session ended; sign in again", "TOKEN_REVOKED")
    ensure_active(user)
    return user, claims


def ensure_active(user: dict) -> None:
    """Raises Forbidden ACCOUNT_DISABLED for a banned or inactive account."""
    if user.get("is_banned") or not user.get("is_active", True):
        raise Forbidden("This account is disabled", "ACCOUNT_DISABLED")


async def revoke_access_token(db, claims: dict) -> None:
    """Deny the access token with these claims until it would have expired anyway."""
    expires = datetime.fromtimestamp(claims["exp"], tz=timezone.utc)
    await db[REVOKED].update_one({"_id": claims["jti"]},
                                 {"$set": {"expires_at": expires, "sub": claims["sub"]}},
                                 upsert=True)


# --------------------------------------------------------------------------- refresh tokens

async def _store_refresh(db, settings: Settings, user_id, family_id: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await db[REFRESH].insert_one({
        "token_hash": _digest(token), "user_id": user_id, "family_id": family_id,
        "status": "active", "created_at": now,
        "expires_at": now + timedelta(days=settings.refresh_token_expire_days),
    })
    return token


async def start_session(db, settings: Settings, user: dict) -> dict:
    """Tokens for a fresh sign-in (seed 000 §1 register/login response shape).

    Returns ``{"access_token", "refresh_token", "token_type": "bearer", "expires_in",
    "accessToken", "refreshToken"}`` (the camelCase pair for clients of that contract).
    """
    family_id = uuid.uuid4().hex
    refresh = await _store_refresh(db, settings, user["_id"], family_id)
    return _token_pair(settings, user, family_id, refresh)


def _token_pair(settings: Settings, user: dict, family_id: str, refresh: str) -> dict:
    access, lifetime = issue_access_token(settings, user, family_id)
    return {"access_token": access, "refresh_token": refresh, "token_type": "bearer",
            "expires_in": lifetime, "accessToken": access, "refreshToken": refresh}


async def rotate(db, settings: Settings, refresh_token: str) -> tuple[dict, dict]:
    """Exchange `refresh_token` for a new pair; returns (user, tokens).

    Raises Unauthorized INVALID_REFRESH_TOKEN (unknown or expired) or REFRESH_TOKEN_REUSED
    (already rotated or revoked: the whole family is revoked), Forbidden when disabled.
    """
    digest = _digest(refresh_token)
    record = await db[REFRESH].find_one({"token_hash": digest})
    if record is None or record["expires_at"] <= utcnow():
        raise Unauthorized("Invalid or expired refresh token", "INVALID_REFRESH_TOKEN")
    claimed = await db[REFRESH].find_one_and_update(
        {"_id": record["_id"], "status": "active"},
        {"$set": {"status": "rotated", "rotated_at": utcnow()}})
    if claimed is None:
        await revoke_family(db, record["family_id"])
        raise Unauthorized("Refresh token was already used; session revoked",
                           "REFRESH_TOKEN_REUSED")
    user = await users.get(db, record["user_id"])
    if user is None:
        raise Unauthorized("Account no longer exists", "INVALID_REFRESH_TOKEN")
    ensure_active(user)
    refresh = await _store_refresh(db, settings, user["_id"], record["family_id"])
    return user, _token_pair(settings, user, record["family_id"], refresh)


async def revoke_family(db, family_id: str) -> None:
    await db[REFRESH].update_many({"family_id": family_id, "status": {"$ne": "revoked"}},
                                  {"$set": {"status": "revoked", "revoked_at": utcnow()}})


async def end_session(db, refresh_token: str | None, session_id: str | None) -> None:
    """Logout: revoke the family of `refresh_token` and/or the session `session_id`."""
    if refresh_token:
        record = await db[REFRESH].find_one({"token_hash": _digest(refresh_token)})
        if record:
            await revoke_family(db, record["family_id"])
    if session_id:
        await revoke_family(db, session_id)


async def end_all_sessions(db, user_id) -> None:
    """Revoke every refresh token and every access token of `user_id` (reset, deletion)."""
    await db[REFRESH].update_many({"user_id": user_id, "status": {"$ne": "revoked"}},
                                  {"$set": {"status": "revoked", "revoked_at": utcnow()}})
    await users.revoke_all_tokens(db, user_id)


# --------------------------------------------------------------------------- one-time tokens

async def issue_one_time(db, user_id, purpose: str, ttl: timedelta,
                         with_code: bool = False, data: dict | None = None) -> tuple[str, str | None]:
    """A single-use token for `purpose` (and a 6-digit code when `with_code`); returns (token, code).

    Earlier unused tokens of the same user and purpose are invalidated.
    """
    await db[ONE_TIME].update_many({"user_id": user_id, "purpose": purpose, "used_at": None},
                                   {"$set": {"used_at": utcnow(), "superseded": True}})
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10**6):06d}" if with_code else None
    now = utcnow()
    await db[ONE_TIME].insert_one({
        "token_hash": _digest(token), "code_hash": _digest(f"{user_id}:{code}") if code else None,
        "user_id": user_id, "purpose": purpose, "data": data or {}, "attempts": 0,
        "created_at": now, "expires_at": now + ttl, "used_at": None,
    })
    return token, code


async def consume_one_time(db, purpose: str, *, token: str | None = None,
                           user_id=None, code: str | None = None) -> dict:
    """Use a one-time token (by `token`, or by `user_id` + 6-digit `code`); returns its record.

    Raises Unauthorized INVALID_TOKEN when it is unknown, used, expired or the code is wrong
    (five wrong codes burn the token).
    """
    now = utcnow()
    if token is not None:
        query = {"token_hash": _digest(token), "purpose": purpose}
    else:
        query = {"user_id": user_id, "purpose": purpose, "used_at": None}
    record = await db[ONE_TIME].find_one(query, sort=[("created_at", -1)])
    if record is None or record["used_at"] is not None or record["expires_at"] <= now:
        raise Unauthorized("Invalid or expired token", "INVALID_TOKEN")
    if token is None:
        expected = record.get("code_hash") or ""
        if record["attempts"] >= 5 or not hmac.compare_digest(expected, _digest(f"{user_id}:{code}")):
            await db[ONE_TIME].update_one({"_id": record["_id"]}, {"$inc": {"attempts": 1}})
            raise Unauthorized("Invalid or expired code", "INVALID_TOKEN")
    claimed = await db[ONE_TIME].find_one_and_update(
        {"_id": record["_id"], "used_at": None}, {"$set": {"used_at": now}})
    if claimed is None:
        raise Unauthorized("Invalid or expired token", "INVALID_TOKEN")
    return claimed
