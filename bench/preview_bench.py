"""Benchmark (not a test): time and worker peak memory of a model's web preview and thumbnail.

    .venv/bin/python bench/preview_bench.py [--subdivisions 9] [--small-subdivisions 6]

Generates the ~94 MB GLB of `bench/upload_bench.py` (an icosphere with 5.2 M faces) and a
~1 MB one, then, for each, runs in a fresh worker process (as the server's preview pool
does, one build per process here so each peak is its own):

- baseline: the upload analysis of the same file (`storage.analysis.analyze_path`, what
  every upload already costs);
- preview: the web GLB alone (`storage.preview_worker.build_preview`, no thumbnail):
  load, simplify to PREVIEW_MAX_FACES (300,000) when above it, export;
- thumbnail: then, in the same worker, the VTK offscreen render of that preview (640×480
  PNG, card and detail WebP; VTK's import and EGL context included).

Prints wall time and the worker's peak RSS (ru_maxrss) after each step, the preview's face
count, and the load average (the machine is shared: compare with the baseline of the run).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import trimesh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.upload_bench import make_glb  # noqa: E402


def _run(kind: str, path: str, out_dir: str, max_faces: int, queue) -> None:
    """In a fresh worker: the analysis (baseline), or the preview GLB then its thumbnail,
    each timed on its own; peak RSS after each step."""
    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    out: dict = {}
    start = time.perf_counter()
    if kind == "baseline":
        from storage.analysis import analyze_path

        result = analyze_path(path, "GLB")
        out["baseline"] = {"seconds": time.perf_counter() - start, "peak_mb": peak(),
                           "faces": result.get("poly_count"), "error": result.get("error")}
        queue.put(out)
        return
    from storage.preview_worker import build_preview

    result = build_preview(path, "GLB", out_dir, max_faces, 2048, False)
    out["preview"] = {"seconds": time.perf_counter() - start, "peak_mb": peak(),
                      "faces": result.get("faces"), "error": result.get("error")}
    if not result.get("error"):
        import trimesh as _trimesh

        from storage.render import render_views

        start = time.perf_counter()
        scene = _trimesh.load(result["glb"], file_type="glb", force="scene")
        views = render_views(scene, Path(out_dir))
        out["thumbnail"] = {"seconds": time.perf_counter() - start, "peak_mb": peak(),
                            "faces": result.get("faces"), "error": None if views else "none"}
    queue.put(out)


def measure(kind: str, path: Path, max_faces: int) -> dict:
    """Run one build in a fresh forkserver worker (as the preview pool's) and collect it."""
    context = multiprocessing.get_context("forkserver")
    queue = context.Queue()
    with tempfile.TemporaryDirectory() as out_dir:
        process = context.Process(target=_run, args=(kind, str(path), out_dir, max_faces, queue))
        process.start()
        result = queue.get(timeout=1800)
        process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subdivisions", type=int, default=9)
    parser.add_argument("--small-subdivisions", type=int, default=6)
    parser.add_argument("--max-faces", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        cases = []
        for label, subdivisions in (("~1 MB GLB", args.small_subdivisions),
                                    ("~100 MB GLB", args.subdivisions)):
            path = Path(work) / f"ico-{subdivisions}.glb"
            faces = make_glb(path, subdivisions)
            cases.append((label, path, faces))
        print(f"preview budget {args.max_faces:,} faces; each build in a fresh worker process")
        print(f"{'model':<36} {'step':<24} {'seconds':>8} {'peak RSS MB':>12} {'faces':>10}")
        for label, path, faces in cases:
            size_mb = path.stat().st_size / 1e6
            name = f"{label} ({size_mb:.1f} MB, {faces:,} f)"
            rows = {**measure("baseline", path, args.max_faces),
                    **measure("preview", path, args.max_faces)}
            for kind, step in (("baseline", "baseline: analysis"), ("preview", "preview GLB"),
                               ("thumbnail", "thumbnail (VTK render)")):
                result = rows.get(kind)
                if result is None or result["error"]:
                    print(f"{name:<36} {step:<24} failed: {result and result['error']}",
                          flush=True)
                    continue
                print(f"{name:<36} {step:<24} {result['seconds']:8.2f} "
                      f"{result['peak_mb']:12.0f} {result['faces'] or 0:10,}", flush=True)
            if rows.get("thumbnail") and not rows["thumbnail"]["error"]:
                total = rows["preview"]["seconds"] + rows["thumbnail"]["seconds"]
                ratio = total / max(rows["baseline"]["seconds"], 1e-6)
                print(f"{name:<36} {'preview + thumbnail':<24} {total:8.2f} "
                      f"{'':>12} {'':>10}  ({ratio:.1f}× the analysis)", flush=True)
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(json.dumps({"trimesh": trimesh.__version__}))


if __name__ == "__main__":
    main()
