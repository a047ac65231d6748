"""The recurrent updater's per-Gaussian state in the release's layout, and its conversion to our
world-space :class:`~resplat.gaussians.Gaussians`.

ReSplat (arXiv 2510.08575, Sec. 3.3; release ``encoder_resplat.py: forward_update``) refines the
parameters it predicted, not world-space splats: means in the model's world frame, **linear**
scales, the **unnormalised** quaternion of the Gaussian head in (x, y, z, w) order expressed in the
*camera* frame of the view the Gaussian was born in, the opacity logit and the SH coefficients
channel-major ([3, K]). The update adds a predicted delta to each of these (section 4.5 of
docs/model-architecture.md); the rasteriser sees the covariance
``R_c2w(view) R(q) S^2 R(q)^T R_c2w(view)^T``. Our world-space quaternion is therefore
``q_world = q(R_c2w(view)) * q`` (Hamilton product, wxyz) with each Gaussian's **own** view (the
release's PLY export applies the middle view's rotation to every Gaussian, which is wrong for
the others; that is not reproduced here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..gaussians import Gaussians, quat_multiply, rotmat_to_quat
from .config import UPDATE_BLOCKS

#: Lower clamp of the linear scales after an update (release ``clamp_min_scale``).
MIN_SCALE = 1e-6
#: eps of the release's quaternion normalisation ``q / (|q| + eps)``.
QUAT_EPS = 1e-8
#: eps of ``torch.logit`` when the release turns opacities back into logits.
OPACITY_LOGIT_EPS = 1e-6


def xyzw_to_wxyz(q: Tensor) -> Tensor:
    """Reorder quaternions [..., 4] from (x, y, z, w) (release) to (w, x, y, z) (ours, gsplat, PLY)."""
    return torch.cat([q[..., 3:], q[..., :3]], dim=-1)


def wxyz_to_xyzw(q: Tensor) -> Tensor:
    """Reorder quaternions [..., 4] from (w, x, y, z) to (x, y, z, w)."""
    return torch.cat([q[..., 1:], q[..., :1]], dim=-1)


@dataclass
class UpdateState:
    """N Gaussians of one scene as the updater reads and writes them (release layout).

    The Gaussians are laid out view-major on per-view grids: Gaussian ``n`` was born at pixel
    ``(n % (gh*gw)) // gw, n % gw`` of the Gaussian grid of view ``n // (gh*gw)`` (grid of
    ``(H/latent_downsample)*sqrt(m)`` rows for m Gaussians per latent point; 1/4 of the image per
    side for DL3DV, the full image for RE10K).

    Attributes:
        means: [N, 3] float, centres in the model's world frame (metres; after pose
            normalisation to the middle view).
        scales: [N, 3] float, linear standard deviations (metres), >= 1e-6.
        quats_xyzw: [N, 4] float, unnormalised rotation quaternions (x, y, z, w) in the camera
            frame (OpenCV axes) of the source view.
        opacity_logits: [N] float, logit of the opacity.
        sh: [N, 3, K] float, SH coefficients channel-major (release ``harmonics``), K = 16.
        view_rotations: [V, 3, 3] float, camera-to-world rotations of the source views (model frame).
        grid: (V, gh, gw) with N = V * gh * gw.
    """

    means: Tensor
    scales: Tensor
    quats_xyzw: Tensor
    opacity_logits: Tensor
    sh: Tensor
    view_rotations: Tensor
    grid: tuple[int, int, int]

    def __post_init__(self) -> None:
        v, gh, gw = self.grid
        n = v * gh * gw
        expect = {"means": (n, 3), "scales": (n, 3), "quats_xyzw": (n, 4), "opacity_logits": (n,),
                  "view_rotations": (v, 3, 3)}
        for name, shape in expect.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"UpdateState.{name} must have shape {list(shape)} for grid {self.grid}, "
                                 f"got {list(getattr(self, name).shape)}")
        if self.sh.dim() != 3 or tuple(self.sh.shape[:2]) != (n, 3):
            raise ValueError(f"UpdateState.sh must have shape [{n}, 3, K], got {list(self.sh.shape)}")

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def view_index(self) -> Tensor:
        """int64 [N]: the input view each Gaussian was born in."""
        v, gh, gw = self.grid
        return torch.arange(len(self), device=self.means.device) // (gh * gw)

    @property
    def pixel_index(self) -> Tensor:
        """int64 [N]: row-major index ``row * gw + col`` of each Gaussian's pixel in its view's grid."""
        v, gh, gw = self.grid
        return torch.arange(len(self), device=self.means.device) % (gh * gw)

    @property
    def sh_degree(self) -> int:
        return int(round(self.sh.shape[2] ** 0.5)) - 1

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_release(cls, means: Tensor, scales: Tensor, quats_xyzw: Tensor, opacities: Tensor, sh: Tensor,
                     view_rotations: Tensor, grid: tuple[int, int, int]) -> "UpdateState":
        """From the initial prediction as the release's ``forward_update`` reads it: activated
        ``opacities`` [N] in [0, 1] become ``logit(opacity, eps=1e-6)`` (clamped to about
        +-13.8, as the release does), the rest is taken as is (shapes as the attributes)."""
        return cls(means, scales, quats_xyzw, torch.logit(opacities, eps=OPACITY_LOGIT_EPS), sh, view_rotations, grid)

    # -- the updater's view -----------------------------------------------------------------
    def as_vector(self) -> Tensor:
        """[N, 11 + 3K] concat(means 3, scales 3, quats_xyzw 4, opacity logit 1, SH 3K
        channel-major), the release's ``prev_gaussians_concat`` (59 channels for K = 16)."""
        return torch.cat([self.means, self.scales, self.quats_xyzw, self.opacity_logits[:, None],
                          self.sh.flatten(1)], dim=-1)

    def detach(self) -> "UpdateState":
        """The same state with every tensor detached (the release's stop-gradient per iteration)."""
        return replace(self, means=self.means.detach(), scales=self.scales.detach(),
                       quats_xyzw=self.quats_xyzw.detach(), opacity_logits=self.opacity_logits.detach(),
                       sh=self.sh.detach())

    def updated(self, delta: Tensor) -> "UpdateState":
        """Apply a delta [N, 11 + 3K] laid out as :meth:`as_vector` (docs section 4.5):
        means += d, scales = max(scales + d, 1e-6), quaternion += d (left unnormalised),
        opacity logit += d, SH += d (channel-major). Differentiable in ``delta``."""
        k3 = self.sh.shape[1] * self.sh.shape[2]
        d_means, d_scales, d_quats, d_opacity, d_sh = delta.split([*UPDATE_BLOCKS, k3], dim=-1)
        return replace(
            self,
            means=self.means + d_means,
            scales=(self.scales + d_scales).clamp(min=MIN_SCALE),
            quats_xyzw=self.quats_xyzw + d_quats,
            opacity_logits=self.opacity_logits + d_opacity[:, 0],
            sh=self.sh + d_sh.reshape(self.sh.shape),
        )

    # -- conversion -------------------------------------------------------------------------
    def world_quats(self) -> Tensor:
        """[N, 4] unit world-frame quaternions (w, x, y, z): q(R_c2w(own view)) * q / (|q| + 1e-8)."""
        q = self.quats_xyzw / (self.quats_xyzw.norm(dim=-1, keepdim=True) + QUAT_EPS)
        view_q = rotmat_to_quat(self.view_rotations.to(q.dtype))[self.view_index]
        return quat_multiply(view_q, xyzw_to_wxyz(q))

    def to_gaussians(self) -> Gaussians:
        """Our world-space :class:`Gaussians` (model frame): wxyz quaternions composed with each
        Gaussian's own view rotation, log of the linear scales, the opacity logits, SH [N, K, 3].
        Differentiable in every tensor of the state."""
        return Gaussians(self.means, self.world_quats(), torch.log(self.scales), self.opacity_logits,
                         self.sh.transpose(1, 2))
