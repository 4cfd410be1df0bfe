"""Image processing with Pillow in the image worker pool (docs/architecture.md §7, seed 001 §15).

Decoding runs in `services.image_pool` (`storage/workers.py`): IMAGE_WORKERS processes, which
is also how many images decode at once, each limited to IMAGE_MEMORY_MB of address space, so
the server process never holds a decoded image.

- `prepare_image(services, path, fmt)` re-encodes an uploaded PNG/JPEG/WEBP in place without
  its metadata (EXIF, GPS, text chunks), after applying the EXIF orientation; GIFs are checked
  and kept as sent. Returns ``{"width", "height"}``.
- `make_thumbnail(services, path, out, size)` writes a JPEG (or PNG with transparency) that
  fits in `size`×`size`.
- `make_avatar(services, path, out)` writes a 256×256 centre crop (PNG when the image has
  transparency, else JPEG) and returns the format written.

Memory: images over MAX_PIXELS (24 megapixels) are refused before decoding; Pillow keeps 4
bytes a pixel, and no step holds more than two full-size copies, so one decode stays under
about 200 MB. Thumbnails and avatars decode JPEGs at a reduced scale (`draft`) and shrink
before any other step.

Every function raises `InvalidImage` (400 INVALID_FILE_TYPE) when Pillow cannot decode the
file, the image is larger than MAX_PIXELS, or decoding it needs more memory than a worker has.
"""
from __future__ import annotations

import asyncio
import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from storage.errors import InvalidImage
from storage.workers import replace_pool

AVATAR_SIZE = 256
THUMBNAIL_SIZE = 512
MAX_PIXELS = 24_000_000  # 24 megapixels × 4 bytes × at most two copies: under ~200 MB
_SAVE_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WEBP", "GIF": "GIF"}


async def _in_worker(services: Any, fn, *args):
    """`fn(*args)` in the image pool; a worker killed under it (memory) is an InvalidImage."""
    pool = services.image_pool
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    except BrokenProcessPool:
        replace_pool(services, "image_pool", pool, kill=True)
        raise InvalidImage("The image could not be decoded within the memory limit") from None


def _open(path: Path):
    from PIL import Image

    try:
        image = Image.open(path)
    except Exception:
        raise InvalidImage("The image could not be decoded") from None
    if image.width * image.height > MAX_PIXELS or image.width < 1 or image.height < 1:
        image.close()
        raise InvalidImage(f"The image is larger than {MAX_PIXELS // 1_000_000} megapixels")
    return image


def _decode(image) -> None:
    try:
        image.load()
    except MemoryError:
        raise InvalidImage("The image needs more memory to decode than allowed") from None
    except Exception:
        raise InvalidImage("The image could not be decoded") from None


def _upright(image) -> None:
    """Apply the EXIF orientation in place (a copy only when the image must turn)."""
    from PIL import ImageOps

    try:
        ImageOps.exif_transpose(image, in_place=True)
    except MemoryError:
        raise InvalidImage("The image needs more memory to decode than allowed") from None
    except Exception:
        raise InvalidImage("The image could not be decoded") from None


def _replace(old, new):
    """`new`, after freeing the pixels of `old` (keeps two copies at most)."""
    if new is not old:
        old.close()
    return new


def _has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)


def _strip_sync(path: Path, file_format: str) -> dict:
    with _open(path) as original:
        if file_format == "GIF":
            original.seek(0)
            _decode(original)
            return {"width": original.width, "height": original.height}
        _decode(original)
        _upright(original)
        image = original
        options = {"optimize": True}
        if file_format == "JPEG":
            if image.mode not in ("RGB", "L"):
                image = _replace(image, image.convert("RGB"))
            options.update(quality=92)
        elif file_format == "WEBP":
            options = {"quality": 92}
        tmp = path.with_name(path.name + ".clean")
        image.save(tmp, _SAVE_FORMATS[file_format], **options)
        os.replace(tmp, path)
        return {"width": image.width, "height": image.height}


def _thumbnail_sync(path: Path, out: Path, size: int) -> str:
    with _open(path) as original:
        original.draft("RGB", (size * 2, size * 2))
        _decode(original)
        image = original
        image.thumbnail((size, size), reducing_gap=2.0)
        _upright(image)
        if _has_alpha(image):
            image.convert("RGBA").save(out, "PNG", optimize=True)
            return "PNG"
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
        return "JPEG"


def _avatar_sync(path: Path, out: Path) -> str:
    from PIL import Image, ImageOps

    with _open(path) as original:
        original.draft("RGB", (AVATAR_SIZE * 2, AVATAR_SIZE * 2))
        _decode(original)
        image = original
        _upright(image)
        alpha = _has_alpha(image)
        image = _replace(image, image.convert("RGBA" if alpha else "RGB"))
        factor = min(image.width, image.height) // (AVATAR_SIZE * 2)
        if factor >= 2:
            image = _replace(image, image.reduce(factor))
        avatar = ImageOps.fit(image, (AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS)
        if alpha:
            avatar.save(out, "PNG", optimize=True)
            return "PNG"
        avatar.save(out, "JPEG", quality=90, optimize=True)
        return "JPEG"


async def prepare_image(services: Any, path: Path, file_format: str) -> dict:
    """Strip metadata from the image at `path` in place; returns ``{"width", "height"}`` (px)."""
    return await _in_worker(services, _strip_sync, path, file_format)


async def make_thumbnail(services: Any, path: Path, out: Path, size: int = THUMBNAIL_SIZE) -> str:
    """Write a thumbnail of `path` fitting `size`×`size` px to `out`; returns "JPEG" or "PNG"."""
    return await _in_worker(services, _thumbnail_sync, path, out, size)


async def make_avatar(services: Any, path: Path, out: Path) -> str:
    """Write the 256×256 centre crop of `path` to `out`; returns "JPEG" or "PNG"."""
    return await _in_worker(services, _avatar_sync, path, out)
