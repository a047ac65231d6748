"""Lens distortion: the OpenCV / COLMAP radial-tangential model and image undistortion.

The model (OpenCV ``calib3d`` "Detailed Description", Brown-Conrady; COLMAP
``src/colmap/sensor/models.h`` ``OpenCVCameraModel::Distortion``) maps undistorted normalised
camera coordinates (x, y) = (X/Z, Y/Z) to distorted ones::

    r2 = x^2 + y^2
    radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
    xd = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
    yd = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

and a pixel is ``u = fx xd + cx``, ``v = fy yd + cy``. COLMAP's SIMPLE_RADIAL (one coefficient
k) and RADIAL (k1, k2) are special cases with the other coefficients zero.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ViewsError
from ..viewfiles.distortion import DISTORTION_MODELS


def opencv_coefficients(dist: Sequence[float] | Tensor, model: str = "OPENCV", dtype=torch.float64) -> Tensor:
    """The five OpenCV coefficients (k1, k2, p1, p2, k3) of a distortion given in ``model``'s
    own parameter order.

    Args:
        dist: coefficients [C] or per view [V, C]: OPENCV (k1, k2, p1, p2) or (k1, k2, p1, p2, k3),
            RADIAL (k1, k2), SIMPLE_RADIAL (k).
        model: one of :data:`DISTORTION_MODELS`.
    Returns:
        [5] or [V, 5] tensor of ``dtype``.
    Raises:
        ViewsError: for an unknown model or a wrong number of coefficients.
    """
    if model not in DISTORTION_MODELS:
        raise ViewsError(f"unsupported distortion model {model!r} (supported: {', '.join(DISTORTION_MODELS)})")
    counts, slots = DISTORTION_MODELS[model]
    d = torch.as_tensor(dist, dtype=dtype)
    if d.shape[-1] not in counts or d.dim() not in (1, 2):
        raise ViewsError(f"distortion model {model} takes {' or '.join(map(str, counts))} coefficients, got shape {list(d.shape)}")
    out = torch.zeros(*d.shape[:-1], 5, dtype=dtype)
    out[..., list(slots[: d.shape[-1]])] = d
    return out


def distort_normalized(x: Tensor, y: Tensor, coeffs: Tensor) -> tuple[Tensor, Tensor]:
    """Apply the OpenCV distortion (module docstring) to normalised coordinates.

    Args:
        x, y: undistorted normalised coordinates (X/Z, Y/Z), any broadcastable shapes.
        coeffs: (k1, k2, p1, p2, k3), shape [5] or broadcastable as [..., 5] against x's leading
            dimensions (e.g. [V, 1, 1, 5] for x of shape [V, H, W]).
    Returns:
        (xd, yd), the distorted normalised coordinates, same dtype as x.
    """
    k1, k2, p1, p2, k3 = coeffs.to(x.dtype).unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xy = x * y
    xd = x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy
    return xd, yd


def undistort_images(images: Tensor, K: Tensor, dist: Sequence[float] | Tensor, model: str = "OPENCV") -> Tensor:
    """Resample distorted photographs to ideal pinhole images with the same intrinsics ``K``.

    For every output pixel centre (u, v) (half-integers, this runtime's convention, see
    :mod:`resplat.cameras`), the normalised ray ((u - cx)/fx, (v - cy)/fy) is distorted with
    :func:`distort_normalized` and the source image is sampled bilinearly there
    (``grid_sample`` with ``align_corners=False``, whose grid maps the image's outer corners to
    +-1, matching half-integer pixel centres). The distortion is evaluated in float64. Output
    pixels whose source lies outside the photo are 0 (black).

    Args:
        images: [V, C, H, W] float images (any encoding; sampled as stored).
        K: [3, 3] or [V, 3, 3] intrinsics in pixels (pixel centres at half-integers; convert
            OpenCV's with :func:`resplat.cameras.opencv_to_pixel_corner_K`).
        dist: coefficients of ``model`` ([C] shared or [V, C] per view), see
            :func:`opencv_coefficients`.
        model: "OPENCV", "RADIAL" or "SIMPLE_RADIAL".
    Returns:
        [V, C, H, W] undistorted images, dtype of ``images``.
    Raises:
        ViewsError: unknown model, wrong number of coefficients or mismatching shapes.
    """
    if images.dim() != 4:
        raise ViewsError(f"images must have shape [V, C, H, W], got {list(images.shape)}")
    v, _, h, w = images.shape
    coeffs = opencv_coefficients(dist, model)
    coeffs = coeffs.expand(v, 5) if coeffs.dim() == 1 else coeffs
    K = torch.as_tensor(K, dtype=torch.float64)
    K = K.expand(v, 3, 3) if K.dim() == 2 else K
    if coeffs.shape[0] != v or tuple(K.shape) != (v, 3, 3):
        raise ViewsError(f"{v} images but K has shape {list(K.shape)} and distortion {list(coeffs.shape)}")
    fx, fy, cx, cy = (K[:, i, j].view(v, 1, 1) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    vv, uu = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij")
    xd, yd = distort_normalized((uu - cx) / fx, (vv - cy) / fy, coeffs.view(v, 1, 1, 5))
    grid = torch.stack(((fx * xd + cx) * (2.0 / w) - 1, (fy * yd + cy) * (2.0 / h) - 1), dim=-1)
    out = F.grid_sample(images.float(), grid.float().to(images.device), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.to(images.dtype)
