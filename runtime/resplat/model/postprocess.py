"""After the last recurrent iteration: prune near-transparent Gaussians, then optionally polish
the result by 3DGS optimisation against the input views.

The inference pipeline is ``reconstruct`` (iterations 0-8) -> :func:`prune_transparent`
(optional) -> :func:`polish` (optional); ``resplat reconstruct --prune-opacity T
--optimize-steps N`` runs exactly these::

    g = reconstruct(views.images, views.cameras, model, iterations=4)
    g = prune_transparent(g, 0.005)
    g = polish(g, views.images, views.cameras, steps=100).gaussians
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..cameras import Cameras
from ..defaults import POLISH_STRATEGY, PRUNE_OPACITY
from ..errors import CancelledError, ResplatError
from ..gaussians import Gaussians

#: Default opacity below which ``resplat reconstruct`` drops Gaussians (:mod:`resplat.defaults`).
DEFAULT_PRUNE_OPACITY = PRUNE_OPACITY


def transparent_mask(gaussians: Gaussians, threshold: float) -> Tensor:
    """[N] bool: True where the opacity (``sigmoid(logit)``) is below ``threshold``."""
    return torch.sigmoid(gaussians.logit_opacities) < threshold


def prune_transparent(gaussians: Gaussians, threshold: float = DEFAULT_PRUNE_OPACITY) -> Gaussians:
    """The Gaussians whose opacity is at least ``threshold`` (same order, device and dtype).

    Args:
        gaussians: N Gaussians (any device).
        threshold: opacity in [0, 1); 0 keeps every Gaussian. Removed: ``sigmoid(logit) <
            threshold`` (:func:`transparent_mask`); ``len(input) - len(output)`` were pruned.

    Raises:
        ResplatError: ``threshold`` outside [0, 1), or it would remove every Gaussian.
    """
    if not 0 <= threshold < 1:
        raise ResplatError(f"prune opacity must be in [0, 1), got {threshold}")
    if threshold == 0 or len(gaussians) == 0:
        return gaussians
    drop = transparent_mask(gaussians, threshold)
    if bool(drop.all()):
        raise ResplatError(f"pruning at opacity {threshold:g} would remove all {len(gaussians)} Gaussians: "
                           "lower the threshold")
    return gaussians[~drop]


def polish(gaussians: Gaussians, images: Tensor, cameras: Cameras, steps: int, *, backend: str = "auto",
           lr=None, callback: Callable[..., "bool | None"] | None = None, seed: int = 0, **options):
    """Refine a reconstruction with ``steps`` steps of 3DGS optimisation against its input views
    (:func:`resplat.optim.optimize`) with the densification ``options["strategy"]``, by default
    :data:`resplat.defaults.POLISH_STRATEGY` (3DGS's adaptive density control; ``"none"`` keeps
    the count).

    Args:
        gaussians: the reconstruction (its device and dtype are used; not modified).
        images: [V, 3, H, W] the input views in [0, 1] (moved to the Gaussians' device).
        cameras: the V input cameras.
        steps: optimisation steps (one view per step); 0 returns the input unchanged unless
            ``options`` has a time budget ``seconds``, which then alone ends the polish.
        backend: rasteriser backend ("auto": gsplat on CUDA).
        lr: :class:`resplat.optim.OptimConfig`; default 3DGS's rates with the SH warm-up cut
            to one step per degree (``sh_increase_every=1``): the prediction already has every
            degree, and 3DGS's 1000-step warm-up would fit only the DC colour in a short polish.
        callback: called after every step with a :class:`resplat.optim.Progress` (``step``,
            ``total``, ``loss``, ``psnr``, ``num_gaussians``, ``snapshot()``); returning False
            cancels.
        seed: seed of the view order.
        options: further keyword arguments of :func:`resplat.optim.optimize` (``ssim_weight``,
            ``background``, ``eval_every``, ``prune_opacity``, ...).

    Returns:
        :class:`resplat.optim.OptimResult` (``.gaussians``, ``.losses``, ``.psnr_history``,
        ``.seconds``).

    Raises:
        CancelledError: the callback returned False (names the step reached).
        ResplatError / ViewsError: as :func:`resplat.optim.optimize` (bad steps, images, ...).
    """
    from ..optim import OptimConfig, OptimResult, optimize

    if not isinstance(steps, int) or steps < 0:
        raise ResplatError(f"polish: steps must be an integer >= 0, got {steps!r}")
    if steps == 0 and not options.get("seconds"):
        return OptimResult(gaussians=gaussians.detach())
    lr = OptimConfig(sh_increase_every=1) if lr is None else lr
    options.setdefault("strategy", POLISH_STRATEGY)
    # steps 0 with a time budget (options "seconds"): as many steps as the budget allows
    result = optimize(gaussians, images.to(gaussians.device), cameras.to(gaussians.device), steps or None, backend=backend,
                      lr=lr, callback=callback, seed=seed, **options)
    if result.cancelled:
        raise CancelledError(f"polish cancelled after step {len(result.losses)}/{steps}")
    return result
