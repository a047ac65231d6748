"""The extension as an artist sees its result, as one PNG: the spider scene
(:mod:`asset_scene`) with cameras marked Held Out in the panel's camera list, 3D View > ReSplat >
Reconstruct run through the extension (Embedded model, Quality Readout on), and the result shown
by the extension's display (ellipsoids) from each held-out camera beside that camera's ground
truth, labelled with the readout the panel shows (headless Cycles CPU, PyPI bpy 5.0.1).

Usage (``make screenshot`` runs the first line)::

    .venv/bin/python demo/screenshot.py [--png docs/images/extension-heldout.png] [--size 256]
        [--views 12] [--heldout cam_05 cam_11] [--samples 32] [--display-samples 8]
        [--iterations N] [--threads 0] [--enable link|zip]

Steps (:func:`shoot`):

1. :func:`asset_scene.build_scene`: the spider in its textured room, ``views`` orbit cameras in
   the collection "ReSplat Cameras", Cycles CPU at ``size`` x ``size``, ``samples`` samples.
2. The ``heldout`` cameras get ``Object.resplat_held_out`` (the list's Held Out toggle); the
   panel's settings take that collection, rendered views, the embedded model and the readout;
   ``bpy.ops.resplat.reconstruct()`` renders the input views and the held-out ones, reconstructs
   from the input views only and measures the result at both (``resplat eval``).
3. Per held-out camera: its ground truth rendered by the extension's own view renderer
   (``resplat_addon.views.render_views``: the render the readout compared against, splats
   hidden, Standard view transform, 8-bit PNG), and the result alone (every other object hidden)
   with the display modifier set to ellipsoids (Sigma 3, the render setting of
   docs/blender-display.md) at ``display_samples`` Cycles samples, no denoising.
4. The sheet (:func:`compose`): a header with the panel's readout lines, then one row per
   held-out camera: a label bar over ground truth | display, pasted unscaled, so the left half
   of a row holds the ground-truth render pixel for pixel.

12 views at 256 x 256 with 2 held out took 394 s with ``--threads 1`` on this project's busy 2-core
machine (views 80 s, Reconstruct and eval 60 s, each display render 100-130 s);
``tests/test_demo_screenshot.py`` runs :func:`shoot` at 64 x 64.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
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

import asset_scene  # noqa: E402  (imports bpy)
import bpy  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

#: the sheet's label bars and header lines, pixels
BAR = 18
LINE = 14
DEFAULT_PNG = REPO / "docs" / "images" / "extension-heldout.png"


def _mod(addon, name: str):
    return importlib.import_module(f"{addon.__name__}.{name}")


def render_display(addon, scene, cloud, cam, path: Path, size: int, samples: int) -> None:
    """Render only ``cloud`` (its display modifier set to ellipsoids, Sigma 3) from ``cam`` at
    ``size`` x ``size`` with ``samples`` Cycles samples into the PNG ``path``; every object's
    ``hide_render`` and the render settings are put back afterwards (the modifier keeps
    ellipsoids)."""
    display, views = _mod(addon, "display"), _mod(addon, "views")
    mod = cloud.modifiers[display.MODIFIER_NAME]
    hidden = [(ob, ob.hide_render) for ob in scene.objects if ob != cloud]
    cy = scene.cycles
    saved = (cy.samples, cy.use_denoising, cy.transparent_max_bounces)
    try:
        for ob, _ in hidden:
            ob.hide_render = True
        display.set_inputs(mod, Ellipsoids=True, Sigma=3.0, Detail=1, Fraction=1.0)
        cy.samples, cy.use_denoising, cy.transparent_max_bounces = samples, False, 64
        with views.saved_render_settings(scene):
            r = scene.render
            scene.camera = cam
            r.resolution_x = r.resolution_y = size
            r.resolution_percentage, r.pixel_aspect_x, r.pixel_aspect_y = 100, 1.0, 1.0
            r.use_border, r.film_transparent, r.use_file_extension = False, False, True
            r.image_settings.file_format = "PNG"
            r.image_settings.color_mode, r.image_settings.color_depth = "RGB", "8"
            scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"
            r.filepath = str(path)
            bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        for ob, flag in hidden:
            ob.hide_render = flag
        cy.samples, cy.use_denoising, cy.transparent_max_bounces = saved


def compose(header: list[str], rows: list[tuple[str, Image.Image, str, Image.Image]]) -> Image.Image:
    """The sheet: ``header`` lines (:data:`LINE` px each, plus 6), then per row a :data:`BAR` px
    label bar over (left label, left image | right label, right image), images pasted unscaled;
    every image has the first one's size. Returns an RGB image of width 2 w and height
    ``len(header) * LINE + 6 + len(rows) * (h + BAR)``."""
    w, h = rows[0][1].size
    top = len(header) * LINE + 6
    sheet = Image.new("RGB", (2 * w, top + len(rows) * (h + BAR)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, text in enumerate(header):
        draw.text((6, 3 + i * LINE), text, fill=(0, 0, 0))
    for i, (left_label, left, right_label, right) in enumerate(rows):
        y = top + i * (h + BAR)
        sheet.paste(left, (0, y + BAR))
        sheet.paste(right, (w, y + BAR))
        draw.text((6, y + 3), left_label, fill=(0, 0, 0))
        draw.text((w + 6, y + 3), right_label, fill=(0, 0, 0))
    return sheet


def shoot(addon, png: Path, *, views: int = 12, heldout: tuple[str, ...] = ("cam_05", "cam_11"), size: int = 256,
          samples: int = 32, display_samples: int = 8, iterations: int | None = None, threads: int = 0,
          asset: Path = asset_scene.REPO / "assets" / "spider" / "spider.obj") -> dict:
    """Steps 1-4 of the module docstring with the enabled extension ``addon`` (its
    ``resplat_addon`` package; the preferences name the runtime interpreter); writes ``png``.

    Args:
        iterations: the model's iterations (``None``: Model Default).
        threads: Cycles render threads (0: all cores).

    Returns:
        {"object": result name, "splats": count, "quality": the panel's input-views line,
        "heldout": the panel's held-out lines, "cameras": {held-out name: (PSNR dB, SSIM)},
        "png": path, "seconds": wall time}.

    Raises:
        SystemExit: a held-out name that is not one of the cameras, or Reconstruct failed (its
            report).
    """
    t0 = time.perf_counter()
    cams = asset_scene.build_scene(asset, views=views, size=size, samples=samples, threads=threads)
    scene = bpy.context.scene
    unknown = sorted(set(heldout) - {c.name for c in cams})
    if unknown or not heldout:
        raise SystemExit(f"held-out cameras {unknown or '(none)'} are not among {[c.name for c in cams]}")
    for cam in cams:
        cam.resplat_held_out = cam.name in heldout
    s = scene.resplat
    s.cameras, s.collection = "COLLECTION", bpy.data.collections[asset_scene.CAMERA_COLLECTION]
    s.views, s.width, s.height = "RENDER", size, size  # Depth Pass: the extension's default (on)
    s.model, s.quality, s.polish, s.device = "EMBEDDED", True, "OFF", "cpu"
    s.model_iterations = iterations is None
    if iterations is not None:
        s.iterations = iterations
    sj = _mod(addon, "splat_job")
    if bpy.ops.resplat.reconstruct() != {"FINISHED"}:
        raise SystemExit("Reconstruct failed (see its report above)")
    cloud = bpy.data.objects[asset_scene.CAMERA_COLLECTION]
    quality, held = sj.object_quality(cloud), sj.object_heldout_quality(cloud)
    per_cam = {name: tuple(v) for name, v in cloud[sj.HELDOUT_PROPS["cameras"]].items()}
    work = Path(tempfile.mkdtemp(prefix="resplat-shot-"))
    try:
        rows = []
        for name in heldout:
            cam = bpy.data.objects[name]
            _, (truth,), _ = _mod(addon, "views").render_views(scene, [cam], size, size, work)
            shot = work / f"display_{name}.png"
            render_display(addon, scene, cloud, cam, shot, size, display_samples)
            psnr, ssim = per_cam[name]
            rows.append((f"{name} (held out): ground truth", Image.open(truth).convert("RGB"),
                         f"result: PSNR {psnr:.2f} dB, SSIM {ssim:.3f}", Image.open(shot).convert("RGB")))
        header = [f"ReSplat > Reconstruct, {len(cloud.data.points)} splats (Embedded model)",
                  f"Quality: {quality}", *(("Held out: " if i == 0 else "  ") + line for i, line in enumerate(held))]
        png.parent.mkdir(parents=True, exist_ok=True)
        compose(header, rows).save(png, optimize=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"object": cloud.name, "splats": len(cloud.data.points), "quality": quality, "heldout": held,
            "cameras": per_cam, "png": png, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--png", type=Path, default=DEFAULT_PNG)
    ap.add_argument("--views", type=int, default=12)
    ap.add_argument("--heldout", nargs="+", default=["cam_05", "cam_11"])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--samples", type=int, default=32, help="Cycles samples of the views")
    ap.add_argument("--display-samples", type=int, default=8, help="Cycles samples of the display renders")
    ap.add_argument("--iterations", type=int, default=None, help="model iterations (default: the model's own)")
    ap.add_argument("--threads", type=int, default=0, help="render threads (0: all cores)")
    ap.add_argument("--enable", choices=("link", "zip"), default="link", help="how to enable the extension")
    a = ap.parse_args(argv)
    from extension import enable_extension

    addon = enable_extension(sys.executable, a.enable)
    out = shoot(addon, a.png.resolve(), views=a.views, heldout=tuple(a.heldout), size=a.size, samples=a.samples,
                display_samples=a.display_samples, iterations=a.iterations, threads=a.threads)
    print(f"{out['object']}: {out['splats']} splats; Quality: {out['quality']}; held out: {'; '.join(out['heldout'])}")
    print(f"wrote {out['png']} ({out['png'].stat().st_size} bytes) in {out['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
