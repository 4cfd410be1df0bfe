"""The API's documentation pages: Swagger UI at `/docs`, ReDoc at `/redoc`.

Both render `/openapi.json` (`handlers.openapi`) and load their scripts and styles from
`static/` (vendored, versions and licences in `static/README.md`) through `DocsAssetHandler`
at `/docs/static/...`, so they work with no other host reachable. GET and HEAD.
"""
from __future__ import annotations

from pathlib import Path

import tornado.web

from handlers.base import ApiHandler, public, responds

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = "/docs/static"
# The vendored versions (static/README.md): in the asset URLs, so that an upgrade is not
# served from a browser's cache of the old files. Swagger UI's `validatorUrl: null`: its
# validator badge would be a request to another host.
ASSET_VERSIONS = {"swagger-ui": "5.35.0", "redoc": "2.5.4"}

SWAGGER_HTML = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>HWC3D API - Swagger UI</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{ASSETS}/swagger-ui/swagger-ui.css?v={ASSET_VERSIONS['swagger-ui']}">
</head><body><div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui/swagger-ui-bundle.js?v={ASSET_VERSIONS['swagger-ui']}"></script>
<script>
window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: true, validatorUrl: null}});
</script></body></html>
"""

REDOC_HTML = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>HWC3D API - ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head><body><redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS}/redoc/redoc.standalone.js?v={ASSET_VERSIONS['redoc']}"></script>
</body></html>
"""


class DocsAssetHandler(tornado.web.StaticFileHandler):
    """The vendored Swagger UI and ReDoc files of `static/` (GET and HEAD, with ETag)."""

    def initialize(self, services=None) -> None:
        super().initialize(path=str(STATIC_DIR))

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "public, max-age=86400")


class _HtmlPage(ApiHandler):
    rate_limit = None
    html = ""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "text/html; charset=UTF-8")

    @public
    async def get(self) -> None:
        """An HTML page that renders `/openapi.json` (scripts and styles from this server)."""
        self.finish(self.html)

    @public
    async def head(self) -> None:
        """The headers of `get` with no body."""
        self.set_header("Content-Length", str(len(self.html.encode("utf-8"))))
        self.finish()


class SwaggerHandler(_HtmlPage):
    html = SWAGGER_HTML

    @public
    @responds(media="text/html")
    async def get(self) -> None:
        """Swagger UI for `/openapi.json` (HTML)."""
        await super().get()


class RedocHandler(_HtmlPage):
    html = REDOC_HTML

    @public
    @responds(media="text/html")
    async def get(self) -> None:
        """ReDoc for `/openapi.json` (HTML)."""
        await super().get()


routes = [
    (r"/docs", SwaggerHandler),
    (r"/redoc", RedocHandler),
]
