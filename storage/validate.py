"""Upload type checks by content, never by the client's file name (docs/architecture.md §7, seed 001 §15).

`sniff(path)` reads a spooled upload and names its format from its magic bytes or by parsing
its head: 3D models (GLB, GLTF, OBJ, STL, PLY, FBX, BLEND), images (PNG, JPEG, WEBP, GIF) and
documents (PDF, TXT, ZIP). `check_type(path, allowed)` runs that in a thread and raises
`InvalidFileType` (400 INVALID_FILE_TYPE) when the content is none of `allowed`.
"""
from __future__ import annotations

import asyncio
import json
import re
import struct
from pathlib import Path

from storage.errors import InvalidFileType

MODEL_FORMATS = ("GLB", "GLTF", "OBJ", "STL", "PLY", "FBX", "BLEND")
ANALYZABLE_FORMATS = ("GLB", "GLTF", "OBJ", "STL", "PLY")
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
AVATAR_FORMATS = ("PNG", "JPEG", "WEBP")
ATTACHMENT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "PDF", "TXT", "ZIP")
DOCUMENT_FORMATS = ("PDF", "TXT", "ZIP")

EXTENSIONS = {"GLB": "glb", "GLTF": "gltf", "OBJ": "obj", "STL": "stl", "PLY": "ply",
              "FBX": "fbx", "BLEND": "blend", "PNG": "png", "JPEG": "jpg", "WEBP": "webp",
              "GIF": "gif", "PDF": "pdf", "TXT": "txt", "ZIP": "zip"}
CONTENT_TYPES = {"GLB": "model/gltf-binary", "GLTF": "model/gltf+json", "OBJ": "model/obj",
                 "STL": "model/stl", "PLY": "application/x-ply", "FBX": "application/octet-stream",
                 "BLEND": "application/x-blender", "PNG": "image/png", "JPEG": "image/jpeg",
                 "WEBP": "image/webp", "GIF": "image/gif", "PDF": "application/pdf",
                 "TXT": "text/plain; charset=utf-8", "ZIP": "application/zip"}

_HEAD_BYTES = 64 * 1024
_SCAN_CHUNK = 1024 * 1024
_OBJ_VERTEX = re.compile(rb"(?m)^[ \t]*v[ \t]+[-+.\deE]")
_OBJ_FACE = re.compile(rb"(?m)^[ \t]*f[ \t]+\d")


def sniff(path: Path) -> str | None:
    """The format of the file at `path` from its content, or None when it is none we know.

    Blocking (reads the file head, and scans text formats to the end): run it in a thread.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    for check in (_binary_magic, _binary_stl):
        found = check(head, size)
        if found:
            return found
    if b"\x00" in head:
        return None
    return _text_format(path, head)


def _binary_magic(head: bytes, size: int) -> str | None:
    if head[:4] == b"glTF" and size >= 20 and struct.unpack_from("<I", head, 4)[0] == 2:
        return "GLB"
    if head.startswith(b"Kaydara FBX Binary"):
        return "FBX"
    if head.startswith(b"BLENDER"):
        return "BLEND"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"%PDF-"):
        return "PDF"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "ZIP"
    if head.startswith((b"ply\n", b"ply\r\n")):
        return "PLY"
    return None


def _binary_stl(head: bytes, size: int) -> str | None:
    """A binary STL: 80-byte header, uint32 triangle count, 50 bytes per triangle."""
    if size < 84 or len(head) < 84:
        return None
    count = struct.unpack_from("<I", head, 80)[0]
    return "STL" if count > 0 and size == 84 + 50 * count else None


def _text_format(path: Path, head: bytes) -> str | None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "GLTF" if _is_gltf(path, head) else None
    if text.startswith(b"; FBX"):
        return "FBX"
    lowered = text[:5].lower()
    if lowered == b"solid" and _scan(path, lambda chunk: b"facet" in chunk):
        return "STL"
    if _scan(path, _OBJ_VERTEX.search) and _scan(path, _OBJ_FACE.search):
        return "OBJ"
    return "TXT" if _is_utf8_text(path) else None


def _is_gltf(path: Path, head: bytes) -> bool:
    """JSON whose top level holds an "asset" object (glTF 2.0 §5.1 requires it)."""
    if path.stat().st_size <= _HEAD_BYTES:
        try:
            doc = json.loads(head.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(doc, dict) and isinstance(doc.get("asset"), dict)
    return _scan(path, lambda chunk: b'"asset"' in chunk)


def _scan(path: Path, found, overlap: int = 256) -> bool:
    """True when `found(chunk)` holds for some chunk of the file (chunks overlap a little)."""
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_SCAN_CHUNK):
            if found(tail + chunk):
                return True
            tail = chunk[-overlap:]
    return False


def _is_utf8_text(path: Path) -> bool:
    """True when the whole file decodes as UTF-8 and holds no NUL byte."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        while chunk := handle.read(_SCAN_CHUNK):
            if b"\x00" in chunk:
                return False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


async def check_type(path: Path, allowed: tuple[str, ...], what: str = "file") -> str:
    """The format of the spooled upload at `path` when it is one of `allowed`.

    Runs `sniff` in the default thread pool. Raises InvalidFileType (400) otherwise, naming the
    accepted formats (seed 001 §15).
    """
    found = await asyncio.get_running_loop().run_in_executor(None, sniff, path)
    if found not in allowed:
        raise InvalidFileType(
            f"Unsupported {what} type: accepted formats are {', '.join(allowed)}")
    return found
