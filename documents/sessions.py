"""Sessions: access tokens (JWT), refresh tokens (opaque, rotated), one-time tokens.

- Access token: JWT (JWT_ALGORITHM, ACCESS_TOKEN_EXPIRE_MINUTES) with claims `sub`, `email`,
  `username`, `roles`, `type="access"`, `jti`, `sid` (the session family), `iat`, `exp`
  (docs/architecture.md §3, seed 001 §20).
  Refused once its `jti` or its session (`sid`: logout, refresh-token reuse) is revoked, once
  the user's `tokens_valid_after` passes its `iat` (password reset, account deletion), or
  when the account is banned or inactive. Ending a session also closes its open sockets on
  every instance (through the hub the caller hands in: `Hub.disconnect`).
- Refresh token: 32 random bytes, stored as a SHA-256 hash in `refresh_tokens` with its
  family; every use rotates it (the old one is marked `rotated`); presenting a rotated or
  revoked token revokes the whole family (reuse detection).
- One-time tokens (`one_time_tokens`): email verification, password reset, admin OTP
  challenges; single-use through a conditional update, hashed at rest, with an expiry.
- Used TOTP steps (`used_otp_steps`): a TOTP code is accepted once per account and time step
  (RFC 6238 §5.2), enforced by a unique index, so a code seen by an onlooker cannot be replayed.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from config import Settings
from documents import users
from documents.common import upsert_one, utcnow
from documents.errors import Forbidden, Unauthorized

REFRESH = "refresh_tokens"
REVOKED = "revoked_access_tokens"
ONE_TIME = "one_time_tokens"
USED_OTP = "used_otp_steps"
MAX_CODE_ATTEMPTS = 5
# How long a session's access tokens stay refused after the session ends (logout): the
# longest an access token may live (ACCESS_TOKEN_EXPIRE_MINUTES is far below a day).
SESSION_REVOCATION_TTL = timedelta(days=1)

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
    USED_OTP: [
        IndexModel([("user_id", ASCENDING), ("step", ASCENDING)], unique=True),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
    ],
}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- access tokens

def issue_access_token(settings: Settings, user: dict, session_id: str | None = None) -> tuple[str, int]:
    """A signed access token for `user`; returns (token, lifetime in seconds).

    Besides the claims of docs/architecture.md §3 it carries `sid` (the session family) and `iat_ms` (the
    issue time in milliseconds), so that a password reset refuses tokens issued earlier in
    the same second while accepting the ones issued right after it.
    """
    now = utcnow()
    lifetime = settings.access_token_expire_minutes * 60
    issued = int(now.timestamp())
    claims = {
        "sub": str(user["_id"]), "email": user.get("email"), "username": user.get("username"),
        "roles": users.roles_of(user), "type": "access",
        "jti": uuid.uuid4().hex, "sid": session_id, "iat": issued,
        "iat_ms": int(now.timestamp() * 1000), "exp": issued + lifetime,
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
    revoked = [claims["jti"]] + ([session_key(claims["sid"])] if claims.get("sid") else [])
    if await db[REVOKED].find_one({"_id": {"$in": revoked}}, {"_id": 1}):
        raise Unauthorized("Access token revoked", "TOKEN_REVOKED")
    user = await users.get(db, claims["sub"])
    if user is None:
        raise Unauthorized("Account no longer exists", "INVALID_TOKEN")
    valid_after = user.get("tokens_valid_after")
    issued_ms = claims.get("iat_ms", claims["iat"] * 1000)
    if valid_after and issued_ms < int(_aware(valid_after).timestamp() * 1000):
        raise Unauthorized("Session ended; sign in again", "TOKEN_REVOKED")
    ensure_active(user)
    return user, claims


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ensure_active(user: dict) -> None:
    """Raises Forbidden ACCOUNT_DISABLED for a banned or inactive account."""
    if user.get("is_banned") or not user.get("is_active", True):
        raise Forbidden("This account is disabled", "ACCOUNT_DISABLED")


async def revoke_access_token(db, claims: dict) -> None:
    """Deny the access token with these claims until it would have expired anyway."""
    expires = datetime.fromtimestamp(claims["exp"], tz=UTC)
    await upsert_one(db[REVOKED], {"_id": claims["jti"]},
                     {"$set": {"expires_at": expires, "sub": claims["sub"]}}, reread=False)


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


async def rotate(db, settings: Settings, refresh_token: str, hub=None) -> tuple[dict, dict]:
    """Exchange `refresh_token` for a new pair; returns (user, tokens).

    Every refusal is Forbidden (403, so that a client refreshing on 401 does not loop):
    INVALID_REFRESH_TOKEN (unknown, expired, or its session ended by logout or password
    reset), REFRESH_TOKEN_REUSED (already rotated: the whole family is revoked — its refresh
    tokens, its access tokens, and its open sockets through `hub` — docs/architecture.md §3),
    ACCOUNT_DISABLED when the account is banned or inactive.
    """
    digest = _digest(refresh_token)
    record = await db[REFRESH].find_one({"token_hash": digest})
    if record is None or _aware(record["expires_at"]) <= utcnow():
        raise Forbidden("Invalid or expired refresh token", "INVALID_REFRESH_TOKEN")
    if record["status"] == "revoked":
        raise Forbidden("This session has ended; sign in again", "INVALID_REFRESH_TOKEN")
    claimed = await db[REFRESH].find_one_and_update(
        {"_id": record["_id"], "status": "active"},
        {"$set": {"status": "rotated", "rotated_at": utcnow()}})
    if claimed is None:
        await revoke_family(db, record["family_id"], hub=hub, user_id=record["user_id"],
                            reason="Session revoked: refresh token reused",
                            lifetime=timedelta(minutes=settings.access_token_expire_minutes))
        raise Forbidden("Refresh token was already used; session revoked",
                           "REFRESH_TOKEN_REUSED")
    user = await users.get(db, record["user_id"])
    if user is None:
        raise Forbidden("Account no longer exists", "INVALID_REFRESH_TOKEN")
    ensure_active(user)
    refresh = await _store_refresh(db, settings, user["_id"], record["family_id"])
    return user, _token_pair(settings, user, record["family_id"], refresh)


def session_key(family_id: str) -> str:
    """The `revoked_access_tokens` id that refuses every access token of a session family."""
    return f"sid:{family_id}"


async def revoke_family(db, family_id: str, *, hub=None, user_id=None,
                        reason: str = "Session ended",
                        lifetime: timedelta = SESSION_REVOCATION_TTL) -> None:
    """End the session family `family_id`: its refresh tokens are revoked, its access tokens
    (claim `sid`) refused for `lifetime` (as long as any of them can live), and, with `hub`
    and `user_id`, its open sockets closed on every instance (4401 `reason`)."""
    await db[REFRESH].update_many({"family_id": family_id, "status": {"$ne": "revoked"}},
                                  {"$set": {"status": "revoked", "revoked_at": utcnow()}})
    await db[REVOKED].update_one({"_id": session_key(family_id)},
                                 {"$set": {"expires_at": utcnow() + lifetime}}, upsert=True)
    if hub is not None and user_id is not None:
        await hub.disconnect(user_id, session=family_id, reason=reason)


async def end_session(db, refresh_token: str | None, session_id: str | None, *,
                      hub=None, user_id=None) -> None:
    """Logout: end the family of `refresh_token` and/or the session `session_id` (of
    `user_id`), sockets included when `hub` is given (see `revoke_family`)."""
    if refresh_token:
        record = await db[REFRESH].find_one({"token_hash": _digest(refresh_token)})
        if record:
            await revoke_family(db, record["family_id"], hub=hub, user_id=record["user_id"],
                                reason="Signed out")
    if session_id:
        await revoke_family(db, session_id, hub=hub, user_id=user_id, reason="Signed out")


async def revoke_refresh_tokens(db, user_id) -> None:
    """Revoke every refresh token of `user_id`, leaving access tokens to the account checks."""
    await db[REFRESH].update_many({"user_id": user_id, "status": {"$ne": "revoked"}},
                                  {"$set": {"status": "revoked", "revoked_at": utcnow()}})


async def end_all_sessions(db, user_id) -> None:
    """Revoke every refresh token and every access token of `user_id` (reset, deletion)."""
    await revoke_refresh_tokens(db, user_id)
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


async def find_one_time(db, purpose: str, token: str) -> dict:
    """The live (unused, unexpired) one-time record of `token` for `purpose`.

    Raises Unauthorized INVALID_TOKEN when it is unknown, used, expired or out of attempts.
    """
    record = await db[ONE_TIME].find_one({"token_hash": _digest(token), "purpose": purpose})
    _ensure_live(record)
    return record


def _ensure_live(record: dict | None) -> None:
    if (record is None or record["used_at"] is not None
            or _aware(record["expires_at"]) <= utcnow()
            or record.get("attempts", 0) >= MAX_CODE_ATTEMPTS):
        raise Unauthorized("Invalid or expired token", "INVALID_TOKEN")


async def fail_attempt(db, record: dict) -> None:
    """Count one wrong code against `record`; the fifth burns it (no further use)."""
    await db[ONE_TIME].update_one({"_id": record["_id"], "used_at": None},
                                  {"$inc": {"attempts": 1}})


async def claim_one_time(db, record: dict) -> dict:
    """Mark `record` used (conditionally: two racing uses cannot both win); returns it.

    Raises Unauthorized INVALID_TOKEN when it was used meanwhile.
    """
    claimed = await db[ONE_TIME].find_one_and_update(
        {"_id": record["_id"], "used_at": None,
         "attempts": {"$lt": MAX_CODE_ATTEMPTS}}, {"$set": {"used_at": utcnow()}})
    if claimed is None:
        raise Unauthorized("Invalid or expired token", "INVALID_TOKEN")
    return claimed


async def consume_one_time(db, purpose: str, *, token: str | None = None,
                           user_id=None, code: str | None = None) -> dict:
    """Use a one-time token (by `token`, or by `user_id` + 6-digit `code`); returns its record.

    Raises Unauthorized INVALID_TOKEN when it is unknown, used, expired or the code is wrong
    (five wrong codes burn the token).
    """
    if token is not None:
        record = await find_one_time(db, purpose, token)
    else:
        record = await db[ONE_TIME].find_one({"user_id": user_id, "purpose": purpose,
                                              "used_at": None}, sort=[("created_at", -1)])
        _ensure_live(record)
        expected = record.get("code_hash") or ""
        if not code or not hmac.compare_digest(expected, _digest(f"{user_id}:{code}")):
            await fail_attempt(db, record)
            raise Unauthorized("Invalid or expired code", "INVALID_TOKEN")
    return await claim_one_time(db, record)


# --------------------------------------------------------------------------- TOTP steps

async def claim_otp_step(db, user_id, step: int) -> bool:
    """Record that `user_id` used the TOTP code of time step `step`; False when already used."""
    try:
        await db[USED_OTP].insert_one({"user_id": user_id, "step": step,
                                       "expires_at": utcnow() + timedelta(minutes=10)})
    except DuplicateKeyError:
        return False
    return True
