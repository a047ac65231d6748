"""Initial Gaussian prediction (resplat.model.latent_features, resplat.model.initial, the
encoder's forward_initial): channel arithmetic against the manifests, the activations against
float64 formulas written here, the sub-pixel layout of several Gaussians per point, the point
cloud on its pixel-centre rays, ``out = proj + pt(proj)``, and world rotations that use each
Gaussian's own view (not the middle view, the release's PLY export bug)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import resplat.model
from resplat.cameras import Cameras, K_from_fov
from resplat.gaussians import SH_C0, quat_to_rotmat
from resplat.model import config as config_module
from resplat.model.config import PRESETS
from resplat.model.depth.output import DepthOutput
from resplat.model.encoder import ReSplatModel
from resplat.model.initial import activate, split_gaussian_grid
from resplat.model.latent_features import feature_channels, latent_inputs
from resplat.model.poses import xyzw_to_wxyz

MANIFESTS = Path(resplat.model.__file__).parent / "manifests"


def rigid(n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    T = torch.eye(4, dtype=dtype).repeat(n, 1, 1)
    T[:, :3, :3] = quat_to_rotmat(torch.randn(n, 4, generator=g, dtype=dtype))
    T[:, :3, 3] = torch.randn(n, 3, generator=g, dtype=dtype)
    return T


@pytest.fixture
def tiny_config(monkeypatch):
    """small-dl3dv shrunk (a 64-wide, 2-head ViT; narrow regressor, U-Net and updater) so a
    64x64 forward takes a fraction of a second on CPU."""
    monkeypatch.setitem(config_module.VIT_DIMS, "vitt", (64, 2))
    monkeypatch.setitem(config_module.DPT_CHANNELS, "vitt", (16, (8, 16, 32, 64)))
    return dataclasses.replace(PRESETS["small-dl3dv"], name="tiny", vit_type="vitt", regressor_channels=32,
                               state_channels=32, error_channels=64, unet_channels=32, num_depth_candidates=32)


@pytest.mark.parametrize("preset, fc, reg_in, proj_in", [
    ("base-dl3dv", 608, 658, 1169), ("small-dl3dv", 512, 562, 817), ("base-re10k", 272, 286, 797)])
def test_channel_arithmetic_matches_manifest(preset, fc, reg_in, proj_in):
    cfg = PRESETS[preset]
    manifest = json.loads((MANIFESTS / f"{preset}.json").read_text())
    assert feature_channels(cfg) == fc
    assert manifest["encoder.gaussian_regressor.0.weight"][1] == reg_in
    assert manifest["encoder.proj.weight"][1] == proj_in
    with torch.device("meta"):
        model = ReSplatModel(cfg)
    assert model.encoder.gaussian_regressor[0].in_channels == reg_in
    assert model.encoder.proj.in_features == proj_in


def test_activations_match_float64_formulas():
    g = torch.Generator().manual_seed(0)
    b, v, gh, gw = 1, 2, 3, 4
    raw = torch.randn(b, v, gh * gw, 58, generator=g, dtype=torch.float64) * 3
    depth = torch.rand(b, v, gh, gw, generator=g, dtype=torch.float64) * 5 + 0.5
    images = torch.rand(b, v, 3, gh * 4, gw * 4, generator=g, dtype=torch.float64)
    c2w = rigid(v, 1)[None]
    K = torch.tensor([[0.9, 0.0, 0.45], [0.0, 1.2, 0.55], [0.0, 0.0, 1.0]], dtype=torch.float64).expand(b, v, 3, 3)
    cfg = dataclasses.replace(PRESETS["base-dl3dv"], scale_max=0.7)
    act = activate(raw, depth, images, c2w, K, cfg)
    fx, fy, cx, cy = 0.9, 1.2, 0.45, 0.55
    for vi in range(v):
        for p in range(gh * gw):
            r = raw[0, vi, p]
            i, j = divmod(p, gw)
            sp = torch.log1p(torch.exp(r[4:7] - 4)).clamp(1e-6, 0.7)
            torch.testing.assert_close(act.scales[0, vi, p], sp)
            torch.testing.assert_close(act.opacities[0, vi, p], 1 / (1 + torch.exp(-r[7])))
            torch.testing.assert_close(act.quats_xyzw[0, vi, p], r[:4])
            x = (j + 0.5 + (torch.sigmoid(r[8]) - 0.5)) / gw
            y = (i + 0.5 + (torch.sigmoid(r[9]) - 0.5)) / gh
            cam = torch.stack([(x - cx) / fx, (y - cy) / fy, torch.ones((), dtype=torch.float64)]) * depth[0, vi, i, j]
            torch.testing.assert_close(act.means[0, vi, p], c2w[0, vi, :3, :3] @ cam + c2w[0, vi, :3, 3])
            rgb = images[0, vi, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4].mean((-1, -2))
            sh = r[10:].reshape(3, 16).clone()
            sh[:, 0] += (rgb - 0.5) / SH_C0
            torch.testing.assert_close(act.sh[0, vi, p], sh)



def test_footprint_scales_follow_depth_and_resolution():
    """scale_mode "footprint": softplus(raw - 4) * 8 * z * (1 / (fx_n gw) + 1 / (fy_n gh)) / 2,
    written out per Gaussian in float64; the same raw values on a grid twice as fine (twice the
    resolution, same field of view) give half the sizes, at twice the depth twice the sizes."""
    g = torch.Generator().manual_seed(1)
    b, v, gh, gw = 1, 2, 3, 4
    raw = torch.randn(b, v, gh * gw, 58, generator=g, dtype=torch.float64)
    depth = torch.rand(b, v, gh, gw, generator=g, dtype=torch.float64) * 5 + 0.5
    c2w = rigid(v, 1)[None]
    K = torch.tensor([[0.9, 0.0, 0.45], [0.0, 1.2, 0.55], [0.0, 0.0, 1.0]], dtype=torch.float64).expand(b, v, 3, 3)
    cfg = dataclasses.replace(PRESETS["tiny"], scale_max=100.0)
    assert cfg.scale_mode == "footprint"

    def scales(raw, depth, gh, gw):
        images = torch.rand(b, v, 3, gh * 4, gw * 4, generator=g, dtype=torch.float64)
        return activate(raw, depth, images, c2w, K, cfg).scales

    got = scales(raw, depth, gh, gw)
    for vi in range(v):
        for p in range(gh * gw):
            z = depth[0, vi, p // gw, p % gw]
            cell = 0.5 * (1 / (0.9 * gw) + 1 / (1.2 * gh)) * z
            want = torch.log1p(torch.exp(raw[0, vi, p, 4:7] - 4)) * 8 * cell
            torch.testing.assert_close(got[0, vi, p], want)
    # twice the resolution: every Gaussian of latent pixel (i, j) repeated on a 2x finer grid
    fine_raw = raw.reshape(b, v, gh, 1, gw, 1, 58).expand(b, v, gh, 2, gw, 2, 58).reshape(b, v, 4 * gh * gw, 58)
    fine_depth = depth.repeat_interleave(2, -2).repeat_interleave(2, -1)
    fine = scales(fine_raw, fine_depth, 2 * gh, 2 * gw).reshape(b, v, gh, 2, gw, 2, 3)[:, :, :, 0, :, 0]
    torch.testing.assert_close(fine.reshape_as(got), got / 2)
    torch.testing.assert_close(scales(raw, 2 * depth, gh, gw), 2 * got)
    # the release's presets keep absolute sizes: no depth in them
    base = dataclasses.replace(PRESETS["base-dl3dv"], scale_max=100.0)
    images = torch.rand(b, v, 3, gh * 4, gw * 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(activate(raw, 2 * depth, images, c2w, K, base).scales,
                               activate(raw, depth, images, c2w, K, base).scales)

def test_several_gaussians_per_point_layout():
    """RE10K: 4 Gaussians per latent point, head channels (c, x, y) per parameter block."""
    h, w, m = 2, 3, 4
    raw = torch.zeros(1, 1, h * w, 58 * m)
    sizes = [4, 3, 1, 2, 48]
    starts = [0, 16, 28, 32, 40]
    for p in range(h * w):
        for k, (start, c_count) in enumerate(zip(starts, sizes)):
            for c in range(c_count):
                for x in range(2):
                    for y in range(2):
                        raw[0, 0, p, start + c * 4 + x * 2 + y] = 10000 * p + 100 * (x * 2 + y) + sum(sizes[:k]) + c
    out = split_gaussian_grid(raw, h, w, m, 48)
    assert out.shape == (1, 1, 4 * h * w, 58)
    for i in range(h):
        for j in range(w):
            for x in range(2):
                for y in range(2):
                    q = (2 * i + x) * (2 * w) + (2 * j + y)
                    expect = 10000 * (i * w + j) + 100 * (x * 2 + y) + torch.arange(58.0)
                    assert torch.equal(out[0, 0, q], expect)


def test_latent_inputs_layout(tiny_config):
    g = torch.Generator().manual_seed(5)
    b, v, H, W = 1, 2, 64, 64
    r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    out = DepthOutput(depth=r(b, v, H, W) + 1, match_prob=r(b, v, 1, 8, 8), match_probs=r(b, v, 32, 8, 8),
                      cnn_features=[r(b * v, 64, 32, 32), r(b * v, 96, 16, 16), r(b * v, 128, 8, 8)],
                      mv_features=r(b * v, 128, 8, 8), mono_features=[r(b * v, 64, 4, 4) for _ in range(4)],
                      mono_intermediate=[])
    images = r(b, v, 3, H, W)
    lat = latent_inputs(out, images, tiny_config)
    assert lat.features.shape == (2, 64 // 4 + 64 + 96 + 128 + 128, 16, 16)
    # image: pixel-unshuffle x4, channel c*16 + dy*4 + dx
    assert lat.image[1, 2 * 16 + 3 * 4 + 1, 5, 7] == images[0, 1, 2, 4 * 5 + 3, 4 * 7 + 1]
    # latent depth: corner-aligned resample (corners are the full-resolution corners)
    assert lat.depth[0, 1, 0, 0] == out.depth[0, 1, 0, 0] and lat.depth[0, 1, -1, -1] == out.depth[0, 1, -1, -1]
    # match prob: nearest, 2x2 blocks of the 1/8 map
    assert torch.equal(lat.match_prob[1, 0], out.match_prob[0, 1, 0].repeat_interleave(2, 0).repeat_interleave(2, 1))
    # feature order: mono (each resized to 1/16, pixel-shuffled x4), CNN, transformer
    mono0 = F.pixel_shuffle(out.mono_features[0], 4)  # already at 1/16: resize is the identity
    torch.testing.assert_close(lat.features[:, :4], mono0)
    torch.testing.assert_close(lat.features[:, 16:16 + 64], F.interpolate(out.cnn_features[0], size=(16, 16),
                                                                         mode="bilinear", align_corners=True))
    torch.testing.assert_close(lat.features[:, -128:], F.interpolate(out.mv_features, size=(16, 16), mode="bilinear",
                                                                     align_corners=True))
    regressor_in = lat.regressor_input()
    assert torch.equal(regressor_in[:, 48], lat.depth.reshape(2, 16, 16)) and torch.equal(regressor_in[:, 49:50], lat.match_prob)


@pytest.mark.parametrize("half_res", [False, True])
def test_forward_initial_geometry(tiny_config, half_res):
    """half_res: the 16-view model's depth at half resolution; the latent depth is then that
    depth resized by 1/2 (corner-aligned), still on the 1/4 grid."""
    torch.manual_seed(0)
    model = ReSplatModel(dataclasses.replace(tiny_config, depth_half_res=half_res, scale_max=3.0)).eval()
    enc = model.encoder
    with torch.no_grad():  # random offsets and rotations, not the zero-initialised head rows
        enc.gaussian_head[-1].weight.normal_(0, 0.05)
    V, H, W = 3, 64, 64
    c2w = rigid(V, 7, torch.float32)
    c2w[:, :3, 3] *= 0.1
    K = K_from_fov(1.2, W, H)
    cams = Cameras.from_c2w(c2w, K, W, H)
    images = torch.rand(1, V, 3, H, W)
    seen = {}
    enc.pt.register_forward_hook(lambda m, args, kwargs, out: seen.update(x=args[0], points=args[1], out=out),
                                 with_kwargs=True)
    with torch.no_grad():
        pred = model.forward_initial(images, cams)
    v, gh, gw = pred.grid
    assert (v, gh, gw) == (3, 16, 16) and len(pred.gaussians[0]) == 3 * 256
    assert pred.depth.shape[-1] == (32 if half_res else 64)
    # condition features = proj + pt(proj) laid out [B*V, C, h, w]
    torch.testing.assert_close(pred.condition_features,
                               (seen["x"] + seen["out"]).reshape(V, 16, 16, -1).permute(0, 3, 1, 2))
    # the point cloud lies on the latent pixel-centre rays at the latent depth (model frame)
    c2w_model = torch.linalg.inv(c2w[1]) @ c2w
    Kn = cams.normalized_K()
    pts = seen["points"][0].reshape(V, 256, 3).double()
    lat_depth = F.interpolate(pred.depth, size=(16, 16), mode="bilinear", align_corners=True)[0]
    for vi in range(V):
        cam = (pts[vi] - c2w_model[vi, :3, 3].double()) @ c2w_model[vi, :3, :3].double()
        uv = cam[:, :2] / cam[:, 2:] @ Kn[vi, :2, :2].double().T + Kn[vi, :2, 2].double()
        jj, ii = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="xy")
        centres = torch.stack([(jj + 0.5) / 16, (ii + 0.5) / 16], -1).reshape(-1, 2).double()
        torch.testing.assert_close(uv, centres, atol=1e-5, rtol=0)
        torch.testing.assert_close(cam[:, 2], lat_depth[vi].reshape(-1).double(), atol=1e-5, rtol=1e-5)
    # world rotation = R_c2w(own view) R(q): views 0 and 2 are not the middle view
    g = pred.gaussians[0]
    R_cam = quat_to_rotmat(xyzw_to_wxyz(pred.quats_xyzw[0]))
    expect = pred.view_rotations[0][pred.view_index] @ R_cam
    torch.testing.assert_close(g.rotation_matrices(), expect, atol=1e-5, rtol=0)
    assert not torch.allclose(expect[pred.view_index == 0], (pred.view_rotations[0, 1] @ R_cam)[pred.view_index == 0],
                              atol=1e-3)
    torch.testing.assert_close(g.log_scales, pred.scales[0].log())
    torch.testing.assert_close(g.logit_opacities, torch.logit(pred.opacities[0], eps=1e-6))
    torch.testing.assert_close(g.sh, pred.sh[0].transpose(1, 2))
    # back in the original world the means map through the middle camera
    world = pred.world_gaussians(0)
    torch.testing.assert_close(world.means, g.means @ c2w[1, :3, :3].T + c2w[1, :3, 3], atol=1e-5, rtol=1e-5)


def test_forward_initial_re10k_one_gaussian_per_pixel(tiny_config):
    """RE10K layout (latent 1/2, u = 4, 4 Gaussians per point): with the release's head init
    (offset/scale/opacity/SH rows zero) every Gaussian sits on its own pixel-centre ray at the
    full-resolution depth and its DC colour is that pixel's colour."""
    cfg = dataclasses.replace(tiny_config, upsample_factor=4, latent_downsample=2, gaussians_per_point=4,
                              far=100.0, size_multiple=16)
    torch.manual_seed(1)
    model = ReSplatModel(cfg).eval()
    V, H, W = 2, 32, 32
    c2w = rigid(V, 3, torch.float32)
    cams = Cameras.from_c2w(c2w, K_from_fov(1.0, W, H), W, H)
    images = torch.rand(1, V, 3, H, W)
    with torch.no_grad():
        pred = model.forward_initial(images, cams)
    assert pred.grid == (2, 32, 32) and pred.condition_features.shape == (2, 32, 16, 16)
    assert model.encoder.gaussian_regressor[0].in_channels == 12 + 2 + 64 // 64 * 4 + 64 + 96 + 32 + 32
    torch.testing.assert_close(pred.sh[0, :, :, 0], ((images[0].permute(0, 2, 3, 1).reshape(-1, 3)) - 0.5) / SH_C0)
    c2w_model = torch.linalg.inv(c2w[1]) @ c2w
    Kn = cams.normalized_K()
    for vi in range(V):
        m = pred.means[0, pred.view_index == vi].double()
        cam = (m - c2w_model[vi, :3, 3].double()) @ c2w_model[vi, :3, :3].double()
        uv = cam[:, :2] / cam[:, 2:] @ Kn[vi, :2, :2].double().T + Kn[vi, :2, 2].double()
        jj, ii = torch.meshgrid(torch.arange(W), torch.arange(H), indexing="xy")
        centres = torch.stack([(jj + 0.5) / W, (ii + 0.5) / H], -1).reshape(-1, 2).double()
        torch.testing.assert_close(uv, centres, atol=1e-5, rtol=0)
        torch.testing.assert_close(cam[:, 2], pred.depth[0, vi].reshape(-1).double(), atol=1e-4, rtol=1e-5)
