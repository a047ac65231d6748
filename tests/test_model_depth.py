"""Depth network ``depth_predictor`` (runtime/resplat/model/depth): manifest layout, forward
shapes and ranges, float64 per-element references of the warp, attention and position-embedding
resampling, plane-sweep and view-selection behaviour, and a golden comparison with the release.

The golden comparison reads the depth the release itself computed in the end-to-end goldens
``tests/data/golden/release_<case>.safetensors`` (``depth_sub``: every 4th pixel per side of
the full-resolution depth; written by tests/data/golden/make_goldens.py, which runs the
release's ``EncoderReSplat`` of mohammed1916/resplat @ cc4594a in float64 with the weights of
:func:`model_weights.seeded_state_dict`; see test_model_golden_e2e.py): the 4- and 8-view
cases select views with ``nn_matrix`` = argsort(cdist(camera centres))[..., :3], the tied case
with exact ties among the candidates.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from model_weights import MANIFESTS, seeded_state_dict
from safetensors.torch import load_file

from resplat.model.config import PRESETS
from resplat.model.depth import DepthOutput, DepthPredictor
from resplat.model.depth.cost_volume import (
    correlation_cost_volume,
    log_depth_candidates,
    neighbour_views,
    warp_features,
)
from resplat.model.depth.mv_transformer import window_attention
from resplat.model.depth.predictor import DepthInputError
from resplat.model.depth.unet import CrossViewAttentionBlock, UNetModel
from resplat.model.depth.vit import interpolate_pos_embed
from resplat.model.depth.windows import shifted_window_mask

GOLDEN = Path(__file__).parent / "data" / "golden"
F64 = torch.float64


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "tiny"])  # the released ones
def test_state_dict_equals_manifest(preset):
    manifest = json.loads((MANIFESTS / f"{preset.replace('-16view', '')}.json").read_text())
    prefix = "encoder.depth_predictor."
    want = {k[len(prefix):]: v for k, v in manifest.items() if k.startswith(prefix)}
    with torch.device("meta"):
        model = DepthPredictor(preset)
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(got) == sorted(want)
    assert got == want
    assert sum(v.numel() for v in model.state_dict().values()) == sum(math.prod(s) for s in want.values())


def _rig(v, h, w, dtype=torch.float32, baseline=0.1):
    k = torch.tensor([[0.8, 0, 0.5], [0, 0.8 * w / h, 0.5], [0, 0, 1]], dtype=dtype).expand(1, v, 3, 3).clone()
    c2w = torch.eye(4, dtype=dtype).expand(1, v, 4, 4).clone()
    c2w[0, :, 0, 3] = baseline * torch.arange(v, dtype=dtype)
    return k, c2w, torch.full((1, v), 0.5, dtype=dtype), torch.full((1, v), 50.0, dtype=dtype)


@pytest.mark.parametrize(
    "config, size, depth_size, low",
    [
        (PRESETS["small-dl3dv"], (64, 128), (64, 128), (8, 16)),
        (replace(PRESETS["small-dl3dv"], upsample_factor=4), (64, 128), (64, 128), (16, 32)),
        (replace(PRESETS["small-dl3dv"], depth_half_res=True), (64, 128), (32, 64), (8, 16)),
    ],
    ids=["u8", "u4", "half-res"],
)
def test_forward_shapes_and_range(config, size, depth_size, low):
    torch.manual_seed(0)
    model = DepthPredictor(config).eval()
    v, (h, w) = 2, size
    k, c2w, near, far = _rig(v, h, w)
    with torch.no_grad():
        out = model(torch.rand(1, v, 3, h, w), k, c2w, near, far)
    assert isinstance(out, DepthOutput)
    assert out.depth.shape == (1, v, *depth_size)
    assert torch.isfinite(out.depth).all()
    assert (out.depth >= 0.5 * (1 - 1e-6)).all() and (out.depth <= 50.0 * (1 + 1e-6)).all()
    assert out.match_prob.shape == (1, v, 1, *low) and out.match_probs.shape == (1, v, 128, *low)
    assert torch.allclose(out.match_probs.sum(2), torch.ones(()), atol=1e-5)
    assert torch.equal(out.match_prob, out.match_probs.max(2, keepdim=True).values)
    u = config.upsample_factor
    assert [tuple(f.shape) for f in out.cnn_features] == [
        (v, 64, h // 2, w // 2), (v, 96, h // (u // 2), w // (u // 2)), (v, 128, h // u, w // u)]
    assert out.mv_features.shape == (v, 128, h // u, w // u)
    vit = (h // (2 if config.depth_half_res else 1)) // 14, (w // (2 if config.depth_half_res else 1)) // 14
    scale = 2 if config.depth_half_res else 1
    assert [tuple(m.shape) for m in out.mono_features] == [(v, 384, vit[0] * scale, vit[1] * scale)] * 4
    assert [tuple(m.shape) for m in out.mono_intermediate] == [(v, 384, h // 8, w // 8)] * 4


def test_bad_input_raises_one_line_errors():
    model = DepthPredictor("small-dl3dv")
    k, c2w, near, far = _rig(2, 64, 80)
    with pytest.raises(DepthInputError, match=r"64x80 must be a multiple of 32") as e:
        model(torch.rand(1, 2, 3, 64, 80), k, c2w, near, far)
    assert "\n" not in str(e.value)
    k, c2w, near, far = _rig(2, 64, 128)
    with pytest.raises(DepthInputError, match="near < far"):
        model(torch.rand(1, 2, 3, 64, 128), k, c2w, far, near)
    with pytest.raises(DepthInputError, match=r"c2w must be \[1, 2, 4, 4\]"):
        model(torch.rand(1, 2, 3, 64, 128), k, c2w[:, :, :3], near, far)


def _bilinear_zero(feat, x, y):
    """Bilinear sample of feat [C, h, w] at pixel (x, y), zeros outside (align_corners=True)."""
    c, h, w = feat.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(c, dtype=feat.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= xx < w and 0 <= yy < h:
                out += wx * wy * feat[:, yy, xx]
    return out


def test_warp_matches_per_pixel_reference():
    g = torch.Generator().manual_seed(0)
    c, h, w = 3, 6, 8
    feat = torch.randn(1, c, h, w, generator=g, dtype=F64)
    k = torch.tensor([[5.0, 0, 3.6], [0, 4.5, 2.7], [0, 0, 1]], dtype=F64)
    a = torch.tensor([0.05, -0.1, 0.02], dtype=F64)
    skew = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=F64)
    pose = torch.eye(4, dtype=F64)
    pose[:3, :3] = torch.linalg.matrix_exp(skew)
    pose[:3, 3] = torch.tensor([-0.4, 0.1, 0.05], dtype=F64)
    depths = torch.tensor([0.7, 1.5, 4.0], dtype=F64)
    out = warp_features(feat, k[None], pose[None], depths.view(1, 3, 1, 1).expand(1, 3, h, w))
    assert out.shape == (1, c, 3, h, w)
    kinv = torch.linalg.inv(k)
    for di, d in enumerate(depths.tolist()):
        for y in range(h):
            for x in range(w):
                p = d * (kinv @ torch.tensor([x, y, 1.0], dtype=F64))  # integer pixel positions
                q = k @ (pose[:3, :3] @ p + pose[:3, 3])
                z = max(q[2].item(), 1e-3)
                ref = _bilinear_zero(feat[0], q[0].item() / z, q[1].item() / z)
                torch.testing.assert_close(out[0, :, di, y, x], ref, rtol=1e-10, atol=1e-12)


def test_cost_volume_peaks_at_true_plane_depth():
    """Fronto-parallel plane seen by a rectified pair: the reference features are the
    neighbour's features warped at the plane depth, so the correlation peaks at that candidate."""
    g = torch.Generator().manual_seed(1)
    c, h, w, d, k_true, disp, fx = 64, 12, 24, 32, 10, 3, 10.0
    log_d = log_depth_candidates(torch.tensor([[1.0, 1.0]], dtype=F64), torch.tensor([[20.0, 20.0]], dtype=F64), d)
    d_true = math.exp(log_d[0, 0, k_true].item())
    k = torch.tensor([[fx, 0, (w - 1) / 2], [0, fx, (h - 1) / 2], [0, 0, 1]], dtype=F64)
    c2w = torch.eye(4, dtype=F64).repeat(1, 2, 1, 1)
    c2w[0, 1, 0, 3] = disp * d_true / fx  # disparity of exactly `disp` pixels at d_true
    nb = torch.randn(1, c, h, w, generator=g, dtype=F64)
    pose = torch.linalg.inv(c2w[0, 1]) @ c2w[0, 0]
    ref = warp_features(nb, k[None], pose[None], torch.full((1, 1, h, w), d_true, dtype=F64))[:, :, 0]
    feats = torch.stack((ref, nb), dim=1)
    cost = correlation_cost_volume(feats, k.expand(1, 2, 3, 3), c2w, neighbour_views(c2w), log_d)
    assert cost.shape == (2, d, h, w)
    best = cost[0].argmax(0)
    assert (best[:, disp:] == k_true).all()  # pixels whose match is inside the neighbour
    torch.testing.assert_close(cost[0, k_true, :, disp:], (ref[0] ** 2).sum(0)[:, disp:] / math.sqrt(c))


