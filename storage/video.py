"""Client-recorded videos of a model (seed 001 §4 "Export video"): MP4 and WEBM by content.

`sniff_video(path)` names the container from its magic bytes: MP4 (an ISO BMFF `ftyp` box
first) or WEBM (an EBML header whose DocType is "webm"). `store_video` checks a received
part and moves it into storage under ``videos/<uuid>.<ext>`` (a private key: served through
signed URLs until ``videos/`` is made a public prefix).
"""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from storage.errors import InvalidFileType
from storage.receive import FilePart
from storage.store import StoredObject, is_public_key

VIDEO_FORMATS = ("MP4", "WEBM")
VIDEO_EXTENSIONS = {"MP4": "mp4", "WEBM": "webm"}
VIDEO_CONTENT_TYPES = {"MP4": "video/mp4", "WEBM": "video/webm"}
_MP4_BRANDS_HEAD = 64
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def sniff_video(path: Path) -> str | None:
    """"MP4", "WEBM" or None from the first bytes of the file at `path` (blocking: use a thread)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "MP4"
    if head.startswith(_EBML_MAGIC) and b"webm" in head[:_MP4_BRANDS_HEAD]:
        return "WEBM"
    return None


async def check_video(path: Path) -> str:
    """The container of the video at `path`; raises InvalidFileType (400) unless MP4/WEBM."""
    found = await asyncio.get_running_loop().run_in_executor(None, sniff_video, path)
    if found not in VIDEO_FORMATS:
        raise InvalidFileType("Unsupported video type: accepted formats are MP4, WEBM")
    return found


async def store_video(services: Any, part: FilePart) -> StoredObject:
    """Check a video part by content and store it under ``videos/``. Raises InvalidFileType."""
    file_format = await check_video(part.path)
    key = f"videos/{uuid.uuid4().hex}.{VIDEO_EXTENSIONS[file_format]}"
    content_type = VIDEO_CONTENT_TYPES[file_format]
    size = await services.storage.move_file(key, part.path, content_type)
    url = services.storage.public_url(key) if is_public_key(key) else None
    return StoredObject(key, url, content_type, size, file_format)
