"""A small synthetic scene for the optimisation tests: 200 random Gaussians seen by cameras on
two rings around the origin (OpenCV look-at poses), rendered at 48x48 as ground truth."""

from __future__ import annotations

import math

import torch

from resplat.cameras import Cameras, K_from_fov
from resplat.gaussians import Gaussians
from resplat.render import render

SIZE = 48




def look_at(eyes: torch.Tensor, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """OpenCV camera-to-world [V, 4, 4] float64 for cameras at ``eyes`` [V, 3] looking at ``target``."""
    eyes = torch.as_tensor(eyes, dtype=torch.float64)
    z = torch.tensor(target, dtype=torch.float64) - eyes
    z = z / z.norm(dim=-1, keepdim=True)
    x = torch.cross(z, torch.tensor(up, dtype=torch.float64).expand_as(z), dim=-1)
    x = x / x.norm(dim=-1, keepdim=True)
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(eyes), 1, 1)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = x, torch.cross(z, x, dim=-1), z, eyes
    return c2w


def ring_cameras(n: int, *, radius=2.5, height=0.8, phase=0.0, size=SIZE) -> Cameras:
    """``n`` cameras on a circle of ``radius`` m, alternately ``height`` above / below the
    equator, 45 degree horizontal field of view, all looking at the origin."""
    a = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n + phase
    h = torch.tensor([height, -height], dtype=torch.float64).repeat(n)[:n]
    eyes = torch.stack([radius * a.cos(), radius * a.sin(), h], -1)
    return Cameras.from_c2w(look_at(eyes).float(), K_from_fov(math.radians(45), size, size), size, size)


def target_gaussians(n: int = 200, seed: int = 1) -> Gaussians:
    """``n`` opaque-ish random Gaussians in the cube [-0.6, 0.6]^3, scales 5-14 cm, random colours."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * 0.6
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(torch.rand(n, 3, generator=g) - 3.0)
    opacities = 0.5 + 0.5 * torch.rand(n, generator=g)
    return Gaussians.from_activated(means, quats, scales, opacities, rgb=torch.rand(n, 3, generator=g))


def scene():
    """(ground truth, 6 training cameras, their images [6,3,48,48], 3 held-out cameras, their images)."""
    gt = target_gaussians()
    train, test = ring_cameras(6), ring_cameras(3, phase=0.5, height=0.3)
    with torch.no_grad():
        images = render(gt, train, backend="torch").rgb.clamp(0, 1)
        test_images = render(gt, test, backend="torch").rgb.clamp(0, 1)
    return gt, train, images, test, test_images
