"""A tiny synthetic training example for the training tests: random Gaussians in front of a
ring of cameras looking at the origin, rendered with :func:`resplat.render.render` (images in
[0, 1] and z-depth), in the attributes of ``resplat.data.SceneSample``."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from resplat.cameras import Cameras
from resplat.gaussians import Gaussians
from resplat.render import render


def look_at_c2w(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """OpenCV camera-to-world [4, 4] at ``eye`` looking at ``target`` (y down)."""
    z = target - eye
    z = z / z.norm()
    x = torch.linalg.cross(torch.tensor([0.0, -1.0, 0.0], dtype=eye.dtype), z)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    c2w = torch.eye(4, dtype=eye.dtype)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def make_scene(views: int = 4, size: int = 64, gaussians: int = 300, seed: int = 0, context: int = 2):
    """A SceneSample-like namespace: ``views`` cameras on an arc (radius 3 m, 0.25 rad apart),
    the first ``context`` spread over the arc as context and the rest as targets."""
    g = torch.Generator().manual_seed(seed)
    n = gaussians
    means = (torch.rand(n, 3, generator=g) - 0.5) * 1.6
    quats = torch.randn(n, 4, generator=g)
    sh = torch.zeros(n, 16, 3)
    sh[:, 0] = (torch.rand(n, 3, generator=g) - 0.5) * 3.0
    gs = Gaussians(means, quats / quats.norm(dim=1, keepdim=True), torch.full((n, 3), math.log(0.08)),
                   torch.full((n,), 2.0), sh)
    c2w = torch.stack([look_at_c2w(torch.tensor([3 * math.sin(a), -0.3, -3 * math.cos(a)]), torch.zeros(3))
                       for a in (0.25 * (i - views / 2) for i in range(views))])
    K = torch.tensor([[size * 1.2, 0, size / 2], [0, size * 1.2, size / 2], [0, 0, 1.0]]).repeat(views, 1, 1)
    cams = Cameras.from_c2w(c2w, K, size, size)
    out = render(gs, cams, background=torch.ones(3) * 0.5)
    ctx = list(range(0, views, max(1, views // context)))[:context]
    tgt = [i for i in range(views) if i not in ctx]
    return SimpleNamespace(images=out.rgb.clamp(0, 1), depths=out.depth, cameras=cams, context=ctx, target=tgt)
