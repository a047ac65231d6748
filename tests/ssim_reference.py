"""Direct SSIM reference for the metric and loss tests, written independently of resplat.metrics:
Wang et al. 2004, Eq. 13 with Gaussian-weighted local statistics (population covariances), each
statistic one 2D 11x11 convolution (no separable split, no fused statistics), C1 = 0.01^2,
C2 = 0.03^2 (data range 1). Differentiable by plain autograd."""

from __future__ import annotations

import torch


def ssim_2d(x: torch.Tensor, y: torch.Tensor, padding: str = "same", size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image [B] of [B, C, H, W] images; padding "same" (zero padding, 3DGS's
    ``F.conv2d(padding=5)``) or "valid" (windows inside the image only)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(r**2) / (2 * sigma**2))
    w = (w / w.sum()).to(x.dtype)
    c = x.shape[1]
    k = (w[:, None] * w[None, :]).expand(c, 1, size, size)
    pad = size // 2 if padding == "same" else 0

    def blur(v):
        return torch.nn.functional.conv2d(v, k, padding=pad, groups=c)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + 1e-4) * (2 * sxy + 9e-4) / ((mx * mx + my * my + 1e-4) * (sxx + syy + 9e-4))).flatten(1).mean(1)
