"""Auth routes `/api/auth/...` (seed 000 §1, seed 001 §1 and §20).

Sign-in answers (register 201, login/refresh/OAuth 200) are one shape::

    {"user": {...private user...}, "access_token", "refresh_token", "token_type": "bearer",
     "expires_in", "accessToken", "refreshToken"}

and the refresh token is also set as the `refresh_token` cookie (httpOnly, Secure,
SameSite=Strict, path /api/auth). A staff account with TOTP set up never gets tokens for its
password alone: login and admin login answer ``{"otp_required": true, "challenge_token",
"expires_in"}`` instead, completed at `admin/verify-otp` (or `otp_code` in the admin login
body). Staff without a TOTP secret get tokens with ``"two_factor_enabled": false``.

Credential routes are limited per client IP (`rate_limit = "auth"`) and per account
(`auth-account`, keyed by the account id, the normalized email/username, or the token).
Routes that must not reveal whether an account exists (forgot-password, resend-verification)
answer first and send the email after the response, so the answer and its timing are the
same either way.
"""
from __future__ import annotations

import hashlib

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from documents import accounts, sessions, users
from documents.common import utcnow
from documents.errors import Unauthorized
from handlers.base import ApiHandler, ApiSchema, body, public, responds

REFRESH_COOKIE = "refresh_token"
COOKIE_PATH = "/api/auth"
TOKEN_MAX = 512
OTP_FORMAT = validate.Regexp(r"^\d{6}$", error="Must be a 6-digit code.")


# --------------------------------------------------------------------------- request schemas

def _new_password(value: str) -> None:
    problems = users.password_problems(value)
    if problems:
        raise ValidationError(problems)


def _email() -> fields.Email:
    return fields.Email(required=True, validate=validate.Length(max=254))


def _token(required: bool = True) -> fields.String:
    return fields.String(required=required, validate=validate.Length(min=1, max=TOKEN_MAX))


class RegisterSchema(ApiSchema):
    """`POST /api/auth/register` (seed 000 §1); user_type buyer or creator, never staff.

    The camelCase contract's `firstName`/`lastName` are stored too; `full_name` is derived
    from them when not given.
    """

    email = _email()
    username = fields.String(required=True, validate=validate.Regexp(
        users.USERNAME_RE, error="3-30 characters: letters, digits, '_', '.' or '-'."))
    password = fields.String(required=True, validate=_new_password)
    full_name = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=100))
    first_name = fields.String(data_key="firstName", allow_none=True,
                               validate=validate.Length(max=50))
    last_name = fields.String(data_key="lastName", allow_none=True,
                              validate=validate.Length(max=50))
    user_type = fields.String(load_default="buyer", validate=validate.OneOf(users.USER_TYPES))


class LoginSchema(ApiSchema):
    """The account as `email`, `username` or `usernameOrEmail`, and its `password`."""

    email = fields.String(validate=validate.Length(min=1, max=254))
    username = fields.String(validate=validate.Length(min=1, max=254))
    username_or_email = fields.String(data_key="usernameOrEmail",
                                      validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))

    @validates_schema
    def _one_login(self, data: dict, **_kwargs) -> None:
        if not login_of(data):
            raise ValidationError("Give the account as email, username or usernameOrEmail.",
                                  "email")


class AdminLoginSchema(LoginSchema):
    """Admin login (seed 000 §1): the TOTP `otp_code` may come in the same body."""

    otp_code = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        r"^(\d{6})?$", error="Must be a 6-digit code."))


class VerifyOtpSchema(ApiSchema):
    """`admin/verify-otp` (seed 001 §1): the challenge of admin login and the TOTP code."""

    challenge_token = _token()
    otp_code = fields.String(required=True, validate=OTP_FORMAT)


class RefreshSchema(ApiSchema):
    """Optional refresh token in the body (else `Authorization: Bearer` or the cookie)."""

    refresh_token = _token(required=False)
    refresh_token_camel = fields.String(data_key="refreshToken",
                                        validate=validate.Length(min=1, max=TOKEN_MAX))


class VerifyEmailSchema(ApiSchema):
    """Either the link `token`, or `email` + the 6-digit `code` of the verification email."""

    token = _token(required=False)
    email = fields.Email(validate=validate.Length(max=254))
    code = fields.String(validate=OTP_FORMAT)

    @validates_schema
    def _token_or_code(self, data: dict, **_kwargs) -> None:
        if "token" in data:
            if "email" in data or "code" in data:
                raise ValidationError("Give either token, or email and code.", "token")
        elif "email" not in data or "code" not in data:
            missing = "code" if "email" in data else "email"
            raise ValidationError("Give either token, or email and code.", missing)


