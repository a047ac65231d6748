"""The 3DGS optimisation loop (Kerbl et al. 2023, Sec. 5 and 7), without densification.

Each step renders one input view (views are drawn from a shuffled stack, refilled when empty,
as in 3DGS's ``train.py``), computes L = (1 - w) L1 + w (1 - SSIM) with w = 0.2 and the
same-padded SSIM of the 3DGS loss, and takes one Adam step with per-attribute learning rates.
Pruning by opacity, when asked for, rebuilds the Adam state for the kept Gaussians.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import ResplatError, ViewsError
from ..gaussians import Gaussians
from ..metrics import psnr, ssim
from ..render import render
from .config import OptimConfig
from .init import scene_extent
from .params import build_optimizer, params_to_gaussians, prune, split_params


@dataclass(frozen=True)
class Progress:
    """What the progress callback receives after every step.

    Attributes:
        step: steps done, 1..total.
        total: steps requested.
        loss: this step's training loss (dimensionless).
        psnr: mean PSNR (dB) over all input views after this step, where computed (every
            ``eval_every`` steps and at the last step), else None.
        num_gaussians: current number of Gaussians.
        snapshot: returns the current Gaussians (detached, a copy) when called, e.g. to write a
            preview; None where not provided.
    """

    step: int
    total: int
    loss: float
    psnr: float | None
    num_gaussians: int
    snapshot: Callable[[], Gaussians] | None = field(default=None, repr=False, compare=False)


@dataclass
class OptimResult:
    """Outcome of :func:`optimize`.

    Attributes:
        gaussians: the optimised Gaussians (detached, same device and dtype as the input).
        losses: training loss of every step done.
        psnr_history: (step, mean PSNR in dB over the input views) where computed.
        seconds: wall time of the whole call.
        cancelled: True when the callback returned False; the result is then the state after
            the last completed step (pruned, if pruning was asked for).
        extent: the scene extent (metres) that scaled the position learning rate.
    """

    gaussians: Gaussians
    losses: list[float] = field(default_factory=list)
    psnr_history: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False
    extent: float = 1.0


def training_loss(pred: Tensor, target: Tensor, ssim_weight: float = 0.2) -> Tensor:
    """3DGS loss (Kerbl et al. 2023, Eq. 7): (1 - w) mean|pred - target| + w (1 - SSIM), with
    SSIM on zero-padded ("same") 11x11 windows. pred, target: [3, H, W] or [B, 3, H, W] in
    [0, 1]; returns a 0-d tensor (mean over the batch)."""
    l1 = (pred - target).abs().mean()
    if ssim_weight == 0:
        return l1
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim(pred, target, padding="same").mean())


def _check_inputs(gaussians: Gaussians, images: Tensor, cameras: Cameras, steps: int, ssim_weight: float, prune_opacity) -> None:
    if not isinstance(steps, int) or steps < 0:
        raise ResplatError(f"optimize: steps must be an integer >= 0, got {steps!r}")
    if len(gaussians) == 0:
        raise ResplatError("optimize: there are no Gaussians to optimise")
    gaussians.check_finite("optimize: initial Gaussians")
    v, h, w = len(cameras), cameras.height, cameras.width
    if images.dim() != 4 or tuple(images.shape) != (v, 3, h, w):
        raise ViewsError(f"optimize: images must have shape [{v}, 3, {h}, {w}] to match the cameras, got {list(images.shape)}")
    if not images.is_floating_point():
        raise ViewsError(f"optimize: images must be float in [0, 1], got {images.dtype}")
    lo, hi = float(images.min()), float(images.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
        raise ViewsError(f"optimize: image values must be in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    if not 0 <= ssim_weight <= 1:
        raise ResplatError(f"optimize: ssim_weight must be in [0, 1], got {ssim_weight}")
    if prune_opacity is not None and not 0 < prune_opacity < 1:
        raise ResplatError(f"optimize: prune_opacity must be in (0, 1), got {prune_opacity}")


def optimize(
    gaussians: Gaussians,
    images: Tensor,
    cameras: Cameras,
    steps: int,
    *,
    backend: str = "auto",
    lr: OptimConfig = OptimConfig(),
    ssim_weight: float = 0.2,
    sh_degree: int | None = None,
    background: Tensor | None = None,
    prune_opacity: float | None = None,
    prune_every: int = 100,
    eval_every: int | None = None,
    callback: Callable[[Progress], bool | None] | None = None,
    seed: int = 0,
) -> OptimResult:
    """Fit ``gaussians`` to posed images by standard 3DGS optimisation (no densification).

    Args:
        gaussians: N initial Gaussians (not modified); their device and dtype are used.
        images: [V, 3, H, W] float targets in [0, 1] (linear colour, as the renderer outputs).
        cameras: V cameras of size W x H.
        steps: number of Adam steps (one view per step).
        backend: rasteriser backend for :func:`resplat.render.render`.
        lr: learning rates (:class:`OptimConfig`); the position rate is scaled by the scene
            extent (:func:`~resplat.optim.init.scene_extent`) and decays log-linearly over ``steps``.
        ssim_weight: weight w of (1 - SSIM) in the loss (0.2 in 3DGS).
        sh_degree: SH degree to fit (default the Gaussians' own; a higher one zero-pads the SH,
            a lower one leaves the higher coefficients untouched).
            The rendered degree rises from 0 by one every ``lr.sh_increase_every`` steps.
        background: [3] colour behind the splats (default black).
        prune_opacity: if given, Gaussians with opacity below it are removed every
            ``prune_every`` steps and at the end (e.g. 0.005 as in 3DGS).
        prune_every: pruning period in steps.
        eval_every: PSNR over all input views is computed every this many steps and at the
            last step (default: steps // 10, at least 1).
        callback: called after every step with a :class:`Progress`; returning ``False``
            cancels: the loop stops and the partial result is returned with ``cancelled=True``.
        seed: seed of the view order (a private generator); results are deterministic on CPU.

    Returns:
        :class:`OptimResult`.

    Raises:
        ResplatError / ViewsError: bad arguments, image shape or range; pruning removed every
            Gaussian; a non-finite loss. BackendError: the backend cannot run.
    """
    t0 = time.perf_counter()
    _check_inputs(gaussians, images, cameras, steps, ssim_weight, prune_opacity)
    target_degree = gaussians.sh_degree if sh_degree is None else sh_degree
    if target_degree not in (0, 1, 2, 3):
        raise ResplatError(f"optimize: sh_degree must be 0, 1, 2 or 3, got {sh_degree}")
    if target_degree > gaussians.sh_degree:
        gaussians = gaussians.with_sh_degree(target_degree)
    device, dtype = gaussians.device, gaussians.dtype
    images = images.to(device=device, dtype=dtype)
    cameras = cameras.to(device=device, dtype=dtype)
    views = [cameras[i] for i in range(len(cameras))]
    if background is not None and tuple(torch.as_tensor(background).shape) != (3,):
        raise ResplatError(f"optimize: background must be one RGB colour [3], got shape {list(torch.as_tensor(background).shape)}")
    if prune_every < 1:
        raise ResplatError(f"optimize: prune_every must be >= 1, got {prune_every}")
    bg = torch.zeros(3, device=device, dtype=dtype) if background is None else torch.as_tensor(background).to(device=device, dtype=dtype)
    eval_every = max(1, steps // 10) if eval_every is None else max(1, int(eval_every))
    extent = scene_extent(cameras)

    params = split_params(gaussians)
    optimizer = build_optimizer(params, lr, extent)
    means_group = next(g for g in optimizer.param_groups if g["name"] == "means")
    gen = torch.Generator().manual_seed(seed)
    stack: list[int] = []
    result = OptimResult(gaussians=gaussians.detach(), extent=extent)

    def do_prune() -> None:
        nonlocal params
        keep = torch.sigmoid(params["logit_opacities"].detach()) >= prune_opacity
        if not bool(keep.any()):
            raise ResplatError(f"optimize: pruning at opacity {prune_opacity} would remove every Gaussian")
        if not bool(keep.all()):
            params = prune(params, optimizer, keep)

    for step in range(1, steps + 1):
        if not stack:
            stack = torch.randperm(len(views), generator=gen).tolist()
        v = stack.pop()
        means_group["lr"] = lr.means_lr(step, steps, extent)
        degree = min(target_degree, (step - 1) // lr.sh_increase_every)
        out = render(params_to_gaussians(params), views[v], sh_degree=degree, background=bg, backend=backend)
        loss = training_loss(out.rgb[0], images[v], ssim_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.losses.append(float(loss.detach()))
        if not math.isfinite(result.losses[-1]):
            raise ResplatError(f"optimize: the loss became {result.losses[-1]} at step {step} (diverged; lower the learning rates)")
        if prune_opacity is not None and step % prune_every == 0 and step < steps:
            do_prune()
        score = None
        if step % eval_every == 0 or step == steps:
            score = _mean_psnr(params_to_gaussians(params), views, images, degree, bg, backend)
            result.psnr_history.append((step, score))
        if callback is not None and callback(Progress(step, steps, result.losses[-1], score, len(params["means"]),
                                                       lambda: params_to_gaussians(params).detach().clone())) is False:
            result.cancelled = True
            break
    if prune_opacity is not None:
        do_prune()
    result.gaussians = params_to_gaussians(params).detach()
    result.seconds = time.perf_counter() - t0
    return result


@torch.no_grad()
def _mean_psnr(g: Gaussians, views: list[Cameras], images: Tensor, degree: int, bg: Tensor, backend: str) -> float:
    """Mean PSNR (dB) of the clamped renders over all views, one view at a time."""
    scores = [psnr(render(g, cam, sh_degree=degree, background=bg, backend=backend).rgb[0].clamp(0, 1), images[i]) for i, cam in enumerate(views)]
    return float(torch.stack(scores).mean())
