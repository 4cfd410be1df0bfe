"""From a received upload part to a stored object (docs/architecture.md §7, seed 001 §15).

Each `store_*` function checks the part's type by content, processes it off the event loop
(trimesh in the process pool, Pillow in threads), moves it into storage under a generated key
and returns a `StoredObject` describing what was stored. On any error nothing of that part
stays in storage (the caller removes the temp files). `remove(storage, objects)` deletes what
earlier steps of a request stored, when a later step fails.

`services` is anything with `storage`, `settings`, `analysis_pool` and `image_pool` (the
app's Services).
"""
from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage import images
from storage.analysis import analyze_model
from storage.receive import FilePart
from storage.validate import (
    AVATAR_FORMATS,
    CONTENT_TYPES,
    EXTENSIONS,
    IMAGE_FORMATS,
    MODEL_FORMATS,
    check_type,
)

log = logging.getLogger("hwc3d.storage")

PUBLIC_PREFIXES = ("images/", "avatars/", "thumbnails/", "previews/")
_STRIPPABLE = ("PNG", "JPEG", "WEBP")


@dataclass
class StoredObject:
    """An object put into storage: `key`, public `url` (None when private), and its facts."""

    key: str
    url: str | None
    content_type: str
    size: int
    file_format: str
    width: int | None = None
    height: int | None = None
    analysis: dict | None = None
    thumbnail: StoredObject | None = None
    extra: dict = field(default_factory=dict)

    def all_keys(self) -> list[str]:
        """This object's key and its thumbnail's."""
        return [self.key] + ([self.thumbnail.key] if self.thumbnail else [])


def new_key(prefix: str, file_format: str) -> str:
    """A generated key ``<prefix>/<uuid>.<ext>``, never derived from the client's name."""
    return f"{prefix}/{uuid.uuid4().hex}.{EXTENSIONS[file_format]}"


def is_public_key(key: str) -> bool:
    """True for keys served openly (images, avatars, thumbnails, model previews); others
    need a signature."""
    return key.startswith(PUBLIC_PREFIXES)


def tmp_dir(settings) -> Path:
    """Where uploads are spooled: ``DATA_DIR/tmp`` (created when missing)."""
    path = Path(settings.data_dir) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _put(storage, key: str, path: Path, file_format: str) -> StoredObject:
    size = await storage.move_file(key, path, CONTENT_TYPES[file_format])
    url = storage.public_url(key) if is_public_key(key) else None
    return StoredObject(key, url, CONTENT_TYPES[file_format], size, file_format)


async def check_model(services: Any, part: FilePart) -> tuple[str, dict]:
    """The format and analysis of a model part (nothing stored).

    Raises InvalidFileType (400) for content that is no model format, InvalidModelFile (400)
    for a model file that cannot be read.
    """
    file_format = await check_type(part.path, MODEL_FORMATS, "model file")
    return file_format, await analyze_model(services, part.path, file_format)


async def store_model(services: Any, part: FilePart) -> StoredObject:
    """Check, analyse and store a model part privately under ``models/``."""
    file_format, analysis = await check_model(services, part)
    stored = await _put(services.storage, new_key("models", file_format), part.path, file_format)
    stored.analysis = analysis
    return stored


async def store_image(services: Any, part: FilePart, *, prefix: str = "images",
                      formats: tuple[str, ...] = IMAGE_FORMATS,
                      thumbnail: bool = True) -> StoredObject:
    """Check an image part, strip its metadata, store it publicly under `prefix`, and (with
    `thumbnail`) a JPEG/PNG thumbnail under ``thumbnails/``. Raises InvalidFileType (400)."""
    file_format = await check_type(part.path, formats, "image")
    size = await images.prepare_image(services, part.path, file_format)
    thumb = None
    if thumbnail:
        thumb = await _store_derived(services, part.path, images.make_thumbnail, "thumbnails")
    try:
        stored = await _put(services.storage, new_key(prefix, file_format), part.path,
                            file_format)
    except BaseException:
        await remove(services.storage, [thumb] if thumb else [])
        raise
    stored.width, stored.height, stored.thumbnail = size["width"], size["height"], thumb
    return stored


async def store_avatar(services: Any, part: FilePart) -> StoredObject:
    """Check an image part and store its 256×256 centre crop publicly under ``avatars/``."""
    await check_type(part.path, AVATAR_FORMATS, "avatar image")
    stored = await _store_derived(services, part.path, images.make_avatar, "avatars")
    stored.width = stored.height = images.AVATAR_SIZE
    return stored


async def store_plain(services: Any, part: FilePart, *, prefix: str,
                      formats: tuple[str, ...]) -> StoredObject:
    """Check a part against `formats` and store it privately under `prefix` (attachments,
    documents). Images among them are decoded and stripped of metadata first."""
    file_format = await check_type(part.path, formats, "file")
    size = {}
    if file_format in _STRIPPABLE or file_format == "GIF":
        size = await images.prepare_image(services, part.path, file_format)
    stored = await _put(services.storage, new_key(prefix, file_format), part.path, file_format)
    stored.width, stored.height = size.get("width"), size.get("height")
    return stored


async def _store_derived(services: Any, source: Path, make, prefix: str) -> StoredObject:
    """Write `make(source, out)` to a temp file and store it under `prefix`."""
    directory = tmp_dir(services.settings)
    descriptor, name = tempfile.mkstemp(dir=directory, prefix="derived-")
    os.close(descriptor)
    out = Path(name)
    try:
        file_format = await make(services, source, out)
        return await _put(services.storage, new_key(prefix, file_format), out, file_format)
    finally:
        await asyncio.get_running_loop().run_in_executor(None, lambda: out.unlink(missing_ok=True))


async def signed_url(storage, key: str, ttl_seconds: int, filename: str | None = None) -> str:
    """The URL that serves `key`: public URL for public keys, else a signed one for `ttl_seconds`."""
    if is_public_key(key):
        return storage.public_url(key)
    return await storage.signed_url(key, ttl_seconds, filename)


async def remove(storage, objects: list[StoredObject | None]) -> None:
    """Delete `objects` (and their thumbnails) from storage; errors are logged, never raised."""
    for stored in objects:
        if stored is None:
            continue
        for key in stored.all_keys():
            await delete_key(storage, key)


async def delete_key(storage, key: str | None) -> None:
    """Delete one object; a failure is logged (an orphaned object), never raised."""
    if not key:
        return
    try:
        await storage.delete(key)
    except Exception:
        log.warning("could not delete stored object %s", key, exc_info=True)
