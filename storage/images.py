"""Image processing with Pillow in the default thread pool (DESIGN §6, seed 001 §15).

Pillow decodes and resizes outside the GIL, so a thread pool keeps the event loop free.

- `prepare_image(path, fmt)` re-encodes an uploaded PNG/JPEG/WEBP in place without its
  metadata (EXIF, GPS, text chunks), after applying the EXIF orientation; GIFs are checked and
  kept as sent. Returns ``{"width", "height"}``.
- `make_thumbnail(path, out, size)` writes a JPEG (or PNG with transparency) that fits in
  `size`×`size`.
- `make_avatar(path, out)` writes a 256×256 centre crop (PNG when the image has
  transparency, else JPEG) and returns the format written.

Every function raises `InvalidImage` (400 INVALID_FILE_TYPE) when Pillow cannot decode the
file or the image is larger than MAX_PIXELS.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from storage.errors import InvalidImage

AVATAR_SIZE = 256
THUMBNAIL_SIZE = 512
MAX_PIXELS = 50_000_000  # 50 megapixels: decoding stays under ~200 MB
_SAVE_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WEBP", "GIF": "GIF"}


async def _in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


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


def _load(image):
    from PIL import ImageOps

    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except Exception:
        raise InvalidImage("The image could not be decoded") from None


def _has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)


def _strip_sync(path: Path, file_format: str) -> dict:
    with _open(path) as original:
        if file_format == "GIF":
            try:
                original.seek(0)
                original.load()
            except Exception:
                raise InvalidImage("The image could not be decoded") from None
            return {"width": original.width, "height": original.height}
        image = _load(original)
        options = {"optimize": True}
        if file_format == "JPEG":
            image = image.convert("RGB") if image.mode not in ("RGB", "L") else image
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
        image = _load(original)
        image.thumbnail((size, size))
        if _has_alpha(image):
            image.convert("RGBA").save(out, "PNG", optimize=True)
            return "PNG"
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
        return "JPEG"


def _avatar_sync(path: Path, out: Path) -> str:
    from PIL import Image, ImageOps

    with _open(path) as original:
        original.draft("RGB", (AVATAR_SIZE * 2, AVATAR_SIZE * 2))
        image = _load(original)
        alpha = _has_alpha(image)
        image = image.convert("RGBA" if alpha else "RGB")
        avatar = ImageOps.fit(image, (AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS)
        if alpha:
            avatar.save(out, "PNG", optimize=True)
            return "PNG"
        avatar.save(out, "JPEG", quality=90, optimize=True)
        return "JPEG"


async def prepare_image(path: Path, file_format: str) -> dict:
    """Strip metadata from the image at `path` in place; returns ``{"width", "height"}`` (px)."""
    return await _in_thread(_strip_sync, path, file_format)


async def make_thumbnail(path: Path, out: Path, size: int = THUMBNAIL_SIZE) -> str:
    """Write a thumbnail of `path` fitting `size`×`size` px to `out`; returns "JPEG" or "PNG"."""
    return await _in_thread(_thumbnail_sync, path, out, size)


async def make_avatar(path: Path, out: Path) -> str:
    """Write the 256×256 centre crop of `path` to `out`; returns "JPEG" or "PNG"."""
    return await _in_thread(_avatar_sync, path, out)
