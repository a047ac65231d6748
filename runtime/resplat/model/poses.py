"""Camera pose normalisation of the ReSplat model and the way back to the original world.

The release re-expresses every pose relative to the middle context view before running the
network (dataset ``camera_normalization`` with ``pose_align_middle_view=true``;
docs/model-architecture.md section 3.1; the paper credits +0.9 dB to it):
``c2w' = inv(c2w[V // 2]) @ c2w``. The network then predicts Gaussians in that *model frame*;
:func:`gaussians_to_world` maps them back with ``T = c2w[V // 2]``: means ``R m + t``, rotations
``q(R) * q``, scales unchanged, SH coefficients rotated so that the colour seen along a world
direction is unchanged (:func:`rotate_sh`). Intrinsics are given to the network normalised
(first row / W, second row / H), as pixelSplat/DepthSplat/ReSplat do.

Quaternion order helpers: the release stores (x, y, z, w), our :class:`~resplat.gaussians.Gaussians`
(w, x, y, z); :func:`xyzw_to_wxyz` and :func:`wxyz_to_xyzw` are those of
:mod:`resplat.model.update_state`, re-exported here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..cameras import Cameras, rigid_inverse
from ..errors import CameraError
from ..gaussians import Gaussians, quat_multiply, rotmat_to_quat
from ..npmath import sh_rotation_matrix
from .update_state import wxyz_to_xyzw, xyzw_to_wxyz

__all__ = ["middle_view_transform", "normalize_poses", "normalized_intrinsics", "gaussians_to_world",
           "rotate_sh", "xyzw_to_wxyz", "wxyz_to_xyzw"]


def middle_view_transform(c2w: Tensor) -> Tensor:
    """The reference transform of each scene: ``c2w[..., V // 2, :, :]``.

    Args:
        c2w: [B, V, 4, 4] (or [V, 4, 4]) camera-to-world, OpenCV axes, metres.

    Returns:
        [B, 4, 4] (or [4, 4]) the middle view's camera-to-world transform.
    """
    return c2w[..., c2w.shape[-3] // 2, :, :]


def normalize_poses(c2w: Tensor, reference: Tensor | None = None) -> Tensor:
    """Poses relative to a reference frame: ``inv(reference) @ c2w`` (release
    ``camera_normalization``).

    Args:
        c2w: [B, V, 4, 4] (or [V, 4, 4]) camera-to-world, OpenCV axes, metres (context or
            target views).
        reference: [B, 4, 4] (or [4, 4]) rigid transform; default the middle context view of
            ``c2w`` (:func:`middle_view_transform`).

    Returns:
        [B, V, 4, 4] (or [V, 4, 4]) camera-to-world in the model frame; the reference view
        becomes the identity.

    Raises:
        CameraError: a ``reference`` whose 3x3 block is not a rotation (the inverse is the rigid
            one, R^T).
    """
    ref = middle_view_transform(c2w) if reference is None else reference
    R = ref[..., :3, :3]
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    if not torch.allclose(R @ R.transpose(-1, -2), eye.expand_as(R), atol=1e-4):
        raise CameraError("pose normalisation: the reference camera-to-world is not rigid (R R^T != I)")
    return rigid_inverse(ref).unsqueeze(-3) @ c2w


def normalized_intrinsics(cameras: Cameras) -> Tensor:
    """[V, 3, 3] intrinsics with the first row divided by the width and the second by the
    height (pixel-centre convention kept: a centred principal point becomes (0.5, 0.5))."""
    return cameras.normalized_K()


def rotate_sh(sh: Tensor, R: Tensor) -> Tensor:
    """SH coefficients of colours rotated by ``R``: the result seen along ``R d`` equals the input
    seen along ``d`` (for every unit direction d), band by band.

    Args:
        sh: [N, K, 3] real SH coefficients (gsplat/3DGS basis of :func:`resplat.render.sh.sh_basis`),
            K = (d + 1)^2, d <= 3.
        R: [3, 3] rotation.

    Returns:
        [N, K, 3] in the dtype of ``sh``: ``sh' = D sh`` with D the float64 real Wigner-D
        matrix of :func:`resplat.npmath.sh_rotation_matrix` (``Y(R^T s) = Y(s) D``); the DC
        term is unchanged. Not differentiable in ``R`` (poses are inputs, not parameters).
    """
    k = sh.shape[1]
    degree = int(math.isqrt(k)) - 1
    if degree == 0:
        return sh
    D = torch.from_numpy(sh_rotation_matrix(degree, R.detach().to(device="cpu", dtype=torch.float64).numpy()))
    return torch.einsum("ij,njc->nic", D.to(device=sh.device, dtype=sh.dtype), sh)


def gaussians_to_world(gaussians: Gaussians, transform: Tensor) -> Gaussians:
    """Bring Gaussians predicted in the model frame back to the original world.

    Args:
        gaussians: N Gaussians in the model frame (metres; wxyz quaternions).
        transform: [4, 4] rigid transform, model frame -> world (the middle view's original
            camera-to-world, :func:`middle_view_transform`).

    Returns:
        Gaussians with means ``R m + t``, quaternions ``q(R) * q`` (wxyz, Hamilton product), the
        same log-scales and opacities, and SH rotated by R (:func:`rotate_sh`), so renders from
        the original cameras equal renders of the input from the normalised cameras.
    """
    T = transform.to(gaussians.means)
    R, t = T[:3, :3], T[:3, 3]
    q = rotmat_to_quat(R)
    quats = quat_multiply(q.expand_as(gaussians.quats), gaussians.quats)
    return Gaussians(gaussians.means @ R.T + t, quats, gaussians.log_scales, gaussians.logit_opacities,
                     rotate_sh(gaussians.sh, R))
