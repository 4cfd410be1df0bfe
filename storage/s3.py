"""S3-compatible object storage with aiobotocore (docs/architecture.md §7): AWS S3, Cloudflare R2, MinIO.

Configured by `S3_BUCKET_NAME`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_ENDPOINT_URL`
(path-style addressing when set), `S3_REGION` and `CDN_URL` (public objects). Signatures are
SigV4 (`signature_version="s3v4"`). Files larger than MULTIPART_THRESHOLD go up as a
multipart upload in PART_SIZE parts read from disk one at a time, so memory stays bounded;
downloads stream to disk the same way. Private objects are served through presigned GET URLs.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from urllib.parse import quote

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from config import Settings
from storage.base import Storage

log = logging.getLogger("hwc3d.storage")

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024  # S3 needs ≥ 5 MiB for every part but the last
_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


class S3Storage(Storage):
    """One bucket of an S3-compatible service; `open()` before use, `close()` after."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.bucket = settings.s3_bucket_name
        self._stack = contextlib.AsyncExitStack()
        self.client = None

    async def open(self) -> None:
        """Open the client and make sure the bucket exists (created when missing)."""
        config = AioConfig(signature_version="s3v4",
                           s3={"addressing_style": "path" if self.settings.s3_endpoint_url
                               else "auto"},
                           retries={"max_attempts": 3, "mode": "standard"})
        self.client = await self._stack.enter_async_context(get_session().create_client(
            "s3", region_name=self.settings.s3_region,
            endpoint_url=self.settings.s3_endpoint_url,
            aws_access_key_id=self.settings.s3_access_key,
            aws_secret_access_key=self.settings.s3_secret_key, config=config))
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not _missing(exc):
                raise
            await self._create_bucket()

    async def _create_bucket(self) -> None:
        params = {"Bucket": self.bucket}
        if self.settings.s3_region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.s3_region}
        await self.client.create_bucket(**params)
        log.info("created bucket %s", self.bucket)

    async def close(self) -> None:
        await self._stack.aclose()
        self.client = None

    # ---------------------------------------------------------------- writes

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> int:
        size = path.stat().st_size
        extra = {"ContentType": content_type} if content_type else {}
        if size <= MULTIPART_THRESHOLD:
            data = await _read(path, 0, size)
            await self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
            return size
        await self._multipart(key, path, size, extra)
        return size

    async def _multipart(self, key: str, path: Path, size: int, extra: dict) -> None:
        upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        upload_id = upload["UploadId"]
        parts = []
        try:
            for number, offset in enumerate(range(0, size, PART_SIZE), start=1):
                data = await _read(path, offset, PART_SIZE)
                reply = await self.client.upload_part(Bucket=self.bucket, Key=key,
                                                      UploadId=upload_id, PartNumber=number,
                                                      Body=data)
                parts.append({"ETag": reply["ETag"], "PartNumber": number})
            await self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                         UploadId=upload_id)
            raise

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> int:
        extra = {"ContentType": content_type} if content_type else {}
        await self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        return len(data)

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=key)

    # ---------------------------------------------------------------- reads

    async def get_bytes(self, key: str) -> bytes:
        try:
            reply = await self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise
        async with reply["Body"] as body:
            return await body.read()

    async def download_to(self, key: str, path: Path) -> None:
        try:
            reply = await self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise
        loop = asyncio.get_running_loop()
        handle = await loop.run_in_executor(None, open, path, "wb")
        try:
            async with reply["Body"] as body:
                while chunk := await body.read(1024 * 1024):
                    await loop.run_in_executor(None, handle.write, chunk)
        finally:
            await loop.run_in_executor(None, handle.close)

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def public_url(self, key: str) -> str:
        if self.settings.cdn_url:
            return f"{self.settings.cdn_url.rstrip('/')}/{quote(key)}"
        if self.settings.s3_endpoint_url:
            return f"{self.settings.s3_endpoint_url.rstrip('/')}/{self.bucket}/{quote(key)}"
        return f"https://{self.bucket}.s3.{self.settings.s3_region}.amazonaws.com/{quote(key)}"

    async def signed_url(self, key: str, ttl_seconds: int, filename: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{_safe(filename)}"'
        return await self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=min(int(ttl_seconds), 7 * 24 * 3600))

    async def ping(self) -> bool:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
            return True
        except (ClientError, BotoCoreError, OSError):
            log.warning("storage ping failed", exc_info=True)
            return False


async def _read(path: Path, offset: int, length: int) -> bytes:
    def read() -> bytes:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    return await asyncio.get_running_loop().run_in_executor(None, read)


def _safe(filename: str) -> str:
    return "".join(c for c in filename if c.isprintable() and c not in '"\\/')[:200] or "download"
