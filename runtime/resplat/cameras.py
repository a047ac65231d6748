"""Pinhole cameras and every camera-convention conversion of the runtime, in one place.

Convention inside the runtime (OpenCV / COLMAP): camera x right, y down, z forward (the camera
looks down +z); extrinsics are world-to-camera matrices ``w2c`` [V, 4, 4]; intrinsics ``K``
[V, 3, 3] are in pixels with continuous image coordinates whose top-left image corner is (0, 0)
and whose pixel centres lie at half-integers (so a centred principal point is (W/2, H/2), as in
COLMAP, nerfstudio and gsplat). OpenCV's own calibration puts pixel centres at integers; convert
its principal point with :func:`opencv_to_pixel_corner_K`.

OpenGL / Blender / nerfstudio cameras look down -z with +y up; their camera-to-world matrices
convert with :meth:`Cameras.from_opengl_c2w` and :meth:`Cameras.opengl_c2w` (a flip of the
camera's y and z axes, exact in floating point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .errors import CameraError

#: diag(1, -1, -1, 1): maps OpenGL camera axes to OpenCV camera axes and back (its own inverse).
_GL_TO_CV = (1.0, -1.0, -1.0, 1.0)


def rigid_inverse(T: Tensor) -> Tensor:
    """Inverse of rigid transforms [..., 4, 4] (R, t) -> (R^T, -R^T t), exact up to rounding of
    the product only (no general matrix inversion)."""
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1
    return out


def lookat_point(c2w: Tensor) -> tuple[Tensor, Tensor]:
    """The point nearest (least squares) to every optical axis of a rig, and how well the axes
    converge: ``argmin_p sum_i |(I - d_i d_i^T)(p - c_i)|^2`` over camera centres c_i and unit
    axes d_i.

    Args:
        c2w: [V, 4, 4] camera-to-world (OpenCV: +z is the optical axis), any float dtype.

    Returns:
        (point [3] float64, smallest eigenvalue of ``sum_i (I - d_i d_i^T)`` divided by V as a
        float64 scalar tensor, in [0, 2/3]): 0 for parallel axes (one camera, a forward-facing
        rig), where the point is meaningless. Each caller sets its own threshold on it (the
        model frame's ``LOOKAT_CONDITION``, ``random_init``'s ``SOLVE_CONDITION``).
    """
    c, d = c2w[:, :3, 3].double(), c2w[:, :3, 2].double()
    d = d / d.norm(dim=-1, keepdim=True)
    P = torch.eye(3, dtype=torch.float64, device=c.device) - d[:, :, None] * d[:, None, :]  # [V, 3, 3]
    A, rhs = P.sum(0), (P @ c[:, :, None]).sum(0)[:, 0]
    cond = torch.linalg.eigvalsh(A)[0] / len(c)
    point = torch.linalg.lstsq(A, rhs[:, None]).solution[:, 0]
    return point, cond


def flip_yz(T: Tensor) -> Tensor:
    """Right-multiply camera-to-world matrices [..., 4, 4] by diag(1, -1, -1, 1): converts an
    OpenGL c2w to an OpenCV c2w and vice versa (sign flips only, exact)."""
    return T * T.new_tensor(_GL_TO_CV)


def intrinsics_matrix(fx, fy, cx, cy, dtype=torch.float32) -> Tensor:
    """K [V, 3, 3] (pixels) from per-view or scalar focal lengths and principal points."""
    fx, fy, cx, cy = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=dtype).reshape(-1) for v in (fx, fy, cx, cy)))
    K = torch.zeros(fx.shape[0], 3, 3, dtype=dtype)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1
    return K


def K_from_fov(fov_x: float, width: int, height: int, dtype=torch.float32) -> Tensor:
    """K [3, 3] for a horizontal field of view ``fov_x`` (radians), square pixels, centred."""
    f = 0.5 * width / math.tan(0.5 * fov_x)
    return intrinsics_matrix(f, f, width / 2, height / 2, dtype)[0]


def opencv_to_pixel_corner_K(K: Tensor) -> Tensor:
    """Shift the principal point of an OpenCV-calibrated K (pixel centres at integers) by +0.5
    px to this runtime's convention (pixel centres at half-integers)."""
    K = K.clone()
    K[..., 0, 2] += 0.5
    K[..., 1, 2] += 0.5
    return K