class EmailSchema(ApiSchema):
    """`{email}` of forgot-password and resend-verification."""

    email = _email()


class ResetPasswordSchema(ApiSchema):
    """`{token, new_password}` (seed 000 §1)."""

    token = _token()
    new_password = fields.String(required=True, validate=_new_password)


def login_of(data: dict) -> str | None:
    """The account name of a login body: email, username or usernameOrEmail, stripped."""
    for key in ("email", "username", "username_or_email"):
        value = (data.get(key) or "").strip()
        if value:
            return value
    return None


# --------------------------------------------------------------------------- response schemas

class SessionReply(Schema):
    user = fields.Dict()
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    accessToken = fields.String()  # the camelCase auth contract
    refreshToken = fields.String()
    challenge_token = fields.String(allow_none=True)
    created = fields.Boolean(allow_none=True)
    otp_required = fields.Boolean(allow_none=True)
    two_factor_enabled = fields.Boolean(allow_none=True)


class ChallengeReply(Schema):
    otp_required = fields.Boolean()
    challenge_token = fields.String()
    expires_in = fields.Integer()


class MessageReply(Schema):
    message = fields.String()
    email = fields.String(allow_none=True)
    is_verified = fields.Boolean(allow_none=True)


class MeReply(Schema):
    user = fields.Dict()
    claims = fields.Dict()
    email = fields.String(allow_none=True)
    exp = fields.Integer(allow_none=True)
    iat = fields.Integer(allow_none=True)
    roles = fields.List(fields.String())
    sub = fields.String(allow_none=True)
    username = fields.String(allow_none=True)


# --------------------------------------------------------------------------- base

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


class AuthHandler(ApiHandler):
    """Base of the credential routes: auth rate limit, sessions, the refresh cookie."""

    rate_limit = "auth"

    async def account_limit(self, key: str) -> None:
        """Count the request against the per-account auth limit of `key`."""
        await self.limit("auth-account", self.settings_.rate_limit_auth,
                         accounts.normalize_login(key))

    async def sign_in(self, user: dict, status: int = 200, **extra) -> None:
        """Start a session for `user` and answer with the user and the tokens."""
        await users.touch_login(self.db, user["_id"])
        user = {**user, "last_login": utcnow()}
        tokens = await sessions.start_session(self.db, self.settings_, user)
        self.signed_in(user, tokens, status, **extra)

    def signed_in(self, user: dict, tokens: dict, status: int = 200, **extra) -> None:
        self.set_cookie(REFRESH_COOKIE, tokens["refresh_token"], path=COOKIE_PATH, httponly=True,
                        secure=True, samesite="Strict",
                        max_age=self.settings_.refresh_token_expire_days * 86400)
        self.write_json({"user": users.render_private(user), **tokens, **extra}, status)

    def clear_refresh_cookie(self) -> None:
        self.clear_cookie(REFRESH_COOKIE, path=COOKIE_PATH, httponly=True, secure=True,
                          samesite="Strict")

    async def second_factor(self, user: dict) -> None:
        """Answer with an admin OTP challenge instead of tokens (seed 001 §1)."""
        token, lifetime = await accounts.issue_challenge(self.db, user)
        self.write_json({"otp_required": True, "challenge_token": token,
                         "expires_in": lifetime, "two_factor_enabled": True})

    def presented_refresh_token(self) -> str | None:
        """The refresh token: body, then an opaque (non-JWT) `Authorization: Bearer`, then cookie."""
        from_body = self.body.get("refresh_token") or self.body.get("refresh_token_camel")
        if from_body:
            return from_body
        header = self.request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            bearer = header[7:].strip()
            if bearer and "." not in bearer:
                return bearer
        return self.get_cookie(REFRESH_COOKIE) or None


# --------------------------------------------------------------------------- register, login

class RegisterHandler(AuthHandler):
    @public
    @body(RegisterSchema)
    @responds(SessionReply, status=201)
    async def post(self) -> None:
        """Create an account (seed 000 §1) and sign it in: 201 with user and tokens.

        Sends the verification email (link and 6-digit code; README "Emails"). 409 EMAIL_ALREADY_EXISTS /
        USERNAME_ALREADY_EXISTS, 422 on bad fields, 403 REGISTRATIONS_CLOSED when sign-ups
        are closed.
        """
        await self.account_limit(self.body["email"])
        user = await accounts.register(self.db, self.settings_, mailer=self.services.mailer,
                                       **self.body)
        await self.sign_in(user, status=201)


