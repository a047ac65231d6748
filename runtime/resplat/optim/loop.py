"""The 3DGS optimisation loop (Kerbl et al. 2023, Sec. 5 and 7), with optional densification.

Each step renders ``views_per_step`` input views (drawn from a shuffled stack, refilled when
empty, as in 3DGS's ``train.py``; 3DGS renders one), computes L = (1 - w) L1 + w (1 - SSIM)
with w = 0.2 and the same-padded SSIM of the 3DGS loss (plus a strategy's regularisers), takes
one Adam step with per-attribute learning rates, and lets the densification strategy
(:mod:`.strategy`) grow, prune or relocate Gaussians. The run ends after ``steps`` steps or
once ``seconds`` of wall time are spent, whichever comes first. Pruning by opacity, when asked
for, removes rows of the parameters, Adam state and strategy state together.
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
from . import ops
from .config import OptimConfig
from .init import scene_extent
from .params import build_optimizer, params_to_gaussians, split_params
from .strategy import StepInfo, Strategy, make_strategy


@dataclass(frozen=True)
class Progress:
    """What the progress callback receives after every step.

    Attributes:
        step: steps done, 1..total.
        total: steps requested (None when only a time budget was given).
        loss: this step's training loss (dimensionless).
        psnr: mean PSNR (dB) over all input views after this step, where computed (every
            ``eval_every`` steps and at the last step), else None.
        num_gaussians: current number of Gaussians.
        snapshot: returns the current Gaussians (detached, a copy) when called, e.g. to write a
            preview; None where not provided.
        seconds: time spent so far on the budget's clock (seconds since the call started).
        budget: the time budget in seconds, or None.
    """

    step: int
    total: int | None
    loss: float
    psnr: float | None
    num_gaussians: int
    snapshot: Callable[[], Gaussians] | None = field(default=None, repr=False, compare=False)
    seconds: float = 0.0
    budget: float | None = None


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
        strategy: name of the densification strategy used.
        num_history: (step, number of Gaussians) after every step where the count changed.
    """

    gaussians: Gaussians
    losses: list[float] = field(default_factory=list)
    psnr_history: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False
    extent: float = 1.0
    strategy: str = "none"
    num_history: list[tuple[int, int]] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """Steps done."""
        return len(self.losses)


def training_loss(pred: Tensor, target: Tensor, ssim_weight: float = 0.2) -> Tensor:
    """3DGS loss (Kerbl et al. 2023, Eq. 7): (1 - w) mean|pred - target| + w (1 - SSIM), with
    SSIM on zero-padded ("same") 11x11 windows (:func:`resplat.metrics.ssim`). pred, target: [3, H, W] or
    [B, 3, H, W] in [0, 1]; returns a 0-d tensor (mean over the batch)."""
    l1 = (pred - target).abs().mean()
    if ssim_weight == 0:
        return l1
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim(pred, target, padding="same").mean())


