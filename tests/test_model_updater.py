"""The recurrent updater (runtime/resplat/model/{features,update_state,updater}.py).

Checks the release layout (state-dict keys and shapes of the six ``encoder.update_*`` children
against the manifests, in order), the frozen ResNet-18 against a float64 hand-written basic
block, the property of the release's zero-initialised head (a step is the identity), where each
delta lands, that each Gaussian reads the RGB error of its own grid pixel, and the rotation
composition of the state conversion against float64 formulas.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import resplat.model
from resplat.cameras import Cameras, K_from_fov
from resplat.model.config import PRESETS
from resplat.model.features import BasicBlock, ResNetFeatures, imagenet_normalize
from resplat.model.update_state import UpdateState, xyzw_to_wxyz
from resplat.model.updater import (UPDATE_MODULE_NAMES, Updater, UpdaterInputError, build_update_modules,
                                   rgb_error_tokens)

MANIFESTS = Path(resplat.model.__file__).parent / "manifests"




@pytest.mark.parametrize("preset", ["small-dl3dv", "base-dl3dv", "base-re10k"])
def test_update_modules_match_manifest(preset):
    manifest = json.loads((MANIFESTS / f"{preset}.json").read_text())
    with torch.device("meta"):
        modules = build_update_modules(preset)
    assert tuple(modules) == UPDATE_MODULE_NAMES
    ours = [(f"encoder.{name}.{k}", list(t.shape)) for name in UPDATE_MODULE_NAMES
            for k, t in modules[name].state_dict().items()]
    theirs = [(k, s) for k, s in manifest.items() if k.startswith(tuple(f"encoder.{n}." for n in UPDATE_MODULE_NAMES))]
    assert ours == theirs  # same keys, same shapes, same order
    head = modules["update_head"][-1]
    assert not any(p.requires_grad for p in modules["update_feature"].parameters())
    if preset == "base-re10k":
        assert list(modules["update_rgb_error_proj"][0].weight.shape) == [256, 3]
    assert list(head.weight.shape) == [59, 512]


def _random_bn(bn: torch.nn.BatchNorm2d, gen: torch.Generator) -> None:
    c = bn.num_features
    bn.weight.data = torch.rand(c, generator=gen, dtype=bn.weight.dtype) + 0.5
    bn.bias.data = torch.randn(c, generator=gen, dtype=bn.weight.dtype) * 0.1
    bn.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
    bn.running_var.copy_(torch.rand(c, generator=gen) + 0.5)


def test_basic_block_against_float64_formula():
    gen = torch.Generator().manual_seed(0)
    block = BasicBlock(4, 6, stride=2).double().eval()
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            _random_bn(m, gen)
    x = torch.randn(2, 4, 9, 10, generator=gen, dtype=torch.float64)

    def bn(t, m):  # (x - mean) / sqrt(var + 1e-5) * gamma + beta, per channel
        shape = (1, -1, 1, 1)
        return ((t - m.running_mean.view(shape)) / torch.sqrt(m.running_var.view(shape) + 1e-5)
                * m.weight.view(shape) + m.bias.view(shape))

    h = bn(F.conv2d(x, block.conv1.weight, stride=2, padding=1), block.bn1).clamp_min(0)
    h = bn(F.conv2d(h, block.conv2.weight, padding=1), block.bn2)
    short = bn(F.conv2d(x, block.downsample[0].weight, stride=2), block.downsample[1])
    expected = (h + short).clamp_min(0)
    out = block(x)
    assert out.shape == (2, 6, 5, 5)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_resnet_taps_frozen_and_before_bn():
    gen = torch.Generator().manual_seed(1)
    net = ResNetFeatures()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            _random_bn(m, gen)
    x = imagenet_normalize(torch.rand(2, 3, 64, 96, generator=gen))
    net.train()  # must stay in eval mode: running statistics, no update of the buffers
    assert not net.training and not net.bn1.training
    before = net.bn1.running_mean.clone()
    taps = net(x)
    assert [tuple(t.shape) for t in taps] == [(2, 64, 32, 48), (2, 64, 16, 24), (2, 128, 8, 12)]
    torch.testing.assert_close(taps[0], F.conv2d(x, net.conv1.weight, stride=2, padding=3))  # before bn1
    torch.testing.assert_close(net.bn1.running_mean, before, rtol=0, atol=0)
    assert not taps[2].requires_grad
    mean = torch.tensor([0.485, 0.456, 0.406])
    torch.testing.assert_close(imagenet_normalize(mean[:, None, None].expand(3, 2, 2)), torch.zeros(3, 2, 2))


def _fixed_order_matvec(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``m @ x`` for 3-vectors summed left to right with a rounding after each float32 product
    and sum, the same bits on every CPU: a float32 matmul's FMA and blocking vary with the
    machine (AVX-512 fused the second view's means 1 ulp away), and the golden files were made
    from these inputs. ``m`` [..., 3, 3], ``x`` [..., 3] -> [..., 3]."""
    return torch.stack([(x[..., 0] * m[..., i, 0] + x[..., 1] * m[..., i, 1]) + x[..., 2] * m[..., i, 2]
                        for i in range(3)], -1)


