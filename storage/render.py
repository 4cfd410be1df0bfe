"""Thumbnails rendered from a mesh with VTK offscreen (runs in a preview worker process).

`render_views(scene, out_dir)` draws a trimesh Scene lit by a VTK light kit, framed from the
front-right and slightly above (Y up, as glTF), over a light grey gradient, and writes the
sizes the pages use::

    {"thumbnail": <640×480 PNG path>, "card": <320×240 WEBP path>,
     "detail": <1280×960 WEBP path>}

The scene is drawn once at the detail size, the smaller sizes are Pillow downscales of it
(which also smooths the edges). Colours come from each mesh's visual: vertex or face colours,
texture colours sampled at the vertices, or the material's main colour.

VTK picks its offscreen context at run time: EGL (Debian `libegl1` + `libegl-mesa0` +
`libgl1-mesa-dri`, software rendering with llvmpipe, no display needed), or OSMesa
(`libosmesa6`) when EGL cannot start. Raises RuntimeError when neither works.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SIZES = {"detail": (1280, 960), "thumbnail": (640, 480), "card": (320, 240)}
BACKGROUND_TOP = (0.96, 0.97, 0.99)
BACKGROUND_BOTTOM = (0.80, 0.83, 0.88)
DEFAULT_COLOR = (176, 182, 194)
VIEW_DIRECTION = np.array([0.85, 0.55, 1.25])


def _window():
    """An offscreen render window: EGL first, OSMesa when EGL is not there."""
    from vtkmodules import vtkRenderingOpenGL2 as gl
    from vtkmodules.vtkCommonCore import vtkObject

    vtkObject.GlobalWarningDisplayOff()
    errors = []
    for name in ("vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow"):
        window_class = getattr(gl, name, None)
        if window_class is None:
            continue
        window = window_class()
        window.SetOffScreenRendering(1)
        window.SetMultiSamples(0)
        try:
            window.SetSize(*SIZES["detail"])
            window.Initialize()
            if window.SupportsOpenGL():
                return window
        except Exception as exc:   # an unusable backend: try the next one
            errors.append(f"{name}: {exc}")
        window.Finalize()
    raise RuntimeError("no offscreen OpenGL context (install libegl-mesa0 or libosmesa6)"
                       + (f": {'; '.join(errors)}" if errors else ""))


def _colors(mesh) -> tuple[str, np.ndarray] | None:
    """("point" | "cell", RGB uint8 n×3) for `mesh`, or None for one flat colour."""
    visual = getattr(mesh, "visual", None)
    if visual is None:
        return None
    try:
        if visual.kind == "texture":
            visual = visual.to_color()
        if visual.kind == "face":
            colors = np.asarray(visual.face_colors)
            if len(colors) == len(mesh.faces):
                return "cell", colors[:, :3].astype(np.uint8)
        if visual.kind == "vertex":
            colors = np.asarray(visual.vertex_colors)
            if len(colors) == len(mesh.vertices):
                return "point", colors[:, :3].astype(np.uint8)
    except Exception:
        return None
    return None


def _texture(mesh, poly):
    """A vtkTexture of the mesh's base colour image, with its UVs set on `poly`; or None."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkRenderingCore import vtkTexture

    visual = getattr(mesh, "visual", None)
    if getattr(visual, "kind", None) != "texture" or visual.uv is None \
            or len(visual.uv) != len(mesh.vertices):
        return None
    material = visual.material
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None or not hasattr(image, "size"):
        return None
    pixels = np.flipud(np.asarray(image.convert("RGB"))).reshape(-1, 3)
    data = vtkImageData()
    data.SetDimensions(image.size[0], image.size[1], 1)
    scalars = numpy_to_vtk(np.ascontiguousarray(pixels), deep=True)
    scalars.SetNumberOfComponents(3)
    data.GetPointData().SetScalars(scalars)
    poly.GetPointData().SetTCoords(numpy_to_vtk(
        np.ascontiguousarray(visual.uv, dtype=np.float32), deep=True))
    texture = vtkTexture()
    texture.SetInputData(data)
    texture.InterpolateOn()
    texture.RepeatOn()
    return texture


def _main_color(mesh) -> tuple[int, int, int]:
    material = getattr(getattr(mesh, "visual", None), "material", None)
    try:
        color = material.main_color if material is not None else None
    except Exception:
        color = None
    if color is None:
        return DEFAULT_COLOR
    return tuple(int(c) for c in np.asarray(color)[:3])


