"""Account rules of the auth routes: registration, credentials, email verification, password
reset, the admin second factor (TOTP) and OAuth linking (seed 000 §1).

Accounts themselves live in `documents.users`; tokens in `documents.sessions`. This module
decides who may sign in and how:

- Credentials: wrong password and unknown account are the same 401 INVALID_CREDENTIALS
  (bcrypt runs on a dummy hash for unknown accounts so that timing tells nothing); a banned
  or inactive account with the right password is a 403 ACCOUNT_DISABLED.
- Email verification: one email carries both a link token and a 6-digit code, valid 24 h;
  a new one supersedes the old. It is sent on registration and on request; verifying sends
  the welcome email.
- Password reset: a single-use token valid 1 hour, sent by email on request; using it sets
  the password, marks the email verified (the mail was received) and ends every session of
  the account.
- Admin second factor: staff accounts with a `totp_secret` must give a TOTP code, either in
  the login body or through a 5-minute challenge token; each code is accepted once per time
  step. Staff without a secret sign in with the password alone (`two_factor_enabled: false`).
- OAuth: an identity is found by its provider id; else linked by *verified* email to the
  existing account; else a new verified buyer account with a free username is created.
- First superadmin: `ADMIN_EMAIL` / `ADMIN_PASSWORD` create a verified superadmin at start-up
  when the store is empty (`ensure_first_admin`, README configuration table).

The emails (README "Emails") go through the `mailer` given to the function that makes the
write; a failure to record one is logged and leaves the write stored.
"""
from __future__ import annotations

import re
import secrets
import time
from datetime import timedelta

import pyotp

from config import ConfigError, Settings
from documents import content, email_notices, sessions, users
from documents.errors import Conflict, DomainError, Forbidden, Unauthorized

VERIFY_EMAIL = "verify_email"
PASSWORD_RESET = "password_reset"
ADMIN_PASSWORD_RESET = "admin_password_reset"
ADMIN_OTP = "admin_otp"

VERIFY_TTL = timedelta(hours=24)
RESET_TTL = timedelta(hours=1)
CHALLENGE_TTL = timedelta(minutes=5)
TOTP_WINDOW = 1  # accept the previous and the next 30-second step too (clock drift)
PASSWORD_MAX_BYTES = users.PASSWORD_MAX_BYTES  # bcrypt's limit
USERNAME_MAX = 30


# Tokens and used TOTP steps live in documents.sessions' collections; nothing of its own.
INDEXES: dict = {}


# --------------------------------------------------------------------------- input rules

def normalize_login(login: str) -> str:
    """The case-insensitive form of an email or username (rate-limit keys, lookups)."""
    return login.strip().lower()


# --------------------------------------------------------------------------- credentials

async def ensure_registrations_open(db) -> None:
    """Raises Forbidden REGISTRATIONS_CLOSED (403) when `allow_registrations` is off in the
    platform settings (admin settings page): no new account, by password or OAuth."""
    if not await content.registrations_open(db):
        raise Forbidden("New registrations are closed", "REGISTRATIONS_CLOSED")


async def register(db, settings: Settings, *, mailer, email: str, username: str,
                   password: str, full_name: str | None = None, user_type: str = "buyer",
                   first_name: str | None = None, last_name: str | None = None) -> dict:
    """Create an unverified account and send it the verification email through `mailer`
    (`send_verification`); returns the user document (`full_name` defaults to the first and
    last names joined).

    `user_type` is "buyer" or "creator" (staff roles are never given here). Raises Conflict
    EMAIL_ALREADY_EXISTS / USERNAME_ALREADY_EXISTS (409), Forbidden REGISTRATIONS_CLOSED
    (403) when an admin closed sign-ups in the platform settings.
    """
    await ensure_registrations_open(db)
    if await users.get_by_email(db, email):
        raise Conflict("An account with this email already exists", "EMAIL_ALREADY_EXISTS")
    if await users.get_by_login(db, username):
        raise Conflict("This username is taken", "USERNAME_ALREADY_EXISTS")
    password_hash = await users.hash_password(password, settings.bcrypt_rounds)
    doc = users.new_user(email, username, password_hash, full_name=full_name,
                         first_name=first_name, last_name=last_name,
                         user_type=user_type if user_type in users.USER_TYPES else "buyer")
    user = await users.insert(db, doc)
    await send_verification(db, mailer, user)
    return user