def test_log_depth_candidates_are_log_uniform():
    cand = log_depth_candidates(torch.tensor([0.5], dtype=F64), torch.tensor([100.0], dtype=F64), 128)
    assert cand.shape == (1, 128)
    torch.testing.assert_close(cand[0, [0, -1]].exp(), torch.tensor([0.5, 100.0], dtype=F64))
    steps = cand[0].diff()
    torch.testing.assert_close(steps, torch.full_like(steps, math.log(200) / 127), rtol=1e-5, atol=0)  # float32 ramp


def test_neighbour_views_on_known_rig():
    c2w = torch.eye(4).repeat(1, 5, 1, 1)
    c2w[0, :, 0, 3] = torch.tensor([0.0, 1.0, 3.0, 7.0, 8.0])
    assert neighbour_views(c2w).tolist() == [[[1, 2], [0, 2], [1, 0], [4, 2], [3, 2]]]
    assert neighbour_views(c2w[:, :3]).tolist() == [[[1, 2], [0, 2], [0, 1]]]  # V <= 3: all others
    assert neighbour_views(c2w[:, :2]).tolist() == [[[1], [0]]]


def _bicubic_1d(n_in, n_out, scale):
    """[n_out, n_in] PyTorch bicubic weights (A = -0.75, align_corners=False, clamped taps) for
    an explicit scale factor: src = (dst + 0.5) / scale - 0.5."""
    a = -0.75

    def cub1(t):
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def cub2(t):
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    m = torch.zeros(n_out, n_in, dtype=F64)
    for i in range(n_out):
        src = (i + 0.5) / scale - 0.5
        x0 = math.floor(src)
        t = src - x0
        for off, wt in ((-1, cub2(t + 1)), (0, cub1(t)), (1, cub1(1 - t)), (2, cub2(2 - t))):
            m[i, min(max(x0 + off, 0), n_in - 1)] += wt
    return m


