"""Initial Gaussians from depth maps: one Gaussian per sampled pixel, unprojected to its surface.

3D Gaussian Splatting (Kerbl et al. 2023) starts from a point cloud (COLMAP's SfM points); views
rendered in Blender with a depth pass give a denser and exact one. Each valid depth pixel
(u, v) with z-depth d is lifted to ``c2w @ (d K^-1 [u, v, 1])`` (pixel centres at
half-integers, OpenCV axes), coloured by its image pixel as SH DC; scales, rotations and
opacities are initialised as 3DGS ``create_from_pcd`` does (isotropic, mean distance to the 3
nearest neighbours; identity; 0.1).
"""

from __future__ import annotations

import math

import torch

from ..errors import ResplatError
from ..gaussians import Gaussians, rgb_to_sh0, sh_coeff_count
from .init import nn_scales


def depth_init(views, n: int, sh_degree: int = 0, seed: int = 0, opacity: float = 0.1) -> Gaussians:
    """``n`` Gaussians on the surfaces seen by ``views`` (pixels drawn uniformly at random, without
    replacement, among every view's pixels with depth > 0; all of them when there are fewer).

    Args:
        views: :class:`resplat.views.PosedViews` with ``depths`` [V, 1, H, W] (metres, z-depth
            along each camera's +z axis, 0 = none) and images [V, 3, H, W] in [0, 1].
        n: number of Gaussians (> 0).
        sh_degree: SH degree 0..3 of the result (higher bands zero).
        seed: seed of a private ``torch.Generator`` (the result is deterministic).
        opacity: initial opacity in (0, 1).

    Returns:
        :class:`Gaussians`, float32 on the views' device: means [P, 3] metres, P = min(n, valid
        pixels), SH DC = the pixel's colour.

    Raises:
        ResplatError: the views carry no depth maps or no pixel with depth, or bad n / sh_degree
            / opacity.
    """
    if views.depths is None:
        raise ResplatError("depth initialisation needs depth maps with the views (depth_file_path in transforms.json)")
    if n <= 0:
        raise ResplatError(f"depth_init: number of Gaussians must be positive, got {n}")
    if sh_degree not in (0, 1, 2, 3):
        raise ResplatError(f"depth_init: sh_degree must be 0, 1, 2 or 3, got {sh_degree}")
    if not 0 < opacity < 1:
        raise ResplatError(f"depth_init: opacity must be in (0, 1), got {opacity}")
    depths = views.depths[:, 0].to("cpu", torch.float64)  # [V, H, W]
    valid = (depths > 0).reshape(-1).nonzero()[:, 0]
    if len(valid) == 0:
        raise ResplatError("depth_init: no pixel of the depth maps has a depth (> 0)")
    gen = torch.Generator().manual_seed(seed)
    pick = valid[torch.randperm(len(valid), generator=gen)[:n]].sort().values
    v_, h_, w_ = depths.shape
    vi, rem = pick // (h_ * w_), pick % (h_ * w_)
    y, x = rem // w_, rem % w_
    d = depths.reshape(-1)[pick]
    cams = views.cameras.to(device="cpu", dtype=torch.float64)
    pix = torch.stack([x + 0.5, y + 0.5, torch.ones_like(d)], -1)
    rays = torch.einsum("pij,pj->pi", torch.linalg.inv(cams.K)[vi], pix)
    c2w = cams.c2w[vi]
    means = torch.einsum("pij,pj->pi", c2w[:, :3, :3], rays * d[:, None]) + c2w[:, :3, 3]
    rgb = views.images.to("cpu", torch.float64)[vi, :, y, x].clamp(0, 1)
    p = len(means)
    sh = torch.zeros(p, sh_coeff_count(sh_degree), 3, dtype=torch.float64)
    sh[:, 0] = rgb_to_sh0(rgb)
    quats = torch.zeros(p, 4, dtype=torch.float64)
    quats[:, 0] = 1
    scales = nn_scales(means)[:, None].expand(p, 3)
    logit = math.log(opacity / (1 - opacity))
    g = Gaussians(means, quats, scales.log(), torch.full((p,), logit, dtype=torch.float64), sh)
    return g.to(device=views.images.device, dtype=torch.float32)