async def find_account(db, login: str) -> dict | None:
    """The account named by an email or username (case-insensitive), or None."""
    login = login.strip()
    return await users.get_by_login(db, login) if login else None


async def check_credentials(user: dict | None, password: str) -> dict:
    """`user` when `password` is theirs.

    Raises Unauthorized INVALID_CREDENTIALS for an unknown account, an OAuth-only account or
    a wrong password (same answer, similar time); Forbidden ACCOUNT_DISABLED when banned or
    inactive.
    """
    if len(password.encode("utf-8")) > PASSWORD_MAX_BYTES:
        await users.check_password("", None)  # keep the timing of a real check
        ok = False
    else:
        ok = await users.check_password(password, user.get("password_hash") if user else None)
    if not ok or user is None:
        raise Unauthorized("Invalid email/username or password", "INVALID_CREDENTIALS")
    sessions.ensure_active(user)
    return user


def needs_second_factor(user: dict) -> bool:
    """True for a staff account with TOTP set up: its password alone gives no tokens."""
    return users.is_staff(user) and bool(user.get("totp_secret"))


def ensure_staff(user: dict) -> None:
    """Raises Forbidden NOT_STAFF unless `user` holds a staff role."""
    if not users.is_staff(user):
        raise Forbidden("This sign-in is for staff accounts only", "NOT_STAFF")


# --------------------------------------------------------------------------- email verification

async def issue_verification(db, user: dict) -> tuple[str, str]:
    """A fresh (link token, 6-digit code) pair for `user`'s email, valid 24 hours."""
    token, code = await sessions.issue_one_time(db, user["_id"], VERIFY_EMAIL, VERIFY_TTL,
                                                with_code=True)
    return token, code


async def send_verification(db, mailer, user: dict) -> None:
    """Issue a fresh verification (`issue_verification`, earlier ones superseded) and send
    `user` the verification email with its link and code through `mailer`."""
    token, code = await issue_verification(db, user)
    await email_notices.after_write(email_notices.verification, mailer, user, token, code)


async def resend_verification(db, email: str, *, mailer) -> None:
    """Send a new verification email to the account of `email` when it exists, is not
    verified yet and is not banned; else nothing (the caller answers the same either way)."""
    user = await users.get_by_email(db, email)
    if user is None or user.get("is_verified") or user.get("is_banned"):
        return
    await send_verification(db, mailer, user)


async def verify_email(db, *, mailer, token: str | None = None, email: str | None = None,
                       code: str | None = None) -> dict:
    """Mark the email verified, by link `token` or by `email` + `code`, and send the welcome
    email through `mailer`; returns the user.

    Raises Unauthorized INVALID_TOKEN when the token or code is unknown, used, expired or
    wrong (five wrong codes burn it; the same answer for an unknown email).
    """
    if token is not None:
        record = await sessions.consume_one_time(db, VERIFY_EMAIL, token=token)
        user_id = record["user_id"]
    else:
        user = await users.get_by_email(db, email or "")
        if user is None:
            raise Unauthorized("Invalid or expired code", "INVALID_TOKEN")
        user_id = user["_id"]
        await sessions.consume_one_time(db, VERIFY_EMAIL, user_id=user_id, code=code)
    user = await users.update(db, user_id, {"is_verified": True})
    await email_notices.after_write(email_notices.welcome, mailer, user)
    return user


# --------------------------------------------------------------------------- password reset

async def reset_target(db, email: str, *, staff_only: bool) -> dict | None:
    """The account a reset email may go to: active, and staff when `staff_only`; else None."""
    user = await users.get_by_email(db, email)
    if user is None or user.get("is_banned") or not user.get("is_active", True):
        return None
    if staff_only and not users.is_staff(user):
        return None
    return user


async def issue_reset(db, user: dict, *, admin: bool) -> str:
    """A single-use password-reset token for `user`, valid 1 hour (earlier ones superseded)."""
    purpose = ADMIN_PASSWORD_RESET if admin else PASSWORD_RESET
    token, _ = await sessions.issue_one_time(db, user["_id"], purpose, RESET_TTL)
    return token