def test_pos_embed_interpolation_matches_bicubic_reference():
    g = torch.Generator().manual_seed(2)
    m, d, rows, cols = 5, 3, 3, 7
    pe = torch.randn(1, 1 + m * m, d, generator=g, dtype=F64)
    out = interpolate_pos_embed(pe, rows, cols, square_image=False)
    grid = pe[0, 1:].reshape(m, m, d)
    ry = _bicubic_1d(m, rows, (rows + 0.1) / m)
    rx = _bicubic_1d(m, cols, (cols + 0.1) / m)
    ref = torch.einsum("ri,cj,ijd->rcd", ry, rx, grid).reshape(rows * cols, d)
    assert out.shape == (1, 1 + rows * cols, d) and out.dtype == F64
    torch.testing.assert_close(out[0, 0], pe[0, 0])
    torch.testing.assert_close(out[0, 1:], ref, rtol=1e-12, atol=1e-12)  # float64 stays float64
    by_size = F.interpolate(grid.permute(2, 0, 1)[None], size=(rows, cols), mode="bicubic")
    assert (by_size[0].permute(1, 2, 0).reshape(-1, d) - ref).abs().max() > 1e-3  # the 0.1 offset matters
    assert interpolate_pos_embed(pe, m, m, square_image=True) is pe
    assert not torch.allclose(interpolate_pos_embed(pe, m, m, square_image=False), pe)


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            offset = 1.0 if p.dim() == 1 else 0.0  # norm scales around 1
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3 + offset)


