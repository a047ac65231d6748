"""The demo's reconstructed spider shown by the extension's display (ellipsoids) beside the
ground-truth render, from held-out cameras (headless Cycles CPU, PyPI bpy 5.0.1).

Usage: .venv/bin/python demo/screenshot.py [--out-dir demo-output] [--cameras cam_05 cam_11]
                                          [--samples 8] [--threads 1] [--png OUT/display.png]

Opens ``OUT/scene.blend`` (written by ``make demo``), hides every object but the point cloud
made by Reconstruct, sets its display modifier to ellipsoids (Sigma 3, the render setting of
docs/blender-display.md), renders each camera with Cycles on the CPU at the views' size and
writes ``OUT/display.png``: one row per camera, ground truth (``OUT/views/images/<cam>.png``)
| display render, labelled. The display's node group and materials are saved in the .blend, so
Cycles renders them without the extension; it is enabled anyway (``extension.py``, "link": a
few seconds) because its ``display`` package, used to set the modifier's inputs, only imports
as part of the extension.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if "BLENDER_USER_RESOURCES" not in os.environ:  # read once, when bpy is imported
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="resplat-shot-blender-")
    atexit.register(shutil.rmtree, os.environ["BLENDER_USER_RESOURCES"], True)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "demo"))
sys.path.insert(0, str(REPO / "benchmarks"))

import bpy  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from display_screenshot import _render  # noqa: E402
from extension import enable_extension  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=REPO / "demo-output", help="the demo's output folder")
    ap.add_argument("--cameras", nargs="+", default=["cam_05", "cam_11"])
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--bounces", type=int, default=64, help="Cycles transparent bounces")
    ap.add_argument("--threads", type=int, default=0, help="render threads (0: all cores)")
    ap.add_argument("--png", type=Path, default=None, help="default: OUT/display.png")
    a = ap.parse_args(argv)
    out = a.out_dir.resolve()
    png = a.png or out / "display.png"
    t0 = time.perf_counter()
    bpy.ops.wm.open_mainfile(filepath=str(out / "scene.blend"), load_ui=False)
    display = __import__(f"{enable_extension(sys.executable).__name__}.display", fromlist=["display"])
    scene = bpy.context.scene
    clouds = [o for o in scene.objects if o.type == "POINTCLOUD" and o.modifiers.get(display.MODIFIER_NAME)]
    if not clouds:
        raise SystemExit(f"no point cloud with the {display.MODIFIER_NAME!r} modifier in {out / 'scene.blend'}")
    cloud = clouds[0]
    for ob in scene.objects:
        if ob.type != "CAMERA":
            ob.hide_render = ob != cloud
    display.set_inputs(cloud.modifiers[display.MODIFIER_NAME], Ellipsoids=True, Sigma=3.0, Detail=1, Fraction=1.0)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.use_denoising = False
    scene.cycles.transparent_max_bounces = a.bounces
    scene.render.threads_mode = "FIXED" if a.threads else "AUTO"
    if a.threads:
        scene.render.threads = a.threads
    work = Path(tempfile.mkdtemp(prefix="resplat-shot-"))
    atexit.register(shutil.rmtree, work, True)
    rows = []
    for name in a.cameras:
        gt = Image.open(out / "views" / "images" / f"{name}.png").convert("RGB")
        t = time.perf_counter()
        _render(bpy, bpy.data.objects[name], work / f"{name}.png", gt.width, gt.height, a.samples)
        print(f"{name}: rendered in {time.perf_counter() - t:.1f} s", flush=True)
        rows.append((name, gt, Image.open(work / f"{name}.png").convert("RGB")))
    w, h, bar = rows[0][1].width, rows[0][1].height, 18
    sheet = Image.new("RGB", (2 * w, len(rows) * (h + bar)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (name, gt, shot) in enumerate(rows):
        y = i * (h + bar)
        sheet.paste(gt, (0, y + bar))
        sheet.paste(shot, (w, y + bar))
        draw.text((6, y + 3), f"{name} (held out): ground truth", fill=(0, 0, 0))
        draw.text((w + 6, y + 3), f"{len(cloud.data.points)} splats: ellipsoids", fill=(0, 0, 0))
    png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png, optimize=True)
    print(f"wrote {png} ({png.stat().st_size} bytes) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
