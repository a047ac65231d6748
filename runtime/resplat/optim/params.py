"""Trainable Gaussian parameters, their Adam optimiser, and pruning that keeps Adam aligned.

As in 3DGS's ``GaussianModel`` (Kerbl et al. 2023; ``training_setup`` and
``_prune_optimizer``): one Adam parameter group per attribute, named after it, and pruning
slices each parameter and its ``exp_avg`` / ``exp_avg_sq`` moments with the same mask so
every kept Gaussian keeps its own optimiser history.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..gaussians import Gaussians
from .config import OptimConfig

#: Parameter-group names, in order.
GROUPS = ("means", "sh_dc", "sh_rest", "logit_opacities", "log_scales", "quats")


def split_params(gaussians: Gaussians) -> dict[str, Tensor]:
    """Leaf tensors requiring grad, one per group: means [N,3], sh_dc [N,1,3], sh_rest
    [N,K-1,3], logit_opacities [N], log_scales [N,3], quats [N,4] (copies; the input is untouched)."""
    g = gaussians.detach()
    raw = {
        "means": g.means,
        "sh_dc": g.sh[:, :1],
        "sh_rest": g.sh[:, 1:],
        "logit_opacities": g.logit_opacities,
        "log_scales": g.log_scales,
        "quats": g.quats,
    }
    return {k: v.clone().contiguous().requires_grad_(True) for k, v in raw.items()}


def params_to_gaussians(params: dict[str, Tensor]) -> Gaussians:
    """The Gaussians the parameters describe (differentiable: gradients reach the leaves)."""
    sh = torch.cat([params["sh_dc"], params["sh_rest"]], 1)
    return Gaussians(params["means"], params["quats"], params["log_scales"], params["logit_opacities"], sh)


def build_optimizer(params: dict[str, Tensor], config: OptimConfig, extent: float) -> torch.optim.Adam:
    """Adam with one named group per parameter and the 3DGS rates of ``config``; the means
    group starts at ``config.means_lr_init * extent`` (``extent`` in metres)."""
    lrs = {
        "means": config.means_lr_init * extent,
        "sh_dc": config.sh_dc_lr,
        "sh_rest": config.sh_rest_lr,
        "logit_opacities": config.opacity_lr,
        "log_scales": config.scale_lr,
        "quats": config.rotation_lr,
    }
    groups = [{"params": [params[name]], "lr": lrs[name], "name": name} for name in GROUPS]
    return torch.optim.Adam(groups, lr=0.0, eps=config.adam_eps)


def update_rows(params: dict[str, Tensor], optimizer: torch.optim.Adam,
                param_fn: Callable[[str, Tensor], Tensor],
                moment_fn: Callable[[str, Tensor], Tensor]) -> dict[str, Tensor]:
    """Replace every group's parameter by ``param_fn(name, p)`` (``p`` detached; the result
    becomes a new leaf requiring grad) and each of its Adam moments (``exp_avg``,
    ``exp_avg_sq``, ``max_exp_avg_sq``) by ``moment_fn(name, v)``; Adam's step count is kept.
    The one place where densification, pruning and relocation edit parameters and optimiser
    together (3DGS ``GaussianModel.cat_tensors_to_optimizer`` / ``_prune_optimizer``). Returns
    the new parameter dict; the optimizer is updated in place."""
    new = {}
    with torch.no_grad():
        for group in optimizer.param_groups:
            old, name = group["params"][0], group["name"]
            p = param_fn(name, old.detach()).contiguous().requires_grad_(True)
            state = optimizer.state.pop(old, None)
            if state:
                state = dict(state)
                for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                    if key in state:
                        state[key] = moment_fn(name, state[key]).contiguous()
                optimizer.state[p] = state
            group["params"][0] = p
            new[name] = p
    return new


def prune(params: dict[str, Tensor], optimizer: torch.optim.Adam, keep: Tensor) -> dict[str, Tensor]:
    """Keep only the Gaussians where ``keep`` [N] bool is True, in parameters and Adam state.

    Each group's parameter is replaced by a new leaf ``param[keep]`` and its ``exp_avg`` /
    ``exp_avg_sq`` are sliced with the same mask (the step count is kept), so optimisation
    continues exactly as if the removed Gaussians had never existed. Returns the new parameter
    dict (the optimizer is updated in place).
    """
    return update_rows(params, optimizer, lambda name, p: p[keep].clone(), lambda name, v: v[keep].clone())
