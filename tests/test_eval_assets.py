"""benchmarks/eval_assets.py: its scores and its unprojection floor on a tiny analytic scene (64x64).

The scene is a textured plane z = 2 m (smooth sinusoidal texture) seen by 5 forward-facing
cameras; images and depths are computed in closed form (ray-plane intersection), so the
unprojection floor must reproduce the held-out view, and content PSNR must ignore pixels whose
depth is 0.
"""

from __future__ import annotations

import math

import pytest
import torch
from repo_scripts import load_script

SIZE = 64


def _bench():
    return load_script("benchmarks", "eval_assets")


def _plane_scene():
    """5 cameras at x in [-0.2, 0.2] m looking down +z at the plane z = 2 (OpenCV, identity
    rotation); colour (u, v) on the plane is a smooth sinusoid; float64 analytic images."""
    from resplat.cameras import Cameras

    v = 5
    f = SIZE * 0.9
    K = torch.tensor([[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1]], dtype=torch.float64).expand(v, 3, 3).clone()
    xs = torch.linspace(-0.2, 0.2, v, dtype=torch.float64)
    w2c = torch.eye(4, dtype=torch.float64).expand(v, 4, 4).clone()
    w2c[:, 0, 3] = -xs  # camera centre at (x, 0, 0)
    cams = Cameras(w2c.float(), K.float(), SIZE, SIZE)
    py, px = torch.meshgrid(torch.arange(SIZE, dtype=torch.float64) + 0.5,
                            torch.arange(SIZE, dtype=torch.float64) + 0.5, indexing="ij")
    z = 2.0
    images = []
    for i in range(v):
        wx = xs[i] + (px - SIZE / 2) / f * z
        wy = (py - SIZE / 2) / f * z
        r = 0.5 + 0.35 * torch.sin(2 * math.pi * wx / 0.8)
        g = 0.5 + 0.35 * torch.cos(2 * math.pi * wy / 0.8)
        b = 0.5 + 0.2 * torch.sin(2 * math.pi * (wx + wy) / 1.2)
        images.append(torch.stack([r, g, b]))
    images = torch.stack(images).float()
    depths = torch.full((v, SIZE, SIZE), z, dtype=torch.float32)
    return images, depths, cams


def _scene(bench, images, depths, cams):
    return bench.DepthScene("plane", images, cams, [0, 1, 3, 4], [2], depths)


class _Config:
    near, far = 0.01, 100.0


