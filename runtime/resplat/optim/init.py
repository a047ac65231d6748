"""Scene extent and random initialisation of Gaussians inside the cameras' common view volume.

Follows 3D Gaussian Splatting (Kerbl et al. 2023): the extent is ``getNerfppNorm`` (1.1 x the
largest distance of a camera centre from their mean); initial scales are isotropic, the square
root of the mean squared distance to the 3 nearest neighbours (``distCUDA2`` in
``GaussianModel.create_from_pcd``); rotations identity; opacity 0.1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..cameras import Cameras, lookat_point
from ..errors import ResplatError
from ..gaussians import Gaussians, rgb_to_sh0, sh_coeff_count


def scene_extent(cameras: Cameras) -> float:
    """3DGS scene radius in metres: 1.1 x max_i |c_i - mean(c)| over camera centres c_i.

    One camera (or coincident centres) gives 0 in 3DGS, which would freeze the means; 1.0 is
    returned instead so a single view still optimises at the unscaled rates.
    """
    c = cameras.centers.double()
    r = float((c - c.mean(0)).norm(dim=-1).max()) * 1.1
    return r if r > 1e-8 else 1.0


#: random_init's look-at point needs only a well-posed solve (smallest eigenvalue of
#: ``sum (I - d d^T)`` >= this x V); the model frame's ``LOOKAT_CONDITION`` (0.05) is stricter
#: because it trusts the point for the scene's scale.
SOLVE_CONDITION = 1e-3


def look_at_point(cameras: Cameras) -> Tensor:
    """[3] float64 point nearest (least squares) to every camera's optical axis
    (:func:`resplat.cameras.lookat_point`).

    Raises:
        ResplatError: the axes are (nearly) parallel (convergence below
            :data:`SOLVE_CONDITION`), e.g. one camera or a forward-facing rig.
    """
    point, cond = lookat_point(cameras.c2w)
    if float(cond) < SOLVE_CONDITION:
        raise ResplatError("cannot estimate the scene depth: the camera axes are (nearly) parallel; give near/far or bounds")
    return point


def visible_count(points: Tensor, cameras: Cameras, near: float, far: float) -> Tensor:
    """[P] int: for points [P, 3] (metres), how many cameras see them inside the image with a
    camera depth in [near, far]."""
    w2c = cameras.w2c.to(points)
    K = cameras.K.to(points)
    pc = torch.einsum("vij,pj->vpi", w2c[:, :3, :3], points) + w2c[:, None, :3, 3]
    z = pc[..., 2]
    uv = torch.einsum("vij,vpj->vpi", K[:, :2, :], pc) / z.clamp(min=1e-12)[..., None]
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= cameras.width) & (uv[..., 1] >= 0) & (uv[..., 1] <= cameras.height)
    return ((z >= near) & (z <= far) & inside).sum(0)


def _frustum_corners(cameras: Cameras, near: float, far: float) -> Tensor:
    """[V, 8, 3] world-space corners of each view frustum between depths near and far."""
    W, H = cameras.width, cameras.height
    px = torch.tensor([[0, 0], [W, 0], [0, H], [W, H]], dtype=torch.float64)
    Kinv = torch.linalg.inv(cameras.K.double())
    rays = torch.einsum("vij,pj->vpi", Kinv, torch.cat([px, torch.ones(4, 1, dtype=torch.float64)], 1))
    cam = torch.cat([rays * near, rays * far], 1)
    c2w = cameras.c2w.double()
    return torch.einsum("vij,vpj->vpi", c2w[:, :3, :3], cam) + c2w[:, None, :3, 3]


def nn_scales(points: Tensor, k: int = 3, chunk: int = 1024) -> Tensor:
    """[P] isotropic scales (metres): sqrt of the mean squared distance to the ``k`` nearest
    other points (3DGS ``distCUDA2``, squared distance clamped at 1e-7), exactly, in float64.

    The neighbours come from :func:`resplat.model.knn.knn` with k + 1 (each point's own zero
    distance, or an exact duplicate's, is dropped: the same distances as leaving out the point
    itself), which searches only nearby points (32k points: 14 s -> 0.5 s against all pairs on
    one CPU thread). ``chunk``: queries per search (the kNN's ``chunk_size``)."""
    from ..model.knn import knn

    p = points.double()
    if len(p) <= 1:
        return torch.full((len(p),), math.sqrt(1e-7), dtype=points.dtype)
    kk = min(k, len(p) - 1)
    d2 = knn(p, kk + 1, chunk_size=chunk)[1][:, 1:]
    return d2.mean(1).clamp(min=1e-7).sqrt().to(points.dtype)


def random_init(
    cameras: Cameras,
    n: int,
    sh_degree: int = 0,
    seed: int = 0,
    *,
    near: float | None = None,
    far: float | None = None,
    bounds: Tensor | None = None,
    min_views: int | None = None,
    opacity: float = 0.1,
) -> Gaussians:
    """``n`` Gaussians uniformly at random in the volume seen by ``min_views`` of the cameras.

    Points are drawn uniformly in a box (``bounds``, or the bounding box of the view frusta
    between ``near`` and ``far``) and kept when at least ``min_views`` cameras (default: every
    camera) see them in their image at a depth in [near, far] (rejection sampling, so the result
    is uniform in that common view volume). Without near/far, both come from the point p nearest
    to all optical axes: near = 0.5 min_i depth_i(p), far = 1.5 max_i depth_i(p). Scales follow
    3DGS (mean distance to 3 nearest neighbours), rotations are identity, opacities ``opacity``,
    colours uniform random in [0, 1]^3 as SH DC (higher SH zero).

    Args:
        cameras: V cameras (OpenCV convention, metres).
        n: number of Gaussians (> 0).
        sh_degree: SH degree 0..3 of the result.
        seed: seed of a private ``torch.Generator`` (the result is deterministic).
        near, far: depth range in metres (optional, see above).
        bounds: [2, 3] world-space box (min, max corners) to sample in (optional).
        min_views: how many cameras must see a point, 1..V (default V).
        opacity: initial opacity in (0, 1).

    Returns:
        :class:`Gaussians`, float32 on the cameras' device.

    Raises:
        ResplatError: bad n, min_views, near/far or bounds; the depth cannot be estimated; or
            the common view volume is (nearly) empty.
    """
    v = len(cameras)
    if n <= 0:
        raise ResplatError(f"random_init: number of Gaussians must be positive, got {n}")
    min_views = v if min_views is None else int(min_views)
    if not 1 <= min_views <= v:
        raise ResplatError(f"random_init: min_views must be in 1..{v}, got {min_views}")
    if sh_degree not in (0, 1, 2, 3):
        raise ResplatError(f"random_init: sh_degree must be 0, 1, 2 or 3, got {sh_degree}")
    if not 0 < opacity < 1:
        raise ResplatError(f"random_init: opacity must be in (0, 1), got {opacity}")
    cams = cameras.to(device="cpu", dtype=torch.float64)
    if near is None or far is None:
        if bounds is not None:
            near, far = (1e-3 if near is None else near), (math.inf if far is None else far)
        else:
            p = look_at_point(cams)
            z = (cams.w2c[:, :3, :3] @ p + cams.w2c[:, :3, 3])[:, 2]
            if float(z.min()) <= 0:
                raise ResplatError("cannot estimate the scene depth: the cameras do not look at a common point; give near/far or bounds")
            near = 0.5 * float(z.min()) if near is None else near
            far = 1.5 * float(z.max()) if far is None else far
    if not 0 < near < far:
        raise ResplatError(f"random_init: need 0 < near < far, got near={near}, far={far}")
    if bounds is not None:
        box = torch.as_tensor(bounds, dtype=torch.float64).reshape(2, 3)
        if not (box[1] > box[0]).all():
            raise ResplatError(f"random_init: bounds must be [min corner, max corner], got {box.tolist()}")
    else:
        corners = _frustum_corners(cams, near, far)
        lo, hi = corners.amin(1), corners.amax(1)  # [V, 3] per-camera boxes
        if min_views == v:
            box = torch.stack([lo.amax(0), hi.amin(0)])  # intersection of boxes
        else:
            box = torch.stack([lo.amin(0), hi.amax(0)])
        if not (box[1] > box[0]).all():
            raise ResplatError("random_init: the cameras' view volumes do not overlap; lower min_views or give bounds")
    gen = torch.Generator().manual_seed(seed)
    found, count, batch = [], 0, max(4 * n, 16384)
    for _ in range(200):
        pts = box[0] + (box[1] - box[0]) * torch.rand(batch, 3, generator=gen, dtype=torch.float64)
        pts = pts[visible_count(pts, cams, near, far) >= min_views]
        found.append(pts)
        count += len(pts)
        if count >= n:
            break
    if count < n:
        raise ResplatError(f"random_init: found only {count} of {n} points seen by {min_views} cameras; lower min_views or give bounds")
    means = torch.cat(found)[:n]
    scales = nn_scales(means)[:, None].expand(n, 3)
    rgb = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    sh = torch.zeros(n, sh_coeff_count(sh_degree), 3, dtype=torch.float64)
    sh[:, 0] = rgb_to_sh0(rgb)
    quats = torch.zeros(n, 4, dtype=torch.float64)
    quats[:, 0] = 1
    logit = math.log(opacity / (1 - opacity))
    g = Gaussians(means, quats, scales.log(), torch.full((n,), logit, dtype=torch.float64), sh)
    return g.to(device=cameras.device, dtype=torch.float32)
