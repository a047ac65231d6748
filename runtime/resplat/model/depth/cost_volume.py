"""Plane-sweep cost volume of the depth network: log-depth candidates, nearest-view selection,
feature warping and correlation.

Source: DepthSplat / UniMatch ``warp_with_pose_depth_candidates`` and the cost-volume part of
``MultiViewUniMatch.forward`` (ReSplat release, ``sample_log_depth=True``); the view selection
is ``encoder_resplat.py``'s ``cameras_dist_index`` (``local_mv_match=2``). See
docs/model-architecture.md section 3, items 2 and 6.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def neighbour_views(c2w: Tensor, num: int = 2) -> Tensor:
    """Views each view matches against.

    c2w [B, V, 4, 4] (camera-to-world, metres). With V > num + 1: the ``num`` views with the
    nearest camera centres (Euclidean), column 0 of the distance argsort (the view itself)
    dropped, as the release does (``encoder_resplat.py``: ``argsort(cdist(centres))``); equal
    distances keep index order (a stable sort, the order the release gets); otherwise all
    other views in index order.
    Returns int64 [B, V, M] with M = min(num, V - 1).
    """
    b, v = c2w.shape[:2]
    if v > num + 1:
        centres = c2w[:, :, :3, 3]
        order = torch.argsort(torch.cdist(centres, centres, p=2), dim=-1, stable=True)
        return order[:, :, 1 : num + 1]
    idx = torch.arange(v, device=c2w.device)
    others = torch.stack([torch.cat((idx[:i], idx[i + 1 :])) for i in range(v)])  # [V, V-1]
    return others.unsqueeze(0).expand(b, v, v - 1).contiguous()


def log_depth_candidates(near: Tensor, far: Tensor, num: int) -> Tensor:
    """``num`` candidates uniform in log depth from log(near) to log(far) inclusive.

    near, far [...] metres -> [..., num] natural-log depths (candidate i = log near +
    i / (num - 1) * (log far - log near)).
    """
    lo, hi = torch.log(near), torch.log(far)
    # the release builds the [0, 1] ramp in float32 (then casts); kept for float64 agreement
    t = torch.linspace(0, 1, num, dtype=torch.float32, device=lo.device).to(lo.dtype)
    return lo[..., None] + t * (hi - lo)[..., None]


def warp_features(features: Tensor, intrinsics: Tensor, pose: Tensor, depth: Tensor, min_z: float = 1e-3) -> Tensor:
    """Sample a neighbour's features at the reprojection of every reference pixel and depth.

    Args:
        features: [N, C, h, w] neighbour features.
        intrinsics: [N, 3, 3] pixel intrinsics at the feature resolution (the release uses the
            *reference* view's K for both back-projection and projection).
        pose: [N, 4, 4] reference-camera -> neighbour-camera transform, inv(c2w_nb) @ c2w_ref.
        depth: [N, D, h, w] z-depths in metres.
        min_z: projected z is clamped below at this value before the division.

    Pixel (x, y) of the reference map sits at integer coordinates (UniMatch convention) and is
    back-projected as depth * K^-1 [x, y, 1]; the warped point is sampled bilinearly with
    ``align_corners=True`` and zero padding. Returns [N, C, D, h, w].
    """
    n, d, h, w = depth.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=depth.device, dtype=intrinsics.dtype),
        torch.arange(w, device=depth.device, dtype=intrinsics.dtype),
        indexing="ij",
    )
    pix = torch.stack((xs, ys, torch.ones_like(xs)), 0).view(1, 3, h * w)
    rays = torch.linalg.inv(intrinsics) @ pix  # [N, 3, hw]
    points = (pose[:, :3, :3] @ rays).unsqueeze(2) * depth.view(n, 1, d, h * w) + pose[:, :3, 3:].unsqueeze(-1)
    proj = (intrinsics @ points.view(n, 3, d * h * w)).view(n, 3, d, h * w)
    xy = proj[:, :2] / proj[:, 2:].clamp(min=min_z)
    grid = torch.stack((2 * xy[:, 0] / (w - 1) - 1, 2 * xy[:, 1] / (h - 1) - 1), dim=-1)  # [N, D, hw, 2]
    grid = grid.to(features.dtype).view(n, d * h, w, 2)
    out = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.view(n, features.shape[1], d, h, w)


def correlation_cost_volume(
    features: Tensor, intrinsics: Tensor, c2w: Tensor, neighbours: Tensor, log_depths: Tensor
) -> Tensor:
    """Plane-sweep correlation averaged over the neighbour views.

    Args:
        features: [B, V, C, h, w] multi-view transformer features.
        intrinsics: [B, V, 3, 3] pixel intrinsics at the feature resolution.
        c2w: [B, V, 4, 4] camera-to-world (OpenCV).
        neighbours: int64 [B, V, M] (:func:`neighbour_views`).
        log_depths: [B, V, D] log-depth candidates (:func:`log_depth_candidates`).

    Returns [B*V, D, h, w]: mean over neighbours m of sum_c ref_c * warped_m,c / sqrt(C).
    Features are promoted to float32 when they are half precision (as the release does).
    """
    b, v, c, h, w = features.shape
    m = neighbours.shape[-1]
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()
    depth = torch.exp(log_depths).to(features.dtype).reshape(b * v, -1, 1, 1).expand(-1, -1, h, w)
    ref = features.reshape(b * v, c, h, w)
    k_ref = intrinsics.reshape(b * v, 3, 3)
    c2w_ref = c2w.reshape(b * v, 4, 4)
    cost = 0
    for j in range(m):
        idx = neighbours[..., j]  # [B, V]
        nb_feat = torch.gather(features, 1, idx.view(b, v, 1, 1, 1).expand(b, v, c, h, w)).reshape(b * v, c, h, w)
        nb_c2w = torch.gather(c2w, 1, idx.view(b, v, 1, 1).expand(b, v, 4, 4)).reshape(b * v, 4, 4)
        pose = torch.linalg.inv(nb_c2w) @ c2w_ref
        warped = warp_features(nb_feat, k_ref, pose, depth)
        cost = cost + torch.einsum("nchw,ncdhw->ndhw", ref, warped) / c**0.5
    return cost / m