def _scene(grid=(2, 8, 8), factor=4, seed=0):
    """Cameras of 2 views (the second rotated about y) and an UpdateState of Gaussians on their
    rays, small enough for a CPU step."""
    v, gh, gw = grid
    gen = torch.Generator().manual_seed(seed)
    H, W = gh * factor, gw * factor
    K = K_from_fov(math.radians(60), W, H)
    c2w = torch.eye(4).repeat(v, 1, 1)
    a = math.radians(10)
    c2w[1, :3, :3] = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    c2w[1, :3, 3] = torch.tensor([-0.3, 0.0, 0.05])
    cams = Cameras.from_c2w(c2w, K, W, H)
    n = v * gh * gw
    ys, xs = torch.meshgrid(torch.arange(gh) + 0.5, torch.arange(gw) + 0.5, indexing="ij")
    pix = torch.stack([xs.flatten() * factor, ys.flatten() * factor, torch.ones(gh * gw)], -1)
    rays = _fixed_order_matvec(torch.linalg.inv(K), pix)  # z = 1
    depth = 2 + 0.5 * torch.rand(v, gh * gw, generator=gen)
    cam_pts = rays[None] * depth[..., None]
    means = (_fixed_order_matvec(c2w[:, None, :3, :3], cam_pts) + c2w[:, None, :3, 3]).reshape(n, 3)
    state = UpdateState(
        means=means,
        scales=0.02 + 0.03 * torch.rand(n, 3, generator=gen),
        quats_xyzw=torch.randn(n, 4, generator=gen) * 2,
        opacity_logits=torch.randn(n, generator=gen),
        sh=torch.randn(n, 3, 16, generator=gen) * 0.3,
        view_rotations=c2w[:, :3, :3],
        grid=grid,
    )
    images = torch.rand(v, 3, H, W, generator=gen)
    return state, cams, images


@pytest.fixture(scope="module")
def updater():
    torch.manual_seed(0)
    modules = build_update_modules(PRESETS["small-dl3dv"])
    for m in modules.values():
        m.eval()
    return Updater(modules, "small-dl3dv", backend="torch")


def test_zero_init_head_leaves_gaussians_unchanged(updater):
    state, cams, images = _scene()
    cond = torch.randn(2, 256, 8, 8)
    hidden = updater.initial_hidden(cond)
    assert hidden.shape == (128, 512)
    with torch.no_grad():
        new, new_hidden = updater.step(state, hidden, images, cams)
    for name in ("means", "scales", "quats_xyzw", "opacity_logits", "sh"):
        torch.testing.assert_close(getattr(new, name), getattr(state, name), rtol=0, atol=0)
    assert new_hidden.shape == hidden.shape and not torch.equal(new_hidden, hidden)  # the state did move
    with pytest.raises(UpdaterInputError, match=r"images \[2, 3, 32, 28\] and 2 cameras do not match the Gaussian grid"):
        updater.step(state, hidden, images[..., :28], cams)


def test_detach_rules(updater):
    """As the release: the previous parameters enter the update detached (so with the zero head
    the new means do not depend on the old ones at all), while the head, the hidden state and
    the RGB-error path through the render keep their gradients; the ResNet gets none."""
    state, cams, images = _scene(seed=4)
    means = state.means.clone().requires_grad_(True)
    opac = state.opacity_logits.clone().requires_grad_(True)
    state = UpdateState(means, state.scales, state.quats_xyzw, opac, state.sh, state.view_rotations, state.grid)
    hidden = updater.initial_hidden(torch.randn(2, 256, 8, 8))
    new, new_hidden = updater.step(state, hidden, images, cams)
    (g_means,) = torch.autograd.grad(new.means.sum(), means, retain_graph=True)
    assert torch.count_nonzero(g_means) == 0  # without the detach this would be all ones
    head_w = updater.update_head[-1].weight
    g_head, g_opac = torch.autograd.grad(new.means.sum() + new_hidden.sum(), [head_w, opac])
    assert g_head.abs().sum() > 0  # the deltas are trained through the head
    assert g_opac.abs().sum() > 0  # the RGB error of the render carries the old Gaussians' gradient
    assert all(p.grad is None for p in updater.update_feature.parameters())


