"""DPT depth upsampler (``depth_predictor.upsampler``): predicts a full-resolution log-depth
residual from the ViT, CNN and transformer features and the low-resolution log depth.

Source: Ranftl et al., "Vision Transformers for Dense Prediction" (ICCV 2021) as modified by
DepthSplat / the ReSplat release (``unimatch/dpt_head.py``, ``DPTHead(in_channels=D,
features=F, out_channels=O, downsample_factor=u, num_scales=1)``); docs/model-architecture.md
section 2, item ``upsampler``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))), 3x3 convs with bias."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    """(x [+ resConfUnit1(skip)]) -> resConfUnit2 -> bilinear resize (align_corners=True) to
    ``size`` (x2 if None) -> 1x1 ``out_conv``. ``with_skip=False`` omits resConfUnit1."""

    def __init__(self, features: int, with_skip: bool = True):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        if with_skip:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    """DPT head with CNN / transformer / depth concatenation.

    Args:
        in_channels: ViT width D.
        features: fusion width F.
        out_channels: per-level widths O (4 values).
        downsample_factor: u, 8 or 4 (the cost-volume stride).

    ``forward(vit_maps, cnn_features, mv_features, depth)``:
        vit_maps: 4 maps [N, D, H/8, W/8] (ViT blocks 2, 5, 8, 11 resized to 1/8);
        cnn_features: [N, 64, H/2, W/2], [N, 96, H/(u/2), ...], [N, 128, H/u, W/u];
        mv_features: [N, 128, H/u, W/u]; depth: [N, 1, H/u, W/u] (log depth).
    Levels 1/2, 1/4, 1/8, 1/16 are made by ``projects`` (1x1) + ``resize_layers`` (ConvT 4/4,
    ConvT 2/2, identity, conv 3x3/2), concatenated with the CNN features of their resolution
    (u = 8: 64 at 1/2, 96 at 1/4, 128 + transformer + depth at 1/8; u = 4: 64 + 96 at 1/2,
    128 + transformer + depth at 1/4, nothing at 1/8) and projected back by
    ``concat_projects``; then the usual RefineNet fusion to full resolution and
    ``scratch.output_conv``. Returns [N, 1, H, W] (the log-depth residual).
    """

    def __init__(self, in_channels: int, features: int, out_channels: tuple[int, ...], downsample_factor: int = 8):
        super().__init__()
        if downsample_factor not in (4, 8):
            raise ValueError(f"downsample_factor must be 4 or 8, got {downsample_factor}")
        self.downsample_factor = downsample_factor
        o = out_channels
        if downsample_factor == 4:
            concat_in = (64 + 96 + o[0], 128 + o[1] + 128 + 1, o[2])
        else:
            concat_in = (64 + o[0], 96 + o[1], 128 + o[2] + 128 + 1)
        self.concat_projects = nn.ModuleList(nn.Conv2d(concat_in[i], o[i], 1) for i in range(3))
        self.projects = nn.ModuleList(nn.Conv2d(in_channels, c, 1) for c in o)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(o[0], o[0], 4, stride=4),
            nn.ConvTranspose2d(o[1], o[1], 2, stride=2),
            nn.Identity(),
            nn.Conv2d(o[3], o[3], 3, stride=2, padding=1),
        ])
        self.scratch = nn.Module()
        for i in range(4):
            setattr(self.scratch, f"layer{i + 1}_rn", nn.Conv2d(o[i], features, 3, padding=1, bias=False))
        self.scratch.refinenet1 = FeatureFusionBlock(features)
        self.scratch.refinenet2 = FeatureFusionBlock(features)
        self.scratch.refinenet3 = FeatureFusionBlock(features)
        self.scratch.refinenet4 = FeatureFusionBlock(features, with_skip=False)
        self.scratch.output_conv = nn.Sequential(
            nn.Conv2d(features, features // 2, 3, padding=1, padding_mode="replicate"),
            nn.GELU(),
            nn.Conv2d(features // 2, 16, 3, padding=1, padding_mode="replicate"),
            nn.GELU(),
            nn.Conv2d(16, 1, 1),
        )
        nn.init.zeros_(self.scratch.output_conv[-1].weight)
        nn.init.zeros_(self.scratch.output_conv[-1].bias)

    def forward(self, vit_maps: list[Tensor], cnn_features: list[Tensor], mv_features: Tensor, depth: Tensor) -> Tensor:
        l1, l2, l3, l4 = (self.resize_layers[i](self.projects[i](x)) for i, x in enumerate(vit_maps))
        c1, c2, c3 = cnn_features
        if self.downsample_factor == 4:
            l1 = self.concat_projects[0](torch.cat((c1, c2, l1), dim=1))
            l2 = self.concat_projects[1](torch.cat((c3, l2, mv_features, depth), dim=1))
            l3 = self.concat_projects[2](l3)
        else:
            l1 = self.concat_projects[0](torch.cat((c1, l1), dim=1))
            l2 = self.concat_projects[1](torch.cat((c2, l2), dim=1))
            l3 = self.concat_projects[2](torch.cat((c3, l3, mv_features, depth), dim=1))
        s = self.scratch
        r1, r2, r3, r4 = s.layer1_rn(l1), s.layer2_rn(l2), s.layer3_rn(l3), s.layer4_rn(l4)
        path = s.refinenet4(r4, size=r3.shape[2:])
        path = s.refinenet3(path, r3, size=r2.shape[2:])
        path = s.refinenet2(path, r2, size=r1.shape[2:])
        path = s.refinenet1(path, r1)
        return s.output_conv(path)
