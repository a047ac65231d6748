"""Densification strategies: when to grow, prune, reset or relocate Gaussians during optimisation.

One small interface (:class:`Strategy`), three implementations, chosen by name with
:func:`make_strategy` (``"default"``, ``"mcmc"``, ``"none"``):

- :class:`DefaultStrategy`: the adaptive density control of 3D Gaussian Splatting (Kerbl et al.
  2023, Sec. 5; gsplat 1.5.3 ``gsplat/strategy/default.py``): the norm of each Gaussian's
  screen-space mean gradient, in NDC units (pixel gradient x W/2, H/2, x views per step), is
  averaged over the steps that drew it; every ``refine_every`` steps Gaussians above
  ``grow_grad2d`` are cloned when small (max scale <= ``grow_scale3d`` x extent) or split when
  large, then Gaussians below ``prune_opa`` opacity (and, after the first opacity reset, those
  larger than ``prune_scale3d`` x extent) are removed; every ``reset_every`` steps opacities are
  clamped to 2 x ``prune_opa``.
- :class:`MCMCStrategy`: 3DGS as MCMC (Kheradmand et al. 2024; gsplat ``mcmc.py``): every
  ``refine_every`` steps dead Gaussians (opacity <= ``min_opacity``) are relocated onto live ones
  and ``grow_rate`` x N new ones are sampled, up to ``cap_max``; after every step the means get
  the opacity-gated covariance noise; the loss gets L1 opacity and scale regularisers.
- :class:`NoStrategy`: a fixed set of Gaussians.

Schedules are in steps, as gsplat's, but start earlier and refine more often by default
(here: start 50, every 25; gsplat: 500 and 100, for 30k-step runs) because a CPU polish does a
few hundred steps;
refinement stops once ``refine_stop`` of the run (a fraction of the steps or of the time budget)
is done, as 3DGS stops densifying halfway (15k of 30k; gsplat MCMC: 25k of 30k).
``cap_max=None`` caps growth at ``cap_factor`` x the initial count (gsplat MCMC needs an
explicit cap; its default strategy has none, which on CPU can make a time budget useless).

MCMC's defaults are tuned for what a CPU run can do in minutes from a random start with few
views (benchmarks/results/polish_curve.md): relocation only (``cap_factor`` 1) with refinement
every 10 steps, and opacity / scale regularisers 50 x and 30 x gsplat's 0.01. Both regularisers
drive unsupported Gaussians (the floaters a sparse random start is full of) to zero opacity and
small size, so relocation moves them onto the surfaces the views agree on, and the smaller
Gaussians make each step cheaper.

Unlike gsplat's, our MCMC is scale-free: the scale regulariser acts on scale / extent and the
position noise on covariance / extent^2 (gsplat's act on metres and metres^2, so a scene modelled
20 x larger would polish differently). The weights are gsplat-equivalent at the extent they were
tuned at (the assets' 8-camera rig, :func:`resplat.optim.init.scene_extent` 2.88 m): scale_reg
0.864 = 0.3 x 2.88, noise_lr 4.15e6 = 5e5 x 2.88^2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import ResplatError
from . import ops

#: Names accepted by :func:`make_strategy` and ``--strategy``.
STRATEGIES = ("default", "mcmc", "none")


@dataclass(frozen=True)
class StepInfo:
    """What a strategy sees after each optimiser step.

    Attributes:
        step: steps done (1-based). fraction: fraction of the run done in [0, 1] (of the steps or
        of the time budget, whichever is further). means_lr: current position learning rate
        (metres per unit step). width, height: image size (px). (The scene extent is a constant
        of the run, given once to :meth:`Strategy.initialize`.)
        n_views: views rendered in this step. render: the step's :class:`resplat.render.RenderOutput`.
    """

    step: int
    fraction: float
    means_lr: float
    width: int
    height: int
    n_views: int
    render: object = field(repr=False)


class Strategy:
    """Interface: ``initialize`` once, then per step ``loss_terms`` (added to the loss),
    ``before_backward`` (e.g. retain the 2D-mean gradient), ``after_step`` (after Adam's step;
    returns the possibly new parameter dict). ``state`` holds per-Gaussian tensors that follow
    every row change (pruning by the loop included)."""

    name = "none"
    #: Most Gaussians a strategy may grow to (None: ``cap_factor`` x the initial count); the
    #: configurable strategies override both as dataclass fields.
    cap_max: int | None = None
    cap_factor: float = 1.0

    def __init__(self) -> None:
        self.state: dict[str, Tensor] = {}
        self.generator = torch.Generator()
        self.cap = 0
        self.extent = 1.0

    def initialize(self, params: dict[str, Tensor], seed: int = 0, extent: float = 1.0) -> None:
        """Reset the running state for the Gaussians of ``params``; random draws use ``seed``;
        ``extent`` is the scene extent in metres (:func:`resplat.optim.init.scene_extent`)."""
        self.generator.manual_seed(seed + 7919)
        self.state = {}
        self.extent = float(extent)
        n = len(params["means"])
        self.cap = int(self.cap_max) if self.cap_max is not None else int(self.cap_factor * n)

    def loss_terms(self, params: dict[str, Tensor]) -> Tensor | None:
        return None

    def before_backward(self, render) -> None:
        pass

    def after_step(self, params: dict[str, Tensor], optimizer, info: StepInfo) -> dict[str, Tensor]:
        return params


class NoStrategy(Strategy):
    """No densification: the Gaussians keep their number (pruning by ``prune_opacity`` aside)."""


@dataclass
class _DefaultConfig:
    prune_opa: float = 0.005
    grow_grad2d: float = 0.0002
    grow_scale3d: float = 0.01
    prune_scale3d: float = 0.1
    refine_start_iter: int = 50
    refine_every: int = 25
    reset_every: int = 3000
    refine_stop: float = 0.6
    cap_max: int | None = None
    cap_factor: float = 3.0


class DefaultStrategy(_DefaultConfig, Strategy):
    """3DGS adaptive density control (see the module docstring for the rules).

    Attributes (gsplat 1.5.3 names and values unless noted): prune_opa 0.005, grow_grad2d
    0.0002 (NDC units), grow_scale3d 0.01 and prune_scale3d 0.1 (x scene extent),
    refine_start_iter 50 (gsplat 500), refine_every 25 (gsplat 100), reset_every 3000,
    refine_stop 0.6 (fraction of the run; gsplat 15000 steps of 30000), cap_max (None:
    ``cap_factor`` 3 x the initial count; gsplat: none).
    """

    name = "default"

    def __init__(self, **kwargs) -> None:
        _DefaultConfig.__init__(self, **kwargs)
        Strategy.__init__(self)
        if not 0 < self.prune_opa < 0.5:
            raise ResplatError(f"DefaultStrategy: prune_opa must be in (0, 0.5), got {self.prune_opa}")
        if self.refine_every < 1 or self.reset_every < 1:
            raise ResplatError("DefaultStrategy: refine_every and reset_every must be >= 1")

    def initialize(self, params, seed: int = 0, extent: float = 1.0) -> None:
        super().initialize(params, seed, extent)
        n, like = len(params["means"]), params["means"].detach()
        self.state = {"grad2d": like.new_zeros(n), "count": like.new_zeros(n)}

    def before_backward(self, render) -> None:
        if render.means2d is not None and render.means2d.requires_grad:
            render.means2d.retain_grad()

    def accumulate(self, render, width: int, height: int, n_views: int) -> None:
        """Add the NDC norm of each drawn pair's 2D-mean gradient to its Gaussian's sum (gsplat
        ``_update_state``: grad x (W/2, H/2) x n_views) and count the pair."""
        g = None if render.means2d is None else render.means2d.grad
        if g is None:
            raise ResplatError("the default strategy needs the screen-space mean gradient, which this render did not give")
        scale = g.new_tensor([width / 2 * n_views, height / 2 * n_views])
        ids = render.gaussian_ids
        self.state["grad2d"].index_add_(0, ids, (g.detach() * scale).norm(dim=-1).to(self.state["grad2d"]))
        self.state["count"].index_add_(0, ids, torch.ones_like(ids, dtype=self.state["count"].dtype))

    def after_step(self, params, optimizer, info: StepInfo):
        if info.fraction >= self.refine_stop:
            return params
        self.accumulate(info.render, info.width, info.height, info.n_views)
        step = info.step
        if step > self.refine_start_iter and step % self.refine_every == 0:
            params = self.grow(params, optimizer, self.extent)
            params = self.prune(params, optimizer, self.extent, step)
            self.state["grad2d"].zero_()
            self.state["count"].zero_()
        if step % self.reset_every == 0:
            params = ops.reset_opacity(params, optimizer, 2 * self.prune_opa)
        return params

    def grow(self, params, optimizer, extent: float):
        """Clone small and split large Gaussians whose mean NDC gradient exceeds grow_grad2d;
        with more candidates than the cap allows, the largest gradients win."""
        grads = self.state["grad2d"] / self.state["count"].clamp_min(1)
        high = grads > self.grow_grad2d
        room = self.cap - len(grads)
        if int(high.sum()) > room:
            keep = torch.zeros_like(high)
            if room > 0:
                keep[torch.topk(torch.where(high, grads, -1.0), room).indices] = True
            high = high & keep
        small = params["log_scales"].detach().exp().amax(-1) <= self.grow_scale3d * extent
        clone, split = high & small, high & ~small
        params = ops.duplicate(params, optimizer, self.state, clone)
        split = torch.cat([split, split.new_zeros(int(clone.sum()))])
        return ops.split(params, optimizer, self.state, split, self.generator)

    def prune(self, params, optimizer, extent: float, step: int):
        """Remove Gaussians below prune_opa opacity and, after the first reset, oversized ones
        (never all of them)."""
        drop = torch.sigmoid(params["logit_opacities"].detach()) < self.prune_opa
        if step > self.reset_every:
            drop |= params["log_scales"].detach().exp().amax(-1) > self.prune_scale3d * extent
        if bool(drop.all()) or not bool(drop.any()):
            return params
        return ops.remove(params, optimizer, self.state, drop)


@dataclass
class _MCMCConfig:
    cap_max: int | None = None
    cap_factor: float = 1.0
    noise_lr: float = 4.15e6
    refine_start_iter: int = 50
    refine_every: int = 10
    refine_stop: float = 0.8
    min_opacity: float = 0.005
    grow_rate: float = 0.05
    opacity_reg: float = 0.5
    scale_reg: float = 0.864


class MCMCStrategy(_MCMCConfig, Strategy):
    """3DGS as MCMC (see the module docstring).

    Attributes (gsplat 1.5.3 ``MCMCStrategy`` and simple_trainer's MCMC values unless noted):
    cap_max (None: ``cap_factor`` x the initial count; gsplat 1,000,000), cap_factor 1 (ours:
    relocation only; growth needs a cap_max or cap_factor above 1), noise_lr 4.15e6 (per
    extent^2: the noise is lr x noise_lr x covariance / extent^2; gsplat 5e5 on metres^2, equal
    at a 2.88 m extent), refine_start_iter 50 (gsplat 500), refine_every 10 (gsplat 100),
    refine_stop 0.8 (gsplat 25000 of 30000 steps), min_opacity 0.005, grow_rate 0.05 (gsplat's
    1.05 x N target), opacity_reg 0.5 and scale_reg 0.864 (weights of mean(opacity) and
    mean(scale) / extent in the loss; gsplat 0.01 each on metres; 0.864 is 0.3 per metre at
    2.88 m). Ours are measured from a random start on the third-party assets, 8 views,
    10 minutes on one CPU thread (module docstring; benchmarks/results/polish_curve.md): held-out
    content PSNR on the spider 15.12 dB against gsplat's values (with a 3 x cap) 13.25 and
    no densification 12.89.
    """

    name = "mcmc"

    def __init__(self, **kwargs) -> None:
        _MCMCConfig.__init__(self, **kwargs)
        Strategy.__init__(self)
        if not 0 < self.min_opacity < 1:
            raise ResplatError(f"MCMCStrategy: min_opacity must be in (0, 1), got {self.min_opacity}")
        if self.grow_rate < 0 or self.refine_every < 1:
            raise ResplatError("MCMCStrategy: grow_rate must be >= 0 and refine_every >= 1")
        self.binoms = ops.binomial_table()

    def loss_terms(self, params):
        terms = []
        if self.opacity_reg > 0:
            terms.append(self.opacity_reg * torch.sigmoid(params["logit_opacities"]).mean())
        if self.scale_reg > 0:
            terms.append(self.scale_reg * params["log_scales"].exp().mean() / self.extent)
        return sum(terms) if terms else None

    def after_step(self, params, optimizer, info: StepInfo):
        step = info.step
        if info.fraction < self.refine_stop and step > self.refine_start_iter and step % self.refine_every == 0:
            dead = torch.sigmoid(params["logit_opacities"].detach()) <= self.min_opacity
            params = ops.relocate(params, optimizer, self.state, dead, self.binoms, self.min_opacity, self.generator)
            n = len(params["means"])
            add = max(0, min(self.cap, int((1 + self.grow_rate) * n)) - n)
            params = ops.sample_add(params, optimizer, self.state, add, self.binoms, self.min_opacity, self.generator)
        ops.inject_noise(params, info.means_lr * self.noise_lr / self.extent**2, self.generator)
        return params


def make_strategy(name: "str | Strategy | None") -> Strategy:
    """The strategy called ``name`` (one of :data:`STRATEGIES`) with its defaults; a
    :class:`Strategy` instance is returned as is, None means ``"none"``.

    Raises:
        ResplatError: an unknown name.
    """
    if isinstance(name, Strategy):
        return name
    if name is None or name == "none":
        return NoStrategy()
    if name == "default":
        return DefaultStrategy()
    if name == "mcmc":
        return MCMCStrategy()
    raise ResplatError(f"unknown densification strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
