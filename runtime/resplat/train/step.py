"""Loss of one training example for each stage (the forward half of a training step).

A training example is anything with the attributes of ``resplat.data.SceneSample``:
``images`` [V, 3, H, W] float in [0, 1], ``depths`` [V, 1, H, W] metres (or None), ``cameras``
(:class:`~resplat.cameras.Cameras`, OpenCV, pixels), ``context`` and ``target`` (lists of view
indices). Context views feed the model; the loss is measured on the target views rendered from
the predicted Gaussians (paper section "Training"; both sets in the frame of the middle
context view, as the release normalises poses).
"""

from __future__ import annotations

import random

import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import ResplatError
from ..model.poses import middle_view_transform, normalize_poses
from ..model.updater import Updater
from ..render import render
from .config import TrainConfig
from .losses import ImageLoss, iteration_weights, log_depth_l1


class TrainSampleError(ResplatError, ValueError):
    """A training example that cannot be used (views, sizes)."""


def _subset(cams: Cameras, idx: list[int], c2w: Tensor) -> Cameras:
    names = [cams.names[i] for i in idx] if cams.names else None
    return Cameras.from_c2w(c2w[idx], cams.K[idx], cams.width, cams.height, names)


def model_frame(sample, device: torch.device) -> tuple[Tensor, Tensor, Cameras, Cameras]:
    """(context images [Vc, 3, H, W], target images [Vt, 3, H, W], context cameras, target
    cameras) on ``device``, cameras re-expressed relative to the middle context view."""
    ctx, tgt = list(sample.context), list(sample.target)
    if len(ctx) < 2 or not tgt:
        raise TrainSampleError(f"training example needs >= 2 context and >= 1 target views, got {len(ctx)} and {len(tgt)}")
    cams = sample.cameras.to(device=device, dtype=torch.float32)
    c2w = cams.c2w
    ref = middle_view_transform(c2w[ctx])
    c2w = normalize_poses(c2w, ref)
    images = sample.images.to(device=device, dtype=torch.float32)
    return images[ctx], images[tgt], _subset(cams, ctx, c2w), _subset(cams, tgt, c2w)


def _render_rgb(gaussians, cameras: Cameras, config) -> Tensor:
    return render(gaussians, cameras, near=config.near, far=config.far).rgb


def initial_loss(model, sample, loss_fn: ImageLoss, cfg: TrainConfig, device: torch.device) -> tuple[Tensor, dict]:
    """Stage "initial": image loss of the initial Gaussians at the target views, plus
    ``cfg.depth_weight`` * :func:`log_depth_l1` of the context depth when the sample has depth."""
    ctx_img, tgt_img, ctx_cams, tgt_cams = model_frame(sample, device)
    pred = model.encoder.forward_initial(ctx_img[None], ctx_cams)
    rgb = _render_rgb(pred.gaussians[0], tgt_cams, model.config)
    loss, parts = loss_fn(rgb, tgt_img)
    depths = getattr(sample, "depths", None)
    if depths is not None and cfg.depth_weight > 0:
        d = log_depth_l1(pred.depth[0], depths[list(sample.context)].to(device=device, dtype=torch.float32))
        loss = loss + cfg.depth_weight * d
        parts["depth"] = float(d.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts


def update_loss(model, sample, loss_fn: ImageLoss, cfg: TrainConfig, device: torch.device,
                rng: random.Random, T: int | None = None) -> tuple[Tensor, dict]:
    """Stage "update": the frozen initial model (no gradient) gives the first Gaussians and the
    hidden state; T ~ U{1..max_iterations} (from ``rng``, or given) updater steps follow, each
    detaching the previous Gaussians (:meth:`Updater.step`, as the release); the loss is
    sum_t gamma^(T-1-t) * image loss of iteration t's Gaussians at the target views. ``parts``
    logs the target-view L1 of the initial Gaussians as ``l1_0`` (no gradient) beside ``l1_t`` of
    each iteration, so the log shows what the updater adds."""
    ctx_img, tgt_img, ctx_cams, tgt_cams = model_frame(sample, device)
    enc = model.encoder
    with torch.no_grad():
        pred = enc.forward_initial(ctx_img[None], ctx_cams)
    T = T if T is not None else rng.randint(1, cfg.max_iterations)
    updater = Updater(enc, model.config, amp=getattr(enc, "amp", True))
    state = pred.update_state(0)
    hidden = updater.initial_hidden(pred.condition_features)
    targets = updater.target_features(ctx_img, state.grid[1:])
    total = 0.0
    parts: dict = {"T": T}
    with torch.no_grad():
        parts["l1_0"] = float((_render_rgb(state.to_gaussians(), tgt_cams, model.config) - tgt_img).abs().mean())
    for t, w in enumerate(iteration_weights(T, cfg.gamma)):
        state, hidden = updater.step(state, hidden, ctx_img, ctx_cams, targets)
        loss_t, p = loss_fn(_render_rgb(state.to_gaussians(), tgt_cams, model.config), tgt_img)
        total = total + w * loss_t
        parts[f"l1_{t + 1}"] = p["l1"]
    parts["loss"] = float(total.detach())
    return total, parts
