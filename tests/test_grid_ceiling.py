"""benchmarks/grid_ceiling.py: its cell Gaussians sit on the view's surface at the cell centres,
and its bilinear floor and seed render are exact where they must be (32x32 analytic views)."""

from __future__ import annotations

import math

import torch
from repo_scripts import load_script


def _view(depth_value: float = 2.0, size: int = 32):
    """One camera rotated 30 degrees about y at (0.3, -0.1, 0.5), a fronto-parallel plane at z =
    ``depth_value`` in its frame (the right quarter of the image without depth)."""
    from resplat.cameras import Cameras

    a = math.radians(30)
    R = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    c2w = torch.eye(4)
    c2w[:3, :3], c2w[:3, 3] = R, torch.tensor([0.3, -0.1, 0.5])
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])
    cam = Cameras.from_c2w(c2w[None], K[None], size, size)
    depth = torch.full((size, size), depth_value)
    depth[:, 24:] = float("inf")
    return cam, depth


def test_cell_gaussians_lie_on_the_surface_at_cell_centres():
    bench = load_script("benchmarks", "grid_ceiling")
    cam, depth = _view()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    g = bench.cell_gaussians(image, depth, cam, 4)
    assert len(g.means) == 64
    cam_pts = g.means @ cam.w2c[0, :3, :3].T + cam.w2c[0, :3, 3]
    z = cam_pts[:, 2].reshape(8, 8)
    assert torch.allclose(z[:, :6], torch.full((8, 6), 2.0), atol=1e-5)  # on the plane
    assert torch.allclose(z[:, 6:], torch.full((8, 2), 3.0), atol=1e-5)  # no depth: 1.5x the farthest
    uv = cam_pts @ cam.K[0].T
    uv = (uv[:, :2] / uv[:, 2:]).reshape(8, 8, 2)
    centres = torch.arange(8) * 4 + 2.0
    assert torch.allclose(uv[..., 0], centres.expand(8, 8), atol=1e-4)
    assert torch.allclose(uv[..., 1], centres[:, None].expand(8, 8), atol=1e-4)
    # isotropic, 0.6 of the footprint 4 px * z / fx; colour = the cell's mean (SH DC)
    assert torch.allclose(g.scales[0], torch.full((3,), 0.6 * 4 * 2.0 / 40.0), rtol=1e-5)
    from resplat.gaussians import rgb_to_sh0
    want = rgb_to_sh0(image[0, :, :4, :4].mean((1, 2)))
    assert torch.allclose(g.sh[0, 0], want, atol=1e-6)


def test_bilinear_floor_and_seed_of_a_flat_colour():
    """A constant image survives the cell grid exactly; the seed of a fully covered constant view
    renders that colour up to the few per cent of alpha its overlapping splats leave."""
    bench = load_script("benchmarks", "grid_ceiling")
    cam, depth = _view()
    depth[:] = 2.0
    image = torch.tensor([0.2, 0.5, 0.7])[None, :, None, None].expand(1, 3, 32, 32).clone()
    assert torch.allclose(bench.bilinear(image, 4), image, atol=1e-6)
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32)
    assert not torch.allclose(bench.bilinear(ramp ** 4, 4), ramp ** 4, atol=1e-3)  # it does smooth
    from resplat.render import render

    rgb = render(bench.cell_gaussians(image, depth, cam, 4), cam).rgb
    inner = rgb[..., 4:-4, 4:-4]
    err = (inner - image[..., 4:-4, 4:-4]).abs()
    # colour times alpha: alpha >= 0.93 everywhere inside (0.95 opacity at the centres), darker only
    assert (inner <= image[..., 4:-4, 4:-4] + 1e-4).all() and err.max() < 0.05 and err.mean() < 0.02