def test_cross_view_attention_matches_loop_reference():
    b, v, c, h, w, hc = 2, 2, 64, 2, 3, 32
    block = CrossViewAttentionBlock(c, hc).double()
    _randomise(block, 3)
    x = torch.randn(b * v, c, h, w, generator=torch.Generator().manual_seed(4), dtype=F64)
    out = block(x, v)
    qkv = block.qkv(block.norm(x.reshape(b * v, c, h * w)))  # [BV, 3C, t]
    ref = torch.empty(b * v, c, h * w, dtype=F64)
    for s in range(b):
        tokens = torch.cat([qkv[s * v + j] for j in range(v)], dim=1)  # [3C, V*t]
        att = torch.empty(c, v * h * w, dtype=F64)
        for head in range(c // hc):
            q, k, val = tokens[head * 3 * hc:(head + 1) * 3 * hc].split(hc)  # legacy layout
            for t in range(v * h * w):
                wts = torch.softmax((q[:, t:t + 1] * k).sum(0) / math.sqrt(hc), 0)
                att[head * hc:(head + 1) * hc, t] = (val * wts).sum(1)
        for j in range(v):
            ref[s * v + j] = att[:, j * h * w:(j + 1) * h * w]
    ref = x.reshape(b * v, c, h * w) + block.proj_out(ref)
    # the release (and we) take the softmax in float32, hence the float32-level tolerance
    torch.testing.assert_close(out, ref.reshape(b * v, c, h, w), rtol=1e-5, atol=1e-5)


def test_unet_attention_mixes_views():
    unet = UNetModel(channels=32, head_channels=32).double().eval()
    _randomise(unet, 5)
    x = torch.randn(2, 32, 8, 8, generator=torch.Generator().manual_seed(6), dtype=F64)
    x2 = x.clone()
    x2[1] += 1.0
    with torch.no_grad():
        joint, joint2 = unet(x, 2), unet(x2, 2)
        alone, alone2 = unet(x, 1), unet(x2, 1)
    assert (joint[0] - joint2[0]).abs().max() > 1e-3  # view 1 reads view 2's tokens
    torch.testing.assert_close(alone[0], alone2[0])  # one view per scene: independent


def test_window_attention_single_window_is_full_attention():
    g = torch.Generator().manual_seed(7)
    n, m, h, w, c = 2, 2, 4, 6, 8
    q = torch.randn(n, h * w, c, generator=g, dtype=F64)
    k, v = torch.randn(2, n, m, h * w, c, generator=g, dtype=F64)
    out = window_attention(q, k, v, h, w, splits=1, mask=None)
    keys, vals = k.reshape(n, m * h * w, c), v.reshape(n, m * h * w, c)
    ref = torch.softmax(q @ keys.transpose(1, 2) / math.sqrt(c), -1) @ vals
    torch.testing.assert_close(out, ref)
    # 2x2 windows: a query only sees keys of its own window
    out2 = window_attention(q, k, v, h, w, splits=2, mask=None)
    k3, v3 = k.clone(), v.clone()
    far_px = torch.arange(h * w).view(h, w)[h // 2:, w // 2:].flatten()  # bottom-right window
    k3[:, :, far_px] += 5.0
    v3[:, :, far_px] += 5.0
    top_left = torch.arange(h * w).view(h, w)[: h // 2, : w // 2].flatten()
    torch.testing.assert_close(window_attention(q, k3, v3, h, w, 2, None)[:, top_left], out2[:, top_left])


def test_shifted_window_mask_regions():
    mask = shifted_window_mask(8, 8, 2)
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()  # top-left window: one region
    assert ((mask[3] == -100).sum(1) == 12).all()  # bottom-right: 4 regions of 4 tokens
    assert ((mask[1] == -100).sum(1) == 8).all()  # right column: 2 regions of 8


@pytest.mark.parametrize("case", ["small_2v", "small_4v", "small_8v", "small_5v_tied"])
def test_matches_release_golden(case):
    """Our depth network with the released small-dl3dv config (8-group U-Net GroupNorm) gives the
    release's depth: relative L2 error measured <= 1.2e-14 (float64 round-off), tolerance 1e-12.
    With the old stand-in's 32 groups it is off by 3e-2."""
    data = load_file(str(GOLDEN / f"release_{case}.safetensors"))
    model = DepthPredictor(PRESETS["small-dl3dv"]).double().eval()
    assert model.config.unet_norm_groups == 8
    model.load_state_dict(seeded_state_dict("small-dl3dv", "encoder.depth_predictor."))
    images = data["images_u8"].double() / 255
    v, _, h, w = images.shape
    c2w = data["model_c2w"][None]  # the release's normalised poses
    K = data["K"].clone()
    K[:, 0] /= w
    K[:, 1] /= h
    if v > 3:
        assert torch.equal(neighbour_views(c2w)[0], data["nn_matrix"][:, 1:])
    near, far = torch.full((1, v), 0.01, dtype=F64), torch.full((1, v), 200.0, dtype=F64)  # DL3DV
    with torch.no_grad():
        out = model(images[None], K[None], c2w, near, far)
    depth, ref = out.depth[0, :, ::4, ::4], data["depth_sub"]
    err = float((depth - ref).norm() / ref.norm())
    assert err < 1e-12, f"{case}: depth relative L2 error {err:.2e} against the release"
    assert ref.std() > 0.1 * ref.mean()  # non-trivial reference