def _check_inputs(gaussians: Gaussians, images: Tensor, cameras: Cameras, steps, seconds, ssim_weight: float,
                  prune_opacity, views_per_step) -> None:
    if steps is None and seconds is None:
        raise ResplatError("optimize: give a number of steps, a time budget in seconds, or both")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
        raise ResplatError(f"optimize: steps must be an integer >= 0, got {steps!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
        raise ResplatError(f"optimize: seconds must be a finite number >= 0, got {seconds!r}")
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
    if not isinstance(views_per_step, int) or not 1 <= views_per_step <= v:
        raise ResplatError(f"optimize: views_per_step must be an integer in 1..{v} (the number of views), got {views_per_step!r}")


def optimize(
    gaussians: Gaussians,
    images: Tensor,
    cameras: Cameras,
    steps: int | None = None,
    *,
    seconds: float | None = None,
    strategy: "str | Strategy | None" = None,
    views_per_step: int = 1,
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
    clock: Callable[[], float] = time.perf_counter,
) -> OptimResult:
    """Fit ``gaussians`` to posed images by 3DGS optimisation, optionally with densification.

    Args:
        gaussians: N initial Gaussians (not modified); their device and dtype are used.
        images: [V, 3, H, W] float targets in [0, 1] (linear colour, as the renderer outputs).
        cameras: V cameras of size W x H.
        steps: number of Adam steps (None: as many as ``seconds`` allows).
        seconds: wall-time budget in seconds (None: no limit): no step starts once it is spent
            (a step in progress finishes, so the run may overshoot by one step); setup and the
            final evaluation count. With both limits the first one reached ends the run.
        strategy: densification, "none" (default: the Gaussians keep their number), "default"
            (3DGS adaptive density control), "mcmc" (3DGS as MCMC) or a
            :class:`~resplat.optim.strategy.Strategy` instance (see :mod:`resplat.optim.strategy`).
        views_per_step: views rendered per step, 1..V (3DGS: 1; the loss is their mean).
        backend: rasteriser backend for :func:`resplat.render.render`.
        lr: learning rates (:class:`OptimConfig`); the position rate is scaled by the scene
            extent (:func:`~resplat.optim.init.scene_extent`) and decays log-linearly over the
            run (its steps, or its time budget when that ends it sooner).
        ssim_weight: weight w of (1 - SSIM) in the loss (0.2 in 3DGS).
        sh_degree: SH degree to fit (default the Gaussians' own; a higher one zero-pads the SH,
            a lower one leaves the higher coefficients untouched).
            The rendered degree rises from 0 by one every ``lr.sh_increase_every`` steps.
        background: [3] colour behind the splats (default black).
        prune_opacity: if given, Gaussians with opacity below it are removed every
            ``prune_every`` steps and at the end (e.g. 0.005 as in 3DGS).
        prune_every: pruning period in steps.
        eval_every: PSNR over all input views is computed every this many steps and at the
            last step (default: steps // 10, at least 1; with a time budget only, at the last
            step only); 0 never computes it.
        callback: called after every step with a :class:`Progress`; returning ``False``
            cancels: the loop stops and the partial result is returned with ``cancelled=True``.
        seed: seed of the view order and the strategy's draws (private generators); results
            are deterministic on CPU when the run is limited by steps.
        clock: the time source of the budget, in seconds (default ``time.perf_counter``;
            benchmarks pass one that stops while they evaluate).

    Returns:
        :class:`OptimResult`.

    Raises:
        ResplatError / ViewsError: bad arguments, image shape or range; pruning removed every
            Gaussian; a non-finite loss. BackendError: the backend cannot run.
    """
    t0 = clock()
    wall0 = time.perf_counter()
    _check_inputs(gaussians, images, cameras, steps, seconds, ssim_weight, prune_opacity, views_per_step)
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
    strategy = make_strategy(strategy)
    bg = torch.zeros(3, device=device, dtype=dtype) if background is None else torch.as_tensor(background).to(device=device, dtype=dtype)
    final_eval = eval_every is None or eval_every > 0
    if eval_every is None:
        eval_every = max(1, steps // 10) if steps is not None else 0  # time budget only: at the end
    eval_every = max(0, int(eval_every))
    extent = scene_extent(cameras)

    params = split_params(gaussians)
    optimizer = build_optimizer(params, lr, extent)
    strategy.initialize(params, seed, extent)
    means_group = next(g for g in optimizer.param_groups if g["name"] == "means")
    gen = torch.Generator().manual_seed(seed)
    stack: list[int] = []
    result = OptimResult(gaussians=gaussians.detach(), extent=extent, strategy=strategy.name)

    def do_prune() -> None:
        nonlocal params
        keep = torch.sigmoid(params["logit_opacities"].detach()) >= prune_opacity
        if not bool(keep.any()):
            raise ResplatError(f"optimize: pruning at opacity {prune_opacity} would remove every Gaussian")
        if not bool(keep.all()):
            params = ops.remove(params, optimizer, strategy.state, ~keep)

    def fraction(step: int, elapsed: float) -> float:
        f = 0.0 if steps is None else step / max(steps, 1)
        return max(f, 0.0 if seconds is None else elapsed / max(seconds, 1e-9))

    step, degree, last_eval, last_n = 0, 0, 0, len(params["means"])
    while (steps is None or step < steps) and (seconds is None or clock() - t0 < seconds):
        step += 1
        elapsed = clock() - t0
        batch = []
        while len(batch) < views_per_step:
            if not stack:
                stack = torch.randperm(len(views), generator=gen).tolist()
            v = stack.pop()
            if v not in batch:
                batch.append(v)
        means_group["lr"] = lr.means_lr_at(fraction(step, elapsed), extent)
        degree = min(target_degree, (step - 1) // lr.sh_increase_every)
        cams = views[batch[0]] if len(batch) == 1 else cameras[batch]
        out = render(params_to_gaussians(params), cams, sh_degree=degree, background=bg, backend=backend)
        loss = training_loss(out.rgb if len(batch) > 1 else out.rgb[0], images[batch] if len(batch) > 1 else images[batch[0]],
                             ssim_weight)
        extra = strategy.loss_terms(params)
        total_loss = loss if extra is None else loss + extra
        optimizer.zero_grad(set_to_none=True)
        strategy.before_backward(out)
        total_loss.backward()
        optimizer.step()
        result.losses.append(float(loss.detach()))
        if not math.isfinite(result.losses[-1]):
            raise ResplatError(f"optimize: the loss became {result.losses[-1]} at step {step} (diverged; lower the learning rates)")
        params = strategy.after_step(params, optimizer, StepInfo(step, fraction(step, clock() - t0), means_group["lr"],
                                                                 cameras.width, cameras.height, len(batch), out))
        del out
        last = (steps is not None and step == steps) or (seconds is not None and clock() - t0 >= seconds)
        if prune_opacity is not None and step % prune_every == 0 and not last:
            do_prune()
        if len(params["means"]) != last_n:
            last_n = len(params["means"])
            result.num_history.append((step, last_n))
        score = None
        if (eval_every and step % eval_every == 0) or (last and final_eval):
            score = _mean_psnr(params_to_gaussians(params), views, images, degree, bg, backend)
            result.psnr_history.append((step, score))
            last_eval = step
        if callback is not None and callback(Progress(step, steps, result.losses[-1], score, len(params["means"]),
                                                       lambda: params_to_gaussians(params).detach().clone(),
                                                       clock() - t0, seconds)) is False:
            result.cancelled = True
            break
    if prune_opacity is not None:
        do_prune()
    if final_eval and step > 0 and last_eval != step and not result.cancelled:
        result.psnr_history.append((step, _mean_psnr(params_to_gaussians(params), views, images, degree, bg, backend)))
    result.gaussians = params_to_gaussians(params).detach()
    result.seconds = time.perf_counter() - wall0
    return result


@torch.no_grad()
def _mean_psnr(g: Gaussians, views: list[Cameras], images: Tensor, degree: int, bg: Tensor, backend: str) -> float:
    """Mean PSNR (dB) of the clamped renders over all views, one view at a time."""
    scores = [psnr(render(g, cam, sh_degree=degree, background=bg, backend=backend).rgb[0].clamp(0, 1), images[i]) for i, cam in enumerate(views)]
    return float(torch.stack(scores).mean())