def _actor(mesh):
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(mesh.vertices, dtype=np.float32), deep=True))
    faces = np.asarray(mesh.faces, dtype=np.int64)
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtk(offsets, deep=True), numpy_to_vtk(faces.ravel(), deep=True))
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    texture = _texture(mesh, poly)
    colors = None if texture is not None else _colors(mesh)
    if colors is not None:
        where, values = colors
        array = numpy_to_vtk(np.ascontiguousarray(values), deep=True)
        array.SetName("colors")
        data = poly.GetPointData() if where == "point" else poly.GetCellData()
        data.SetScalars(array)
    normals = vtkPolyDataNormals()
    normals.SetInputData(poly)
    normals.SetFeatureAngle(40)
    normals.SplittingOn()
    mapper = vtkPolyDataMapper()
    mapper.SetInputConnection(normals.GetOutputPort())
    actor = vtkActor()
    actor.SetMapper(mapper)
    prop = actor.GetProperty()
    if texture is not None:
        mapper.ScalarVisibilityOff()
        actor.SetTexture(texture)
        prop.SetColor(1.0, 1.0, 1.0)
    elif colors is not None:
        mapper.SetColorModeToDirectScalars()
        mapper.ScalarVisibilityOn()
    else:
        mapper.ScalarVisibilityOff()
        prop.SetColor(*(c / 255.0 for c in _main_color(mesh)))
    prop.SetAmbient(0.18)
    prop.SetDiffuse(0.85)
    prop.SetSpecular(0.15)
    prop.SetSpecularPower(20)
    return actor


def _meshes(scene) -> list:
    """The scene's triangle meshes in world coordinates."""
    meshes = []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        geometry = scene.geometry.get(name)
        if geometry is None or not len(getattr(geometry, "faces", ())):
            continue
        mesh = geometry.copy()
        mesh.apply_transform(transform)
        meshes.append(mesh)
    return meshes


def _frame(renderer, bounds: np.ndarray) -> None:
    """Aim the camera at the centre of `bounds` from VIEW_DIRECTION so the model fills the view."""
    center = bounds.mean(axis=0)
    radius = max(float(np.linalg.norm(bounds[1] - bounds[0])) / 2.0, 1e-6)
    camera = renderer.GetActiveCamera()
    camera.SetViewAngle(30.0)
    direction = VIEW_DIRECTION / np.linalg.norm(VIEW_DIRECTION)
    distance = radius / np.sin(np.radians(30.0 / 2.0)) * 1.08
    camera.SetFocalPoint(*center)
    camera.SetPosition(*(center + direction * distance))
    camera.SetViewUp(0.0, 1.0, 0.0)
    renderer.ResetCameraClippingRange()


def render_views(scene, out_dir: Path) -> dict[str, str]:
    """Render `scene` (a trimesh Scene) and write the thumbnail sizes into `out_dir`.

    Returns ``{size name: file path}`` (see module docstring). Raises ValueError for a scene
    without triangles, RuntimeError without an offscreen OpenGL context.
    """
    from PIL import Image
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkLightKit, vtkRenderer, vtkWindowToImageFilter

    meshes = _meshes(scene)
    if not meshes:
        raise ValueError("nothing to render")
    bounds = np.array([np.min([m.bounds[0] for m in meshes], axis=0),
                       np.max([m.bounds[1] for m in meshes], axis=0)])
    window = _window()
    try:
        renderer = vtkRenderer()
        renderer.GradientBackgroundOn()
        renderer.SetBackground(*BACKGROUND_BOTTOM)
        renderer.SetBackground2(*BACKGROUND_TOP)
        window.AddRenderer(renderer)
        for mesh in meshes:
            renderer.AddActor(_actor(mesh))
        renderer.RemoveAllLights()
        kit = vtkLightKit()
        kit.SetKeyLightIntensity(0.95)
        kit.AddLightsToRenderer(renderer)
        _frame(renderer, bounds)
        window.Render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(window)
        grab.SetInputBufferTypeToRGB()
        grab.ReadFrontBufferOff()
        grab.Update()
        image = grab.GetOutput()
        width, height, _ = image.GetDimensions()
        pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, 3)
        picture = Image.fromarray(np.flipud(pixels).copy(), "RGB")
    finally:
        window.Finalize()
    out = {}
    for name, size in SIZES.items():
        resized = picture if picture.size == size else picture.resize(size, Image.LANCZOS)
        if name == "thumbnail":
            path = Path(out_dir) / "thumbnail.png"
            resized.save(path, "PNG", compress_level=6)
        else:
            path = Path(out_dir) / f"{name}.webp"
            resized.save(path, "WEBP", quality=86, method=3)
        out[name] = os.fspath(path)
    return out
