"""The torch rasteriser against a float64 brute-force reference and analytic values."""

from __future__ import annotations

import math

import pytest
import torch

from render_reference import reference_render
from resplat.cameras import Cameras, K_from_fov, intrinsics_matrix
from resplat.gaussians import SH_C0, Gaussians
from resplat.render import composite, render, torch_backend
from resplat.render.sh import SH_C1

FIELDS = ("means", "quats", "log_scales", "logit_opacities", "sh")


def look_at(eye, target=(0.0, 0.0, 0.0)):
    """OpenCV w2c [4, 4] of a camera at ``eye`` looking at ``target`` (world +z up)."""
    eye, target = torch.tensor(eye, dtype=torch.float64), torch.tensor(target, dtype=torch.float64)
    f = target - eye
    f = f / f.norm()
    r = torch.linalg.cross(f, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    r = r / r.norm()
    d = torch.linalg.cross(f, r)
    R = torch.stack([r, d, f])  # rows: camera x (right), y (down), z (forward) in world
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, :3], w2c[:3, 3] = R, -R @ eye
    return w2c


def make_scene(n, sh_degree, seed, width, height, n_views=2):
    """Random Gaussians around the origin seen by ``n_views`` cameras 4 m away, with special
    cases: strongly anisotropic, overlapping opaque clusters, behind a camera, at the near plane,
    off-screen."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    means = (r(n, 3) - 0.5) * 2.4
    log_scales = torch.log(0.02 + 0.12 * r(n, 3))
    aniso = torch.arange(n) % 7 == 0
    log_scales[aniso, 0] += math.log(10.0)
    log_scales[aniso, 1] -= math.log(10.0)  # ratio ~100 between the longest and shortest axis
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    logit_opacities = (r(n) - 0.3) * 8
    sh = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g, dtype=torch.float64) * 0.4
    eyes = [(0.3, -4.0, 0.8), (3.2, -2.4, -0.6), (-2.0, -3.0, 2.5)][:n_views]
    w2c = torch.stack([look_at(e) for e in eyes])
    # A few Gaussians behind / at the near plane / off-screen for camera 0.
    c2w0 = torch.linalg.inv(w2c[0])
    special = torch.tensor([[0.0, 0.0, -1.0], [0.1, 0.0, 0.012], [0.0, 0.0, 0.005], [3.0, 0.0, 2.0], [0.0, -2.5, 2.0]],
                           dtype=torch.float64)
    means[: len(special)] = special @ c2w0[:3, :3].T + c2w0[:3, 3]
    gs = Gaussians(means, quats, log_scales, logit_opacities, sh)
    K = K_from_fov(1.1, width, height, torch.float64)
    K[1, 2] += 1.3  # off-centre principal point
    return gs, Cameras(w2c, K, width, height)


def run_reference(gs, cams, bg, sh_degree, **kw):
    return reference_render(gs.means, gs.quats, gs.log_scales, gs.logit_opacities, gs.sh, cams.w2c, cams.K,
                            cams.width, cams.height, sh_degree=sh_degree, background=bg, **kw)


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _kept_batches(out) -> list[bool]:
    """Per batch of the render's compositor: whether its forward intermediates were kept for the
    backward (else the backward recomputes them)."""
    todo, seen = [out.rgb.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if type(node).__name__ == "CompositeTilesBackward":
            return [kept is not None for *_, kept in node.batches]
        todo += [n for n, _ in node.next_functions]
    raise AssertionError("no compositor in the graph")


@pytest.mark.parametrize("sh_degree,size,antialiased,chunk,tile,save_bytes", [
    (0, (42, 30), True, 32, 8, None), (1, (63, 47), True, 3, 16, 0), (2, (42, 30), False, 4, 8, 500_000),
    (3, (63, 47), True, 32, 16, None)])
def test_images_and_gradients_match_reference(sh_degree, size, antialiased, chunk, tile, save_bytes, monkeypatch):
    # Small chunks split each tile's list into many rounds, so pixels stop mid-list and the
    # carried transmittance, the stop flag and the backward's running sums cross chunk borders.
    # save_bytes: the backward recomputes every batch (0) or those past the budget (500 kB).
    monkeypatch.setattr(composite, "CHUNK", chunk)
    monkeypatch.setattr(torch_backend, "TILE_SIZE", tile)  # sizes not multiples of the tile
    if save_bytes is not None:
        monkeypatch.setattr(composite, "SAVE_BYTES", save_bytes)
    W, H = size
    gs, cams = make_scene(160, sh_degree, seed=sh_degree, width=W, height=H)
    bg = torch.tensor([[0.2, 0.5, 0.9], [0.7, 0.1, 0.3]], dtype=torch.float64)
    gt = gs.requires_grad_()
    w2c = cams.w2c.clone().requires_grad_()
    cams = Cameras(w2c, cams.K, W, H)
    out = render(gt, cams, background=bg, backend="torch", antialiased=antialiased)
    kept = _kept_batches(out)
    assert len(kept) > 1 and (all(kept) if save_bytes is None else not any(kept) if save_bytes == 0
                              else kept[0] and not all(kept))
    ref = run_reference(gt, cams, bg, sh_degree, antialiased=antialiased)
    for name, a, b in zip(("rgb", "alpha", "depth"), (out.rgb, out.alpha, out.depth), ref):
        assert a.shape == b.shape
        assert rel(a, b) < 1e-10, name
    assert 0.2 < float(ref[1].detach().mean()) < 0.99  # the scene is neither empty nor saturated
    gw = torch.Generator().manual_seed(7)
    weights = [torch.randn(t.shape, generator=gw, dtype=torch.float64) for t in ref]
    loss = lambda outs: sum((o * w).sum() for o, w in zip(outs, weights))  # noqa: E731
    wrt = [getattr(gt, f) for f in FIELDS] + [w2c]
    grads = torch.autograd.grad(loss((out.rgb, out.alpha, out.depth)), wrt)
    ref_grads = torch.autograd.grad(loss(ref), wrt)
    for f, a, b in zip(FIELDS + ("w2c",), grads, ref_grads):
        assert rel(a, b) < 1e-4, f
    # float32 images
    out32 = render(gs.to(dtype=torch.float32), cams.to(dtype=torch.float32), background=bg.float(), backend="torch",
                   antialiased=antialiased)
    for name, a, b in zip(("rgb", "alpha", "depth"), (out32.rgb, out32.alpha, out32.depth), ref):
        assert a.dtype == torch.float32
        assert rel(a, b) < 1e-4, name


def test_gradcheck_tiny_scene():
    gs, cams = make_scene(12, 1, seed=3, width=20, height=16, n_views=1)
    bg = torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64)
    names = list(FIELDS)

    def f(*tensors):
        g = Gaussians(**dict(zip(names, tensors)))
        o = render(g, cams, background=bg, backend="torch")
        return o.rgb, o.alpha, o.depth

    inputs = [getattr(gs, n).detach().clone().requires_grad_() for n in names]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def single(mean, scale, opacity, rgb, dtype=torch.float64):
    t = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
    return Gaussians.from_activated(t([mean]), t([[1.0, 0, 0, 0]]), t([[scale] * 3]), t([opacity]), rgb=t([rgb]))


def test_single_isotropic_gaussian_peak_and_footprint():
    W = H = 64
    f = 100.0
    cams = Cameras(torch.eye(4, dtype=torch.float64), intrinsics_matrix(f, f, 32.0, 32.0, torch.float64), W, H)
    z, s, o = 5.0, 0.1, 0.8  # sigma_px = f s / z = 2 px
    gs = single([0.0, 0.0, z], s, o, [0.9, 0.6, 0.3])
    out = render(gs, cams, backend="torch")
    var = (f * s / z) ** 2 + 0.3
    comp = math.sqrt((f * s / z) ** 4 / var ** 2)
    jj, ii = torch.meshgrid(torch.arange(W) + 0.5, torch.arange(H) + 0.5, indexing="xy")
    a = o * comp * torch.exp(-0.5 * ((jj - 32) ** 2 + (ii - 32) ** 2) / var).double()
    a = torch.where(a >= 1 / 255, a, 0)
    assert torch.allclose(out.alpha[0, 0], a, atol=1e-12)
    assert torch.allclose(out.rgb[0, 0], 0.9 * a, atol=1e-12)
    assert torch.allclose(out.depth[0, 0][a > 0], torch.full_like(a[a > 0], z))
    assert int((out.alpha > 0).sum()) == int((a > 0).sum()) > 50  # footprint ends at the 1/255 floor


def test_opaque_layers_stop_and_floor():
    W = H = 16
    cams = Cameras(torch.eye(4, dtype=torch.float64), intrinsics_matrix(20.0, 20.0, 8.0, 8.0, torch.float64), W, H)
    # 8 huge opaque layers: alpha clamps at 0.999, T = 1e-3 after one, 1e-6 after two -> the
    # second layer stops the pixel, so nothing behind the first one is visible.
    n = 8
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    means = t([[0.0, 0.0, 1.0 + i] for i in range(n)])
    rgb = t([[1.0, 0.0, 0.0]] + [[0.0, 1.0, 0.0]] * (n - 1))
    gs = Gaussians.from_activated(means, t([[1.0, 0, 0, 0]] * n), t([[50.0] * 3] * n), t([0.99999] * n), rgb=rgb)
    out = render(gs, cams, backend="torch", background=t([0.0, 0.0, 1.0]))
    assert torch.allclose(out.alpha, torch.full_like(out.alpha, 0.999), atol=1e-9)
    assert torch.allclose(out.rgb[0, 0], torch.full_like(out.rgb[0, 0], 0.999), atol=1e-6)
    assert float(out.rgb[0, 1].abs().max()) == 0.0  # the green layers are invisible
    assert torch.allclose(out.depth, torch.ones_like(out.depth))
    # A Gaussian whose alpha is below 1/255 everywhere leaves no trace.
    faint = single([0.0, 0.0, 2.0], 5.0, 0.9 / 255, [1.0, 1.0, 1.0])
    assert float(render(faint, cams, backend="torch").alpha.abs().max()) == 0.0
    just = single([0.0, 0.0, 2.0], 5.0, 1.1 / 255, [1.0, 1.0, 1.0])
    assert float(render(just, cams, backend="torch", antialiased=False).alpha.max()) > 0.0


def test_antialiasing_compensation_conserves_brightness():
    # A tiny Gaussian (0.1 px) is blurred to var 0.3 px^2; the compensation scales its opacity so
    # the integrated alpha stays close to the unblurred one: o * 2 pi s^2 (antialiased) vs
    # o * 2 pi (s^2 + 0.3) (classic).
    W = H = 32
    f = 100.0
    cams = Cameras(torch.eye(4, dtype=torch.float64), intrinsics_matrix(f, f, 16.0, 16.0, torch.float64), W, H)
    s_px = 1.0
    gs = single([0.0, 0.0, 5.0], s_px * 5.0 / f, 0.9, [1.0, 1.0, 1.0])
    aa = float(render(gs, cams, backend="torch").alpha.sum())
    classic = float(render(gs, cams, backend="torch", antialiased=False).alpha.sum())
    assert aa == pytest.approx(0.9 * 2 * math.pi * s_px ** 2, rel=0.02)
    assert classic == pytest.approx(0.9 * 2 * math.pi * (s_px ** 2 + 0.3), rel=0.02)


def test_near_plane_culls():
    cams = Cameras(torch.eye(4, dtype=torch.float64), intrinsics_matrix(20.0, 20.0, 8.0, 8.0, torch.float64), 16, 16)
    for z, visible in [(0.02, True), (0.005, False), (-1.0, False)]:
        gs = single([0.0, 0.0, z], 0.2 * abs(z), 0.9, [1.0, 1.0, 1.0])
        out = render(gs, cams, backend="torch", near=0.01)
        assert (float(out.alpha.max()) > 0.5) == visible, z


def test_sh_degree_one_view_dependence():
    # Camera at the origin looking down +z at a Gaussian at (0, 0, 4): view direction (0, 0, 1), so
    # colour = C0 dc + C1 * (+z) * sh[2] + 0.5 = 0.5 + C1 * 0.2 for a zero DC coefficient.
    cams = Cameras(torch.eye(4, dtype=torch.float64), intrinsics_matrix(20.0, 20.0, 8.0, 8.0, torch.float64), 16, 16)
    sh = torch.zeros(1, 4, 3, dtype=torch.float64)
    sh[0, 2, 0] = 0.2  # z coefficient, red
    sh[0, 1, 1] = 0.7  # y coefficient, green: -C1 y, y = 0 here
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    gs = Gaussians(t([[0.0, 0.0, 4.0]]), t([[1.0, 0, 0, 0]]), torch.log(t([[5.0] * 3])), t([20.0]), sh)
    out = render(gs, cams, backend="torch")
    a = out.alpha[0, 0, 8, 8]
    assert float(out.rgb[0, 0, 8, 8] / a) == pytest.approx(0.5 + SH_C1 * 0.2, abs=1e-9)
    assert float(out.rgb[0, 1, 8, 8] / a) == pytest.approx(0.5, abs=1e-9)
    assert float(render(gs, cams, backend="torch", sh_degree=0).rgb[0, 0, 8, 8] / a) == pytest.approx(0.5, abs=1e-9)
    assert SH_C0 == pytest.approx(0.28209479177387814)


def test_empty_and_fully_culled_scenes_show_the_background():
    cams = Cameras(torch.eye(4), intrinsics_matrix(20.0, 20.0, 8.0, 8.0), 16, 12)
    bg = torch.tensor([0.1, 0.2, 0.3])
    behind = single([0.0, 0.0, -3.0], 0.5, 0.9, [1.0, 1.0, 1.0], dtype=torch.float32)
    for gs in (Gaussians.empty(2), behind):
        out = render(gs, cams, backend="torch", background=bg)
        assert out.rgb.shape == (1, 3, 12, 16) and out.alpha.shape == out.depth.shape == (1, 1, 12, 16)
        assert torch.equal(out.rgb, bg[None, :, None, None].expand(1, 3, 12, 16))
        assert float(out.alpha.abs().max()) == 0.0 and float(out.depth.abs().max()) == 0.0


@pytest.mark.parametrize("tile", [8, 16])
def test_tile_bins_hold_exactly_the_pairs_that_reach_alpha_floor(tile):
    """bin_gaussians with conics: every (tile, Gaussian) pair whose alpha reaches 1/255 at some
    pixel centre of the tile is listed, in depth order, and no pair whose alpha stays below
    1/255 by more than the binning's rounding margin (1e-3 in sigma) is (brute force over every
    pixel centre; anisotropic, rotated Gaussians whose boxes overlap many unreached tiles)."""
    from resplat.render.projection import project_gaussians
    from resplat.render.tiles import bin_gaussians

    W, H = 63, 47
    gs, cams = make_scene(160, 0, seed=5, width=W, height=H)
    cams = cams[0]
    proj = project_gaussians(gs.means, gs.covariances(), gs.opacities, cams.w2c, cams.K, W, H,
                             near=0.01, far=1e10, eps2d=0.3, antialiased=True)
    vi, gi = torch.nonzero(proj.valid, as_tuple=True)
    m, con, z = proj.means2d[vi, gi], proj.conics[vi, gi], proj.depths[vi, gi]
    op = gs.opacities[gi] * proj.compensations[vi, gi]
    bins = bin_gaussians(m, proj.radii[vi, gi], z, vi, 1, W, H, tile, conics=con, opacities=op)
    tx_n, ty_n = bins.tiles_x, bins.tiles_y
    px = torch.arange(tx_n * tile, dtype=torch.float64) + 0.5
    py = torch.arange(ty_n * tile, dtype=torch.float64) + 0.5
    dx, dy = m[:, 0, None, None] - px[None, None, :], m[:, 1, None, None] - py[None, :, None]  # [P, Hp, Wp]
    a, b, c = (t[:, None, None] for t in con.unbind(-1))
    sigma = 0.5 * a * dx * dx + b * dx * dy + 0.5 * c * dy * dy
    tile_min = sigma.reshape(len(m), ty_n, tile, tx_n, tile).amin((2, 4)).reshape(len(m), -1)  # [P, tiles]
    excess = tile_min - torch.log(op * 255.0)[:, None]  # <= 0: alpha >= 1/255 somewhere in the tile
    n_reached = 0
    for t in range(tx_n * ty_n):
        listed = bins.flatten_ids[bins.tile_offsets[t]:bins.tile_offsets[t + 1]]
        reached = torch.nonzero(excess[:, t] <= 0).squeeze(1)
        n_reached += len(reached)
        assert set(reached.tolist()) <= set(listed.tolist()), t
        assert bool((excess[listed, t] <= 1e-3 + 1e-9).all()), t
        assert bool((z[listed][1:] >= z[listed][:-1]).all())  # front to back
    boxes = int(((proj.radii[vi, gi] > 0).all(-1)).sum())
    assert n_reached > 2 * boxes  # many pairs checked; far fewer listed than the boxes would give:
    assert len(bins.flatten_ids) < 0.9 * len(bin_gaussians(m, proj.radii[vi, gi], z, vi, 1, W, H, tile).flatten_ids)
