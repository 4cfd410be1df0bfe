"""3D model analysis with trimesh in a process pool, with a time limit (docs/architecture.md §7).

`analyze_model(services, path, file_format)` returns the analysis dict::

    {analyzed: bool, format, poly_count, vertex_count, has_animations, has_rigging,
     has_materials, has_textures, material_count, texture_count, animation_count,
     texture_resolution: "2048x2048" | None, bounds: [[minx,miny,minz],[maxx,maxy,maxz]] | None}

GLB/GLTF/OBJ/STL/PLY are loaded by trimesh in `services.analysis_pool` (a
ProcessPoolExecutor), so a 100 MB mesh never weighs on the server process or its event loop.
glTF animations, skins (rigging), materials and textures are counted from the glTF JSON.
FBX and BLEND are stored as not analysed (trimesh cannot read them). A file trimesh cannot
read raises `InvalidModelFile` (400 INVALID_MODEL_FILE); one whose analysis needs more than
`ANALYSIS_MEMORY_MB` (the workers' address-space limit, `storage/workers.py`) raises
`ModelTooComplex` (413 MODEL_TOO_COMPLEX), as does a file under which a worker dies twice. A
worker that dies or hangs past `settings.analysis_timeout_seconds` is killed and the pool is
replaced, so one bad file never breaks analysis for the next upload.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from storage.errors import InvalidModelFile, ModelTooComplex
from storage.validate import ANALYZABLE_FORMATS
from storage.workers import replace_pool

log = logging.getLogger("hwc3d.analysis")
MEMORY_ERROR = "out of memory"


def not_analyzed(file_format: str) -> dict:
    """The analysis dict of a file that was stored without analysis (FBX, BLEND, time-outs)."""
    return {"analyzed": False, "format": file_format, "poly_count": None, "vertex_count": None,
            "has_animations": False, "has_rigging": False, "has_materials": False,
            "has_textures": False, "material_count": 0, "texture_count": 0,
            "animation_count": 0, "texture_resolution": None, "bounds": None}


async def analyze_model(services: Any, path: Path, file_format: str) -> dict:
    """Analyse the model file at `path` (a local file) of `file_format` off the event loop.

    `services` supplies `analysis_pool` and `settings.analysis_timeout_seconds`. Returns the
    analysis dict; FBX/BLEND and analyses that time out come back with ``analyzed: False``.
    Raises InvalidModelFile (400) when the file cannot be read as `file_format`, ModelTooComplex
    (413) when reading it needs more memory than a worker may use.
    """
    if file_format not in ANALYZABLE_FORMATS:
        return not_analyzed(file_format)
    timeout = services.settings.analysis_timeout_seconds
    for attempt in (1, 2):
        pool = services.analysis_pool
        try:
            future = asyncio.get_running_loop().run_in_executor(
                pool, analyze_path, str(path), file_format)
            result = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            log.warning("analysis of a %s file timed out after %ss", file_format, timeout)
            replace_pool(services, "analysis_pool", pool, kill=True)
            return not_analyzed(file_format)
        except BrokenProcessPool:
            log.warning("analysis worker died (attempt %d)", attempt)
            replace_pool(services, "analysis_pool", pool, kill=True)
            continue
        if result.get("error") == MEMORY_ERROR:
            raise ModelTooComplex(
                f"The {file_format} file needs more memory to analyse than the "
                f"{services.settings.analysis_memory_bytes // 2**20} MB an analysis may use")
        if "error" in result:
            raise InvalidModelFile(f"The {file_format} file could not be read: {result['error']}")
        return result
    # twice a worker ended under it: what ends one is its memory limit (numpy's MemoryError
    # comes back as a result; OpenBLAS, short of memory, ends the process instead)
    raise ModelTooComplex(f"The {file_format} file could not be analysed within the "
                          f"{services.settings.analysis_memory_bytes // 2**20} MB an analysis may use")


# --------------------------------------------------------------------------- in the worker

def analyze_path(path: str, file_format: str) -> dict:
    """Load `path` with trimesh and measure it (runs in a pool worker; never raises).

    Returns the analysis dict, or ``{"error": "<short reason>"}`` for an unreadable file.
    """
    try:
        gltf = _gltf_json(path, file_format) if file_format in ("GLB", "GLTF") else None
        if gltf is not None and _has_external_uris(gltf):
            return _gltf_only(gltf, file_format)
        return _measure(path, file_format, gltf)
    except MemoryError:
        return {"error": MEMORY_ERROR}
    except Exception as exc:
        return {"error": type(exc).__name__}


def _measure(path: str, file_format: str, gltf: dict | None) -> dict:
    import trimesh

    scene = trimesh.load(path, file_type=file_format.lower(), force="scene", process=False)
    poly_count = vertex_count = 0
    for node in scene.graph.nodes_geometry:
        geometry = scene.geometry[scene.graph[node][1]]
        poly_count += _length(getattr(geometry, "faces", None))
        vertex_count += _length(getattr(geometry, "vertices", None))
    if not scene.geometry or vertex_count == 0:
        raise ValueError("no geometry")
    out = not_analyzed(file_format)
    out.update(analyzed=True, poly_count=int(poly_count), vertex_count=int(vertex_count),
               bounds=_bounds(scene))
    out.update(_gltf_features(gltf) if gltf is not None else _visual_features(scene))
    out["texture_resolution"] = _texture_resolution(scene)
    return out


def _length(array) -> int:
    return 0 if array is None else len(array)


def _bounds(scene) -> list[list[float]] | None:
    bounds = scene.bounds
    if bounds is None:
        return None
    return [[round(float(v), 6) for v in corner] for corner in bounds]


def _gltf_json(path: str, file_format: str) -> dict:
    """The glTF JSON document: the JSON chunk of a GLB, or the whole GLTF file."""
    with open(path, "rb") as handle:
        if file_format == "GLTF":
            doc = json.loads(handle.read().decode("utf-8-sig"))
        else:
            magic, _version, length = struct.unpack("<4sII", handle.read(12))
            chunk_length, chunk_type = struct.unpack("<II", handle.read(8))
            if magic != b"glTF" or chunk_type != 0x4E4F534A or chunk_length > length:
                raise ValueError("bad GLB header")
            doc = json.loads(handle.read(chunk_length))
    if not isinstance(doc, dict) or not isinstance(doc.get("asset"), dict):
        raise TypeError("not a glTF document")
    return doc


def _has_external_uris(gltf: dict) -> bool:
    entries = list(gltf.get("buffers") or []) + list(gltf.get("images") or [])
    return any(isinstance(e, dict) and e.get("uri") and not str(e["uri"]).startswith("data:")
               for e in entries)


def _gltf_features(gltf: dict) -> dict:
    animations = len(gltf.get("animations") or [])
    skins = len(gltf.get("skins") or [])
    materials = len(gltf.get("materials") or [])
    textures = len(gltf.get("textures") or [])
    return {"has_animations": animations > 0, "has_rigging": skins > 0,
            "has_materials": materials > 0, "has_textures": textures > 0,
            "material_count": materials, "texture_count": textures, "animation_count": animations}


def _gltf_only(gltf: dict, file_format: str) -> dict:
    """Counts from the glTF JSON alone, for a GLTF whose buffers live in files not uploaded."""
    accessors = gltf.get("accessors") or []
    poly_count = vertex_count = 0
    for mesh in gltf.get("meshes") or []:
        for primitive in mesh.get("primitives") or []:
            positions = accessors[primitive["attributes"]["POSITION"]]["count"]
            vertex_count += positions
            if primitive.get("mode", 4) == 4:
                indices = primitive.get("indices")
                poly_count += (accessors[indices]["count"] if indices is not None else positions) // 3
    out = not_analyzed(file_format)
    out.update(_gltf_features(gltf))
    out.update(analyzed=True, poly_count=poly_count, vertex_count=vertex_count)
    return out


def _materials(scene) -> list:
    found = []
    for geometry in scene.geometry.values():
        material = getattr(getattr(geometry, "visual", None), "material", None)
        if material is not None and material not in found:
            found.append(material)
    return found


def _texture_images(scene) -> list:
    images = []
    for material in _materials(scene):
        for name in ("baseColorTexture", "image", "normalTexture", "metallicRoughnessTexture"):
            image = getattr(material, name, None)
            if image is not None and hasattr(image, "size"):
                images.append(image)
    return images


def _visual_features(scene) -> dict:
    materials = _materials(scene)
    textures = _texture_images(scene)
    return {"has_animations": False, "has_rigging": False,
            "has_materials": bool(materials), "has_textures": bool(textures),
            "material_count": len(materials), "texture_count": len(textures),
            "animation_count": 0}


def _texture_resolution(scene) -> str | None:
    sizes = [image.size for image in _texture_images(scene)]
    if not sizes:
        return None
    width, height = max(sizes, key=lambda size: size[0] * size[1])
    return f"{width}x{height}"
