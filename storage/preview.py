"""Web previews and rendered thumbnails of stored model files, built off the event loop.

`make_preview(services, key, file_format, thumbnail=...)` reads the stored model `key`,
builds its preview in `services.preview_pool` (a process pool; `storage.preview_worker`),
stores the results as public objects and returns the preview fields::

    {"preview_status": "ready", "preview_url", "preview_key", "preview_faces",
     "preview_vertices", "preview_simplified": bool,
     "thumbnails": {"thumbnail": <640×480 PNG url>, "card": <320×240 WebP url>,
                    "detail": <1280×960 WebP url>} | None, "thumbnail_keys": [key, ...]}

or ``{"preview_status": "unsupported"}`` for FBX/BLEND (trimesh cannot read them), or
``{"preview_status": "failed", "preview_error": "<reason>"}`` when the file cannot be
converted, the worker dies or runs past `settings.preview_timeout_seconds` (the worker is
killed and the pool replaced). Builds of one instance run one at a time
(`services.preview_lock`), and the time limit counts from the start of the build, not from
its wait. Never raises for a bad file; storage errors propagate.
Budgets: `settings.preview_max_faces` (PREVIEW_MAX_FACES, 300,000) and
`settings.preview_max_texture_px` (PREVIEW_MAX_TEXTURE_PX, 2048).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from storage.preview_worker import build_preview
from storage.store import _put, new_key, remove
from storage.workers import replace_pool

log = logging.getLogger("hwc3d.preview")

PREVIEW_FORMATS = ("GLB", "GLTF", "OBJ", "STL", "PLY")
VIEW_FORMATS = {"thumbnail": "PNG", "card": "WEBP", "detail": "WEBP"}


def pending(file_format: str | None) -> dict:
    """The preview fields of a file whose preview is about to be built (or cannot be)."""
    if (file_format or "").upper() not in PREVIEW_FORMATS:
        return {"preview_status": "unsupported"}
    return {"preview_status": "processing"}


async def make_preview(services: Any, key: str, file_format: str, *,
                       thumbnail: bool) -> dict:
    """Build, store and describe the preview of the stored model `key` (module docstring)."""
    if file_format not in PREVIEW_FORMATS:
        return {"preview_status": "unsupported"}
    loop = asyncio.get_running_loop()
    work = Path(await loop.run_in_executor(None, _work_dir, services.settings))
    try:
        source = await _local_copy(services.storage, key, work, file_format)
        built = await _build(services, source, file_format, work, thumbnail)
        if "error" in built:
            log.warning("preview of %s failed: %s", key, built["error"])
            return {"preview_status": "failed", "preview_error": built["error"]}
        return await _store(services.storage, built)
    finally:
        await loop.run_in_executor(None, lambda: shutil.rmtree(work, ignore_errors=True))


def _work_dir(settings) -> str:
    """A fresh folder under ``DATA_DIR/previews-work`` for one build (removed after it)."""
    root = Path(settings.data_dir) / "previews-work"
    root.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix="preview-", dir=root)


async def _local_copy(storage, key: str, work: Path, file_format: str) -> Path:
    """A local path of the stored object: the file itself on local disk, else a download."""
    path_of = getattr(storage, "path_of", None)
    if path_of is not None:
        return path_of(key)
    target = work / f"source.{file_format.lower()}"
    await storage.download_to(key, target)
    return target


async def _build(services: Any, source: Path, file_format: str, work: Path,
                 thumbnail: bool) -> dict:
    settings = services.settings
    args = (str(source), file_format, str(work), settings.preview_max_faces,
            settings.preview_max_texture_px, thumbnail)
    async with getattr(services, "preview_lock", None) or contextlib.nullcontext():
        for attempt in (1, 2):
            pool = services.preview_pool
            try:
                future = asyncio.get_running_loop().run_in_executor(pool, build_preview, *args)
                return await asyncio.wait_for(future, settings.preview_timeout_seconds)
            except TimeoutError:
                replace_pool(services, "preview_pool", pool, kill=True)
                return {"error": f"timed out after {settings.preview_timeout_seconds:g} s"}
            except BrokenProcessPool:
                log.warning("preview worker died (attempt %d)", attempt)
                replace_pool(services, "preview_pool", pool, kill=True)
    return {"error": "the preview worker stopped"}


async def _store(storage, built: dict) -> dict:
    stored = []
    try:
        glb = await _put(storage, new_key("previews", "GLB"), Path(built["glb"]), "GLB")
        stored.append(glb)
        thumbnails = None
        if built.get("views"):
            thumbnails = {}
            for name, path in built["views"].items():
                obj = await _put(storage, new_key("thumbnails", VIEW_FORMATS[name]), Path(path),
                                 VIEW_FORMATS[name])
                stored.append(obj)
                thumbnails[name] = obj.url
    except BaseException:
        await remove(storage, stored)
        raise
    return {"preview_status": "ready", "preview_url": glb.url, "preview_key": glb.key,
            "preview_faces": built["faces"], "preview_vertices": built["vertices"],
            "preview_simplified": built["simplified"], "thumbnails": thumbnails,
            "thumbnail_keys": [obj.key for obj in stored[1:]]}
