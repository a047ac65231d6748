"""Training losses: L1 + SSIM (+ LPIPS-VGG when weights are supplied) on rendered target views,
L1 of log depth, and the recurrent iteration weights gamma^(T-1-t).

Source: ReSplat paper section "Training" (L1 weight 1, VGG perceptual 0.5, iteration t of T
weighted 0.9^(T-1-t)); SSIM of Wang et al. 2004 (:func:`resplat.metrics.ssim`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..metrics import ssim
from .config import TrainConfig


def iteration_weights(T: int, gamma: float = 0.9) -> list[float]:
    """Weights of the losses after update iterations t = 0..T-1: gamma^(T-1-t) (last one 1)."""
    return [gamma ** (T - 1 - t) for t in range(T)]


class ImageLoss:
    """``l1 * |pred - target| + ssim_w * (1 - SSIM) + perceptual_w * LPIPS`` averaged over views.

    Args:
        config: weights (:class:`TrainConfig`); LPIPS is loaded from
            ``config.perceptual_weights`` when given (:func:`resplat.lpips_net.load_lpips`;
            raises its ResplatError for a bad file).

    ``__call__(pred, target)``: [V, 3, H, W] float images in [0, 1] (sRGB as stored) -> (scalar
    loss, dict of float parts for logging).
    """

    def __init__(self, config: TrainConfig, device: torch.device | str = "cpu"):
        self.config = config
        self.lpips = None
        if config.perceptual_weights and config.perceptual_weight > 0:
            from ..lpips_net import load_lpips

            self.lpips = load_lpips(config.perceptual_weights).to(device)

    def __call__(self, pred: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        cfg = self.config
        pred = pred.float()
        l1 = (pred - target).abs().mean()
        loss = cfg.l1_weight * l1
        parts = {"l1": float(l1.detach())}
        if cfg.ssim_weight > 0:
            s = ssim(pred.clamp(0, 1), target, padding="same").mean()
            loss = loss + cfg.ssim_weight * (1 - s)
            parts["ssim"] = float(s.detach())
        if self.lpips is not None:
            lp = self.lpips(pred.clamp(0, 1), target).mean()
            loss = loss + cfg.perceptual_weight * lp
            parts["lpips"] = float(lp.detach())
        return loss, parts


def log_depth_l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean |log pred - log target| over pixels where target > 0 (metres; pred [V, H', W'] is
    resized bilinearly to target's [V, 1, H, W] grid first). 0 when no pixel is valid."""
    if pred.shape[-2:] != target.shape[-2:]:
        pred = torch.nn.functional.interpolate(pred.reshape(-1, 1, *pred.shape[-2:]), size=target.shape[-2:],
                                               mode="bilinear", align_corners=True)
    pred = pred.reshape(target.shape)
    valid = target > 0
    if not valid.any():
        return pred.sum() * 0
    return (pred[valid].clamp_min(1e-6).log() - target[valid].log()).abs().mean()
