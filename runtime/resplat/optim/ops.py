"""Densification operations on trainable Gaussians that keep Adam's moments with their Gaussians.

Every operation takes the parameter dict of :func:`~resplat.optim.params.split_params`, its Adam
optimizer and a strategy's per-Gaussian running state (a dict of tensors with N rows, e.g. the
accumulated screen-space gradient), edits rows of all three consistently through
:func:`~resplat.optim.params.update_rows`, and returns the new parameter dict.

Semantics (3D Gaussian Splatting, Kerbl et al. 2023, Sec. 5, ``densify_and_clone`` /
``densify_and_split`` / ``reset_opacity``; gsplat 1.5.3 ``gsplat/strategy/ops.py``; MCMC:
Kheradmand et al. 2024, "3D Gaussian Splatting as Markov Chain Monte Carlo", Sec. 4 and eq. 9):

- :func:`duplicate` (clone): copies appended at the end, new Adam moments zero, state copied.
- :func:`split`: each selected Gaussian is replaced by 2 children whose means are drawn from the
  parent's Gaussian (mean + R S z, z ~ N(0, I)), scales = parent scales / 1.6, other attributes
  copied; the children go to the end with zero moments, the parent is removed.
- :func:`remove`: rows dropped from parameters, moments and state.
- :func:`reset_opacity`: opacities clamped to at most ``value``; their moments zeroed.
- :func:`relocate`: dead Gaussians take the parameters of live ones drawn with probability
  proportional to opacity; source and copies get the opacity / scale of eq. 9
  (:func:`relocation_correction`), their moments and state are zeroed.
- :func:`sample_add`: as relocate, but the copies are appended (growth).
- :func:`inject_noise`: the MCMC position noise, cov @ z, z ~ N(0, I) scaled by
  ``scaler`` and a sigmoid gate that is ~1 only for nearly transparent Gaussians.

Deviation from gsplat: :func:`relocate` also zeroes the moments of the overwritten (dead) rows
and :func:`sample_add` those of its sources, whose parameters changed; gsplat leaves both.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..gaussians import quat_to_rotmat
from .params import update_rows

#: Split children's scales are the parent's divided by this (3DGS ``densify_and_split``: 0.8 * N
#: with N = 2, i.e. / 1.6; gsplat ``split``).
SPLIT_SCALE_DIVISOR = 1.6
#: Largest number of copies of one Gaussian eq. 9 is evaluated for (gsplat's ``n_max`` = 51).
N_MAX = 51


def _cat_state(state: dict[str, Tensor], rows: Tensor, keep: Tensor | None = None, zero: bool = False) -> None:
    """In place: state[k] = cat(state[k][keep], state[k][rows] (or zeros))."""
    for k, v in state.items():
        base = v if keep is None else v[keep]
        extra = torch.zeros_like(v[rows]) if zero else v[rows]
        state[k] = torch.cat([base, extra])


def remove(params: dict[str, Tensor], optimizer, state: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
    """Drop the Gaussians where ``mask`` [N] bool is True (parameters, moments, state)."""
    keep = ~mask
    for k in state:
        state[k] = state[k][keep]
    return update_rows(params, optimizer, lambda n, p: p[keep].clone(), lambda n, v: v[keep].clone())


def duplicate(params: dict[str, Tensor], optimizer, state: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
    """Append a copy of every Gaussian where ``mask`` [N] bool is True (3DGS clone); the copies'
    Adam moments are zero, their running state is the original's."""
    sel = mask.nonzero()[:, 0]
    _cat_state(state, sel)
    return update_rows(params, optimizer, lambda n, p: torch.cat([p, p[sel]]),
                       lambda n, v: torch.cat([v, torch.zeros_like(v[sel])]))


