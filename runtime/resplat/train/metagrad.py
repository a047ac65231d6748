"""Stage "metagrad": optimisation-aware fine-tuning of the initial model's Gaussian head.

ForeSplat (arXiv 2605.22020, "MetaGrad") observes that a feed-forward model trained for its
zero-step rendering error is not the best start for the optimiser that polishes it. MetaGrad
unrolls a short refinement trajectory from the prediction, samples anchor states along it and
back-propagates their aggregated *first-order* gradients to the prediction head, without
differentiating through the optimiser (no second derivatives, no inference cost).

Here, for one training example:

1. the initial model predicts the Gaussians G_0 from the context views (only the head,
   ``gaussian_head``, is trained in this stage; the rest is frozen);
2. G_0, detached, is polished for K steps against the context views exactly as ``resplat
   reconstruct --polish-seconds`` polishes (:func:`resplat.model.postprocess.polish`: 3DGS
   Adam rates, one view per step, SH degree up by one per step) but without densification, so
   that every state keeps G_0's rows: the states G_k at the anchor steps
   (:func:`~resplat.train.config.anchor_steps`: 0, K and evenly in between) are kept;
3. each anchor's image loss at the held-out target views gives g_k = dL(G_k)/dG_k (means,
   quats, log scales, logit opacities, SH; model frame);
4. the first-order approximation dG_k/dG_0 = I turns their mean into the gradient of G_0:
   the returned surrogate ``sum(G_0 * mean_k g_k)`` back-propagates exactly that to the head.

Anchor 0 is the plain stage-"initial" image loss, so the zero-step quality stays in the
objective; the logged ``loss`` is the mean anchor loss, ``l1_k`` each anchor's L1.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor

from ..gaussians import Gaussians
from .config import TrainConfig, anchor_steps
from .losses import ImageLoss
from .step import _render_rgb, _use_depth, model_frame

#: the Gaussians' fields the anchor gradients are taken in, in this order.
FIELDS = ("means", "quats", "log_scales", "logit_opacities", "sh")


def _fields(g: Gaussians) -> list[Tensor]:
    return [getattr(g, name) for name in FIELDS]


def metagrad_loss(model, sample, loss_fn: ImageLoss, cfg: TrainConfig, device: torch.device,
                  rng: random.Random) -> tuple[Tensor, dict]:
    """Stage "metagrad" (module docstring): a surrogate whose gradient, with respect to the
    model's parameters, is the first-order MetaGrad gradient of ``sample``.

    Args:
        model: :class:`resplat.model.ReSplatModel` (the head trainable, the rest frozen).
        sample: a training example (:mod:`resplat.train.step`).
        loss_fn: the image loss of every anchor (:class:`ImageLoss`).
        cfg: ``metagrad_steps`` K, ``metagrad_anchors``, ``depth_prior_prob``.
        device: torch device.
        rng: draws the exact-depth coin and the inner loop's seed.

    Returns:
        (surrogate 0-d tensor, parts): backward() of the surrogate gives the head its gradient;
        its value is not a loss. ``parts``: ``loss`` (mean anchor loss), ``l1_<k>`` per anchor
        step k, ``prior`` (1 when the exact depth was fed).
    """
    from ..model.postprocess import polish

    use = _use_depth(sample, cfg, rng)
    ctx_img, tgt_img, ctx_cams, tgt_cams, depth, frame = model_frame(sample, device, model.config, use)
    pred = model.encoder.forward_initial(ctx_img[None], ctx_cams, depth, frame)
    g0 = pred.gaussians[0]
    anchors = anchor_steps(cfg.metagrad_steps, cfg.metagrad_anchors)
    states = {0: g0.detach().to(dtype=torch.float32)}
    seed = rng.randrange(2**31)
    if cfg.metagrad_steps > 0:
        def keep(progress) -> None:
            if progress.step in anchors:
                states[progress.step] = progress.snapshot()

        polish(states[0], ctx_img, frame.cameras(ctx_cams), cfg.metagrad_steps, strategy="none", eval_every=0,
               callback=keep, seed=seed)  # the polish's own rates (3DGS's, SH warm-up one step per degree)
    total = [torch.zeros_like(f, dtype=torch.float32) for f in _fields(g0)]
    parts: dict = {"prior": int(use)}
    losses = []
    for k in anchors:
        leaves = [f.detach().clone().requires_grad_(True) for f in _fields(states[k])]
        loss_k, p = loss_fn(_render_rgb(Gaussians(*leaves), tgt_cams, model.config), tgt_img)
        for acc, g in zip(total, torch.autograd.grad(loss_k, leaves)):
            acc += g / len(anchors)
        losses.append(float(loss_k.detach()))
        parts[f"l1_{k}"] = p["l1"]
    surrogate = sum((f.float() * g).sum() for f, g in zip(_fields(g0), total))
    parts["loss"] = sum(losses) / len(losses)
    return surrogate, parts
