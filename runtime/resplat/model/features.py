"""Frozen ResNet-18 feature taps for the updater's rendering error (``encoder.update_feature``).

ReSplat (arXiv 2510.08575, Sec. 3.3) compares renders of the current Gaussians with the input
images in the feature space of an ImageNet-trained ResNet-18 (He et al. 2016). The release
(``encoder/layer.py``, ``ResNetFeatureWarpper(resnet_layers=18)``) keeps torchvision's ``conv1,
bn1, layer1, layer2`` and returns three taps (docs/model-architecture.md section 4.1):

- ``conv1`` output **before** ``bn1``: 64 channels at 1/2 resolution;
- ``layer1`` output (after bn1, ReLU, 3x3/2 max-pool and two basic blocks): 64 at 1/4;
- ``layer2`` output: 128 at 1/8.

This module rebuilds exactly that layout without torchvision (same state-dict keys, including
the BatchNorm buffers). Its weights come from the ReSplat checkpoint; nothing is downloaded. It
is frozen: parameters do not require grad and BatchNorm always uses its running statistics
(``train()`` leaves it in eval mode).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: ImageNet normalisation used by the release before the ResNet (torchvision ``T.Normalize``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalize(images: Tensor) -> Tensor:
    """(images - mean) / std per channel for images [..., 3, H, W] in [0, 1] (sRGB as stored,
    not linearised), with the ImageNet mean/std above; same dtype and device."""
    mean = images.new_tensor(IMAGENET_MEAN)[:, None, None]
    std = images.new_tensor(IMAGENET_STD)[:, None, None]
    return (images - mean) / std


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016, torchvision ``BasicBlock``):
    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with 3x3 convolutions without bias,
    ``conv1`` of stride ``stride``; ``downsample`` = Sequential(1x1 conv of stride ``stride``
    without bias, BatchNorm) when the stride or width changes, else the identity.

    forward: x [B, C_in, H, W] -> [B, C_out, ceil(H / stride), ceil(W / stride)].
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetFeatures(nn.Module):
    """The frozen first stages of ResNet-18 as the ReSplat updater uses them.

    Keys (manifest prefix ``encoder.update_feature.``): ``conv1`` (7x7/2, 3 -> 64, no bias),
    ``bn1``, ``layer1.{0,1}`` (64), ``layer2.{0,1}`` (128, first block stride 2 with
    ``downsample.{0,1}``); every BatchNorm with ``running_mean``, ``running_var`` and
    ``num_batches_tracked``.

    forward(x): x [B, 3, H, W] float, ImageNet-normalised (:func:`imagenet_normalize`) ->
    list of three maps [B, 64, H/2, W/2] (conv1, before bn1), [B, 64, H/4, W/4] (layer1),
    [B, 128, H/8, W/8] (layer2) (sizes rounded up for odd inputs, as the convolutions do).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, stride=2), BasicBlock(128, 128))
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "ResNetFeatures":
        """Always stays in eval mode (frozen BatchNorm statistics), whatever ``mode`` says."""
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        taps = []
        x = self.conv1(x)
        taps.append(x)
        x = self.maxpool(self.relu(self.bn1(x)))
        x = self.layer1(x)
        taps.append(x)
        taps.append(self.layer2(x))
        return taps
