"""EWA projection of 3D Gaussians into pinhole cameras, as gsplat 1.5.3 does it (pure torch).

Source: gsplat 1.5.3 ``proj_ewa_3dgs_packed`` (gsplat/cuda/csrc/ProjectionEWA3DGSPacked.cu):
``persp_proj`` (clamped perspective Jacobian), ``add_blur`` (eps2d low-pass and the
antialiasing compensation of Mip-Splatting / Yu et al. 2024), and the opacity-aware
axis-aligned extent of Radl et al. 2024 (StopThePop, arXiv 2402.00525 sec. B.2). EWA splatting:
Zwicker et al. 2001; 3DGS: Kerbl et al. 2023, eq. 5. Everything here is differentiable by
autograd except the integer extents (``radii``) and the validity mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import ALPHA_MIN as ALPHA_THRESHOLD

#: Cap on the extent in standard deviations (gsplat's 3.33).
MAX_EXTEND = 3.33


@dataclass
class Projection:
    """Per-(view, Gaussian) projected quantities, [V, N, ...], in the input dtype.

    Attributes:
        means2d: [V, N, 2] projected centres in pixels (pixel (col, row) has centre
            (col + 0.5, row + 0.5)).
        conics: [V, N, 3] (a, b, c): the inverse of the blurred 2D covariance [[a, b], [b, c]],
            px^-2.
        covars2d: [V, N, 3] (xx, xy, yy): the blurred 2D covariance, px^2.
        compensations: [V, N] sqrt(max(0, det(S) / det(S + eps2d I))), unitless.
        depths: [V, N] camera-space z of the means, metres.
        radii: [V, N, 2] int32 axis-aligned extents (x, y) in pixels, 0 where culled.
        valid: [V, N] bool, in front within [near, far], det > 0 and overlapping the image.
    """

    means2d: Tensor
    conics: Tensor
    covars2d: Tensor
    compensations: Tensor
    depths: Tensor
    radii: Tensor
    valid: Tensor


def world_to_camera(means: Tensor, covars: Tensor, w2c: Tensor) -> tuple[Tensor, Tensor]:
    """Camera-space means [V, N, 3] (t = R x + T) and covariances [V, N, 3, 3] (R S R^T) from
    world means [N, 3] (metres), world covariances [N, 3, 3] and OpenCV w2c [V, 4, 4]."""
    R = w2c[:, :3, :3]
    means_c = torch.einsum("vij,nj->vni", R, means) + w2c[:, None, :3, 3]
    # R C R^T as one GEMM per view on the flattened covariances: vec(R C R^T) = (R kron R) vec(C)
    # (row-major); batched 3x3 products (einsum -> bmm over N) were 4x slower fwd+bwd on the CPU
    kron = (R[:, :, None, :, None] * R[:, None, :, None, :]).reshape(len(R), 9, 9)
    covars_c = torch.einsum("vab,nb->vna", kron, covars.reshape(-1, 9)).reshape(len(R), -1, 3, 3)
    return means_c, covars_c


def perspective_project(
    means_c: Tensor, covars_c: Tensor, K: Tensor, width: int, height: int
) -> tuple[Tensor, Tensor]:
    """gsplat's ``persp_proj``: pixel means [V, N, 2] and 2D covariances [V, N, 2, 2].

    The Jacobian of the projection is evaluated at x/z, y/z clamped to
    [-cx/fx - 0.3 tan_fovx, (W - cx)/fx + 0.3 tan_fovx] (likewise y) with tan_fovx = 0.5 W / fx,
    so Gaussians far outside the view do not explode; the means are not clamped.
    ``means_c`` must have z != 0 (callers substitute a safe z for culled Gaussians).
    """
    fx, fy = K[:, None, 0, 0], K[:, None, 1, 1]
    cx, cy = K[:, None, 0, 2], K[:, None, 1, 2]
    x, y, z = means_c.unbind(-1)
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    rz = 1.0 / z
    tx = z * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = z * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    # J = [[fx/z, 0, -fx tx/z^2], [0, fy/z, -fy ty/z^2]]; J C J^T written out on its non-zero
    # entries (batched 2x3 @ 3x3 @ 3x2 matmuls cost more than the arithmetic on the CPU)
    j00, j02 = fx * rz, -fx * tx * rz * rz
    j11, j12 = fy * rz, -fy * ty * rz * rz
    C = covars_c
    a00, a01, a02 = (j00 * C[..., 0, k] + j02 * C[..., 2, k] for k in range(3))  # rows of J C
    a10, a11, a12 = (j11 * C[..., 1, k] + j12 * C[..., 2, k] for k in range(3))
    covars2d = torch.stack([a00 * j00 + a02 * j02, a01 * j11 + a02 * j12,
                            a10 * j00 + a12 * j02, a11 * j11 + a12 * j12], -1).reshape(*z.shape, 2, 2)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)
    return means2d, covars2d


def project_gaussians(
    means: Tensor,
    covars: Tensor,
    opacities: Tensor,
    w2c: Tensor,
    K: Tensor,
    width: int,
    height: int,
    *,
    near: float,
    far: float,
    eps2d: float,
    antialiased: bool,
) -> Projection:
    """Project N Gaussians into V cameras and decide which are drawn (gsplat 1.5.3 semantics).

    Args:
        means: [N, 3] world means (metres). covars: [N, 3, 3] world covariances (metres^2).
        opacities: [N] activated opacities in (0, 1) (only used for the extent and culling).
        w2c: [V, 4, 4] OpenCV world-to-camera. K: [V, 3, 3] intrinsics in pixels.
        width, height: image size in pixels.
        near, far: cull means with camera z < near or z > far (metres).
        eps2d: low-pass variance (px^2) added to the 2D covariance's diagonal.
        antialiased: whether the compensation will multiply the opacity (affects culling and
            the extent only; the caller applies it).

    Returns:
        :class:`Projection`. Culled entries hold finite placeholder values and have no gradient.
    """
    means_c, covars_c = world_to_camera(means, covars, w2c)
    z = means_c[..., 2]
    in_depth = (z >= near) & (z <= far)
    safe_means_c = torch.where(in_depth[..., None], means_c, means_c.new_tensor([0.0, 0.0, 1.0]))
    means2d, cov2d = perspective_project(safe_means_c, covars_c, K, width, height)
    xx, xy, yy = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det_orig = xx * yy - xy * xy
    xx, yy = xx + eps2d, yy + eps2d
    det = xx * yy - xy * xy
    ok = in_depth & (det > 0)
    safe_det = torch.where(ok, det, torch.ones_like(det))
    ratio = det_orig / safe_det
    pos = ok & (ratio > 0)
    compensations = torch.where(pos, torch.where(pos, ratio, torch.ones_like(ratio)).sqrt(), torch.zeros_like(ratio))
    conics = torch.stack([yy / safe_det, -xy / safe_det, xx / safe_det], -1)
    covars2d = torch.stack([xx, xy, yy], -1)

    with torch.no_grad():
        op = opacities.detach().expand_as(z)
        if antialiased:
            op = op * compensations.detach()
        ok = ok & (op >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp_max(MAX_EXTEND)
        rx = torch.ceil(extend * torch.where(ok, xx, 0).clamp_min(0).sqrt())
        ry = torch.ceil(extend * torch.where(ok, yy, 0).clamp_min(0).sqrt())
        mx, my = means2d.detach().unbind(-1)
        ok = ok & ((rx > 0) | (ry > 0))
        ok = ok & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        radii = torch.stack([rx, ry], -1).where(ok[..., None], 0).to(torch.int32)
    return Projection(means2d, conics, covars2d, compensations, z, radii, ok)

