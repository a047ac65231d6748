"""Loss of one training example for each stage (the forward half of a training step).

A training example is anything with the attributes of ``resplat.data.SceneSample``:
``images`` [V, 3, H, W] float in [0, 1], ``depths`` [V, 1, H, W] metres (or None), ``cameras``
(:class:`~resplat.cameras.Cameras`, OpenCV, pixels), ``context`` and ``target`` (lists of view
indices). Context views feed the model; the loss is measured on the target views rendered from
the predicted Gaussians (paper section "Training"; both sets in the model frame of the context
views, :mod:`resplat.model.frame`). With probability ``TrainConfig.depth_prior_prob`` a sample
that has depth maps feeds its exact context depth to the model (``forward_initial(depths=...)``,
as ``reconstruct`` does with Blender's depth pass), so one model serves both inputs.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import ResplatError
from ..model.frame import make_model_frame
from ..model.updater import Updater
from ..render import render
from .config import TrainConfig
from .losses import ImageLoss, iteration_weights, log_depth_l1


class TrainSampleError(ResplatError, ValueError):
    """A training example that cannot be used (views, sizes)."""


def _subset(cams: Cameras, idx: list[int]) -> Cameras:
    names = [cams.names[i] for i in idx] if cams.names else None
    return Cameras.from_c2w(cams.c2w[idx], cams.K[idx], cams.width, cams.height, names)


def model_frame(sample, device: torch.device, config, use_depth: bool = False):
    """(context images [Vc, 3, H, W], target images [Vt, 3, H, W], context cameras (world),
    target cameras (model frame), context depth [1, Vc, H, W] or None, the
    :class:`~resplat.model.frame.ModelFrame`) on ``device``. The frame is made from the context
    cameras, and from the context depth when ``use_depth`` (which also returns it)."""
    ctx, tgt = list(sample.context), list(sample.target)
    if len(ctx) < 2 or not tgt:
        raise TrainSampleError(f"training example needs >= 2 context and >= 1 target views, got {len(ctx)} and {len(tgt)}")
    cams = sample.cameras.to(device=device, dtype=torch.float32)
    images = sample.images.to(device=device, dtype=torch.float32)
    depths = getattr(sample, "depths", None)
    depth = None
    if use_depth and depths is not None:
        depth = depths[ctx].to(device=device, dtype=torch.float32)[:, 0][None]
    ctx_cams = _subset(cams, ctx)
    frame = make_model_frame(ctx_cams.c2w[None], config, depth)
    return images[ctx], images[tgt], ctx_cams, frame.cameras(_subset(cams, tgt)), depth, frame


def _render_rgb(gaussians, cameras: Cameras, config) -> Tensor:
    return render(gaussians, cameras, near=config.near, far=config.far).rgb


def _use_depth(sample, cfg: TrainConfig, rng: random.Random | None) -> bool:
    """Feed this sample's exact depth? (drawn from ``rng`` with ``cfg.depth_prior_prob``)."""
    if getattr(sample, "depths", None) is None or cfg.depth_prior_prob <= 0 or rng is None:
        return False
    return rng.random() < cfg.depth_prior_prob


def initial_loss(model, sample, loss_fn: ImageLoss, cfg: TrainConfig, device: torch.device,
                 rng: random.Random | None = None) -> tuple[Tensor, dict]:
    """Stage "initial": image loss of the initial Gaussians at the target views, plus
    ``cfg.depth_weight`` * :func:`log_depth_l1` of the network's context depth (in the model
    frame's units) when the sample has depth; ``parts["prior"]`` is 1 when the exact depth was
    fed (:func:`_use_depth`)."""
    use = _use_depth(sample, cfg, rng)
    ctx_img, tgt_img, ctx_cams, tgt_cams, depth, frame = model_frame(sample, device, model.config, use)
    pred = model.encoder.forward_initial(ctx_img[None], ctx_cams, depth, frame)
    rgb = _render_rgb(pred.gaussians[0], tgt_cams, model.config)
    loss, parts = loss_fn(rgb, tgt_img)
    parts["prior"] = int(use)
    depths = getattr(sample, "depths", None)
    if depths is not None and cfg.depth_weight > 0:
        gt = frame.depth(depths[list(sample.context)].to(device=device, dtype=torch.float32)[None])[0]
        d = log_depth_l1(pred.depth[0], gt)
        loss = loss + cfg.depth_weight * d
        parts["depth"] = float(d.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts


def update_loss(model, sample, loss_fn: ImageLoss, cfg: TrainConfig, device: torch.device,
                rng: random.Random, T: int | None = None, step: int = 0) -> tuple[Tensor, dict]:
    """Stage "update": the frozen initial model (no gradient) gives the first Gaussians and the
    hidden state; T ~ U{1..cfg.max_iterations_at(step)} (from ``rng``, or given) updater steps
    follow, each detaching the previous Gaussians (:meth:`Updater.step`, as the release); the loss
    is sum_t gamma^(T-1-t) * image loss of iteration t's Gaussians at the target views, plus
    ``cfg.stability_weight`` times the mean absolute parameter change per iteration
    (:class:`TrainConfig` ``stability_weight``). ``parts`` logs the target-view L1 of the initial
    Gaussians as ``l1_0`` (no gradient) beside ``l1_t`` of each iteration, so the log shows what
    the updater adds, and ``stability`` (the mean change, logged whatever its weight)."""
    use = _use_depth(sample, cfg, rng)
    ctx_img, tgt_img, ctx_cams, tgt_cams, depth, frame = model_frame(sample, device, model.config, use)
    enc = model.encoder
    with torch.no_grad():
        pred = enc.forward_initial(ctx_img[None], ctx_cams, depth, frame)
    T = T if T is not None else rng.randint(1, cfg.max_iterations_at(step))
    updater = Updater(enc, model.config, amp=getattr(enc, "amp", True))
    state = pred.update_state(0)
    hidden = updater.initial_hidden(pred.condition_features)
    targets = updater.target_features(ctx_img, state.grid[1:])
    total = 0.0
    parts: dict = {"T": T, "prior": int(use)}
    ctx_cams = frame.cameras(ctx_cams)
    with torch.no_grad():
        parts["l1_0"] = float((_render_rgb(state.to_gaussians(), tgt_cams, model.config) - tgt_img).abs().mean())
    change, before = 0.0, state.as_vector().detach()
    for t, w in enumerate(iteration_weights(T, cfg.gamma)):
        state, hidden = updater.step(state, hidden, ctx_img, ctx_cams, targets)
        after = state.as_vector()
        change = change + (after - before).abs().mean() / T
        before = after.detach()  # the next step starts from the detached state (Updater.step)
        loss_t, p = loss_fn(_render_rgb(state.to_gaussians(), tgt_cams, model.config), tgt_img)
        total = total + w * loss_t
        parts[f"l1_{t + 1}"] = p["l1"]
    if cfg.stability_weight > 0:
        total = total + cfg.stability_weight * change
    parts["stability"] = float(change.detach())
    parts["loss"] = float(total.detach())
    return total, parts
