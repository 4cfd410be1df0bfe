"""Local-disk storage under `DATA_DIR/files` (embedded default), with HMAC-signed URLs.

Public objects are served at `/files/<key>`; private ones at
`/files/<key>?expires=<unix>&signature=<hmac>` (served by `handlers.files`).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from config import Settings
from storage.base import Storage


class LocalStorage(Storage):
    """Files on local disk; blocking file work runs in the default thread pool."""

    def __init__(self, root: Path, settings: Settings):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings = settings

    def path_of(self, key: str) -> Path:
        """The local path of `key`; raises ValueError for a key that leaves the root."""
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"invalid storage key {key!r}")
        return path

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> int:
        target = self.path_of(key)

        def copy() -> int:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(path, tmp)
            tmp.replace(target)
            return target.stat().st_size

        return await self._run(copy)

    async def move_file(self, key: str, path: Path, content_type: str | None = None) -> int:
        """Rename the temp file at `path` into place (a copy when it is on another disk)."""
        target = self.path_of(key)

        def move() -> int:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
            return target.stat().st_size

        return await self._run(move)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> int:
        target = self.path_of(key)

        def write() -> int:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)
            return len(data)

        return await self._run(write)

    async def get_bytes(self, key: str) -> bytes:
        return await self._run(self.path_of(key).read_bytes)

    async def download_to(self, key: str, path: Path) -> None:
        source = self.path_of(key)
        if not source.is_file():
            raise FileNotFoundError(key)
        await self._run(shutil.copyfile, source, path)

    async def exists(self, key: str) -> bool:
        return await self._run(self.path_of(key).is_file)

    async def delete(self, key: str) -> None:
        await self._run(lambda: self.path_of(key).unlink(missing_ok=True))

    def public_url(self, key: str) -> str:
        base = self.settings.cdn_url or f"{self.settings.public_url}/files"
        return f"{base.rstrip('/')}/{quote(key)}"

    def signature(self, key: str, expires: int) -> str:
        """HMAC-SHA256 of `key` and `expires` under the JWT secret."""
        message = f"{key}\n{expires}".encode()
        return hmac.new(self.settings.jwt_secret_key.encode(), message, hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: str | None, signature: str | None) -> bool:
        """True when `signature` signs `key` until `expires` and that time has not passed."""
        if not expires or not signature or not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(self.signature(key, int(expires)), signature)

    async def signed_url(self, key: str, ttl_seconds: int, filename: str | None = None) -> str:
        expires = int(time.time()) + ttl_seconds
        params = {"expires": expires, "signature": self.signature(key, expires)}
        if filename:
            params["filename"] = filename
        return f"{self.settings.public_url}/files/{quote(key)}?{urlencode(params)}"

    async def ping(self) -> bool:
        return self.root.is_dir()