def test_deltas_land_on_their_parameters(updater):
    state, cams, images = _scene(seed=1)
    hidden = updater.initial_hidden(torch.randn(2, 256, 8, 8))
    head = updater.update_head[-1]
    bias = torch.zeros(59)
    bias[0:3] = torch.tensor([0.1, -0.2, 0.3])       # means
    bias[3:6] = torch.tensor([0.01, -1.0, 0.02])     # scales (the second clamps at 1e-6)
    bias[6:10] = torch.tensor([0.5, 0.0, 0.0, 0.0])  # quaternion x
    bias[10] = -0.7                                  # opacity logit
    bias[11 + 1 * 16 + 0] = 0.25                     # SH: green DC (channel-major: c * 16 + k)
    bias[11 + 2 * 16 + 5] = -0.125                   # SH: blue, coefficient 5
    try:
        with torch.no_grad():
            head.bias.copy_(bias)
            new, _ = updater.step(state, hidden, images, cams)
    finally:
        with torch.no_grad():
            head.bias.zero_()
    torch.testing.assert_close(new.means, state.means + bias[0:3], rtol=0, atol=1e-6)
    torch.testing.assert_close(new.scales[:, 0], state.scales[:, 0] + 0.01, rtol=0, atol=1e-7)
    assert torch.all(new.scales[:, 1] == 1e-6)
    torch.testing.assert_close(new.quats_xyzw[:, 0], state.quats_xyzw[:, 0] + 0.5, rtol=0, atol=1e-6)
    torch.testing.assert_close(new.quats_xyzw[:, 1:], state.quats_xyzw[:, 1:], rtol=0, atol=0)
    torch.testing.assert_close(new.opacity_logits, state.opacity_logits - 0.7, rtol=0, atol=1e-6)
    expected_sh = state.sh.clone()
    expected_sh[:, 1, 0] += 0.25
    expected_sh[:, 2, 5] -= 0.125
    torch.testing.assert_close(new.sh, expected_sh, rtol=0, atol=1e-6)
    ours = new.to_gaussians()
    torch.testing.assert_close(ours.sh[:, 0, 1], state.sh[:, 1, 0] + 0.25, rtol=0, atol=1e-6)  # [N, K, 3]


def test_each_gaussian_reads_its_own_pixel_error():
    torch.manual_seed(0)
    proj = torch.nn.Sequential(torch.nn.Linear(48, 16), torch.nn.LayerNorm(16)).double()
    gen = torch.Generator().manual_seed(2)
    render = torch.rand(2, 3, 32, 48, generator=gen, dtype=torch.float64)
    images = torch.rand(2, 3, 32, 48, generator=gen, dtype=torch.float64)
    base = rgb_error_tokens(render, images, 4, proj)
    assert base.shape == (2, 8, 12, 16)
    v, i, j = 1, 5, 7
    images2 = images.clone()
    images2[v, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4] += 0.1
    changed = (rgb_error_tokens(render, images2, 4, proj) - base).abs().amax(-1) > 0
    assert changed.nonzero().tolist() == [[v, i, j]]
    # the flattened token order is the Gaussians' (v, row, col) order of UpdateState
    state, _, _ = _scene(grid=(2, 8, 12))
    n = int(((state.view_index == v) & (state.pixel_index == i * 12 + j)).nonzero())
    assert changed.reshape(-1).nonzero().flatten().tolist() == [n]
    # value: channel c * 16 + dy * 4 + dx holds the error at pixel (4i + dy, 4j + dx) of channel c
    block = (render - images)[v, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4]
    vec = torch.stack([block[c, dy, dx] for c in range(3) for dy in range(4) for dx in range(4)])
    torch.testing.assert_close(base[v, i, j], proj(vec), rtol=1e-12, atol=1e-12)


