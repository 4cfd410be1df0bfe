"""A local stand-in OAuth provider for the tests: Google, GitHub and Discord over real HTTP.

A small Tornado application on a free port serves, for each provider, a token endpoint
(`POST /<provider>/token`, form-encoded authorization-code grant) and a userinfo endpoint
(`GET /<provider>/userinfo`; GitHub also `GET /github/emails`). A test registers what a code
stands for with `stub.add_code(provider, code, profile, emails=None)`; the stub checks the
client id and secret, the redirect URI and the grant, answers like the real provider (GitHub
refuses a bad code with 200 ``{"error": ...}``), and records each token request in
`stub.token_requests`. Codes `"boom"` (500) and `"garbage"` (a non-JSON 200) simulate a
broken provider.
"""
from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from config.settings import OAuthProvider

CLIENT_SECRET = "stub-secret"


class _StubHandler(tornado.web.RequestHandler):
    def initialize(self, stub: OAuthStub) -> None:
        self.stub = stub

    def reply(self, payload, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


class TokenHandler(_StubHandler):
    def post(self, provider: str) -> None:
        form = {k: v[0] for k, v in parse_qs(self.request.body.decode()).items()}
        self.stub.token_requests.append((provider, form))
        code = form.get("code", "")
        if code == "boom":
            self.reply({"error": "server_error"}, 500)
            return
        if code == "garbage":
            self.set_header("Content-Type", "text/html")
            self.finish("<html>oops</html>")
            return
        grant = self.stub.codes.get((provider, code))
        ok = (grant is not None and form.get("grant_type") == "authorization_code"
              and form.get("client_id") == f"{provider}-client"
              and form.get("client_secret") == CLIENT_SECRET
              and form.get("redirect_uri") == grant["redirect_uri"])
        if not ok:
            if provider == "github":  # GitHub answers 200 with an error field
                self.reply({"error": "bad_verification_code"})
            else:
                self.reply({"error": "invalid_grant"}, 400)
            return
        del self.stub.codes[(provider, code)]  # codes are single-use, as with real providers
        access = secrets.token_hex(16)
        self.stub.access_tokens[access] = grant
        self.reply({"access_token": access, "token_type": "Bearer", "expires_in": 3600})


class UserinfoHandler(_StubHandler):
    def get(self, provider: str, what: str) -> None:
        header = self.request.headers.get("Authorization", "")
        grant = self.stub.access_tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if grant is None or grant["provider"] != provider:
            self.reply({"error": "invalid_token"}, 401)
            return
        self.reply(grant["emails"] if what == "emails" else grant["profile"])


class OAuthStub:
    """The stand-in provider; `start()` on the running loop, then `providers()` for Settings."""

    def __init__(self):
        self.codes: dict[tuple[str, str], dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.token_requests: list[tuple[str, dict]] = []
        self.server: HTTPServer | None = None
        self.port = 0

    def start(self) -> None:
        app = tornado.web.Application([
            (r"/(google|github|discord)/token", TokenHandler, {"stub": self}),
            (r"/(google|github|discord)/(userinfo|emails)", UserinfoHandler, {"stub": self}),
        ])
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = HTTPServer(app)
        self.server.add_sockets(sockets)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def providers(self, configured: tuple[str, ...] = ("google", "github", "discord")) -> dict:
        """`Settings.oauth` pointing at this stub; providers not in `configured` lack a client id."""
        out = {}
        for name in ("google", "github", "discord"):
            on = name in configured
            out[name] = OAuthProvider(
                name=name, client_id=f"{name}-client" if on else None,
                client_secret=CLIENT_SECRET if on else None,
                token_url=f"{self.url}/{name}/token", userinfo_url=f"{self.url}/{name}/userinfo",
                emails_url=f"{self.url}/github/emails" if name == "github" else None)
        return out

    def add_code(self, provider: str, profile: dict, emails: list | None = None,
                 redirect_uri: str = "http://localhost:3000/auth/callback") -> str:
        """A fresh authorization code that stands for `profile` (the provider's raw JSON)."""
        code = secrets.token_urlsafe(12)
        self.codes[(provider, code)] = {"provider": provider, "profile": profile,
                                        "emails": emails or [], "redirect_uri": redirect_uri}
        return code
