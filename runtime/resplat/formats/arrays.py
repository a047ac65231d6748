"""SplatArrays: the numpy twin of :class:`resplat.gaussians.Gaussians` (no torch needed).

Field names and storage conventions are those of the INRIA 3DGS PLY (Kerbl et al. 2023) and of
``Gaussians``: log scales, logit opacities, unnormalised (w, x, y, z) quaternions and real SH
coefficients with ``sh[:, 0]`` the DC term (colour = 0.5 + C0 * DC).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import ResplatError
from ..npmath import SH_C0  # noqa: F401 (the DC constant, re-exported for the formats)
from ..npmath import sh_coeff_count, sh_degree_from_count


#: SH coefficients per colour channel for each degree 0..3 (:func:`resplat.npmath.sh_coeff_count`).
SH_COUNTS = {d: sh_coeff_count(d) for d in range(4)}


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)), computed in float64 without overflow warnings."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray) -> np.ndarray:
    """Inverse of :func:`sigmoid`, log(p / (1 - p)) in float64; ``p`` must lie strictly in (0, 1)."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


@dataclass
class SplatArrays:
    """N 3D Gaussians as numpy arrays, stored as in the INRIA 3DGS PLY.

    Attributes:
        means: [N, 3] float32, centres in world units (metres), OpenCV/PLY axes (x right,
            y down, z forward: "RDF").
        quats: [N, 4] float32, rotations as quaternions (w, x, y, z); need not be unit length,
            must not be zero.
        log_scales: [N, 3] float32, natural log of the standard deviations (metres).
        logit_opacities: [N] float32, logit of the peak opacity.
        sh: [N, K, 3] float32, real SH coefficients, K = (d + 1)^2 for degree d in 0..3,
            coefficient-major with the colour channel last; ``sh[:, 0]`` is the DC term
            (linear RGB = 0.5 + C0 * DC).

    Construction converts every array to C-contiguous float32 and validates shapes and values
    (all finite, no zero quaternion); it raises :class:`~resplat.errors.ResplatError` with a
    one-line message otherwise. :meth:`validate` repeats the value checks (arrays are mutable).
    """

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    logit_opacities: np.ndarray
    sh: np.ndarray

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            try:
                with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused by validate()
                    arr = np.ascontiguousarray(value, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise ResplatError(f"SplatArrays.{f.name} is not a float array ({e})") from None
            setattr(self, f.name, arr)
        n = self.means.shape[0] if self.means.ndim >= 1 else -1
        expected = {
            "means": (n, 3),
            "quats": (n, 4),
            "log_scales": (n, 3),
            "logit_opacities": (n,),
        }
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape or n < 0:
                raise ResplatError(f"SplatArrays.{name} must have shape {list(shape)}, got {list(got)}")
        sh = self.sh
        if sh.ndim != 3 or sh.shape[0] != n or sh.shape[2] != 3 or sh.shape[1] not in SH_COUNTS.values():
            raise ResplatError(
                f"SplatArrays.sh must have shape [N, K, 3] with N={n} and K in 1, 4, 9, 16, got {list(sh.shape)}"
            )
        self.validate()

    # -- checks -----------------------------------------------------------------------------
    def find_problem(self) -> str | None:
        """First value problem in words (a non-finite value, a zero quaternion), or ``None``."""
        for f in fields(self):
            arr = getattr(self, f.name)
            bad = ~np.isfinite(arr)
            if bad.any():
                idx = int(np.flatnonzero(bad.reshape(len(self), -1).any(axis=1))[0])
                return f"{f.name} of splat {idx} is not finite"
        zero = ~(self.quats != 0).any(axis=1)
        if zero.any():
            return f"quats of splat {int(np.flatnonzero(zero)[0])} is the zero quaternion"
        return None

    def validate(self) -> None:
        """Raise :class:`~resplat.errors.ResplatError` naming the first bad value, if any."""
        problem = self.find_problem()
        if problem is not None:
            raise ResplatError(f"SplatArrays: {problem}")

    # -- bookkeeping ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        """SH degree d in 0..3, from K = (d + 1)^2 coefficients per channel."""
        return sh_degree_from_count(self.sh.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays by field name (means, quats, log_scales, logit_opacities, sh)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def select(self, index) -> "SplatArrays":
        """New SplatArrays with the splats picked by a boolean mask [N] or integer indices.

        Raises :class:`~resplat.errors.ResplatError` for a mask of the wrong length.
        """
        index = np.asarray(index)
        if index.dtype == bool and index.shape != (len(self),):
            raise ResplatError(f"boolean mask must have shape [{len(self)}], got {list(index.shape)}")
        return type(self)(**{k: v[index] for k, v in self.arrays().items()})

    def with_sh_degree(self, degree: int) -> "SplatArrays":
        """New SplatArrays with SH truncated or zero-padded to ``degree`` (0..3)."""
        if degree not in SH_COUNTS:
            raise ResplatError(f"SH degree must be 0, 1, 2 or 3, got {degree}")
        k = SH_COUNTS[degree]
        sh = self.sh[:, :k]
        if sh.shape[1] < k:
            sh = np.concatenate([sh, np.zeros((len(self), k - sh.shape[1], 3), np.float32)], axis=1)
        return type(self)(self.means, self.quats, self.log_scales, self.logit_opacities, sh)

    @classmethod
    def empty(cls, sh_degree: int = 0) -> "SplatArrays":
        """Zero splats of the given SH degree (0..3)."""
        k = SH_COUNTS[sh_degree]
        z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
        return cls(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, k, 3))
