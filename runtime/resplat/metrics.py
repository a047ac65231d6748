"""Image-quality metrics: PSNR, SSIM (Wang et al. 2004) and LPIPS (Zhang et al. 2018).

All metrics take float images [B, 3, H, W] or [3, H, W] with values in [0, 1] (linear or sRGB:
the metrics do not care, but compare like with like) and return one value per image, [B] (a
0-d tensor for a single [3, H, W] image). They are differentiable torch code, so the SSIM here
is also the structural term of the 3DGS training loss (Kerbl et al. 2023, Sec. 7).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ResplatError
from .lpips_net import load_lpips


def _batched(pred: Tensor, target: Tensor, what: str) -> tuple[Tensor, Tensor, bool]:
    """Check shapes and add a batch axis to [C, H, W] inputs; returns (pred, target, single)."""
    if pred.shape != target.shape:
        raise ResplatError(f"{what}: prediction shape {list(pred.shape)} differs from target shape {list(target.shape)}")
    if pred.dim() not in (3, 4):
        raise ResplatError(f"{what}: images must be [B, C, H, W] or [C, H, W], got shape {list(pred.shape)}")
    single = pred.dim() == 3
    if single:
        pred, target = pred[None], target[None]
    return pred, target.to(pred), single


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB, 10 log10(data_range^2 / MSE), per image.

    Args:
        pred, target: [B, C, H, W] or [C, H, W] float tensors, same shape.
        data_range: peak value (1.0 for images in [0, 1]).
        mask: optional bool [B, H, W] (or [H, W]): the MSE is the mean over the masked pixels
            only (all channels), e.g. the pixels that see scene content; an image with no masked
            pixel gets NaN.

    Returns:
        [B] (or 0-d) PSNR in decibels, in the dtype of ``pred``; +inf for identical images.

    Raises:
        ResplatError: mismatched or non-image shapes, or a mask of another size.
    """
    pred, target, single = _batched(pred, target, "psnr")
    if mask is None:
        mse = (pred - target).square().flatten(1).mean(1)
    else:
        mask = mask[None] if mask.dim() == 2 else mask
        if tuple(mask.shape) != (pred.shape[0], *pred.shape[-2:]):
            raise ResplatError(f"psnr: mask must be [B, H, W] = {[pred.shape[0], *pred.shape[-2:]]}, "
                               f"got {list(mask.shape)}")
        m = mask.to(pred.device, pred.dtype)[:, None]
        count = m.flatten(1).sum(1) * pred.shape[1]
        mse = ((pred - target).square() * m).flatten(1).sum(1) / count
    out = 10.0 * torch.log10(data_range**2 / mse)
    return out[0] if single else out


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32, device=None) -> Tensor:
    """Normalised 1D Gaussian window [size], weights exp(-x^2 / (2 sigma^2)) at integer offsets
    x = -(size-1)/2 .. (size-1)/2 (Wang et al. 2004; the window of 3DGS's ``ssim`` and of
    ``skimage.metrics.structural_similarity(gaussian_weights=True)``)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return (w / w.sum()).to(dtype=dtype, device=device)


def ssim_map(
    pred: Tensor,
    target: Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
    padding: str = "valid",
) -> Tensor:
    """Per-pixel, per-channel SSIM map (Wang et al. 2004, Eq. 13 with Gaussian-weighted local
    statistics, population (not sample) covariances).

    Computed for speed, the one implementation behind every SSIM of the project (metrics, the
    training losses of :mod:`resplat.train.losses` and :mod:`resplat.optim.loop`): the five local
    statistics (means of pred, target, pred^2, target^2, pred x target) in one grouped
    convolution, and the 2D Gaussian window as two 1D passes (it is separable, and zero padding
    commutes with the split), 2 x 11 instead of 121 multiply-adds per pixel and statistic. Equal
    to the direct 2D-window formula up to rounding (tests/test_metrics.py, against skimage and a
    float64 evaluation of the formula).

    Args:
        pred, target: [B, C, H, W] float tensors.
        window_size, sigma: Gaussian window (11 and 1.5 px as in the paper and 3DGS).
        k1, k2: stabilising constants; C1 = (k1 L)^2, C2 = (k2 L)^2 with L = ``data_range``.
        padding: "valid" (no padding: map [B, C, H-10, W-10], every window inside the image;
            equals skimage's result, which crops a (window_size-1)/2 border) or "same" (zero
            padding: map [B, C, H, W], the 3DGS training loss's ``F.conv2d(padding=5)``).

    Returns:
        The SSIM map, same dtype as ``pred``; differentiable in both inputs.

    Raises:
        ResplatError: an unknown padding, or an image smaller than the window with "valid".
    """
    if padding not in ("valid", "same"):
        raise ResplatError(f"ssim: padding must be 'valid' or 'same', got {padding!r}")
    c = pred.shape[1]
    if padding == "valid" and min(pred.shape[-2:]) < window_size:
        raise ResplatError(f"ssim: image {pred.shape[-1]}x{pred.shape[-2]} is smaller than the {window_size}px window")
    g = gaussian_window(window_size, sigma, pred.dtype, pred.device)
    pad = window_size // 2 if padding == "same" else 0
    stats = torch.cat([pred, target, pred * pred, target * target, pred * target], 1)  # [B, 5C, H, W]
    n = stats.shape[1]
    stats = F.conv2d(stats, g.view(1, 1, 1, -1).expand(n, 1, 1, window_size), padding=(0, pad), groups=n)
    stats = F.conv2d(stats, g.view(1, 1, -1, 1).expand(n, 1, window_size, 1), padding=(pad, 0), groups=n)
    mu_x, mu_y, xx, yy, xy = stats.split(c, 1)
    sxx, syy, sxy = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return num / den


def ssim(
    pred: Tensor,
    target: Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
    padding: str = "valid",
) -> Tensor:
    """Mean structural similarity per image (Wang et al. 2004), differentiable.

    The mean of :func:`ssim_map` over channels and pixels. With the default ``padding="valid"``
    it equals ``skimage.metrics.structural_similarity(p, t, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=0)`` (tested to 1e-10 in float64):
    skimage filters with reflected borders and then drops a 5 px border, which leaves exactly
    the windows lying inside the image. ``padding="same"`` is 3DGS's loss term (zero padding,
    border windows included, so its values are slightly lower near dark/empty borders).

    Args and raises: as :func:`ssim_map`; inputs may also be single images [C, H, W].

    Returns:
        [B] (or 0-d) SSIM in [-1, 1], 1 for identical images.
    """
    pred, target, single = _batched(pred, target, "ssim")
    m = ssim_map(pred, target, window_size=window_size, sigma=sigma, k1=k1, k2=k2, data_range=data_range, padding=padding)
    out = m.flatten(1).mean(1)
    return out[0] if single else out


def lpips(pred: Tensor, target: Tensor, weights_path: str | os.PathLike | None = None) -> Tensor:
    """LPIPS distance per image (Zhang et al. 2018), VGG16 or AlexNet variant, from a user file.

    Args:
        pred, target: [B, 3, H, W] or [3, H, W] images in [0, 1] (mapped to [-1, 1] inside).
        weights_path: one file (.safetensors, or a torch state dict read with
            ``torch.load(weights_only=True)``) holding both the backbone and the linear heads;
            see :mod:`resplat.lpips_net` for the accepted key layouts. Never downloaded.

    Returns:
        [B] (or 0-d) distances >= 0; 0 for identical images.

    Raises:
        ResplatError: no weights file given, or the file is unreadable / not an LPIPS network.
    """
    if weights_path is None:
        raise ResplatError("LPIPS needs weights: pass weights_path= a .safetensors or .pth file with the VGG16/AlexNet backbone and LPIPS linear heads")
    pred, target, single = _batched(pred, target, "lpips")
    net = load_lpips(weights_path).to(device=pred.device, dtype=pred.dtype)
    out = net(pred, target)
    return out[0] if single else out


__all__ = ["psnr", "ssim", "ssim_map", "lpips", "gaussian_window", "load_lpips"]
