"""Hyper-parameters of 3DGS optimisation and the position learning-rate schedule.

Values are those of 3D Gaussian Splatting (Kerbl et al. 2023, Sec. 7 and its released
``arguments/__init__.py``: ``position_lr_init/final``, ``feature_lr``, ``opacity_lr``,
``scaling_lr``, ``rotation_lr``; the SH-rest rate is ``feature_lr / 20`` as in
``GaussianModel.training_setup``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ResplatError


@dataclass(frozen=True)
class OptimConfig:
    """Adam learning rates and schedule constants (3DGS defaults).

    Attributes:
        means_lr_init: position rate at step 0, in units of the scene extent per step (multiplied
            by :func:`~resplat.optim.init.scene_extent`, metres).
        means_lr_final: position rate reached at the last step (same units); the rate decays
            log-linearly in between (3DGS ``get_expon_lr_func`` with no delay).
        sh_dc_lr: DC SH coefficients (``sh[:, :1]``).
        sh_rest_lr: higher-order SH coefficients (``sh[:, 1:]``), ``sh_dc_lr / 20``.
        opacity_lr: logit opacities.
        scale_lr: log scales.
        rotation_lr: unnormalised quaternions (w, x, y, z).
        adam_eps: Adam epsilon (3DGS uses 1e-15).
        sh_increase_every: the rendered SH degree starts at 0 and rises by one every this many
            steps up to the target degree (3DGS ``oneupSHdegree`` every 1000 iterations).
    """

    means_lr_init: float = 1.6e-4
    means_lr_final: float = 1.6e-6
    sh_dc_lr: float = 2.5e-3
    sh_rest_lr: float = 2.5e-3 / 20
    opacity_lr: float = 0.05
    scale_lr: float = 5e-3
    rotation_lr: float = 1e-3
    adam_eps: float = 1e-15
    sh_increase_every: int = 1000

    def __post_init__(self) -> None:
        for name in ("means_lr_init", "means_lr_final", "sh_dc_lr", "sh_rest_lr", "opacity_lr", "scale_lr", "rotation_lr", "adam_eps"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ResplatError(f"OptimConfig.{name} must be a finite number >= 0, got {v!r}")
        if self.means_lr_init > 0 and self.means_lr_final <= 0:
            raise ResplatError("OptimConfig.means_lr_final must be > 0 for the log-linear decay")
        if self.sh_increase_every < 1:
            raise ResplatError(f"OptimConfig.sh_increase_every must be >= 1, got {self.sh_increase_every}")

    def means_lr(self, step: int, total: int, extent: float) -> float:
        """Position learning rate (metres per unit gradient step) at ``step`` of ``total``:
        :meth:`means_lr_at` with t = step / total."""
        return self.means_lr_at(step / max(total, 1), extent)

    def means_lr_at(self, t: float, extent: float) -> float:
        """Position learning rate at the fraction ``t`` of the run (of its steps or of its time
        budget): exp((1 - t) log(init) + t log(final)) * extent, t clipped to [0, 1]."""
        if self.means_lr_init == 0:
            return 0.0
        t = min(max(t, 0.0), 1.0)
        return math.exp((1 - t) * math.log(self.means_lr_init) + t * math.log(self.means_lr_final)) * extent
