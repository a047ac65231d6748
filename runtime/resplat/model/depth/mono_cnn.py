"""Small CNN monocular branch of the ``tiny`` preset (``depth_predictor.pretrained``).

The released presets use DINOv2 (ViT-S/B) there; the tiny preset is trained from scratch on
our own data, so a pretrained ViT is out of reach and a small strided CNN takes its place. It
returns what :meth:`DINOv2.intermediate_maps` returns and the depth predictor consumes: four
maps [N, D, H/8, W/8] of increasing depth (the predictor resizes them to 1/8 and 1/16 for the
cost-volume regressor, the DPT upsampler's ``projects`` and the Gaussian regressor;
docs/model-architecture.md section 2). Our own design, not part of the release.
"""

from __future__ import annotations

from torch import Tensor, nn


def _block(in_channels: int, channels: int, stride: int) -> nn.Sequential:
    """Conv3x3 (stride) -> GroupNorm(8) -> GELU."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1),
                         nn.GroupNorm(8, channels), nn.GELU())


class MonoCNN(nn.Module):
    """Stem of three stride-2 blocks (3 -> D/4 -> D/2 -> D, 1/8 resolution), then four stages of
    two 3x3 blocks at width D with a residual connection; each stage's output is one tap.

    Args:
        dim: D, the width of every tap (64 in the tiny preset; a multiple of 16 so that the
            latent features' pixel shuffle works as with the ViT).
    """

    def __init__(self, dim: int = 64):
        super().__init__()
        self.stem = nn.Sequential(_block(3, dim // 4, 2), _block(dim // 4, dim // 2, 2), _block(dim // 2, dim, 2))
        self.stages = nn.ModuleList(nn.Sequential(_block(dim, dim, 1), _block(dim, dim, 1)) for _ in range(4))

    def intermediate_maps(self, x: Tensor, blocks=None) -> list[Tensor]:
        """x [N, 3, H, W] ImageNet-normalised images (H, W multiples of 8) -> four maps
        [N, D, H/8, W/8] (``blocks`` is accepted for the DINOv2 interface and ignored)."""
        h = self.stem(x)
        taps = []
        for stage in self.stages:
            h = h + stage(h)
            taps.append(h)
        return taps