class LoginHandler(AuthHandler):
    @public
    @body(LoginSchema)
    @responds(SessionReply)
    async def post(self) -> None:
        """Sign in by email, username or usernameOrEmail and password (seed 000 §1).

        200 with user and tokens; 200 with an OTP challenge for staff with TOTP; 401
        INVALID_CREDENTIALS (wrong password or unknown account alike); 403 when disabled.
        """
        login = login_of(self.body)
        user = await accounts.find_account(self.db, login)
        await self.account_limit(str(user["_id"]) if user else login)
        user = await accounts.check_credentials(user, self.body["password"])
        if accounts.needs_second_factor(user):
            await self.second_factor(user)
            return
        await self.sign_in(user)


class RefreshHandler(AuthHandler):
    rate_limit = "default"

    @public
    @body(RefreshSchema)
    @responds(SessionReply)
    async def post(self) -> None:
        """Rotate a refresh token (seed 000 §1, seed 001 §20): 200 with a new token pair.

        The token comes from the body (`refresh_token`/`refreshToken`), `Authorization:
        Bearer` or the cookie. 401 INVALID_REFRESH_TOKEN when none is presented; 403
        INVALID_REFRESH_TOKEN for an unknown, expired or revoked one; 403 REFRESH_TOKEN_REUSED
        for an already rotated token, which also revokes its whole family (403, so that a
        client refreshing on 401 does not loop).
        """
        token = self.presented_refresh_token()
        if not token:
            raise Unauthorized("A refresh token is required", "INVALID_REFRESH_TOKEN")
        user, tokens = await sessions.rotate(self.db, self.settings_, token, self.services.hub)
        self.signed_in(user, tokens)


class LogoutHandler(AuthHandler):
    rate_limit = "default"

    @public
    @body(RefreshSchema)
    @responds(MessageReply)
    async def post(self) -> None:
        """End the session: revoke the access token sent and the refresh token's family.

        Needs a valid access token or a refresh token (body, opaque Bearer, or cookie), else
        401. Clears the refresh cookie.
        """
        refresh = self.presented_refresh_token()
        if self.claims is None and not refresh:
            raise Unauthorized("Authentication required")
        if self.claims is not None:
            await sessions.revoke_access_token(self.db, self.claims)
        await sessions.end_session(self.db, refresh,
                                   self.claims.get("sid") if self.claims else None,
                                   hub=self.services.hub,
                                   user_id=self.claims["sub"] if self.claims else None)
        self.clear_refresh_cookie()
        self.write_json({"message": "Logged out"})


class MeHandler(ApiHandler):
    @responds(MeReply)
    async def get(self) -> None:
        """The signed-in user and the claims of the access token used, also at the top level.

        ``{"sub", "email", "username", "roles", "iat", "exp", "user", "claims"}``: the
        camelCase contract reads the claims at the top level, the frontend `user`.
        """
        user = self.current_user
        claims = {key: self.claims.get(key)
                  for key in ("sub", "email", "username", "roles", "type", "jti", "sid",
                              "iat", "exp")}
        # tokens issued before they carried email and username: the account's own
        claims["email"] = claims["email"] or user.get("email")
        claims["username"] = claims["username"] or user.get("username")
        top = {key: claims[key] for key in ("sub", "email", "username", "roles", "iat", "exp")}
        self.write_json({**top, "user": users.render_private(user), "claims": claims})


# --------------------------------------------------------------------------- email verification

class VerifyEmailHandler(AuthHandler):
    @public
    @body(VerifyEmailSchema)
    @responds(MessageReply)
    async def post(self) -> None:
        """Verify the email by link `token` or by `email` + 6-digit `code` (seed 001 §1).

        200 ``{"message", "email", "is_verified": true}``; 401 INVALID_TOKEN.
        """
        token = self.body.get("token")
        await self.account_limit(self.body.get("email") or f"token:{_digest(token or '')}")
        user = await accounts.verify_email(self.db, mailer=self.services.mailer, token=token,
                                           email=self.body.get("email"),
                                           code=self.body.get("code"))
        self.write_json({"message": "Email verified", "email": user["email"],
                         "is_verified": True})


class ResendVerificationHandler(AuthHandler):
    @public
    @body(EmailSchema)
    @responds(MessageReply)
    async def post(self) -> None:
        """Send a new verification email to an unverified account; always 200 (no enumeration)."""
        await self.account_limit(self.body["email"])
        self.write_json({"message": "If that account exists and is not verified yet, "
                                    "a new verification email is on its way."})
        await accounts.resend_verification(self.db, self.body["email"],
                                           mailer=self.services.mailer)


