"""demo/screenshot.py (``make screenshot``, docs/images/extension-heldout.png) at 64x64: the
spider scene with 5 cameras, cam_03 marked Held Out, Reconstruct through the extension installed
from its zip (embedded model, 1 iteration, 1 Cycles sample), the result shown by the display
from cam_03 beside its ground truth. Checks the sheet's size, that its ground-truth half is the
camera's render pixel for pixel (rendered again here by the extension's view renderer), that the
display half shows splats, and that the labels carry the readout the result object holds for a
camera the runtime never fitted."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from addon_env import addon_env, clear_scene

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "runtime" / "resplat" / "model" / "weights" / "tiny.safetensors"
SIZE = 64


def test_screenshot_shows_the_result_beside_the_held_out_ground_truth(tmp_path):
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} is not there yet (the embedded model)")
    bpy, addon, _ = addon_env()
    sys.path.insert(0, str(REPO / "demo"))
    try:
        shot = importlib.import_module("screenshot")
    finally:
        sys.path.remove(str(REPO / "demo"))
    prefs = importlib.import_module(f"{addon.__name__}.preferences").get_prefs()
    prefs.python = sys.executable
    views = importlib.import_module(f"{addon.__name__}.views")
    png = tmp_path / "shot.png"
    try:
        out = shot.shoot(addon, png, views=5, heldout=("cam_03",), size=SIZE, samples=1, display_samples=2,
                         iterations=1, threads=1)
        cloud = bpy.data.objects[out["object"]]
        assert out["cameras"].keys() == {"cam_03"} and cloud["resplat_heldout_views"] == 1
        assert cloud["resplat_quality_views"] == 4  # the runtime fitted the 4 others only
        psnr, ssim = out["cameras"]["cam_03"]
        assert psnr == pytest.approx(cloud["resplat_heldout_psnr"]) and 5 < psnr < 60
        assert out["heldout"] == [f"PSNR {psnr:.2f} dB, SSIM {ssim:.3f} at held-out cam_03"]
        # the ground truth, rendered again by the extension's view renderer (the readout's)
        _, (truth,), _ = views.render_views(bpy.context.scene, [bpy.data.objects["cam_03"]], SIZE, SIZE, tmp_path)
        truth = np.asarray(Image.open(truth).convert("RGB"))
    finally:
        prefs.python = ""
        clear_scene(bpy)
    sheet = np.asarray(Image.open(png))
    top = 3 * shot.LINE + 6  # title, Quality, Held out
    assert sheet.shape == (top + SIZE + shot.BAR, 2 * SIZE, 3)
    left = sheet[top + shot.BAR:, :SIZE]
    right = sheet[top + shot.BAR:, SIZE:].astype(np.float64)
    np.testing.assert_array_equal(left, truth)
    # the display half shows the splats: not one flat colour, and not the ground truth pasted twice
    assert right.std() > 8 and np.abs(right - truth).mean() > 1
    world = np.median(right.reshape(-1, 3), axis=0)
    assert (np.abs(right - world).max(-1) > 20).mean() > 0.1  # at least a tenth of the pixels differ from the world
