"""Helpers for the site-content tests (no tests here): uploads and GLB builders."""
from __future__ import annotations

import io
import json
import struct

import numpy as np
import trimesh
import upload_support
from PIL import Image

UNKNOWN_ID = "64ffffffffffffffffffffff"


def multipart(files: list) -> tuple[bytes, dict]:
    """A multipart/form-data body of `files` [(name, filename, bytes)]: (body, headers)."""
    return upload_support.multipart(files=files)


async def upload(api, token: str, path: str, filename: str, data: bytes) -> dict:
    """Upload one file through the real upload route; returns the 201 reply's JSON."""
    body, headers = multipart([("file", filename, data)])
    reply = await api("POST", path, token=token, headers=headers, body=body, timeout=60)
    assert reply.status == 201, reply.json
    return reply.json


def box_glb() -> bytes:
    """A plain trimesh box (12 faces) as GLB."""
    return trimesh.creation.box().export(file_type="glb")


def textured_glb() -> bytes:
    """A box with a base-colour texture: the GLB has a material and a texture (PBR)."""
    mesh = trimesh.creation.box()
    uv = (mesh.vertices[:, :2] + 0.5).clip(0, 1)
    mesh.visual = trimesh.visual.TextureVisuals(uv=np.asarray(uv),
                                                image=Image.new("RGB", (8, 8), (200, 10, 10)))
    return mesh.export(file_type="glb")


def with_external_image(glb: bytes, uri: str) -> bytes:
    """`glb` with an extra glTF image whose `uri` is `uri` (the JSON chunk rewritten)."""
    json_length = struct.unpack_from("<I", glb, 12)[0]
    doc = json.loads(glb[20:20 + json_length])
    doc.setdefault("images", []).append({"uri": uri})
    raw = json.dumps(doc).encode()
    raw += b" " * (-len(raw) % 4)
    chunks = struct.pack("<II", len(raw), 0x4E4F534A) + raw + glb[20 + json_length:]
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def png_bytes(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "PNG")
    return out.getvalue()
