"""Upload helpers shared by the test modules: multipart bodies, model and image bytes.

- `multipart(fields, files)` — a multipart/form-data body and its Content-Type header;
- `upload(api, path, token, files, fields)` — POST it through the `api` fixture;
- `mesh_bytes(file_type)` — a small icosphere in `file_type` (glb, obj, stl, ...);
- `image_bytes(size, fmt, color, exif)` — a one-colour image, optionally with EXIF tags;
- `stored_objects(services)`, `temp_files(services)`, `nothing_stored(services, before)` — what
  the local storage and the upload temp directory hold, to check that a refused upload left
  nothing behind; `MODEL_FIELDS` the form fields of a valid model; `CREATOR` the demo creator.
"""
from __future__ import annotations

import io
import uuid
from pathlib import Path

import trimesh
from PIL import Image


def multipart(fields: dict | None = None, files: list | None = None) -> tuple[bytes, dict]:
    """A multipart/form-data body: `fields` {name: str | [str]}, `files` [(name, filename,
    bytes)]. Returns (body, headers)."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        for item in value if isinstance(value, list) else [value]:
            out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                      f"{item}\r\n".encode())
    for name, filename, data in files or []:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                  f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                  .encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def upload(api, path: str, token: str | None, files: list, fields: dict | None = None):
    body, headers = multipart(fields, files)
    return await api("POST", path, token=token, headers=headers, body=body, timeout=60)


def mesh_bytes(file_type: str, mesh=None) -> bytes:
    data = (mesh or trimesh.creation.icosphere()).export(file_type=file_type)
    return data.encode() if isinstance(data, str) else data


def image_bytes(size=(640, 400), fmt="JPEG", color=(200, 30, 30), exif: bool = False) -> bytes:
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    options = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SpyCam"  # Make
        data[0x0110] = "Model-X"  # Model
        options["exif"] = data.tobytes()
    image.save(out, fmt, **options)
    return out.getvalue()




def stored_objects(services) -> set[str]:
    root = Path(services.storage.root)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def temp_files(services) -> list[Path]:
    tmp = Path(services.settings.data_dir) / "tmp"
    return [p for p in tmp.iterdir()] if tmp.is_dir() else []


async def nothing_stored(services, before: set[str]) -> None:
    assert stored_objects(services) == before
    assert await services.db.files.count_documents({}) == 0
    assert temp_files(services) == []


MODEL_FIELDS = {"title": "Icosphere Pack", "description": "Round things", "price": "29.99",
                "category": "Characters", "tags": '["sphere", "Low-Poly"]'}
