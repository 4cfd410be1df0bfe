"""OAuth sign-in routes `/api/auth/oauth/...` (seed 000 §1, seed 001 §1).

`POST /api/auth/oauth/{provider}` (and the fixed `google`, `github`, `discord` routes) take
the authorization `code` of the provider's redirect and answer like login (`handlers.auth`):
200 for an existing or newly linked account, 201 with ``"created": true`` for a new one, or
an admin OTP challenge for staff with TOTP.
"""
from __future__ import annotations

from marshmallow import fields, validate

from documents import accounts
from handlers.auth import AuthHandler, SessionReply
from handlers.base import ApiSchema, body, public, responds
from providers import oauth


class OAuthSchema(ApiSchema):
    """The authorization `code` from the provider's redirect and the `redirect_uri` used."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    redirect_uri = fields.Url(require_tld=False, validate=validate.Length(max=2048))
    state = fields.String(validate=validate.Length(max=512))
    code_verifier = fields.String(validate=validate.Length(min=43, max=128))


class OAuthHandler(AuthHandler):
    async def sign_in_with(self, provider_name: str) -> None:
        provider = oauth.provider_settings(self.settings_.oauth, provider_name)
        profile = await oauth.fetch_profile(
            self.services.http_client, provider, self.body["code"],
            self.body.get("redirect_uri"), self.body.get("code_verifier"))
        await self.account_limit(f"{provider_name}:{profile['id']}")
        user, created = await accounts.oauth_sign_in(self.db, profile)
        if accounts.needs_second_factor(user):
            await self.second_factor(user)
            return
        await self.sign_in(user, status=201 if created else 200, created=created)

    @public
    @body(OAuthSchema)
    @responds(SessionReply)
    async def post(self, provider: str) -> None:
        """OAuth sign-in with `{code, redirect_uri}` (seed 000 §1): answers like login.

        200 for an existing (or newly linked) account, 201 with ``"created": true`` for a new
        one. 404 UNKNOWN_PROVIDER; 503 OAUTH_NOT_CONFIGURED; 401 OAUTH_FAILED (code refused);
        502 OAUTH_PROVIDER_ERROR; 400 OAUTH_EMAIL_NOT_VERIFIED; 409 OAUTH_ACCOUNT_CONFLICT;
        403 ACCOUNT_DISABLED.
        """
        await self.sign_in_with(provider)


class GoogleOAuthHandler(OAuthHandler):
    @public
    @body(OAuthSchema)
    @responds(SessionReply)
    async def post(self) -> None:
        """Sign in with Google (seed 001 §1); as `POST /api/auth/oauth/{provider}`.

        200, or 201 for a new account; 401 OAUTH_FAILED; 400 OAUTH_EMAIL_NOT_VERIFIED; 409
        OAUTH_ACCOUNT_CONFLICT; 403 ACCOUNT_DISABLED; 502 OAUTH_PROVIDER_ERROR; 503
        OAUTH_NOT_CONFIGURED.
        """
        await self.sign_in_with("google")


class GithubOAuthHandler(OAuthHandler):
    @public
    @body(OAuthSchema)
    @responds(SessionReply)
    async def post(self) -> None:
        """Sign in with GitHub (seed 001 §1); as `POST /api/auth/oauth/{provider}`.

        200, or 201 for a new account; 401 OAUTH_FAILED; 400 OAUTH_EMAIL_NOT_VERIFIED; 409
        OAUTH_ACCOUNT_CONFLICT; 403 ACCOUNT_DISABLED; 502 OAUTH_PROVIDER_ERROR; 503
        OAUTH_NOT_CONFIGURED.
        """
        await self.sign_in_with("github")


class DiscordOAuthHandler(OAuthHandler):
    @public
    @body(OAuthSchema)
    @responds(SessionReply)
    async def post(self) -> None:
        """Sign in with Discord (seed 001 §1); as `POST /api/auth/oauth/{provider}`.

        200, or 201 for a new account; 401 OAUTH_FAILED; 400 OAUTH_EMAIL_NOT_VERIFIED; 409
        OAUTH_ACCOUNT_CONFLICT; 403 ACCOUNT_DISABLED; 502 OAUTH_PROVIDER_ERROR; 503
        OAUTH_NOT_CONFIGURED.
        """
        await self.sign_in_with("discord")


routes = [
    (r"/api/auth/oauth/google", GoogleOAuthHandler),
    (r"/api/auth/oauth/github", GithubOAuthHandler),
    (r"/api/auth/oauth/discord", DiscordOAuthHandler),
    (r"/api/auth/oauth/(?P<provider>[^/]+)", OAuthHandler),
]