def test_zero_error_ablation_cuts_the_feedback():
    """``zero_error`` (ablation): from the same state and hidden, two different image sets give
    bit-identical steps; without it the same two image sets give different steps."""
    torch.manual_seed(0)
    modules = build_update_modules("tiny")
    for m in modules.values():
        m.eval()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():  # a trained-looking head: the zero-initialised one makes every step the identity
        modules["update_head"][-1].weight.normal_(0, 1e-2, generator=gen)
    state, cams, images = _scene(seed=5)
    other = torch.rand(images.shape, generator=gen)
    hidden = Updater(modules, "tiny").initial_hidden(torch.randn(2, 64, 8, 8, generator=gen))

    def step(zero_error, imgs):
        with torch.no_grad():
            return Updater(modules, "tiny", backend="torch", zero_error=zero_error).step(state, hidden, imgs, cams)

    (a, ha), (b, hb) = step(True, images), step(True, other)
    for name in ("means", "scales", "quats_xyzw", "opacity_logits", "sh"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(ha, hb)
    assert (a.means - state.means).abs().max() > 1e-4  # the step did move the Gaussians
    (c, hc), (d, hd) = step(False, images), step(False, other)
    assert (c.means - d.means).abs().max() > 1e-4 and (hc - hd).abs().max() > 1e-3
    assert (c.means - a.means).abs().max() > 1e-4  # zeros are not what the real error gives


def _rot_xyzw64(q):
    """Rotation matrix of an (x, y, z, w) quaternion, float64, written independently."""
    x, y, z, w = (q / q.norm()).tolist()
    return torch.tensor([
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
    ], dtype=torch.float64)


def test_state_conversion_composes_each_views_rotation():
    state, cams, _ = _scene(seed=3)
    g = state.to_gaussians()
    cov = g.to(dtype=torch.float64).covariances()
    R_views = cams.c2w[:, :3, :3].double()
    for n in [0, 5, 64, 100, 127]:  # Gaussians of view 0 and of the rotated view 1
        view = n // 64
        R = R_views[view] @ _rot_xyzw64(state.quats_xyzw[n].double())
        S2 = torch.diag(state.scales[n].double() ** 2)
        torch.testing.assert_close(cov[n], R @ S2 @ R.T, rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(g.rotation_matrices()[n].double(), R, rtol=0, atol=2e-6)
    assert torch.allclose(g.log_scales.exp(), state.scales, rtol=1e-6)
    torch.testing.assert_close(g.logit_opacities, state.opacity_logits)
    torch.testing.assert_close(g.sh, state.sh.transpose(1, 2))
    # with the middle view's rotation for all (the release's export) view 1 would be wrong
    wrong = R_views[0] @ _rot_xyzw64(state.quats_xyzw[100].double())
    assert not torch.allclose(g.rotation_matrices()[100].double(), wrong, atol=1e-3)
    torch.testing.assert_close(xyzw_to_wxyz(torch.tensor([1.0, 2, 3, 4])), torch.tensor([4.0, 1, 2, 3]))


def test_from_release_clamps_opacity_logits_like_the_release():
    state, _, _ = _scene()
    opac = torch.full((len(state),), 0.5)
    opac[0], opac[1] = 1.0, 0.0
    s = UpdateState.from_release(state.means, state.scales, state.quats_xyzw, opac, state.sh,
                                 state.view_rotations, state.grid)
    assert s.opacity_logits[2] == 0
    assert math.isclose(float(s.opacity_logits[0]), math.log((1 - 1e-6) / 1e-6), rel_tol=2e-3)
    assert math.isclose(float(s.opacity_logits[1]), -math.log((1 - 1e-6) / 1e-6), rel_tol=2e-3)


GOLDEN = Path(__file__).parent / "data" / "golden"


def golden_inputs(preset: str = "small-dl3dv"):
    """float64 inputs of the golden files: the 2-view scene of :func:`_scene` (seed 5, Gaussian
    grid 2 x 8 x 8; 32x32 images for DL3DV, 8x8 for RE10K's one Gaussian per pixel) and
    condition features [2, C, h, w] on the latent grid (8x8 DL3DV, 4x4 RE10K) from seed 9."""
    cfg = PRESETS[preset]
    factor = 4 if cfg.gaussians_per_point == 1 else 1
    state, cams, images = _scene(factor=factor, seed=5)
    state = UpdateState(state.means.double(), state.scales.double(), state.quats_xyzw.double(),
                        state.opacity_logits.double(), state.sh.double(), state.view_rotations.double(), state.grid)
    lat = 8 // int(cfg.gaussians_per_point ** 0.5)
    cond = torch.randn(2, cfg.regressor_channels, lat, lat, generator=torch.Generator().manual_seed(9),
                       dtype=torch.float64)
    return state, cams.to(dtype=torch.float64), images.double(), cond


@pytest.mark.parametrize("preset", ["small-dl3dv", "base-re10k"])
def test_two_iterations_match_the_release_golden(preset):
    """Golden outputs of the release's ``forward_update`` (cc4594a, transcribed in a scratch
    folder outside the repository with pointops, torchvision and gsplat replaced by
    resplat.model.knn, our ResNetFeatures and our torch rasteriser on the release's
    covariances), 2 iterations, float64, weights ``tests/model_weights.seeded_state_dict(
    "small-dl3dv", "encoder.update_")`` (one generator over the update_* keys in manifest order) with BatchNorm ``running_var`` shifted by +1 (positive).
    Produced by: ``python make_golden.py PRESET`` in that scratch folder, which builds the release's
    update modules, loads those weights strictly, feeds :func:`golden_inputs` (opacities as
    sigmoid of the logits, covariances R_c2w R(q) S^2 R(q)^T R_c2w^T) and saves the Gaussians
    after each iteration and the first 32 hidden channels after the second."""
    from safetensors.torch import load_file

    from model_weights import seeded_state_dict

    gold = load_file(str(GOLDEN / f"updater_{preset.replace('-', '_')}.safetensors"))
    modules = build_update_modules(preset)
    sd = {"update_" + k: v for k, v in seeded_state_dict(preset, "encoder.update_").items()}
    for name, module in modules.items():
        own = {k[len(name) + 1:]: (1 + v if k.endswith("running_var") else v) for k, v in sd.items()
               if k.startswith(name + ".")}
        module.double().load_state_dict(own, strict=True)
        module.eval()
    updater = Updater(modules, preset, backend="torch")
    state, cams, images, cond = golden_inputs(preset)
    state = UpdateState.from_release(state.means, state.scales, state.quats_xyzw, torch.sigmoid(state.opacity_logits),
                                     state.sh, state.view_rotations, state.grid)
    with torch.no_grad():
        hidden = updater.initial_hidden(cond)
        for it in (1, 2):
            state, hidden = updater.step(state, hidden, images, cams)
            for name, ours in [("means", state.means), ("scales", state.scales), ("quats_xyzw", state.quats_xyzw),
                               ("opacities", torch.sigmoid(state.opacity_logits)), ("sh", state.sh)]:
                torch.testing.assert_close(ours, gold[f"iter{it}.{name}"], rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(hidden[:, :32], gold["iter2.hidden_first32"], rtol=1e-6, atol=1e-6)
    assert (gold["iter2.means"] - golden_inputs(preset)[0].means).abs().max() > 1e-3  # the updates are not trivial


def test_footprint_update_mode_steps_in_cell_footprints(updater):
    """update_mode "footprint": the mean and scale steps are the head's outputs times
    8 x z x cell / f (z the Gaussian's depth in its own view, cell 4 px, f the focal length in
    px; float64 reference), the scales the updater reads are divided by the same unit, and the
    other parameters step as in the release."""
    from dataclasses import replace

    fp = Updater({n: getattr(updater, n) for n in UPDATE_MODULE_NAMES},
                 replace(PRESETS["small-dl3dv"], update_mode="footprint"), backend="torch")
    state, cams, images = _scene(seed=2)
    hidden = fp.initial_hidden(torch.randn(2, 256, 8, 8))
    w2c = cams.w2c.double()[torch.arange(len(state)) // 64]
    z = torch.einsum("nj,nj->n", w2c[:, 2, :3], state.means.double()) + w2c[:, 2, 3]
    f = cams.K.double()[0, 0, 0]
    unit = (8.0 * z * 4 / f)[:, None]
    assert 2.0 < float(unit.min()) and float(unit.max()) < 3.5  # 2-2.5 m deep, 27.7 px focal length
    head = updater.update_head[-1]
    bias = torch.zeros(59)
    bias[0:3] = torch.tensor([0.1, -0.2, 0.3])
    bias[3:6] = torch.tensor([0.01, 0.02, 0.03])
    bias[10] = -0.7
    seen = {}

    def keep_input(module, args, out):
        seen["x"] = args[0][0, :, :59]  # the parameters' columns of the updater's input

    hook = updater.update_module[0].register_forward_hook(keep_input)
    try:
        with torch.no_grad():
            head.bias.copy_(bias)
            new, _ = fp.step(state, hidden, images, cams)
    finally:
        hook.remove()
        with torch.no_grad():
            head.bias.zero_()
    torch.testing.assert_close(new.means.double(), state.means.double() + bias[0:3].double() * unit, rtol=0, atol=1e-5)
    torch.testing.assert_close(new.scales.double(), state.scales.double() + bias[3:6].double() * unit, rtol=0, atol=1e-6)
    torch.testing.assert_close(new.opacity_logits, state.opacity_logits - 0.7, rtol=0, atol=1e-6)  # unscaled
    torch.testing.assert_close(seen["x"][:, 3:6].double(), state.scales.double() / unit, rtol=1e-5, atol=0)
    torch.testing.assert_close(seen["x"][:, :3], state.means, rtol=0, atol=0)
