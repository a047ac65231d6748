"""demo/run_demo.py end to end at a tiny size: the third-party spider asset rendered by headless
Blender (64x64, 8 input cameras + 2 held-out, 1 Cycles sample), the extension's Reconstruct
operator (built, validated and installed from the zip) with the embedded model (1 iteration),
the saved .blend, the exported scene.ply, the evaluation and the report. Checks that every
output exists and is consistent: scene.ply (the extension's PLY export) holds exactly the point
cloud saved in scene.blend, which is exactly the runtime's last iteration pruned at the default
opacity; importing scene.ply back through the extension gives the same splats again;
results.json scores every iteration and the equal-time optimisation."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import addon_env  # noqa: F401 (sets BLENDER_USER_RESOURCES before bpy is imported)

bpy = pytest.importorskip("bpy")

from resplat.formats import read_splat_arrays, read_splats  # noqa: E402
from resplat.model import prune_transparent  # noqa: E402
from repo_scripts import load_script  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "runtime" / "resplat" / "model" / "weights" / "tiny.safetensors"
FIELDS = ("means", "quats", "log_scales", "logit_opacities", "sh")
OUTPUTS = ("scene.blend", "scene.ply", "heldout.png", "results.md", "results.json", "blender.json", "blender.log",
           "views/transforms.json", "views/split.json", "iterations/preview_initial_0.ply",
           "iterations/preview_update_1.ply")


def _pointcloud_module():
    """The add-on's ``splats.pointcloud`` from this checkout, without registering the add-on
    (demo/asset_scene.py imports the add-on's modules under a private package name)."""
    load_script("demo", "asset_scene")
    return importlib.import_module("_resplat_demo_extension.resplat_addon.splats.pointcloud")


def _saved_arrays(blend: Path, name: str):
    """(SplatArrays, world matrix) of the point cloud object ``name`` appended from ``blend``;
    the appended data is removed again."""
    kinds = ("objects", "pointclouds", "meshes", "materials", "node_groups", "images")
    before = {k: set(getattr(bpy.data, k)) for k in kinds}
    with bpy.data.libraries.load(str(blend), link=False) as (src, dst):
        assert name in src.objects, f"{blend} holds no object {name!r}: {list(src.objects)}"
        dst.objects = [name]
    ob = dst.objects[0]
    try:
        return _pointcloud_module().read_arrays(ob), np.array(ob.matrix_world)
    finally:
        for k in kinds:
            coll = getattr(bpy.data, k)
            for item in [x for x in coll if x not in before[k]]:
                coll.remove(item)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} is not there yet (the embedded model)")
    out = tmp_path_factory.mktemp("demo") / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("BLENDER_USER_RESOURCES", None)  # the demo's Blender gets its own, not this process's
    r = subprocess.run([sys.executable, str(REPO / "demo" / "run_demo.py"), "--out", str(out), "--size", "64",
                        "--views", "10", "--context", "8", "--samples", "1", "--enable", "zip", "--iterations", "1", "--threads", "1"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "| iteration 1, pruned = scene.ply |" in r.stdout and "| **total** |" in r.stdout
    return out


def test_outputs_exist_and_results_cover_every_iteration(demo_out):
    missing = [n for n in OUTPUTS if not (demo_out / n).is_file()]
    assert not missing
    res = json.loads((demo_out / "results.json").read_text())
    b, ev = res["blender"], res["evaluation"]
    assert b["context"] == [f"cam_{i:02d}" for i in (0, 1, 2, 3, 5, 6, 7, 8)] and b["heldout"] == ["cam_04", "cam_09"]
    assert [r["iteration"] for r in ev["iterations"]] == [0, 1]
    for r in [*ev["iterations"], ev["final"], ev["optimisation"]]:
        assert all(math.isfinite(r[k]) for k in ("input_psnr", "input_ssim", "heldout_psnr", "heldout_ssim"))
    opt = ev["optimisation"]
    assert opt["steps"] >= 1 and opt["seconds"] >= opt["budget_seconds"]  # it ran for the iterations' time
    assert opt["budget_seconds"] == pytest.approx(sum(b["seconds"]["reconstruct"]["iterations"]))
    assert (demo_out / "results.md").read_text().startswith("## ReSplat demo: spider asset, 64x64")
    with Image.open(demo_out / "heldout.png") as im:  # 2 rows of 4 tiles, enlarged to >= 160 px
        assert im.width > 4 * 160 and im.height > 2 * 160


def test_scene_ply_is_the_saved_point_cloud_and_the_runtime_result(demo_out):
    res = json.loads((demo_out / "results.json").read_text())
    saved, matrix = _saved_arrays(demo_out / "scene.blend", res["blender"]["object"])
    exported = read_splat_arrays(demo_out / "scene.ply")
    assert len(exported) == res["blender"]["splats"] > 100
    np.testing.assert_array_equal(matrix, np.eye(4))
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(saved, f), getattr(exported, f), err_msg=f)
    # the operator's result is the runtime's last iteration, pruned at the default opacity 0.005
    want = prune_transparent(read_splats(demo_out / "iterations" / "preview_update_1.ply"), 0.005).tensors()
    got = read_splats(demo_out / "scene.ply").tensors()
    for k, v in want.items():
        assert bool((got[k] == v).all()), k


def test_scene_ply_imports_back_through_the_extension(demo_out):
    from addon_env import addon_env, clear_scene

    bpy_, addon, _ = addon_env()
    clear_scene(bpy_)
    saved = read_splat_arrays(demo_out / "scene.ply")
    assert bpy_.ops.import_scene.resplat_splat(filepath=str(demo_out / "scene.ply")) == {"FINISHED"}
    ob = bpy_.context.active_object
    got = importlib.import_module(f"{addon.__name__}.splats.pointcloud").read_arrays(ob)
    assert ob.type == "POINTCLOUD" and len(got) == len(saved)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(got, f), getattr(saved, f), err_msg=f)
    clear_scene(bpy_)
