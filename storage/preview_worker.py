"""The web preview of a model file, built in a worker process (trimesh, fast-simplification,
Pillow, VTK).

`build_preview(path, file_format, out_dir, max_faces, max_texture_px, thumbnail)` writes
into `out_dir`:

- ``preview.glb`` — what a browser viewer (`<model-viewer>`, three.js) loads. A GLB already
  within the budgets is copied byte for byte (animations and skins kept); anything else
  (OBJ/STL/PLY/GLTF, or a GLB over a budget) is converted with trimesh: meshes whose total
  face count is above `max_faces` are simplified by quadric decimation (fast-simplification)
  to about `max_faces` faces in all, keeping texture coordinates and vertex colours of the
  vertices that remain; embedded textures larger than `max_texture_px` on a side are
  downscaled with Pillow (LANCZOS).
- with `thumbnail`, the rendered views of `storage.render` (640×480 PNG, card and detail
  WebP).

Returns ``{"glb": path, "faces": int, "vertices": int, "simplified": bool, "copied": bool,
"views": {name: path} | None}``, or ``{"error": "<short reason>"}`` (never raises).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

TEXTURE_SLOTS = ("baseColorTexture", "normalTexture", "metallicRoughnessTexture",
                 "emissiveTexture", "occlusionTexture", "image")


def build_preview(path: str, file_format: str, out_dir: str, max_faces: int,
                  max_texture_px: int, thumbnail: bool) -> dict:
    """Build the preview of the model at `path` into `out_dir` (see module docstring)."""
    try:
        return _build(path, file_format, Path(out_dir), max_faces, max_texture_px, thumbnail)
    except MemoryError:
        return {"error": "the model is too large to preview"}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def _build(path: str, file_format: str, out: Path, max_faces: int, max_texture_px: int,
           thumbnail: bool) -> dict:
    import trimesh

    # process=False: no vertex merging on load (seconds and gigabytes on a 5 M face mesh);
    # the decimation welds what it needs
    scene = trimesh.load(path, file_type=file_format.lower(), force="scene", process=False)
    faces = _face_count(scene)
    if faces == 0:
        raise ValueError("the model has no triangles to show")
    glb = out / "preview.glb"
    oversized = _oversized_textures(scene, max_texture_px)
    simplified = copied = False
    if file_format == "GLB" and faces <= max_faces and not oversized:
        shutil.copyfile(path, glb)
        copied = True
    else:
        if faces > max_faces:
            scene = _simplify(scene, faces, max_faces)
            simplified = True
        _downscale_textures(scene, max_texture_px)
        glb.write_bytes(scene.export(file_type="glb"))
        del scene
        scene = trimesh.load(os.fspath(glb), file_type="glb", force="scene")
    result = {"glb": os.fspath(glb), "faces": _face_count(scene),
              "vertices": _vertex_count(scene), "simplified": simplified, "copied": copied,
              "views": None}
    if thumbnail:
        from storage.render import render_views

        result["views"] = render_views(scene, out)
    return result


def _n(geometry, name: str) -> int:
    values = getattr(geometry, name, None)
    return 0 if values is None else len(values)


def _meshes(scene) -> list:
    return [g for g in scene.geometry.values() if _n(g, "faces")]


def _face_count(scene) -> int:
    """Faces drawn: each geometry counted once per node that instances it."""
    total = 0
    for node in scene.graph.nodes_geometry:
        geometry = scene.geometry.get(scene.graph[node][1])
        total += _n(geometry, "faces")
    return int(total)


def _vertex_count(scene) -> int:
    total = 0
    for node in scene.graph.nodes_geometry:
        geometry = scene.geometry.get(scene.graph[node][1])
        total += _n(geometry, "vertices")
    return int(total)


def _simplify(scene, faces: int, max_faces: int):
    """Decimate every mesh by the same ratio so the scene has about `max_faces` faces."""
    ratio = max_faces / faces
    for name, mesh in list(scene.geometry.items()):
        count = _n(mesh, "faces")
        target = int(count * ratio)
        if count < 8 or target >= count:
            continue
        scene.geometry[name] = _decimate(mesh, max(4, target))
    return scene


def _decimate(mesh, target: int):
    """`mesh` reduced to about `target` faces; UVs and vertex colours follow the vertices
    that remain (each kept vertex keeps its own attributes)."""
    import fast_simplification
    import trimesh

    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    triangles = np.asarray(mesh.faces, dtype=np.int32)
    visual = mesh.visual
    attributes = _vertex_attributes(visual, len(vertices))
    if not attributes:
        points, new_faces = fast_simplification.simplify(vertices, triangles,
                                                         target_count=target)
        out = trimesh.Trimesh(points, new_faces, process=False)
        _flat_visual(out, visual)
        return out
    _, _, collapses = fast_simplification.simplify(vertices, triangles, target_count=target,
                                                   return_collapses=True)
    points, new_faces, mapping = fast_simplification.replay_simplification(
        vertices, triangles, collapses)
    keep = mapping >= 0
    first = np.full(len(points), -1, dtype=np.int64)
    # the first original vertex that maps to each new vertex gives its attributes
    order = np.nonzero(keep)[0][::-1]
    first[mapping[order]] = order
    first[first < 0] = 0
    out = trimesh.Trimesh(points, new_faces, process=False)
    if "uv" in attributes:
        out.visual = trimesh.visual.TextureVisuals(uv=attributes["uv"][first],
                                                   material=visual.material)
    else:
        out.visual = trimesh.visual.ColorVisuals(out, vertex_colors=attributes["color"][first])
    return out


def _vertex_attributes(visual, count: int) -> dict:
    if getattr(visual, "kind", None) == "texture" and visual.uv is not None \
            and len(visual.uv) == count:
        return {"uv": np.asarray(visual.uv)}
    if getattr(visual, "kind", None) == "vertex":
        colors = np.asarray(visual.vertex_colors)
        if len(colors) == count:
            return {"color": colors}
    return {}


def _flat_visual(mesh, visual) -> None:
    """Give the decimated `mesh` one colour: its material, or the main colour of the
    original's face colours (which cannot follow the collapsed faces)."""
    import trimesh

    material = getattr(visual, "material", None)
    if material is not None:
        mesh.visual = trimesh.visual.TextureVisuals(material=material)
        return
    if getattr(visual, "kind", None) != "face":
        return
    color = np.asarray(visual.face_colors)[0]
    mesh.visual = trimesh.visual.ColorVisuals(
        mesh, vertex_colors=np.tile(color, (len(mesh.vertices), 1)))


def _images(scene):
    """(material, slot name, PIL image) for every embedded texture of the scene."""
    seen = set()
    for mesh in _meshes(scene):
        material = getattr(getattr(mesh, "visual", None), "material", None)
        if material is None or id(material) in seen:
            continue
        seen.add(id(material))
        for slot in TEXTURE_SLOTS:
            image = getattr(material, slot, None)
            if image is not None and hasattr(image, "size"):
                yield material, slot, image


def _oversized_textures(scene, max_px: int) -> bool:
    return any(max(image.size) > max_px for _, _, image in _images(scene))


def _downscale_textures(scene, max_px: int) -> None:
    from PIL import Image

    for material, slot, image in list(_images(scene)):
        if max(image.size) > max_px:
            smaller = image.copy()
            smaller.thumbnail((max_px, max_px), Image.LANCZOS)
            setattr(material, slot, smaller)
