"""Blender import of N splats (headless PyPI bpy 5.0.1): the extension's importer beside
Blender's built-in PLY importer, on the same INRIA PLY file.

- ours: ``bpy.ops.import_scene.resplat_splat`` (read with resplat.formats, one PointCloud in the
  resplat attribute schema, display modifier attached; docs/blender-schema.md).
- built-in: ``bpy.ops.wm.ply_import`` (Blender 5.0: a mesh of the vertices with every PLY
  property as a raw float attribute, 62 at SH degree 3; no splat schema, no display).

Times are the operator call only (wall clock, best of --repeat, the scene emptied before each
call), after one untimed import of 1,000 splats by each operator (the extension's first import
also builds its display node group and material, once per file); the first depsgraph
evaluation is not included. Each object's point count and attribute
count are reported so the two results can be compared.

Usage: python benchmarks/blender_import.py [--n 1000000] [--degree 3] [--ply FILE] [--repeat 1] [--json]
With --ply the file is imported as it is (--n and --degree are ignored). --json prints one JSON
object as the last line (benchmarks/summary.py runs this script in a child process, so bpy never
shares a process with the torch measurements). Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _new_object(bpy, before: set):
    """The one object the import added."""
    added = [ob for ob in bpy.context.scene.objects if ob.name not in before]
    if len(added) != 1:
        raise RuntimeError(f"expected one imported object, got {len(added)}")
    return added[0]


def random_ply(path: Path, n: int, degree: int = 3) -> Path:
    """Write ``n`` random splats (formats_bench.random_splats) to ``path``; return it."""
    from formats_bench import random_splats
    from resplat.formats import write_splat_arrays

    write_splat_arrays(random_splats(n, degree), path)
    return path


def measure(ply: Path, repeat: int = 1, warmup: Path | None = None) -> dict:
    """{"ours": {...}, "builtin": {...}}, each {"seconds", "points", "attributes", "type"};
    each operator imports ``warmup`` once, untimed, first."""
    from addon_env import addon_env, clear_scene

    bpy, _, _ = addon_env()
    ops = {"ours": lambda p: bpy.ops.import_scene.resplat_splat(filepath=str(p)),
           "builtin": lambda p: bpy.ops.wm.ply_import(filepath=str(p))}
    out = {}
    for key, op in ops.items():
        if warmup is not None:
            clear_scene(bpy)
            op(warmup)
        best = float("inf")
        for _ in range(repeat):
            clear_scene(bpy)
            before = {ob.name for ob in bpy.context.scene.objects}
            t = time.perf_counter()
            result = op(ply)
            best = min(best, time.perf_counter() - t)
            if result != {"FINISHED"}:
                raise RuntimeError(f"{key} import returned {result}")
        ob = _new_object(bpy, before)
        points = len(ob.data.points) if ob.type == "POINTCLOUD" else len(ob.data.vertices)
        public = [a for a in ob.data.attributes if not a.name.startswith(".")]
        out[key] = {"seconds": best, "points": points, "attributes": len(public), "type": ob.type}
    clear_scene(bpy)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--degree", type=int, default=3, choices=[0, 1, 2, 3])
    ap.add_argument("--ply", type=Path, default=None, help="import this PLY instead of N random splats")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args, _ = ap.parse_known_args()  # benchmarks/run may pass its own arguments
    with tempfile.TemporaryDirectory(prefix="resplat-import-") as tmp:
        ply = args.ply or random_ply(Path(tmp) / "bench.ply", args.n, args.degree)
        res = measure(ply, args.repeat, warmup=random_ply(Path(tmp) / "warmup.ply", 1000))
    if args.json:
        print(json.dumps(res))
        return
    print(f"{'importer':<10}{'seconds':>10}{'points':>10}{'attributes':>12}  object")
    for key, r in res.items():
        print(f"{key:<10}{r['seconds']:>10.3f}{r['points']:>10}{r['attributes']:>12}  {r['type']}")


if __name__ == "__main__":
    main()
