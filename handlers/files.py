"""`GET /files/<key>`: objects of local-disk storage (DESIGN §6, embedded default).

Keys under `images/`, `avatars/` and `thumbnails/` are public. Every other key (models,
attachments, documents) is served only with a valid HMAC signature and expiry from
`LocalStorage.signed_url` (`?expires=<unix>&signature=<hex>`), else 403. A key that is not in
its normal form or leaves the storage root is a 404, so no path escapes the storage folder.
The file is streamed in 256 KiB chunks read in a thread, never read into memory whole.
With S3 storage, objects are served by S3 (presigned URLs) and this route answers 404.
"""
from __future__ import annotations

import asyncio
from pathlib import PurePosixPath

from documents.errors import Forbidden, NotFound
from handlers.base import ApiHandler, public
from storage.local import LocalStorage
from storage.store import is_public_key
from storage.validate import CONTENT_TYPES, EXTENSIONS

CHUNK_BYTES = 256 * 1024
_TYPES_BY_EXTENSION = {ext: CONTENT_TYPES[fmt] for fmt, ext in EXTENSIONS.items()}
_TYPES_BY_EXTENSION.update(jpeg="image/jpeg", mp4="video/mp4", webm="video/webm")


def content_type_of(key: str) -> str:
    """The Content-Type of a stored key, from the extension we gave it."""
    return _TYPES_BY_EXTENSION.get(PurePosixPath(key).suffix.lstrip(".").lower(),
                                   "application/octet-stream")


class FileHandler(ApiHandler):
    rate_limit = None

    @public
    async def get(self, key: str) -> None:
        """Stream the stored object `key`: public prefixes openly, others with a valid
        signature (403 when missing, tampered or expired); 404 for an unknown key."""
        path = self._resolve(key)
        if not is_public_key(key) and not self.services.storage.verify(
                key, self.get_query_argument("expires", None),
                self.get_query_argument("signature", None)):
            raise Forbidden("This link is invalid or has expired", "INVALID_SIGNATURE")
        handle, size = await self._open(path)
        try:
            self._headers_for(key, size)
            await self._stream(handle)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, handle.close)

    def _resolve(self, key: str):
        storage = self.services.storage
        if not isinstance(storage, LocalStorage) or not key:
            raise NotFound("File not found")
        try:
            path = storage.path_of(key)
        except (ValueError, OSError):
            raise NotFound("File not found") from None
        if path.relative_to(storage.root).as_posix() != key:
            raise NotFound("File not found")
        return path

    async def _open(self, path):
        def open_file():
            handle = open(path, "rb")
            return handle, path.stat().st_size

        try:
            return await asyncio.get_running_loop().run_in_executor(None, open_file)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound("File not found") from None

    def _headers_for(self, key: str, size: int) -> None:
        self.clear_header("Cache-Control")
        self.set_header("Content-Type", content_type_of(key))
        self.set_header("Content-Length", str(size))
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        if is_public_key(key):
            self.set_header("Cache-Control", "public, max-age=86400")
        else:
            self.set_header("Cache-Control", "private, no-store")
            filename = self.get_query_argument("filename", None)
            if filename:
                safe = "".join(c for c in filename if c.isprintable() and c not in '"\\/;')
                self.set_header("Content-Disposition", f'attachment; filename="{safe[:200]}"')

    async def _stream(self, handle) -> None:
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(None, handle.read, CHUNK_BYTES):
            self.write(chunk)
            await self.flush()


routes = [
    (r"/files/(.*)", FileHandler),
]