# --------------------------------------------------------------------------- password reset

class ForgotPasswordHandler(AuthHandler):
    admin = False

    @public
    @body(EmailSchema)
    @responds(MessageReply)
    async def post(self) -> None:
        """Email a single-use reset link valid 1 hour (seed 000 §1); always 200.

        The answer comes before any lookup or email, so it tells nothing about the account.
        """
        await self.account_limit(self.body["email"])
        self.write_json({"message": "If an account exists for that email, "
                                    "a password reset link is on its way."})
        await accounts.request_reset(self.db, self.body["email"], admin=self.admin,
                                     mailer=self.services.mailer)


class AdminForgotPasswordHandler(ForgotPasswordHandler):
    """`admin/forgot-password` (seed 001 §1): only staff accounts get the email."""

    admin = True


class ResetPasswordHandler(AuthHandler):
    admin = False

    @public
    @body(ResetPasswordSchema)
    @responds(MessageReply)
    async def post(self) -> None:
        """Set a new password with a reset token (seed 000 §1); ends every session.

        200 ``{"message"}``; 401 INVALID_TOKEN (unknown, used or expired); 422 weak password;
        403 when the account is disabled (or, on the admin route, not staff).
        """
        await self.account_limit(f"token:{_digest(self.body['token'])}")
        user = await accounts.reset_password(self.db, self.settings_, self.body["token"],
                                             self.body["new_password"], admin=self.admin)
        await self.services.hub.disconnect(user["_id"], reason="Password reset")
        self.clear_refresh_cookie()
        self.write_json({"message": "Password has been reset; sign in with the new password."})


class AdminResetPasswordHandler(ResetPasswordHandler):
    """`admin/reset-password` (seed 001 §1): tokens of admin/forgot-password, staff only."""

    admin = True


# --------------------------------------------------------------------------- admin sign-in

class AdminLoginHandler(AuthHandler):
    @public
    @body(AdminLoginSchema)
    @responds(SessionReply)
    async def post(self) -> None:
        """Staff sign-in: password, then TOTP (seed 000 §1, seed 001 §1).

        With `otp_code` → tokens; without → 200 ``{"otp_required": true, "challenge_token"}``
        for `admin/verify-otp`. Staff without TOTP get tokens and ``two_factor_enabled:
        false``. 401 INVALID_CREDENTIALS / INVALID_OTP / OTP_ALREADY_USED; 403 NOT_STAFF.
        """
        login = login_of(self.body)
        user = await accounts.find_account(self.db, login)
        await self.account_limit(str(user["_id"]) if user else login)
        user = await accounts.check_credentials(user, self.body["password"])
        accounts.ensure_staff(user)
        if accounts.needs_second_factor(user):
            if not self.body.get("otp_code"):
                await self.second_factor(user)
                return
            await accounts.check_totp(self.db, user, self.body["otp_code"])
        await self.sign_in(user, two_factor_enabled=bool(user.get("totp_secret")))


class AdminVerifyOtpHandler(AuthHandler):
    @public
    @body(VerifyOtpSchema)
    @responds(SessionReply)
    async def post(self) -> None:
        """Complete an admin login challenge with the TOTP code (seed 001 §1): tokens.

        401 INVALID_TOKEN (challenge unknown, used, expired, or burnt by 5 wrong codes),
        INVALID_OTP, OTP_ALREADY_USED; 403 when the account was disabled meanwhile.
        """
        record, user = await accounts.challenge_user(self.db, self.body["challenge_token"])
        await self.account_limit(str(user["_id"]))
        user = await accounts.complete_challenge(self.db, record, user, self.body["otp_code"])
        await self.sign_in(user, two_factor_enabled=True)


routes = [
    (r"/api/auth/register", RegisterHandler),
    (r"/api/auth/login", LoginHandler),
    (r"/api/auth/refresh", RefreshHandler),
    (r"/api/auth/logout", LogoutHandler),
    (r"/api/auth/me", MeHandler),
    (r"/api/auth/verify-email", VerifyEmailHandler),
    (r"/api/auth/resend-verification", ResendVerificationHandler),
    (r"/api/auth/forgot-password", ForgotPasswordHandler),
    (r"/api/auth/reset-password", ResetPasswordHandler),
    (r"/api/auth/admin/login", AdminLoginHandler),
    (r"/api/auth/admin/verify-otp", AdminVerifyOtpHandler),
    (r"/api/auth/admin/forgot-password", AdminForgotPasswordHandler),
    (r"/api/auth/admin/reset-password", AdminResetPasswordHandler),
]
