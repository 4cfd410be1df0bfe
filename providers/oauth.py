"""OAuth sign-in with Google, GitHub and Discord: the authorization-code exchange.

The client sends the `code` it got on the provider's redirect (and the `redirect_uri` it used);
`fetch_profile` exchanges the code at the provider's token URL, reads the profile from its
userinfo URL (GitHub: the verified primary address from its emails URL) and returns one shape
for every provider::

    {"provider": "github", "id": "583231", "email": "ada@example.com" | None,
     "email_verified": bool, "name": str | None, "username": str | None,
     "avatar_url": str | None}

URLs and client credentials come from `settings.oauth[name]` (config.OAuthProvider), so the
tests point them at a local stand-in provider. HTTP goes through the instance's shared
AsyncHTTPClient (`services.http_client`). Seed 000 §1 `POST /api/auth/oauth/{provider}`.
"""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from config.settings import OAuthProvider
from documents.errors import DomainError, NotFound, Unauthorized

PROVIDERS = ("google", "github", "discord")
USER_AGENT = "hwc3d-server"
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0

log = logging.getLogger("hwc3d.oauth")


# No collection of its own (accounts are linked by documents.accounts).
INDEXES: dict = {}


class ProviderError(DomainError):
    """The provider could not be reached or answered nonsense: 502 OAUTH_PROVIDER_ERROR."""

    status, error_code = 502, "OAUTH_PROVIDER_ERROR"


class NotConfigured(DomainError):
    """The provider has no client id on this server: 503 OAUTH_NOT_CONFIGURED."""

    status, error_code = 503, "OAUTH_NOT_CONFIGURED"


def provider_settings(oauth: dict, name: str) -> OAuthProvider:
    """The configured provider `name`.

    Raises NotFound (404 UNKNOWN_PROVIDER) for a name other than google, github, discord and
    NotConfigured (503) when its client id or secret is not set.
    """
    if name not in PROVIDERS:
        raise NotFound(f"Unknown OAuth provider {name!r}", "UNKNOWN_PROVIDER")
    provider = oauth.get(name)
    if provider is None or not provider.client_id or not provider.client_secret:
        raise NotConfigured(f"Sign-in with {name} is not configured on this server")
    return provider


async def fetch_profile(http: AsyncHTTPClient, provider: OAuthProvider, code: str,
                        redirect_uri: str | None, code_verifier: str | None = None) -> dict:
    """Exchange `code` at `provider` and return the normalized profile (module docstring).

    Raises Unauthorized OAUTH_FAILED (401) when the provider refuses the code or the token,
    ProviderError (502) when it is unreachable or answers something unreadable.
    """
    access_token = await _exchange_code(http, provider, code, redirect_uri, code_verifier)
    raw = await _get_json(http, provider.userinfo_url, access_token)
    if not isinstance(raw, dict):
        raise ProviderError(f"{provider.name} returned an unreadable profile")
    profile = _NORMALIZERS[provider.name](raw)
    if provider.name == "github" and provider.emails_url:
        emails = await _get_json(http, provider.emails_url, access_token)
        profile["email"], profile["email_verified"] = _github_primary_email(emails)
    if not profile["id"]:
        raise ProviderError(f"{provider.name} returned a profile without an id")
    return profile


async def _exchange_code(http: AsyncHTTPClient, provider: OAuthProvider, code: str,
                         redirect_uri: str | None, code_verifier: str | None) -> str:
    form = {"grant_type": "authorization_code", "code": code, "client_id": provider.client_id,
            "client_secret": provider.client_secret}
    if redirect_uri:
        form["redirect_uri"] = redirect_uri
    if code_verifier:
        form["code_verifier"] = code_verifier
    request = HTTPRequest(provider.token_url, method="POST", body=urlencode(form),
                          headers={"Accept": "application/json", "User-Agent": USER_AGENT,
                                   "Content-Type": "application/x-www-form-urlencoded"},
                          connect_timeout=CONNECT_TIMEOUT, request_timeout=REQUEST_TIMEOUT)
    payload = await _fetch_json(http, request)
    # GitHub answers a bad code with 200 {"error": "bad_verification_code"}.
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not token or not isinstance(token, str):
        raise Unauthorized(f"{provider.name} refused the authorization code", "OAUTH_FAILED")
    return token


async def _get_json(http: AsyncHTTPClient, url: str, access_token: str) -> Any:
    request = HTTPRequest(url, method="GET",
                          headers={"Authorization": f"Bearer {access_token}",
                                   "Accept": "application/json", "User-Agent": USER_AGENT},
                          connect_timeout=CONNECT_TIMEOUT, request_timeout=REQUEST_TIMEOUT)
    return await _fetch_json(http, request)


async def _fetch_json(http: AsyncHTTPClient, request: HTTPRequest) -> Any:
    """The JSON answer of `request`; 4xx → OAUTH_FAILED (401), anything else bad → 502.

    Error details never name the provider's URLs (they are logged instead).
    """
    try:
        response = await http.fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as exc:
        log.warning("OAuth request to %s failed: %s", request.url, exc)
        raise ProviderError("Could not reach the sign-in provider") from None
    if 400 <= response.code < 500:
        raise Unauthorized("The provider refused the sign-in", "OAUTH_FAILED")
    if response.code != 200:
        log.warning("OAuth request to %s answered %s", request.url, response.code)
        raise ProviderError("The sign-in provider answered with an error")
    try:
        return json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        raise ProviderError("The sign-in provider answered something unreadable") from None


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None


def _google(raw: dict) -> dict:
    return {"provider": "google", "id": _text(raw.get("sub")), "email": _text(raw.get("email")),
            "email_verified": raw.get("email_verified") in (True, "true"),
            "name": _text(raw.get("name")),
            "username": None, "avatar_url": _text(raw.get("picture"))}


def _github(raw: dict) -> dict:
    return {"provider": "github", "id": _text(raw.get("id")), "email": None,
            "email_verified": False, "name": _text(raw.get("name")),
            "username": _text(raw.get("login")), "avatar_url": _text(raw.get("avatar_url"))}


def _discord(raw: dict) -> dict:
    user_id, avatar = _text(raw.get("id")), _text(raw.get("avatar"))
    avatar_url = f"https://cdn.discordapp.com/avatars/{user_id}/{avatar}.png" if avatar else None
    return {"provider": "discord", "id": user_id, "email": _text(raw.get("email")),
            "email_verified": raw.get("verified") is True,
            "name": _text(raw.get("global_name")) or _text(raw.get("username")),
            "username": _text(raw.get("username")), "avatar_url": avatar_url}


def _github_primary_email(emails: Any) -> tuple[str | None, bool]:
    """The primary, verified address of GitHub's `/user/emails` list, else (None, False)."""
    if not isinstance(emails, list):
        raise ProviderError("github returned an unreadable email list")
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") and entry.get("verified") is True:
            return _text(entry.get("email")), True
    return None, False


_NORMALIZERS = {"google": _google, "github": _github, "discord": _discord}
