"""The splat scene: a set of 3D Gaussians with spherical-harmonic colour.

Storage follows the INRIA 3DGS convention (Kerbl et al. 2023, and its PLY files): scales are
stored as natural logs, opacities as logits, quaternions unnormalised in (w, x, y, z) order,
colour as real SH coefficients in the "RGB - 0.5 over C0" parameterisation. Activated values
(linear scales, opacities in [0, 1], unit quaternions) are read through properties.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable, Sequence

import torch
from torch import Tensor

# SH_C0: the zeroth-order real SH constant 1 / (2 sqrt(pi)); the SH counts are re-exported.
from .npmath import SH_C0, sh_coeff_count, sh_degree_from_count  # noqa: F401


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    """DC SH coefficient giving colour ``rgb`` (any shape, values in [0, 1]): (rgb - 0.5) / C0."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: Tensor) -> Tensor:
    """View-independent colour of a DC coefficient: 0.5 + C0 * sh0 (not clamped)."""
    return 0.5 + SH_C0 * sh0


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] from quaternions [..., 4] in (w, x, y, z) order.

    The quaternions are normalised first, so any non-zero quaternion is accepted.
    """
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Unit quaternions [..., 4] (w, x, y, z; w >= 0) from rotation matrices [..., 3, 3].

    Uses the numerically stable branch per element (Shepperd's method).
    """
    m = R
    t0 = 1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    t1 = 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2]
    t2 = 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2]
    t3 = 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack(
        [
            torch.stack([t0, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], t1, m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], t2, m[..., 2, 1] + m[..., 1, 2]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2], t3], -1),
        ],
        dim=-2,
    )
    best = torch.stack([t0, t1, t2, t3], -1).argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b of (w, x, y, z) quaternions [..., 4] (rotation b first, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


@dataclass
class Gaussians:
    """N 3D Gaussians in world space.

    Attributes:
        means: [N, 3] float32, centres in world units (metres).
        quats: [N, 4] float32, rotations as quaternions (w, x, y, z); need not be unit length.
        log_scales: [N, 3] float32, natural log of the standard deviations along the local axes.
        logit_opacities: [N] float32, logit of the peak opacity.
        sh: [N, K, 3] float32, real SH coefficients per colour channel, K = (d + 1)^2 for SH
            degree d in 0..3; ``sh[:, 0]`` is the DC term (colour = 0.5 + C0 * sh[:, 0] seen
            from every direction when d = 0).

    All tensors share one device and dtype. The class is a plain container: operations return
    new instances and never modify tensors in place.
    """

    means: Tensor
    quats: Tensor
    log_scales: Tensor
    logit_opacities: Tensor
    sh: Tensor

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        shapes = {
            "means": (self.means, (n, 3)),
            "quats": (self.quats, (n, 4)),
            "log_scales": (self.log_scales, (n, 3)),
            "logit_opacities": (self.logit_opacities, (n,)),
        }
        for name, (t, shape) in shapes.items():
            if tuple(t.shape) != shape:
                raise ValueError(f"Gaussians.{name} must have shape {list(shape)}, got {list(t.shape)}")
        if self.sh.dim() != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ValueError(f"Gaussians.sh must have shape [N, K, 3] with N={n}, got {list(self.sh.shape)}")
        sh_degree_from_count(self.sh.shape[1])

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_activated(
        cls,
        means: Tensor,
        quats: Tensor,
        scales: Tensor,
        opacities: Tensor,
        sh: Tensor | None = None,
        rgb: Tensor | None = None,
    ) -> "Gaussians":
        """Build from activated values: linear ``scales`` [N,3] > 0, ``opacities`` [N] in (0,1),
        and either ``sh`` [N,K,3] or a view-independent ``rgb`` [N,3] in [0,1] (degree 0)."""
        if (sh is None) == (rgb is None):
            raise ValueError("give exactly one of sh or rgb")
        if sh is None:
            sh = rgb_to_sh0(rgb)[:, None, :]
        eps = torch.finfo(opacities.dtype).eps
        o = opacities.clamp(eps, 1 - eps)
        return cls(means, quats, torch.log(scales), torch.log(o) - torch.log1p(-o), sh)

    @classmethod
    def empty(cls, sh_degree: int = 0, device=None, dtype=torch.float32) -> "Gaussians":
        """Zero Gaussians of the given SH degree."""
        k = sh_coeff_count(sh_degree)
        z = lambda *s: torch.zeros(*s, device=device, dtype=dtype)  # noqa: E731
        return cls(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, k, 3))

    @classmethod
    def cat(cls, parts: Sequence["Gaussians"]) -> "Gaussians":
        """Concatenate Gaussians; parts with a lower SH degree are zero-padded to the highest."""
        if not parts:
            raise ValueError("Gaussians.cat needs at least one part")
        degree = max(p.sh_degree for p in parts)
        parts = [p.with_sh_degree(degree) for p in parts]
        return cls(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    # -- shape and bookkeeping -------------------------------------------------------------
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        """SH degree d in 0..3, from the number of coefficients K = (d + 1)^2."""
        return sh_degree_from_count(self.sh.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def tensors(self) -> dict[str, Tensor]:
        """The stored tensors by field name (means, quats, log_scales, logit_opacities, sh)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def _map(self, fn) -> "Gaussians":
        return type(self)(**{k: fn(v) for k, v in self.tensors().items()})

    def to(self, device=None, dtype=None) -> "Gaussians":
        """Copy to another device and/or floating dtype."""
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> "Gaussians":
        return self._map(lambda t: t.detach())

    def clone(self) -> "Gaussians":
        return self._map(lambda t: t.clone())

    def requires_grad_(self, flag: bool = True) -> "Gaussians":
        """Detached leaf copies that require grad (for optimisation or gradient tests)."""
        return self._map(lambda t: t.detach().clone().requires_grad_(flag))

    def __getitem__(self, index) -> "Gaussians":
        """Select Gaussians by boolean mask [N], integer indices or slice (e.g. to prune)."""
        if isinstance(index, Tensor) and index.dtype == torch.bool and index.shape != (len(self),):
            raise ValueError(f"boolean mask must have shape [{len(self)}], got {list(index.shape)}")
        return self._map(lambda t: t[index])

    def with_sh_degree(self, degree: int) -> "Gaussians":
        """Truncate or zero-pad the SH coefficients to ``degree``."""
        k = sh_coeff_count(degree)
        sh = self.sh
        if k < sh.shape[1]:
            sh = sh[:, :k]
        elif k > sh.shape[1]:
            pad = sh.new_zeros(len(self), k - sh.shape[1], 3)
            sh = torch.cat([sh, pad], 1)
        return type(self)(self.means, self.quats, self.log_scales, self.logit_opacities, sh)

    # -- activated accessors ---------------------------------------------------------------
    @property
    def scales(self) -> Tensor:
        """[N, 3] linear standard deviations, exp(log_scales)."""
        return self.log_scales.exp()

    @property
    def opacities(self) -> Tensor:
        """[N] opacities in (0, 1), sigmoid(logit_opacities)."""
        return torch.sigmoid(self.logit_opacities)

    @property
    def unit_quats(self) -> Tensor:
        """[N, 4] unit quaternions (w, x, y, z)."""
        return self.quats / self.quats.norm(dim=-1, keepdim=True)

    @property
    def rgb(self) -> Tensor:
        """[N, 3] view-independent (DC) colour 0.5 + C0 * sh[:, 0], not clamped."""
        return sh0_to_rgb(self.sh[:, 0])

    def rotation_matrices(self) -> Tensor:
        """[N, 3, 3] local-to-world rotations."""
        return quat_to_rotmat(self.quats)

    def covariances(self) -> Tensor:
        """[N, 3, 3] world-space covariances R S S^T R^T."""
        M = self.rotation_matrices() * self.scales[:, None, :]
        return M @ M.transpose(-1, -2)

    def check_finite(self, what: str = "Gaussians") -> None:
        """Raise :class:`~resplat.errors.ResplatError` naming the first non-finite attribute."""
        from .errors import ResplatError

        for name, t in self.tensors().items():
            bad = ~torch.isfinite(t)
            if bad.any():
                idx = int(bad.reshape(len(self), -1).any(-1).nonzero()[0]) if len(self) else 0
                raise ResplatError(f"{what}: {name} of Gaussian {idx} is not finite")

    def transformed(self, transform: Tensor) -> "Gaussians":
        """Apply a similarity transform [4, 4] (rotation * uniform scale, translation).

        Means are transformed, rotations composed, log-scales shifted by log(scale). SH of degree
        above 0 are *not* rotated (raises ``ValueError`` for a rotation when sh_degree > 0 unless
        the rotation is the identity); use this for baking object transforms of degree-0 scenes
        or pure translations/scalings.
        """
        T = transform.to(self.means)
        A = T[:3, :3]
        s = torch.linalg.det(A).abs() ** (1.0 / 3.0)
        R = A / s
        if self.sh_degree > 0 and not torch.allclose(R, torch.eye(3, dtype=R.dtype, device=R.device), atol=1e-6):
            raise ValueError("rotating SH of degree > 0 is not supported; drop SH with with_sh_degree(0)")
        means = self.means @ A.T + T[:3, 3]
        q = rotmat_to_quat(R)
        quats = quat_multiply(q.expand_as(self.quats), self.quats)
        return type(self)(means, quats, self.log_scales + torch.log(s), self.logit_opacities, self.sh)