@dataclass
class Cameras:
    """V pinhole cameras sharing one image size.

    Attributes:
        w2c: [V, 4, 4] world-to-camera rigid transforms, OpenCV axes (x right, y down, z forward).
        K: [V, 3, 3] intrinsics in pixels (see the module docstring for the pixel convention).
        width: image width in pixels.
        height: image height in pixels.
        names: optional per-view names (file stems or Blender camera names), for messages.

    Raises:
        CameraError: on wrong shapes, non-finite values, a non-positive size or focal length.
    """

    w2c: Tensor
    K: Tensor
    width: int
    height: int
    names: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.w2c.dim() == 2:
            self.w2c = self.w2c[None]
        if self.K.dim() == 2:
            self.K = self.K[None].expand(self.w2c.shape[0], 3, 3).clone()
        v = self.w2c.shape[0]
        if tuple(self.w2c.shape) != (v, 4, 4):
            raise CameraError(f"w2c must have shape [V, 4, 4], got {list(self.w2c.shape)}")
        if tuple(self.K.shape) != (v, 3, 3):
            raise CameraError(f"K must have shape [{v}, 3, 3] to match w2c, got {list(self.K.shape)}")
        self.width, self.height = int(self.width), int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise CameraError(f"image size must be positive, got {self.width}x{self.height}")
        if self.names is not None and len(self.names) != v:
            raise CameraError(f"{len(self.names)} names given for {v} cameras")
        # one vectorised check (a single host sync on GPUs: render() builds Cameras per call)
        finite = torch.isfinite(self.w2c).flatten(1).all(1) & torch.isfinite(self.K).flatten(1).all(1)
        positive = (self.K[:, 0, 0] > 0) & (self.K[:, 1, 1] > 0)
        if v and not bool((finite & positive).all()):
            i = int((~(finite & positive)).nonzero()[0])
            if not finite[i]:
                raise CameraError(f"camera {self.name(i)}: pose or intrinsics are not finite")
            raise CameraError(f"camera {self.name(i)}: focal length must be positive, got K={self.K[i].tolist()}")

    def name(self, i: int) -> str:
        """Display name of view ``i`` (its name if known, else its index)."""
        return repr(self.names[i]) if self.names else f"#{i}"

    def __len__(self) -> int:
        return self.w2c.shape[0]

    def __getitem__(self, index) -> "Cameras":
        """Select views by index, slice, list or boolean mask."""
        if isinstance(index, int):
            index = [index]
        idx = torch.arange(len(self))[index].reshape(-1)
        names = [self.names[i] for i in idx.tolist()] if self.names else None
        return Cameras(self.w2c[idx], self.K[idx], self.width, self.height, names)

    def to(self, device=None, dtype=None) -> "Cameras":
        return Cameras(self.w2c.to(device=device, dtype=dtype), self.K.to(device=device, dtype=dtype), self.width, self.height, self.names)

    @property
    def device(self) -> torch.device:
        return self.w2c.device

    # -- extrinsics --------------------------------------------------------------------------
    @property
    def c2w(self) -> Tensor:
        """[V, 4, 4] camera-to-world transforms, OpenCV axes."""
        return rigid_inverse(self.w2c)

    @property
    def centers(self) -> Tensor:
        """[V, 3] camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    @classmethod
    def from_c2w(cls, c2w: Tensor, K: Tensor, width: int, height: int, names=None) -> "Cameras":
        """From OpenCV camera-to-world transforms [V, 4, 4]."""
        return cls(rigid_inverse(c2w), K, width, height, names)

    @classmethod
    def from_opengl_c2w(cls, c2w_gl: Tensor, K: Tensor, width: int, height: int, names=None) -> "Cameras":
        """From OpenGL / Blender / nerfstudio camera-to-world transforms [V, 4, 4] (camera looks
        down -z, +y up)."""
        return cls.from_c2w(flip_yz(c2w_gl), K, width, height, names)

    def opengl_c2w(self) -> Tensor:
        """[V, 4, 4] OpenGL / Blender camera-to-world transforms (camera looks down -z, +y up)."""
        return flip_yz(self.c2w)

    # -- intrinsics --------------------------------------------------------------------------
    def normalized_K(self) -> Tensor:
        """[V, 3, 3] intrinsics divided by image size: first row / width, second row / height
        (the convention of pixelSplat, MVSplat, DepthSplat and ReSplat)."""
        K = self.K.clone()
        K[:, 0] /= self.width
        K[:, 1] /= self.height
        return K

    @classmethod
    def from_normalized_K(cls, w2c: Tensor, K_norm: Tensor, width: int, height: int, names=None) -> "Cameras":
        """Inverse of :meth:`normalized_K`."""
        K = K_norm.clone()
        K[..., 0, :] *= width
        K[..., 1, :] *= height
        return cls(w2c, K, width, height, names)

    def resized(self, width: int, height: int) -> "Cameras":
        """The same cameras for images resampled to ``width`` x ``height`` (the whole image is
        scaled; with half-integer pixel centres this scaling of K is exact)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.clone()
        K[:, 0] *= sx
        K[:, 1] *= sy
        return Cameras(self.w2c, K, width, height, self.names)

    def cropped(self, left: int, top: int, width: int, height: int) -> "Cameras":
        """The same cameras for the image window [left, left+width) x [top, top+height)."""
        if left < 0 or top < 0 or left + width > self.width or top + height > self.height:
            raise CameraError(f"crop {width}x{height}+{left}+{top} is outside the {self.width}x{self.height} image")
        K = self.K.clone()
        K[:, 0, 2] -= left
        K[:, 1, 2] -= top
        return Cameras(self.w2c, K, width, height, self.names)