async def request_reset(db, email: str, *, admin: bool, mailer) -> None:
    """Email a reset link (``/reset-password``, or ``/admin/reset-password`` when `admin`;
    seed 000 §1, seed 001 §1) to the account of `email` when it may get one (`reset_target`,
    staff only when `admin`); else nothing (the caller answers the same either way)."""
    user = await reset_target(db, email, staff_only=admin)
    if user is None:
        return
    token = await issue_reset(db, user, admin=admin)
    await email_notices.after_write(email_notices.password_reset, mailer, user, token,
                                    admin=admin)


async def reset_password(db, settings: Settings, token: str, new_password: str, *,
                         admin: bool) -> dict:
    """Use a reset token: set the new password and end every session; returns the user.

    Admin tokens work only on the admin route and for accounts that are still staff.
    Raises Unauthorized INVALID_TOKEN (unknown, used, expired), Forbidden NOT_STAFF.
    """
    purpose = ADMIN_PASSWORD_RESET if admin else PASSWORD_RESET
    record = await sessions.find_one_time(db, purpose, token)
    user = await users.get(db, record["user_id"])
    if user is None:
        raise Unauthorized("Invalid or expired token", "INVALID_TOKEN")
    if admin:
        ensure_staff(user)
    password_hash = await users.hash_password(new_password, settings.bcrypt_rounds)
    await sessions.claim_one_time(db, record)
    user = await users.update(db, user["_id"], {"password_hash": password_hash,
                                                "is_verified": True})
    await sessions.end_all_sessions(db, user["_id"])
    return user


# --------------------------------------------------------------------------- admin TOTP

async def check_totp(db, user: dict, otp_code: str | None) -> None:
    """Accept `otp_code` for `user`'s TOTP secret, once per time step.

    Raises Unauthorized INVALID_OTP (missing, wrong, or outside ±1 step) or OTP_ALREADY_USED.
    """
    step = _matching_step(user.get("totp_secret") or "", otp_code or "")
    if step is None:
        raise Unauthorized("Invalid one-time code", "INVALID_OTP")
    if not await sessions.claim_otp_step(db, user["_id"], step):
        raise Unauthorized("This one-time code was already used; wait for the next one",
                           "OTP_ALREADY_USED")


def _matching_step(secret: str, code: str) -> int | None:
    if not secret or not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time())
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def issue_challenge(db, user: dict) -> tuple[str, int]:
    """A one-time challenge token completing an admin login; returns (token, seconds valid)."""
    token, _ = await sessions.issue_one_time(db, user["_id"], ADMIN_OTP, CHALLENGE_TTL)
    return token, int(CHALLENGE_TTL.total_seconds())


async def challenge_user(db, challenge_token: str) -> tuple[dict, dict]:
    """The (challenge record, user) of a live challenge token.

    Raises Unauthorized INVALID_TOKEN (unknown, used, expired, 5 wrong codes).
    """
    record = await sessions.find_one_time(db, ADMIN_OTP, challenge_token)
    user = await users.get(db, record["user_id"])
    if user is None:
        raise Unauthorized("Invalid or expired token", "INVALID_TOKEN")
    return record, user


async def complete_challenge(db, record: dict, user: dict, otp_code: str) -> dict:
    """Check `otp_code` against the challenge's account and use the challenge; returns the user.

    A wrong code counts against the challenge (five burn it). Raises Unauthorized
    INVALID_OTP / OTP_ALREADY_USED / INVALID_TOKEN, Forbidden when disabled or no longer staff.
    """
    sessions.ensure_active(user)
    ensure_staff(user)
    try:
        await check_totp(db, user, otp_code)
    except Unauthorized:
        await sessions.fail_attempt(db, record)
        raise
    await sessions.claim_one_time(db, record)
    return user


# --------------------------------------------------------------------------- OAuth

class EmailNotVerified(DomainError):
    """The provider gave no verified email: no account can be matched or created (400)."""

    status, error_code = 400, "OAUTH_EMAIL_NOT_VERIFIED"


