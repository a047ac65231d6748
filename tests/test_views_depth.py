"""Depth maps with posed views (nerfstudio ``depth_file_path``) and Gaussians initialised from
them (``resplat.optim.depth_init``, ``resplat optimize --depth-init``).

The synthetic generator's scenes carry exact z-depth from the analytic ray caster, so the tests
can check the unprojection against an independent geometry: a point lifted from one view must
land on the surface another view sees (its depth map), not only back on its own pixel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resplat.data import GeneratorConfig, generate_dataset
from resplat.errors import ResplatError, ViewsError
from resplat.optim import depth_init
from resplat.views import crop, load_depth, read_views, resize

CFG = GeneratorConfig(width=64, height=48, views=6, context=4, supersample=1)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("depth") / "ds"
    generate_dataset(root, 1, 5, CFG)
    return root / "scene_000000"


def _copy(scene: Path, tmp_path: Path) -> tuple[Path, dict]:
    dst = tmp_path / "s"
    shutil.copytree(scene, dst)
    return dst, json.loads((dst / "transforms.json").read_text())


def test_transforms_json_carries_the_depth_maps(scene):
    meta = json.loads((scene / "transforms.json").read_text())
    assert meta["depth_unit_scale_factor"] == 1.0
    assert [f["depth_file_path"] for f in meta["frames"]] == [f"depth/{i:03d}.npy" for i in range(6)]
    views = read_views(scene / "transforms.json")
    assert views.depths.shape == (6, 1, 48, 64) and views.depths.dtype == torch.float32
    for i in range(6):
        np.testing.assert_array_equal(views.depths[i, 0].numpy(), np.load(scene / "depth" / f"{i:03d}.npy"))
    assert float(views.depths.min()) > 0  # the room encloses every camera


def test_depth_follows_selection_resize_and_crop(scene):
    views = read_views(scene)
    sub = views[[4, 1]]
    assert torch.equal(sub.depths, views.depths[[4, 1]])
    c = crop(views, 8, 4, 32, 40)
    assert torch.equal(c.depths, views.depths[:, :, 4:44, 8:40])
    r = resize(views, 32, 24)  # nearest: every value is one of the source values, none averaged
    assert r.depths.shape == (6, 1, 24, 32)
    assert torch.equal(r.depths, views.depths[:, :, 1::2, 1::2]) or torch.equal(r.depths, views.depths[:, :, ::2, ::2])


def test_unprojected_points_land_on_the_surfaces_other_views_see(scene):
    views = read_views(scene)
    g = depth_init(views, 3000, seed=3)
    assert len(g) == 3000
    means = g.means.double()
    cams = views.cameras.to(dtype=torch.float64)
    K, w2c = cams.K, cams.w2c
    # float64 reference projection into every view
    pc = torch.einsum("vij,pj->vpi", w2c[:, :3, :3], means) + w2c[:, None, :3, 3]
    z = pc[..., 2]
    uv = torch.einsum("vij,vpj->vpi", K[:, :2, :], pc) / z[..., None]
    # (1) each point sits on some view's pixel centre at that pixel's depth
    frac = uv - uv.floor()
    on_centre = ((frac - 0.5).abs() < 1e-3).all(-1)
    x, y = uv[..., 0].floor().long(), uv[..., 1].floor().long()
    inside = (x >= 0) & (x < 64) & (y >= 0) & (y < 48) & (z > 0)
    dmap = views.depths[:, 0].double()
    v_idx = torch.arange(6)[:, None].expand_as(x)
    d_at = torch.where(inside, dmap[v_idx, y.clamp(0, 47), x.clamp(0, 63)], torch.zeros_like(z))
    exact = on_centre & inside & ((d_at - z).abs() < 1e-4 * z)
    assert bool(exact.any(0).all()), "a point is not the unprojection of any view's pixel"
    # (2) seen from the other views it lies on (or behind an occluder of) their surfaces
    other = inside & ~exact
    rel = (z - d_at) / d_at
    assert bool((rel[other] > -0.15).float().mean() > 0.97), "points float in front of surfaces other views see"
    assert bool((rel[other].abs() < 0.05).float().mean() > 0.6), "points rarely agree with other views' depth"
    # colour = the source pixel; scales from 3 nearest neighbours; opacity 0.1
    assert torch.allclose(g.opacities, torch.full((3000,), 0.1), atol=1e-6)
    assert bool((g.scales > 0).all()) and bool((g.scales.std(-1) < 1e-6).all())


def test_depth_init_is_deterministic_and_takes_all_pixels_when_few(scene):
    views = read_views(scene)[[0]]
    a, b = depth_init(views, 500, seed=1), depth_init(views, 500, seed=1)
    assert torch.equal(a.means, b.means) and torch.equal(a.sh, b.sh)
    assert len(depth_init(views, 10**6)) == 64 * 48


def test_optimize_from_depth_beats_random_init(scene, tmp_path):
    scores = {}
    for mode in (["--random", "3000"], ["--depth-init", "3000"]):
        r = subprocess.run([sys.executable, "-m", "resplat", "optimize", str(scene), *mode, "--out", str(tmp_path / "o.ply"),
                            "--steps", "60", "--holdout", "3", "--backend", "torch", "--progress", "jsonl"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        result = [json.loads(line) for line in r.stdout.splitlines() if '"result"' in line][-1]
        scores[mode[0]] = result["metrics"]["holdout_psnr"]
    assert scores["--depth-init"] > scores["--random"] + 2.0, scores


def test_png_millimetres_and_scale_factor(scene, tmp_path):
    dst, meta = _copy(scene, tmp_path)
    views = read_views(dst)
    for i in range(6):
        mm = np.round(views.depths[i, 0].numpy() * 1000).astype(np.uint16)
        Image.fromarray(mm).save(dst / "depth" / f"{i:03d}.png")
        meta["frames"][i]["depth_file_path"] = f"depth/{i:03d}.png"
    del meta["depth_unit_scale_factor"]  # nerfstudio's default: millimetres
    (dst / "transforms.json").write_text(json.dumps(meta))
    got = read_views(dst).depths
    assert torch.allclose(got, views.depths, atol=6e-4)


@pytest.mark.parametrize("problem", ["missing", "some_frames", "size", "not_2d", "bad_scale"])
def test_bad_depth_is_named(scene, tmp_path, problem):
    dst, meta = _copy(scene, tmp_path)
    want = {"missing": "depth/404.npy", "some_frames": "frame 2: no 'depth_file_path'", "size": "001.npy: depth map is 32x24",
            "not_2d": "002.npy: depth map must be a 2-D", "bad_scale": "'depth_unit_scale_factor' must be positive"}[problem]
    if problem == "missing":
        meta["frames"][3]["depth_file_path"] = "depth/404.npy"
    elif problem == "some_frames":
        del meta["frames"][2]["depth_file_path"]
    elif problem == "size":
        np.save(dst / "depth" / "001.npy", np.ones((24, 32), np.float32))
    elif problem == "not_2d":
        np.save(dst / "depth" / "002.npy", np.ones((48, 64, 3), np.float32))
    else:
        meta["depth_unit_scale_factor"] = 0
    (dst / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ViewsError, match=want.replace("(", r"\(").replace(")", r"\)")):
        read_views(dst)


def test_depth_init_without_depth_is_refused(scene, tmp_path):
    dst, meta = _copy(scene, tmp_path)
    for f in meta["frames"]:
        del f["depth_file_path"]
    (dst / "transforms.json").write_text(json.dumps(meta))
    views = read_views(dst)
    assert views.depths is None
    with pytest.raises(ResplatError, match="needs depth maps"):
        depth_init(views, 10)
    r = subprocess.run([sys.executable, "-m", "resplat", "optimize", str(dst), "--depth-init", "10", "--out", str(tmp_path / "o.ply")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "gives no depth maps" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.ply").exists()
    zero = read_views(scene)  # depth maps, but no pixel with a depth
    zero.depths = torch.zeros_like(zero.depths)
    with pytest.raises(ResplatError, match="no pixel of the depth maps"):
        depth_init(zero, 10)


def test_load_depth_cleans_invalid_values(tmp_path):
    d = np.array([[1.5, np.nan], [-2.0, np.inf]], np.float32)
    np.save(tmp_path / "d.npy", d)
    np.testing.assert_array_equal(load_depth(tmp_path / "d.npy").numpy(), [[1.5, 0], [0, 0]])


def test_load_scene_reads_depth_with_or_without_depth_file_path(scene, tmp_path):
    from resplat.data import load_scene

    new = load_scene(scene)
    dst, meta = _copy(scene, tmp_path)  # a dataset written before frames listed their depth maps
    for f in meta["frames"]:
        del f["depth_file_path"]
    (dst / "transforms.json").write_text(json.dumps(meta))
    old = load_scene(dst)
    assert torch.equal(new.depths, old.depths) and new.depths.shape == (6, 1, 48, 64)
    assert new.context == old.context and new.target == old.target
