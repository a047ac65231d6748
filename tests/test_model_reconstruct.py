"""The inference API resplat.model.reconstruct: input errors before any work, the memory
check, callback stages and cancellation, and the pose normalisation round trip (a scene whose
cameras are moved by a rigid transform G reconstructs to G applied to the original result, and
renders identically from the moved cameras), and ``keep``: the iteration that fits the input views
best comes back, not a worse later one. Small preset, random weights, 2 views of 64x64.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys

import pytest
import torch

from resplat.cameras import Cameras, K_from_fov
from resplat.errors import CancelledError, ResplatError
from resplat.gaussians import quat_to_rotmat
from resplat.model import memory
from resplat.model.config import PRESETS
from resplat.model.encoder import ReSplatModel
from resplat.model.reconstruct import check_inputs, input_psnr, reconstruct, reconstruct_views
from resplat.render import render




def _views(v=2, h=64, w=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    c2w = torch.eye(4).repeat(v, 1, 1)
    c2w[:, 0, 3] = torch.linspace(-0.2, 0.2, v)
    a = math.radians(8)
    c2w[0, :3, :3] = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    return torch.rand(v, 3, h, w, generator=gen), Cameras.from_c2w(c2w, K_from_fov(math.radians(60), w, h), w, h)


class _NoWork(torch.nn.Module):
    """A model whose use would fail: input checks must fire before the encoder is touched."""

    def __init__(self, preset="small-dl3dv"):
        super().__init__()
        self.config = PRESETS[preset]
        self.weight = torch.nn.Parameter(torch.zeros(1000))


@pytest.mark.parametrize("case, message", [
    ("one_view", "at least 2 views"),
    ("size", "image size 100x64 is not a multiple of 64 for preset 'small-dl3dv': crop to 64x64"),
    ("count", "3 images given for 2 cameras"),
    ("range", "finite and in [0, 1]"),
    ("iterations", "iterations must be >= 0"),
])
def test_input_errors_come_before_any_work(case, message):
    images, cams = _views()
    iterations = 1
    if case == "one_view":
        images, cams = images[:1], cams[0]
    elif case == "size":
        images, cams = _views(w=100)
    elif case == "count":
        images = torch.cat([images, images[:1]])
    elif case == "range":
        images = images.clone()
        images[0, 0, 0, 0] = 1.5
    elif case == "iterations":
        iterations = -1
    with pytest.raises(ResplatError) as info:
        reconstruct(images, cams, _NoWork(), iterations=iterations, device="cpu")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_memory_estimate_refuses_before_work(monkeypatch):
    images, cams = _views()
    # The module, not the function that resplat.model re-exports under the same name.
    module = sys.modules["resplat.model.reconstruct"]
    monkeypatch.setattr(module, "free_bytes", lambda device: 100 * 2**20)
    with pytest.raises(ResplatError, match=r"2 views of 64x64 need about 0\.\d GiB on cpu, only 0\.1 GiB is free"):
        reconstruct(images, cams, _NoWork(), device="cpu")
    # the formula: weights + per-pixel + per-Gaussian-channel activations + overhead
    # (+ the attention scores on devices whose kernels store them)
    cfg = PRESETS["small-dl3dv"]
    pixels = 2 * 256 * 448
    est = memory.estimate_peak_bytes(cfg, 2, 256, 448, 10, "cuda")
    assert est == 40 + 1_500 * pixels + 60 * 512 * pixels // 16 + memory.FIXED_OVERHEAD
    assert memory.estimate_peak_bytes(cfg, 2, 256, 448, 10, "cpu") == est
    tokens = pixels // 16 ** 2
    assert memory.estimate_peak_bytes(cfg, 2, 256, 448, 10, "mps") == est + 2 * 4 * 4 * tokens ** 2
    re10k = memory.estimate_peak_bytes(PRESETS["base-re10k"], 2, 256, 256, 0, "cuda")
    assert re10k == (1_500 + 60 * 512) * 2 * 256 * 256 + memory.FIXED_OVERHEAD
    # one Gaussian per 2x2 pixels (tiny/m4): 4x the Gaussians of tiny, not 16x the bytes
    tiny, m4 = PRESETS["tiny"], dataclasses.replace(PRESETS["tiny"], gaussians_per_point=4)
    grow = memory.estimate_peak_bytes(m4, 8, 256, 256, 0) - memory.estimate_peak_bytes(tiny, 8, 256, 256, 0)
    assert grow == 60 * 128 * (8 * 256 * 256 // 4 - 8 * 256 * 256 // 16)
    free = memory.free_bytes(torch.device("cpu"))
    assert free is None or free > 0


def test_check_inputs_accepts_valid_sizes():
    images, cams = _views(h=64, w=128)
    check_inputs(images, cams, PRESETS["small-dl3dv"], 2)
    images, cams = _views(h=48, w=80)
    check_inputs(images, cams, PRESETS["base-re10k"], 2)  # multiples of 16


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ReSplatModel("small-dl3dv").eval()
    # a non-zero update head so that the iterations move the Gaussians
    with torch.no_grad():
        last = m.encoder.update_head[-1]
        last.weight.normal_(0, 1e-3, generator=torch.Generator().manual_seed(1))
    return m


def test_callback_stages_and_cancel(model):
    images, cams = _views()
    seen = []

    def callback(stage, it, total, g):
        seen.append((stage, it, total, len(g), g.means.clone()))
        return True

    out = reconstruct(images, cams, model, iterations=2, device="cpu", callback=callback, keep="last")
    assert [s[:4] for s in seen] == [("initial", 0, 2, 512), ("update", 1, 2, 512), ("update", 2, 2, 512)]
    assert len(out) == 512 and out.sh_degree == 3
    torch.testing.assert_close(seen[-1][4], out.means)
    assert not torch.equal(seen[0][4], seen[2][4])  # the updates moved the means
    with pytest.raises(CancelledError, match="after update 1/3"):
        reconstruct(images, cams, model, iterations=3, device="cpu",
                    callback=lambda stage, it, total, g: stage != "update")


def test_moving_the_world_moves_the_result(model):
    images, cams = _views(seed=3)
    G = torch.eye(4)
    G[:3, :3] = quat_to_rotmat(torch.tensor([0.9, 0.2, -0.3, 0.1]))
    G[:3, 3] = torch.tensor([1.0, -2.0, 0.5])
    moved = Cameras.from_c2w(G @ cams.c2w, cams.K, cams.width, cams.height)
    a = reconstruct(images, cams, model, iterations=1, device="cpu")
    b = reconstruct(images, moved, model, iterations=1, device="cpu")
    torch.testing.assert_close(b.means, a.means @ G[:3, :3].T + G[:3, 3], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(b.rotation_matrices(), G[:3, :3] @ a.rotation_matrices(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(b.log_scales, a.log_scales, rtol=1e-5, atol=1e-5)
    ra = render(a, cams, backend="torch").rgb
    rb = render(b, moved, backend="torch").rgb  # SH rotated with the frame: same view-dependent colour
    torch.testing.assert_close(rb, ra, rtol=1e-3, atol=1e-3)


def test_input_psnr_by_hand():
    images = torch.full((2, 3, 4, 4), 0.5)
    assert input_psnr(images + 0.1, images) == pytest.approx(20.0, abs=1e-5)  # MSE 0.01
    # renders are clamped to [0, 1] first, as the picture the artist sees
    assert input_psnr(torch.full_like(images, 1.7), torch.ones_like(images)) == float("inf")
    half = images.clone()
    half[0] += 0.2  # MSE 0.04 on half of the pixels: 0.02 overall
    assert input_psnr(half, images) == pytest.approx(-10 * math.log10(0.02), abs=1e-5)


def _destructive(model):
    """``model`` with an update head large enough that every update wrecks the fit."""
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.encoder.update_head[-1].weight.normal_(0, 3.0, generator=torch.Generator().manual_seed(2))
    return bad


def test_keep_best_returns_the_iteration_that_fits_the_inputs(model):
    images, cams = _views()
    bad = _destructive(model)
    for keep in ("best", "last"):
        seen = []
        out = reconstruct_views(images, cams, bad, iterations=2, device="cpu", keep=keep,
                                callback=lambda stage, it, total, g: seen.append(g.means.clone()))
        assert len(out.input_psnr) == 3 and all(math.isfinite(p) for p in out.input_psnr)
        if keep == "best":
            # the updates lowered the input-view PSNR, so the initial prediction comes back as it was
            assert max(out.input_psnr[1:]) < out.input_psnr[0] - 0.3
            assert out.kept == 0
            torch.testing.assert_close(out.gaussians.means, seen[0], rtol=0, atol=0)
        else:
            assert out.kept == 2
            torch.testing.assert_close(out.gaussians.means, seen[2], rtol=0, atol=0)
    # a small, helpful head: the kept iteration is the argmax of the input-view PSNR
    out = reconstruct_views(images, cams, model, iterations=2, device="cpu")
    assert out.kept == max(range(3), key=lambda i: out.input_psnr[i])
    assert reconstruct_views(images, cams, model, iterations=0, device="cpu").input_psnr == []
    with pytest.raises(ResplatError, match="keep must be one of best, last"):
        reconstruct_views(images, cams, model, iterations=1, device="cpu", keep="first")
