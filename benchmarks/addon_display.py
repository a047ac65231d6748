"""Evaluation time of the "ReSplat Display" modifier (headless depsgraph, PyPI bpy 5.0.1).

Usage: python benchmarks/addon_display.py [--n 100000,500000] [--degree 3] [--repeat 3]

For each splat count: builds the splat object once (random splats, resplat schema), then for
points, ellipsoids, and ellipsoids with Fraction 0.2 times ``view_layer.update()`` after a
change of the Sigma input (which re-runs the whole node tree). Best of --repeat, wall clock.
GPU drawing is not measured (no display headless). Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from addon_env import addon_env, clear_scene  # noqa: E402
from formats_bench import random_splats  # noqa: E402

MODES = {"points": dict(Ellipsoids=False, Fraction=1.0), "ellipsoids": dict(Ellipsoids=True, Fraction=1.0),
         "ellipsoids 20%": dict(Ellipsoids=True, Fraction=0.2), "points 20%": dict(Ellipsoids=False, Fraction=0.2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="100000,500000")
    ap.add_argument("--degree", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bpy, _, _ = addon_env()
    from bl_ext.user_default.resplat.resplat_addon import display
    from bl_ext.user_default.resplat.resplat_addon.splats.pointcloud import build_object

    print(f"{'splats':>8} {'mode':>15} {'eval s':>8} {'shown':>8}")
    for n in (int(x) for x in args.n.split(",")):
        clear_scene(bpy)
        arrays = random_splats(n, args.degree)
        t = time.perf_counter()
        ob = build_object(bpy.context, arrays, f"bench{n}")
        bpy.context.view_layer.update()
        print(f"{n:>8} {'build+first':>15} {time.perf_counter() - t:8.3f}")
        mod = ob.modifiers[display.MODIFIER_NAME]
        for mode, inputs in MODES.items():
            best, sigma = float("inf"), 2.0
            for _ in range(args.repeat):
                sigma += 0.01
                display.set_inputs(mod, Sigma=sigma, **inputs)
                t = time.perf_counter()
                bpy.context.view_layer.update()
                best = min(best, time.perf_counter() - t)
            gs = ob.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
            ip = gs.instances_pointcloud()
            shown = len(ip.points) if ip is not None else len(gs.pointcloud.points)
            print(f"{n:>8} {mode:>15} {best:8.3f} {shown:>8}")


if __name__ == "__main__":
    main()
