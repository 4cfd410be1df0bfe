"""Following a download link, and links to a model's original file (seed 004 "Purchase
Success", seed 000 §4, docs/architecture.md §7).

`GET /api/downloads/{token}` — the link itself (`documents.downloads`): no header needed, so a
browser tab, `<a download>` or curl can open it. The download is counted once per link, then
the answer is a 302 to the stored object: an S3 presigned URL, or on local disk a signed
`/files/` URL streamed with ``Content-Disposition: attachment``, `Range` and `ETag`.
`GET /api/models/{id}/download` — a link to a model's original file for its creator and
staff, any signed-in user of a free model, and its buyers.
"""
from __future__ import annotations

from documents import downloads
from handlers.base import ApiHandler, public, responds
from handlers.models import MODEL_ID
from handlers.schemas_money import DownloadLinkOut
from storage.store import signed_url

# How long the storage URL behind a followed link stays valid: long enough to start the
# transfer (a download in progress is not cut when it expires).
OBJECT_URL_TTL = 300


class DownloadFollowHandler(ApiHandler):
    @public
    @responds(status=302)
    async def get(self, token: str) -> None:
        """Download the file a link names: 302 to the stored object (counted once per
        link). 403 DOWNLOAD_LINK_INVALID for a bad or expired link, 403
        PURCHASE_REVOKED / DOWNLOAD_LIMIT_REACHED, 404 when the file is gone."""
        claims = downloads.read_link(self.settings_, token)
        target = await downloads.follow(self.db, claims)
        url = await signed_url(self.services.storage, target["file_key"], OBJECT_URL_TTL,
                               target["filename"])
        self.set_header("Cache-Control", "private, no-store")
        self.redirect(url, status=302)


class ModelDownloadHandler(ApiHandler):
    @responds(DownloadLinkOut)
    async def get(self, model_id: str) -> None:
        """A link to the model's original file: ``{download_url, expires_at, expires_in,
        filename, file_format, file_size}``. The creator and staff (not counted), anyone
        signed in for a free model (counted when followed), buyers (counted against their
        purchase). 401 without a token, 403 NOT_PURCHASED for a paid model, 404 for a
        hidden or unknown model."""
        self.write_json(await downloads.model_link(self.db, self.settings_, self.require_user(),
                                                   model_id))


routes = [
    (r"/api/downloads/([^/]+)", DownloadFollowHandler),
    (rf"/api/models/{MODEL_ID}/download", ModelDownloadHandler),
]
