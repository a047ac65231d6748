"""3D Gaussian Splatting optimisation (Kerbl et al. 2023) on top of :func:`resplat.render.render`.

- :func:`optimize`: Adam with 3DGS's per-attribute learning rates, L1 + SSIM loss, a step count
  and/or a time budget, optional densification (:mod:`.strategy`: "default", "mcmc", "none")
  and opacity pruning, progress callback with cancel.
- :func:`random_init`: random Gaussians in the cameras' common view volume.
- :func:`depth_init`: Gaussians on the surfaces of the views' depth maps (e.g. a Blender depth pass).
- :class:`OptimConfig`: the learning rates; :func:`scene_extent`: the 3DGS scene radius.
"""

from .config import OptimConfig
from .depth_init import depth_init
from .init import look_at_point, nn_scales, random_init, scene_extent, visible_count
from .loop import OptimResult, Progress, optimize, training_loss
from .params import GROUPS, build_optimizer, params_to_gaussians, prune, split_params, update_rows
from .strategy import STRATEGIES, DefaultStrategy, MCMCStrategy, NoStrategy, Strategy, make_strategy

__all__ = [
    "OptimConfig", "OptimResult", "Progress", "optimize", "training_loss", "random_init", "depth_init", "scene_extent",
    "look_at_point", "nn_scales", "visible_count", "GROUPS", "build_optimizer", "params_to_gaussians",
    "prune", "split_params", "update_rows", "STRATEGIES", "Strategy", "DefaultStrategy", "MCMCStrategy", "NoStrategy",
    "make_strategy",
]