async def oauth_sign_in(db, profile: dict) -> tuple[dict, bool]:
    """The account of an OAuth `profile` (providers.oauth shape); returns (user, created).

    By provider id first; else the account with the same verified email gets the provider
    id linked; else a new verified buyer account is created with a free username.
    Raises EmailNotVerified (400), Conflict OAUTH_ACCOUNT_CONFLICT (409) when that email's
    account is already linked to another identity of the provider, Forbidden when disabled.
    """
    field = f"{profile['provider']}_id"
    user = await users.get_by_provider(db, field, profile["id"])
    if user is None:
        if not profile.get("email") or not profile.get("email_verified"):
            raise EmailNotVerified(
                f"Your {profile['provider']} account has no verified email address")
        user, created = await _link_or_create(db, profile, field)
    else:
        created = False
    sessions.ensure_active(user)
    return user, created


async def _link_or_create(db, profile: dict, field: str) -> tuple[dict, bool]:
    for _ in range(2):  # a second round when a racing request created the account meanwhile
        existing = await users.get_by_email(db, profile["email"])
        if existing is not None:
            return await _link(db, existing, profile, field), False
        try:
            return await _create(db, profile, field), True
        except Conflict as exc:
            if exc.error_code != "EMAIL_ALREADY_EXISTS":
                raise
    raise Conflict("The account is being created; try again", "OAUTH_ACCOUNT_CONFLICT")


async def _link(db, user: dict, profile: dict, field: str) -> dict:
    if user.get(field) not in (None, profile["id"]):
        raise Conflict(f"This account is linked to another {profile['provider']} account",
                       "OAUTH_ACCOUNT_CONFLICT")
    linked = await users.link_provider(db, user["_id"], field, profile["id"])
    if linked is None:
        raise Conflict(f"This account is linked to another {profile['provider']} account",
                       "OAUTH_ACCOUNT_CONFLICT")
    return linked


async def _create(db, profile: dict, field: str) -> dict:
    await ensure_registrations_open(db)
    base = _username_base(profile)
    for attempt in range(8):
        suffix = f"_{secrets.randbelow(10**4):04d}"
        username = base if attempt == 0 else base[:USERNAME_MAX - len(suffix)] + suffix
        doc = users.new_user(profile["email"], username, None, full_name=profile.get("name"),
                             is_verified=True, avatar_url=profile.get("avatar_url"),
                             **{field: profile["id"]})
        try:
            return await users.insert(db, doc)
        except Conflict as exc:
            if exc.error_code != "USERNAME_ALREADY_EXISTS":
                raise
    raise Conflict("Could not find a free username; try again", "USERNAME_ALREADY_EXISTS")


def _username_base(profile: dict) -> str:
    """A username from the provider's login or the email's local part, fitted to the rules."""
    source = profile.get("username") or profile["email"].split("@", 1)[0]
    base = re.sub(r"[^A-Za-z0-9_.-]", "", source)[:USERNAME_MAX]
    return base if len(base) >= 3 else f"{profile['provider']}_{base}"[:USERNAME_MAX]


# --------------------------------------------------------------------------- first superadmin

async def ensure_first_admin(db, settings: Settings) -> dict | None:
    """Create the first superadmin from `ADMIN_EMAIL` / `ADMIN_PASSWORD` on an empty store.

    Runs at start-up after the fixtures are (or are not) loaded, so with the fixtures the
    demo admin is the first superadmin and nothing is created. Returns the new user document
    (verified, active, `staff_role` "superadmin", no TOTP secret yet), or None when the
    variables are unset or the store already holds an account (also when another instance
    created it a moment earlier). Raises ConfigError naming the variable when the password
    breaks the password rules.
    """
    if not (settings.admin_email and settings.admin_password):
        return None
    problems = users.password_problems(settings.admin_password)
    if problems:
        raise ConfigError(f"ADMIN_PASSWORD: {' '.join(problems)}")
    if await users.any_account(db):
        return None
    password_hash = await users.hash_password(settings.admin_password, settings.bcrypt_rounds)
    local = re.sub(r"[^A-Za-z0-9_.-]", "", settings.admin_email.split("@", 1)[0])[:USERNAME_MAX]
    doc = users.new_user(settings.admin_email, local if len(local) >= 3 else "admin",
                         password_hash, full_name="Administrator", staff_role="superadmin",
                         is_verified=True)
    try:
        return await users.insert(db, doc)
    except Conflict:
        return None
