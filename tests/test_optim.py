"""Unit tests of the 3DGS optimiser: learning rates, pruning with Adam state, callback and
cancel, determinism, random initialisation, input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optim_scene import ring_cameras, scene, target_gaussians
from ssim_reference import ssim_2d
from resplat.errors import ResplatError, ViewsError
from resplat.gaussians import Gaussians
from resplat.optim import (
    OptimConfig,
    build_optimizer,
    look_at_point,
    nn_scales,
    optimize,
    params_to_gaussians,
    prune,
    random_init,
    scene_extent,
    split_params,
    visible_count,
)




@pytest.fixture(scope="module")
def small():
    """Ground truth, 6 training cameras and images of the synthetic scene, and a random init."""
    _, train, images, _, _ = scene()
    return train, images, random_init(train, 150, seed=0)


def test_scene_extent_is_3dgs_nerfpp_radius():
    cams = ring_cameras(6, radius=2.5, height=0.8)
    # centres lie on a circle around the origin at height +-0.8: mean (0, 0, 0), max distance sqrt(2.5^2 + 0.8^2)
    assert scene_extent(cams) == pytest.approx(1.1 * math.hypot(2.5, 0.8), rel=1e-6)
    assert scene_extent(cams[0]) == 1.0  # one camera: fallback instead of 3DGS's 0


def test_param_groups_and_schedule_have_3dgs_rates():
    g = target_gaussians(10).with_sh_degree(3)
    opt = build_optimizer(split_params(g), OptimConfig(), extent=2.0)
    lrs = {grp["name"]: grp["lr"] for grp in opt.param_groups}
    assert lrs == pytest.approx({"means": 3.2e-4, "sh_dc": 2.5e-3, "sh_rest": 1.25e-4, "logit_opacities": 0.05,
                                 "log_scales": 5e-3, "quats": 1e-3}, rel=1e-12)
    assert opt.defaults["eps"] == 1e-15
    shapes = {grp["name"]: tuple(grp["params"][0].shape) for grp in opt.param_groups}
    assert shapes["sh_dc"] == (10, 1, 3) and shapes["sh_rest"] == (10, 15, 3)
    cfg = OptimConfig()
    assert cfg.means_lr(0, 100, 2.0) == pytest.approx(3.2e-4, rel=1e-12)
    assert cfg.means_lr(50, 100, 2.0) == pytest.approx(2.0 * math.sqrt(1.6e-4 * 1.6e-6), rel=1e-12)  # log-linear
    assert cfg.means_lr(100, 100, 2.0) == pytest.approx(3.2e-6, rel=1e-12)


def test_first_adam_step_moves_each_attribute_by_its_rate(small):
    """Adam's first step moves every parameter with a non-zero gradient by exactly lr (m / sqrt(v)
    = sign(g) after bias correction), so one optimize step shows the rates the loop really uses."""
    train, images, init = small
    gen = torch.Generator().manual_seed(0)
    init = init.to(dtype=torch.float64)  # anisotropic and rotated, else rotations get no gradient
    g0 = Gaussians(init.means, torch.randn(len(init), 4, generator=gen, dtype=torch.float64),
                   init.log_scales + 0.5 * torch.randn(len(init), 3, generator=gen, dtype=torch.float64), init.logit_opacities, init.sh)
    res = optimize(g0, images, train, 1, backend="torch")
    extent = scene_extent(train)
    expect = {"means": 1.6e-6 * extent, "quats": 1e-3, "log_scales": 5e-3, "logit_opacities": 0.05}
    for name, lr in expect.items():
        delta = (getattr(res.gaussians, name) - getattr(g0, name)).abs()
        moved = delta[delta > 0]
        assert moved.numel() > 0.5 * delta.numel(), name
        np.testing.assert_allclose(moved.numpy(), lr, rtol=1e-4, err_msg=name)  # eps 1e-15 matters only for |g| < 1e-11
    dsh = (res.gaussians.sh - g0.sh).abs()
    np.testing.assert_allclose(dsh[dsh > 0].numpy(), 2.5e-3, rtol=1e-4)


def _adam_step(params, opt, weights):
    opt.zero_grad()
    sum((p * weights[k]).sum() + (p**2).sum() for k, p in params.items()).backward()
    opt.step()


def test_prune_slices_params_and_adam_state_consistently():
    g = target_gaussians(20).with_sh_degree(1)
    gen = torch.Generator().manual_seed(3)
    weights = {k: torch.randn(v.shape, generator=gen) for k, v in split_params(g).items()}
    full = split_params(g)
    opt_full = build_optimizer(full, OptimConfig(), 1.0)
    pruned = split_params(g)
    opt_pruned = build_optimizer(pruned, OptimConfig(), 1.0)
    for _ in range(3):
        _adam_step(full, opt_full, weights)
        _adam_step(pruned, opt_pruned, weights)
    keep = torch.ones(20, dtype=torch.bool)
    keep[[0, 4, 5, 13]] = False
    before = {k: opt_pruned.state[p]["exp_avg"].clone() for k, p in pruned.items()}
    pruned = prune(pruned, opt_pruned, keep)
    # Gaussian 7 is now at index 4 (0, 4 and 5 removed before it) and took its moments along
    for k, p in pruned.items():
        st = opt_pruned.state[p]
        assert p.shape[0] == 16 and p.is_leaf and p.requires_grad
        torch.testing.assert_close(st["exp_avg"][4], before[k][7], rtol=0, atol=0)
        assert not torch.equal(st["exp_avg"][4], before[k][5])
        assert float(st["step"]) == 3
    # Adam is elementwise: continuing on the pruned set equals continuing on all and slicing
    kept_weights = {k: w[keep] for k, w in weights.items()}
    for _ in range(2):
        _adam_step(full, opt_full, weights)
        _adam_step(pruned, opt_pruned, kept_weights)
    for k in full:
        torch.testing.assert_close(pruned[k], full[k].detach()[keep], rtol=0, atol=0)
    assert len(params_to_gaussians(pruned)) == 16


def test_final_prune_removes_exactly_the_gaussians_below_threshold(small):
    train, images, init = small
    op = torch.full((len(init),), 0.5)
    op[::7] = 0.0049
    op[3::7] = 0.0051
    g = Gaussians.from_activated(init.means, init.quats, init.scales, op, sh=init.sh)
    res = optimize(g, images, train, 0, backend="torch", prune_opacity=0.005)
    keep = g.opacities >= 0.005
    assert len(res.gaussians) == int(keep.sum()) == len(init) - len(range(0, len(init), 7))
    torch.testing.assert_close(res.gaussians.means, g.means[keep], rtol=0, atol=0)
    # with steps (logits move <= 0.05 per step): Gaussians at 0.001 go, those at 0.5 stay, in order
    op[3::7] = 0.5
    op[::7] = 0.001
    g = Gaussians.from_activated(init.means, init.quats, init.scales, op, sh=init.sh)
    res = optimize(g, images, train, 3, backend="torch", prune_opacity=0.005, prune_every=2)
    keep = op > 0.1
    assert len(res.gaussians) == int(keep.sum()) and bool((res.gaussians.opacities >= 0.005).all())
    torch.testing.assert_close(res.gaussians.means, g.means[keep], rtol=0, atol=3 * 1.6e-4 * scene_extent(train))


def test_callback_every_step_and_cancel(small):
    train, images, init = small
    seen = []
    res = optimize(init, images, train, 6, backend="torch", eval_every=3, callback=seen.append)
    assert [p.step for p in seen] == list(range(1, 7)) and {p.total for p in seen} == {6}
    assert [p.loss for p in seen] == res.losses
    assert [p.psnr is not None for p in seen] == [False, False, True, False, False, True]
    assert res.psnr_history == [(3, seen[2].psnr), (6, seen[5].psnr)]
    assert not res.cancelled and res.seconds > 0
    calls = []
    part = optimize(init, images, train, 6, backend="torch", eval_every=3, callback=lambda p: calls.append(p.step) or p.step < 2)
    assert part.cancelled and calls == [1, 2] and part.losses == res.losses[:2]
    assert len(part.gaussians) == len(init) and not torch.equal(part.gaussians.means, init.means)


def test_deterministic_under_seed(small):
    train, images, init = small
    a = optimize(init, images, train, 8, backend="torch", seed=5, eval_every=4)
    b = optimize(init, images, train, 8, backend="torch", seed=5, eval_every=4)
    c = optimize(init, images, train, 8, backend="torch", seed=6, eval_every=4)
    assert a.losses == b.losses and a.psnr_history == b.psnr_history
    for k, t in a.gaussians.tensors().items():
        assert torch.equal(t, b.gaussians.tensors()[k]), k
    assert a.losses != c.losses  # another seed, another view order


def test_random_init_in_common_view_volume():
    cams = ring_cameras(6)
    torch.testing.assert_close(look_at_point(cams), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-6)
    g = random_init(cams, 500, sh_degree=2, seed=4)
    assert len(g) == 500 and g.sh_degree == 2 and g.dtype == torch.float32
    # estimated range: the look-at point is 2.62 m from every camera -> near 1.31, far 3.94
    assert bool((visible_count(g.means.double(), cams.to(dtype=torch.float64), 1.31, 3.94) == 6).all())
    torch.testing.assert_close(g.opacities, torch.full((500,), 0.1), rtol=1e-6, atol=0)
    assert torch.equal(g.quats, torch.tensor([[1.0, 0, 0, 0]]).expand(500, 4))
    assert float(g.rgb.min()) >= 0 and float(g.rgb.max()) <= 1 and float(g.rgb.std()) > 0.2
    assert torch.equal(g.sh[:, 1:], torch.zeros(500, 8, 3))
    # scales: float64 brute force of 3DGS's mean squared distance to the 3 nearest neighbours
    p = g.means.double().numpy()
    d2 = ((p[:, None] - p[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    ref = np.sqrt(np.sort(d2, 1)[:, :3].mean(1))
    np.testing.assert_allclose(g.scales[:, 0].numpy(), ref, rtol=1e-5)
    assert torch.equal(random_init(cams, 500, sh_degree=2, seed=4).means, g.means)
    assert not torch.equal(random_init(cams, 500, sh_degree=2, seed=5).means, g.means)
    # given bounds: points stay inside the box
    box = torch.tensor([[-0.2, -0.1, 0.0], [0.2, 0.1, 0.05]])
    gb = random_init(cams, 100, bounds=box, seed=0)
    assert bool(((gb.means >= box[0]) & (gb.means <= box[1])).all())
    torch.testing.assert_close(nn_scales(torch.tensor([[0.0, 0, 0], [3.0, 4, 0]])), torch.tensor([5.0, 5.0]))


def test_input_errors(small):
    train, images, init = small
    with pytest.raises(ViewsError, match=r"images must have shape \[6, 3, 48, 48\]"):
        optimize(init, images[:5], train, 1, backend="torch")
    with pytest.raises(ViewsError, match="must be in"):
        optimize(init, images * 2, train, 1, backend="torch")
    with pytest.raises(ResplatError, match="steps"):
        optimize(init, images, train, -1, backend="torch")
    with pytest.raises(ResplatError, match="prune_opacity"):
        optimize(init, images, train, 1, backend="torch", prune_opacity=1.5)
    with pytest.raises(ResplatError, match="background"):
        optimize(init, images, train, 1, backend="torch", background=torch.ones(2))
    with pytest.raises(ResplatError, match="parallel"):
        random_init(train[0], 10)
    with pytest.raises(ResplatError, match="min_views"):
        random_init(train, 10, min_views=7)
    with pytest.raises(ResplatError, match="OptimConfig.opacity_lr"):
        OptimConfig(opacity_lr=-1.0)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_training_loss_is_the_3dgs_formula(dtype, tol):
    """training_loss = 0.8 L1 + 0.2 (1 - SSIM(padding="same")) on a rendered view with a dark
    border, single and batched, with a direct 2D-window SSIM (one 11x11 convolution per
    statistic, tests/ssim_reference.py) as the reference; ssim_weight 0 is plain L1."""
    from resplat.optim.loop import training_loss

    _, _, images, _, _ = scene()
    g = torch.Generator().manual_seed(3)
    pred = (images[:2] + 0.1 * torch.randn(images[:2].shape, generator=g)).clamp(0, 1).to(dtype)
    target = torch.rand(images[:2].shape, generator=g, dtype=dtype).mul(0.5).add(images[:2].to(dtype)).clamp(0, 1)
    ref = ssim_2d(pred, target, "same")
    assert 0.05 < float(ref.min()) < 0.95
    for p, t, s in [(pred[0], target[0], ref[0]), (pred, target, ref.mean())]:
        want = 0.8 * (p - t).abs().mean() + 0.2 * (1 - s)
        assert abs(float(training_loss(p, t)) - float(want)) < tol
    assert float(training_loss(pred, target, ssim_weight=0)) == pytest.approx(float((pred - target).abs().mean()), abs=tol)


def test_nn_scales_equal_all_pairs_with_duplicates_and_clusters():
    """nn_scales (a local kNN search) against the all-pairs definition: the mean squared
    distance to the 3 nearest other points, clamped at 1e-7, on clustered points at scales
    from 1e-4 to 10 m with exact duplicates and a collinear run."""
    from resplat.optim import nn_scales

    g = torch.Generator().manual_seed(4)
    pts = torch.cat([torch.randn(300, 3, generator=g) * 1e-4, torch.randn(400, 3, generator=g) * 10,
                     torch.rand(300, 3, generator=g) + 5])
    pts = torch.cat([pts, pts[:20], torch.linspace(0, 1, 30)[:, None] * torch.tensor([[1.0, 2.0, 3.0]])])
    d2 = torch.cdist(pts.double(), pts.double()).square()
    d2.fill_diagonal_(float("inf"))
    want = d2.topk(3, dim=1, largest=False).values.mean(1).clamp(min=1e-7).sqrt()
    got = nn_scales(pts)
    assert got.dtype == torch.float32 and got.shape == (len(pts),)
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0)
    assert float(got[:20].min()) < 1e-3 and float(got[700:1000].min()) > 1e-3  # duplicates: 0 distances count
    two = pts[300:302]  # fewer points than k: the one other point
    torch.testing.assert_close(nn_scales(two, k=3), torch.full((2,), float(two.double().diff(dim=0).norm())))
