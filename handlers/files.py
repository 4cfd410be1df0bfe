"""`GET /files/<key>`: objects of local-disk storage (docs/architecture.md §7, embedded default).

Keys under `images/`, `avatars/` and `thumbnails/` are public. Every other key (models,
attachments, documents) is served only with a valid HMAC signature and expiry from
`LocalStorage.signed_url` (`?expires=<unix>&signature=<hex>`), else 403. A key that is not in
its normal form or leaves the storage root is a 404, so no path escapes the storage folder.
The file is streamed in 256 KiB chunks read in a thread, never read into memory whole; with
ACCEL_REDIRECT_PREFIX set (behind nginx) the answer carries only the headers and
`X-Accel-Redirect: <prefix><key>`, and nginx sends the file from its internal location.
Streamed by the server itself, the file comes with
an `ETag` (size and modification time; `If-None-Match` answers 304) and one byte `Range`
(206 with `Content-Range`, 416 outside the file), so a browser can resume a download.
With S3 storage, objects are served by S3 (presigned URLs) and this route answers 404.
"""
from __future__ import annotations

import asyncio
import re
import urllib.parse
from pathlib import PurePosixPath

from documents.errors import DomainError, Forbidden, NotFound
from handlers.base import ApiHandler, public, responds
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
    @responds(media="*/*")
    async def get(self, key: str) -> None:
        """Stream the stored object `key`: public prefixes openly, others with a valid
        signature (403 when missing, tampered or expired); 404 for an unknown key."""
        path = self._resolve(key)
        if not is_public_key(key) and not self.services.storage.verify(
                key, self.get_query_argument("expires", None),
                self.get_query_argument("signature", None)):
            raise Forbidden("This link is invalid or has expired", "INVALID_SIGNATURE")
        handle, size, mtime = await self._open(path)
        if self.settings_.accel_redirect_prefix:  # nginx sends the file (config/nginx.conf)
            await asyncio.get_running_loop().run_in_executor(None, handle.close)
            self._headers_for(key, size)
            self.clear_header("Content-Length")
            self.set_header("X-Accel-Redirect",
                            self.settings_.accel_redirect_prefix + urllib.parse.quote(key))
            self.finish()
            return
        try:
            self._headers_for(key, size)
            etag = f'"{size:x}-{int(mtime * 1000):x}"'
            self.set_header("ETag", etag)
            self.set_header("Accept-Ranges", "bytes")
            if etag in self.request.headers.get("If-None-Match", ""):
                self.clear_header("Content-Length")
                self.set_status(304)
                return
            start, end = self._range(size)
            if (start, end) != (0, size):
                self.set_status(206)
                self.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                self.set_header("Content-Length", str(end - start))
            await self._stream(handle, start, end)
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
            stat = path.stat()
            return handle, stat.st_size, stat.st_mtime

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

    def _range(self, size: int) -> tuple[int, int]:
        """The requested byte range as [start, end) — the whole file without a usable
        `Range` header; 416 RANGE_NOT_SATISFIABLE for a range outside the file."""
        header = self.request.headers.get("Range", "")
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
        if not match or not any(match.groups()):
            return 0, size
        first, last = match.groups()
        if first:
            start, end = int(first), (int(last) + 1 if last else size)
        else:
            start, end = max(0, size - int(last)), size
        end = min(end, size)
        if start >= size or start >= end:
            self.set_header("Content-Range", f"bytes */{size}")
            raise DomainError("The requested range is outside the file",
                              "RANGE_NOT_SATISFIABLE", status=416)
        return start, end

    async def _stream(self, handle, start: int, end: int) -> None:
        loop = asyncio.get_running_loop()
        if start:
            await loop.run_in_executor(None, handle.seek, start)
        left = end - start
        while left > 0:
            chunk = await loop.run_in_executor(None, handle.read, min(CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            self.write(chunk)
            await self.flush()


routes = [
    (r"/files/(.*)", FileHandler),
]