def test_unprojection_reproduces_a_flat_textured_plane():
    bench = _bench()
    images, depths, cams = _plane_scene()
    scene = _scene(bench, images, depths, cams)
    g = bench.unproject_blocks(images[scene.context], depths[scene.context], cams[scene.context])
    assert len(g) == 4 * (SIZE // 4) ** 2  # one Gaussian per 4x4 block of each input view
    assert torch.allclose(g.means[:, 2], torch.full_like(g.means[:, 2], 2.0), atol=1e-5)  # on the plane
    # a block of 4 px at 2 m with f = 57.6 px is 0.139 m wide: std half of it
    assert torch.allclose(g.log_scales.exp(), torch.full_like(g.log_scales, 0.5 * 4 * 2.0 / (SIZE * 0.9)), rtol=1e-5)
    _, sc = bench.score(g, scene, _Config)
    # measured 2026-12-02: 24.6 dB on the held-out view between the inputs (the blocks' colour
    # averaging blurs the 23-px texture period); 10 % too far gives 23.4 dB
    assert sc["content_psnr"] > 22.0
    far = bench.unproject_blocks(images[scene.context], 1.1 * depths[scene.context], cams[scene.context])
    assert bench.score(far, scene, _Config)[1]["content_psnr"] < sc["content_psnr"] - 0.8
    assert sc["content_psnr"] == pytest.approx(sc["psnr"], abs=1e-6)  # every pixel has depth


def test_content_psnr_counts_only_pixels_with_depth():
    bench = _bench()
    images, depths, cams = _plane_scene()
    g = bench.unproject_blocks(images[[0, 1, 3, 4]], depths[[0, 1, 3, 4]], cams[[0, 1, 3, 4]])
    hole = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    hole[:, :16] = True  # the left quarter "sees the world"
    depths_w = depths.clone()
    depths_w[2][hole] = 0.0
    depths_w[2][0, 16] = float("inf")  # inf is no content either
    base = bench.score(g, _scene(bench, images, depths_w, cams), _Config)[1]
    images_b = images.clone()
    images_b[2][:, hole] = 1.0  # another background in the ground truth
    images_b[2][:, 0, 16] = 0.0
    other = bench.score(g, _scene(bench, images_b, depths_w, cams), _Config)[1]
    assert other["content_psnr"] == pytest.approx(base["content_psnr"], abs=1e-9)
    assert other["psnr"] < base["psnr"] - 3.0  # the whole image sees the changed background
    # and content PSNR is the PSNR of the content pixels alone
    rgb = bench.score(g, _scene(bench, images, depths_w, cams), _Config)[0][0]
    keep = ~hole
    keep[0, 16] = False
    mse = (rgb - images[2]).square()[:, keep].mean()
    assert base["content_psnr"] == pytest.approx(float(10 * torch.log10(1 / mse)), abs=1e-4)


def test_covisible_mask_keeps_what_an_input_sees_unoccluded():
    """One input camera at x = 0 and a held-out one at x = 0.4 m, both facing the plane z = 2:
    held-out pixel u sees the plane at x = 0.4 + (u + 0.5 - 32) / f * 2, which lands in the input
    at u' = u + 0.4 f / 2 = u + 11.52, inside the 64-px image for u <= 51 only. A wall the input
    sees at 1 m in its columns 30-34 hides the plane behind it (held-out columns 18-22)."""
    from resplat.cameras import Cameras

    bench = _bench()
    images, depths, cams = _plane_scene()
    w2c = cams.w2c[[0, 0]].clone()
    w2c[:, 0, 3] = torch.tensor([0.0, -0.4])
    two = Cameras(w2c, cams.K[[0, 0]], SIZE, SIZE)
    d = depths[:2].clone()
    d[0][:, 30:35] = 1.0  # the input's occluder
    d[1][5, 5] = float("inf")  # no content there
    scene = bench.DepthScene("two", images[:2], two, [0], [1], d)
    mask = bench.covisible_mask(scene)[0]
    expect = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    expect[:, :52] = True  # u + 0.5 + 11.52 < 64
    expect[:, 18:23] = False  # u + 0.5 + 11.52 in [30, 35): behind the wall
    expect[5, 5] = False
    assert torch.equal(mask, expect)
    # the score over it: an image wrong only where the input cannot see is perfect there
    g = bench.unproject_blocks(images[[0]], depths[[0]], cams[[0]])
    rgb, sc = bench.score(g, scene, _Config)
    wrong = images[:2].clone()
    wrong[1][:, ~expect] = 1.0 - wrong[1][:, ~expect]
    other = bench.score(g, bench.DepthScene("two", wrong, two, [0], [1], d), _Config)[1]
    assert other["covisible_psnr"] == pytest.approx(sc["covisible_psnr"], abs=1e-9)
    assert abs(other["content_psnr"] - sc["content_psnr"]) > 0.1  # content PSNR does see it


def test_skip_scenes_leaves_out_the_first_synthetic_scenes(monkeypatch, tmp_path):
    bench = _bench()
    monkeypatch.setattr(bench, "synthetic_depth_scenes", lambda root, count, *a: [f"s{i}" for i in range(count)])
    args = bench.parse_args(["--synthetic", str(tmp_path), "--scenes", "3", "--skip-scenes", "1"])
    assert bench.load_scenes(args)[2] == ["s1", "s2"]
    assert bench.load_scenes(bench.parse_args(["--synthetic", str(tmp_path), "--scenes", "2"]))[2] == ["s0", "s1"]


def test_markdown_reports_the_kept_iteration():
    bench = _bench()
    def rec(i, p):
        return {"iteration": i, "content_psnr": p, "covisible_psnr": p + 1, "psnr": p - 1, "ssim": 0.5, "seconds": 1.0}

    opt = dict(rec(0, 20.0), steps=10)
    scene = {"name": "asset", "size": [64, 64], "context": [0, 1], "heldout": [2], "gaussians": 512,
             "rgb": [rec(0, 14.0), rec(1, 13.0), rec(2, 12.5)], "depth": [rec(0, 17.0), rec(1, 17.5), rec(2, 18.25)],
             "kept_rgb": 0, "kept_depth": 2, "unprojection": dict(rec(0, 13.0)),
             "optimisation_rgb": opt, "optimisation_depth": opt}
    md = bench.markdown({"weights": "w", "preset": "tiny", "threads": 1, "iterations": 2, "scenes": [scene]})
    row = [line for line in md.splitlines() if line.startswith("| asset |")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    # scene, RGB it 0, it 2, kept, depth it 0, it 2, kept, ...
    assert cells[1:7] == ["14.00", "12.50", "14.00 (it 0)", "17.00", "18.25", "18.25 (it 2)"]
    old = {k: v for k, v in scene.items() if not k.startswith("kept_")}  # results written before "kept"
    md = bench.markdown({"weights": "w", "preset": "tiny", "threads": 1, "iterations": 2, "scenes": [old]})
    assert "| asset | 14.00 | 12.50 | - |" in md