def split(params: dict[str, Tensor], optimizer, state: dict[str, Tensor], mask: Tensor,
          generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Replace every Gaussian where ``mask`` [N] bool is True by two children (3DGS split).

    Children means: mean + R diag(s) z with z ~ N(0, I_3) drawn from ``generator`` (so their
    expected mean is the parent's and their spread is the parent's covariance); children log
    scales: log(s / 1.6); other attributes copied. Order: the unselected Gaussians first (their
    order kept), then the children (first child of each parent, then second). Moments of the
    children are zero; their state is the parent's.
    """
    sel = mask.nonzero()[:, 0]
    rest = (~mask).nonzero()[:, 0]
    means, log_scales, quats = params["means"].detach(), params["log_scales"].detach(), params["quats"].detach()
    scales = log_scales[sel].exp()
    z = torch.randn(2, len(sel), 3, generator=generator, dtype=torch.float64).to(means)
    offsets = torch.einsum("nij,nj,bnj->bni", quat_to_rotmat(quats[sel]), scales, z)  # [2, S, 3]

    def param_fn(name: str, p: Tensor) -> Tensor:
        if name == "means":
            children = (p[sel] + offsets).reshape(-1, 3)
        elif name == "log_scales":
            children = (scales / SPLIT_SCALE_DIVISOR).log().repeat(2, 1)
        else:
            children = p[sel].repeat(2, *([1] * (p.dim() - 1)))
        return torch.cat([p[rest], children])

    def moment_fn(name: str, v: Tensor) -> Tensor:
        return torch.cat([v[rest], v.new_zeros((2 * len(sel), *v.shape[1:]))])

    for k, v in state.items():
        state[k] = torch.cat([v[rest], v[sel].repeat(2, *([1] * (v.dim() - 1)))])
    return update_rows(params, optimizer, param_fn, moment_fn)


def reset_opacity(params: dict[str, Tensor], optimizer, value: float) -> dict[str, Tensor]:
    """Clamp every opacity to at most ``value`` in (0, 1) (3DGS ``reset_opacity``: 0.01; gsplat:
    2 x the pruning threshold) and zero the opacity moments; other groups are untouched."""
    limit = math.log(value / (1 - value))

    def param_fn(name: str, p: Tensor) -> Tensor:
        return p.clamp_max(limit) if name == "logit_opacities" else p

    def moment_fn(name: str, v: Tensor) -> Tensor:
        return torch.zeros_like(v) if name == "logit_opacities" else v

    return update_rows(params, optimizer, param_fn, moment_fn)


def binomial_table(n_max: int = N_MAX) -> Tensor:
    """[n_max, n_max] float64 binomial coefficients C(n, k) (0 where k > n)."""
    t = torch.zeros(n_max, n_max, dtype=torch.float64)
    for n in range(n_max):
        for k in range(n + 1):
            t[n, k] = math.comb(n, k)
    return t


def relocation_correction(opacities: Tensor, scales: Tensor, ratios: Tensor, binoms: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Opacity and scales of each of N copies that replace one Gaussian (Kheradmand et al. 2024,
    eq. 9; gsplat ``compute_relocation``):

        o_new = 1 - (1 - o)^(1/N),
        s_new = o / (sum_{i=1..N} sum_{k=0..i-1} C(i-1, k) (-1)^k / sqrt(k+1) o_new^(k+1)) * s

    so that N copies stacked at the same place composite to the original's opacity at its centre
    (1 - (1 - o_new)^N = o) and, to first order in o, to the original's image.

    Args:
        opacities: [M] opacities in (0, 1). scales: [M, 3] linear scales (metres).
        ratios: [M] int number of copies N >= 1 (clamped to 1..:data:`N_MAX`).
        binoms: optional :func:`binomial_table` (built when None).

    Returns:
        (new opacities [M], new scales [M, 3]) in the input dtype (computed in float64).
    """
    binoms = binomial_table() if binoms is None else binoms
    n_max = binoms.shape[0]
    o = opacities.double()
    n = ratios.clamp(1, n_max).to(torch.long)
    o_new = 1 - (1 - o).pow(1.0 / n.double())
    k = torch.arange(n_max, dtype=torch.float64)
    # coef[N-1, k] = sum_{i=k+1..N} C(i-1, k) (-1)^k / sqrt(k+1): cumulative over i of binoms[i-1, k]
    coef = binoms.to(torch.float64).cumsum(0) * ((-1.0) ** k / (k + 1).sqrt())
    powers = o_new[:, None] ** (k + 1)  # [M, n_max]
    denom = (coef[n - 1] * powers).sum(1)
    new_scales = (o / denom)[:, None] * scales.double()
    return o_new.to(opacities.dtype), new_scales.to(scales.dtype)


def _relocated_values(params: dict[str, Tensor], sources: Tensor, binoms: Tensor, min_opacity: float) -> tuple[Tensor, Tensor]:
    """Corrected (logit opacity, log scales) of the sampled ``sources`` (with repeats)."""
    opac = torch.sigmoid(params["logit_opacities"].detach())
    scales = params["log_scales"].detach().exp()
    ratios = torch.bincount(sources, minlength=len(opac))[sources] + 1
    o_new, s_new = relocation_correction(opac[sources], scales[sources], ratios, binoms)
    eps = torch.finfo(torch.float32).eps
    o_new = o_new.clamp(min_opacity, 1 - eps)
    return torch.logit(o_new), s_new.log()


def relocate(params: dict[str, Tensor], optimizer, state: dict[str, Tensor], dead: Tensor, binoms: Tensor,
             min_opacity: float = 0.005, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Move the Gaussians where ``dead`` [N] bool is True onto live ones (MCMC relocation).

    For each dead Gaussian a live source is drawn with probability proportional to its opacity
    (with replacement, from ``generator``); every source and its copies then hold the corrected
    opacity / scale of :func:`relocation_correction` with N = 1 + times drawn (opacity clamped to
    [min_opacity, 1 - eps]), the other attributes of the source. Moments and state of sources and
    copies are zeroed. The count is unchanged. Nothing happens when every Gaussian is dead.
    """
    dead_idx = dead.nonzero()[:, 0]
    alive_idx = (~dead).nonzero()[:, 0]
    if len(dead_idx) == 0 or len(alive_idx) == 0:
        return params
    probs = torch.sigmoid(params["logit_opacities"].detach()[alive_idx]).double().cpu()
    sources = alive_idx[torch.multinomial(probs, len(dead_idx), replacement=True, generator=generator).to(alive_idx.device)]
    logit, log_s = _relocated_values(params, sources, binoms, min_opacity)
    touched = torch.cat([sources, dead_idx])

    def param_fn(name: str, p: Tensor) -> Tensor:
        p = _corrected(name, p, sources, logit, log_s)
        p[dead_idx] = p[sources]
        return p

    def moment_fn(name: str, v: Tensor) -> Tensor:
        v = v.clone()
        v[touched] = 0
        return v

    for k, v in state.items():
        state[k] = v.clone()
        state[k][touched] = 0
    return update_rows(params, optimizer, param_fn, moment_fn)


def _corrected(name: str, p: Tensor, sources: Tensor, logit: Tensor, log_s: Tensor) -> Tensor:
    """A copy of parameter ``name`` with the sources' opacity logits / log-scales replaced by
    their relocation-corrected values (:func:`_relocated_values`); other parameters copied."""
    p = p.clone()
    if name == "logit_opacities":
        p[sources] = logit.to(p)
    elif name == "log_scales":
        p[sources] = log_s.to(p)
    return p


def sample_add(params: dict[str, Tensor], optimizer, state: dict[str, Tensor], n: int, binoms: Tensor,
               min_opacity: float = 0.005, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Append ``n`` Gaussians copied from sources drawn with probability proportional to opacity
    (MCMC growth), with the opacity / scale correction of :func:`relocation_correction` applied to
    sources and copies. Moments of sources and copies are zero, the copies' state zero."""
    if n <= 0:
        return params
    probs = torch.sigmoid(params["logit_opacities"].detach()).double().cpu()
    sources = torch.multinomial(probs, n, replacement=True, generator=generator).to(params["means"].device)
    logit, log_s = _relocated_values(params, sources, binoms, min_opacity)

    def param_fn(name: str, p: Tensor) -> Tensor:
        p = _corrected(name, p, sources, logit, log_s)
        return torch.cat([p, p[sources]])

    def moment_fn(name: str, v: Tensor) -> Tensor:
        v = v.clone()
        v[sources] = 0
        return torch.cat([v, v.new_zeros((n, *v.shape[1:]))])

    _cat_state(state, sources, zero=True)
    return update_rows(params, optimizer, param_fn, moment_fn)


@torch.no_grad()
def inject_noise(params: dict[str, Tensor], scaler: float, generator: torch.Generator | None = None) -> None:
    """MCMC exploration noise, in place on ``params["means"]`` (Kheradmand et al. 2024, eq. 10 as
    gsplat ``inject_noise_to_position``): means += Sigma (z * g(1 - o) * scaler), z ~ N(0, I_3),
    g(x) = 1 / (1 + exp(-100 (x - 0.995))), Sigma the world covariance (metres^2). ``scaler`` is
    the current position learning rate times the strategy's ``noise_lr`` (``MCMCStrategy`` also
    divides by the scene extent squared, so the noise scales with the scene)."""
    means = params["means"]
    o = torch.sigmoid(params["logit_opacities"])
    R = quat_to_rotmat(params["quats"])
    M = R * params["log_scales"].exp()[:, None, :]
    cov = M @ M.transpose(-1, -2)
    gate = 1 / (1 + torch.exp(-100 * ((1 - o) - 0.995)))
    z = torch.randn(means.shape, generator=generator, dtype=torch.float64).to(means)
    means.add_(torch.einsum("nij,nj->ni", cov, z * gate[:, None] * scaler))
