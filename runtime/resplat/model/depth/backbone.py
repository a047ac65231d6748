"""UniMatch CNN feature encoder (``depth_predictor.backbone``).

Source: UniMatch ``CNNEncoder`` (Xu et al., "Unifying Flow, Stereo and Depth Estimation",
TPAMI 2023) as configured by the ReSplat release (``output_dim=128, lowest_scale=u,
return_all_scales=True``); layout in docs/model-architecture.md section 2.
"""

from __future__ import annotations

from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """Two 3x3 convs (no bias) with InstanceNorm (no affine) and ReLU, plus a 1x1 projection
    (with bias) + InstanceNorm on the skip path when stride or width change."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.InstanceNorm2d(channels)
        self.norm2 = nn.InstanceNorm2d(channels)
        self.relu = nn.ReLU()
        if stride == 1 and in_channels == channels:
            self.downsample = None
        else:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride), nn.InstanceNorm2d(channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class CNNEncoder(nn.Module):
    """UniMatch CNN: conv 7x7/2 -> layer1 (64, 1/2) -> layer2 (96, stride 1 if ``lowest_scale``
    is 4 else 2) -> layer3 (128, stride 2) -> 1x1 conv.

    Args:
        output_dim: channels of the last (lowest-resolution) output.
        lowest_scale: stride of the last output, 8 or 4.

    ``forward(x)``: x [N, 3, H, W] (ImageNet-normalised images) -> list of three feature maps
    from high to low resolution: [N, 64, H/2, W/2], [N, 96, H/2 or H/4, ...],
    [N, output_dim, H/lowest_scale, W/lowest_scale]. H and W must be multiples of lowest_scale.
    """

    def __init__(self, output_dim: int = 128, lowest_scale: int = 8):
        super().__init__()
        if lowest_scale not in (4, 8):
            raise ValueError(f"lowest_scale must be 4 or 8, got {lowest_scale}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.norm1 = nn.InstanceNorm2d(64)
        self.relu1 = nn.ReLU()
        self.layer1 = self._layer(64, 64, 1)
        self.layer2 = self._layer(64, 96, 1 if lowest_scale == 4 else 2)
        self.layer3 = self._layer(96, 128, 2)
        self.conv2 = nn.Conv2d(128, output_dim, 1)

    @staticmethod
    def _layer(in_channels: int, channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(ResidualBlock(in_channels, channels, stride), ResidualBlock(channels, channels, 1))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.layer1(self.relu1(self.norm1(self.conv1(x))))
        x2 = self.layer2(x)
        x3 = self.conv2(self.layer3(x2))
        return [x, x2, x3]
