"""resplat.model.regrid: an m = 1 model made into m = 4 predicts, for every sub-Gaussian, exactly
its parent's raw head values; its error tokens on a fine patch equal the original's on that patch
upsampled; refusals; the CLI round trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from resplat.cameras import Cameras, K_from_fov
from resplat.errors import ResplatError
from resplat.model.checkpoint import build_model, load_checkpoint
from resplat.model.config import get_config
from resplat.model.regrid import main, pool_error_projection, regrid
from resplat.model.updater import rgb_error_tokens


def _model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(get_config("tiny"), device="cpu").eval()
    with torch.no_grad():  # a head whose every output row is non-zero (the init zeroes most)
        for p in model.encoder.gaussian_head.parameters():
            p.normal_(0, 0.05)
    return model


def _inputs(V=3, H=64, W=64):
    g = torch.Generator().manual_seed(3)
    c2w = torch.eye(4).repeat(V, 1, 1)
    c2w[:, 0, 3] = torch.arange(V, dtype=torch.float32) * 0.2
    cams = Cameras.from_c2w(c2w, K_from_fov(1.0, W, H), W, H)
    images = torch.rand(1, V, 3, H, W, generator=g)
    depths = 2 + torch.rand(1, V, H, W, generator=g)
    return images, cams, depths


def test_sub_gaussians_start_as_their_parent():
    src = _model()
    out = regrid(src, 4)
    assert out.config.gaussians_per_point == 4
    assert dataclasses.replace(out.config, gaussians_per_point=1) == src.config
    images, cams, depths = _inputs()
    with torch.no_grad():
        a = src.forward_initial(images, cams, depths)
        b = out.forward_initial(images, cams, depths)
    v, gh, gw = a.grid
    assert b.grid == (v, 2 * gh, 2 * gw) and len(b.gaussians[0]) == 4 * len(a.gaussians[0])
    ra = a.raw[0].reshape(v, gh, gw, -1)
    rb = b.raw[0].reshape(v, 2 * gh, 2 * gw, -1)
    parent = ra.repeat_interleave(2, 1).repeat_interleave(2, 2)
    torch.testing.assert_close(rb, parent, atol=1e-5, rtol=1e-5)
    # the finer grid is used: each sub-Gaussian's size is its parent's over 2 (footprint sizes)
    sa = a.scales[0].reshape(v, gh, gw, 3).repeat_interleave(2, 1).repeat_interleave(2, 2)
    sb = b.scales[0].reshape(v, 2 * gh, 2 * gw, 3)
    ratio = sb / sa
    assert float((ratio - 0.5).abs().median()) < 0.1  # depth differs per sub-cell, so not exactly


def test_error_tokens_see_a_fine_patch_as_its_coarse_upsampling():
    """The pooled projection on a 2x2 error patch X gives the token the original gives on X
    upsampled x2 (nearest) to 4x4: channel and pixel order (pixel_unshuffle) included."""
    torch.manual_seed(1)
    proj = torch.nn.Linear(48, 8)
    new = torch.nn.Linear(12, 8)
    with torch.no_grad():
        new.weight.copy_(pool_error_projection(proj.weight, 4, 2))
        new.bias.copy_(proj.bias)
    fine = torch.rand(5, 3, 2, 2)  # five random 2x2 error patches
    coarse = F.interpolate(fine, scale_factor=2, mode="nearest")
    t_coarse = rgb_error_tokens(coarse, torch.zeros_like(coarse), 4, proj)
    t_fine = rgb_error_tokens(fine, torch.zeros_like(fine), 2, new)
    torch.testing.assert_close(t_fine, t_coarse, atol=1e-5, rtol=1e-5)
    # a wrong pixel order would not: transposed patches give other tokens
    t_wrong = rgb_error_tokens(fine.transpose(-1, -2), torch.zeros_like(fine), 2, new)
    assert not torch.allclose(t_wrong, t_coarse, atol=1e-3)


def test_refuses_what_it_cannot_do():
    src = _model()
    with pytest.raises(ResplatError, match="square"):
        regrid(src, 3)
    with pytest.raises(ResplatError, match="only models with 1"):
        regrid(regrid(src, 4), 4)


def test_cli_round_trip(tmp_path):
    from resplat.train.checkpointing import export_safetensors

    src = tmp_path / "src.safetensors"
    export_safetensors(_model(2), src)
    dst = tmp_path / "m4.safetensors"
    assert main([str(src), str(dst)]) == 0
    loaded = load_checkpoint(dst)  # the stored config carries gaussians_per_point 4
    assert loaded.config.gaussians_per_point == 4
    assert main([str(dst), str(tmp_path / "again.safetensors")]) == 2
