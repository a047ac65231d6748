"""LDM U-Net with cross-view self-attention (the U-Net inside ``depth_predictor.regressor.0``).

Source: the latent-diffusion ``UNetModel`` (Rombach et al., CVPR 2022; ``openaimodel.py``) as
trimmed by DepthSplat / the ReSplat release (``ldm_unet/unet.py``): no timestep embedding,
pre-norm ResBlocks, legacy QKV attention whose tokens are those of all views of a scene. Used
with ``in = model = out = 128, num_res_blocks=1, attention_resolutions=[4],
channel_mult=[1, 1, 1], num_head_channels=32``; docs/model-architecture.md section 2.

Every normalisation the release builds with ``ldm_unet/util.py`` ``normalization()`` (the two of
each ResBlock, the attention block's and the output layer's) is a GroupNorm whose group count is
``groups``: 8 in the release (``GroupNorm8(8, channels)``; channel counts not divisible by 8 get
4 groups there, which our widths never are), 32 in the original LDM and in our ``tiny`` preset
(``ModelConfig.unet_norm_groups``). The count is in no weight shape, so a wrong one loads
strictly and silently changes the depth.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """The release's ``normalization()``: GroupNorm with ``groups`` groups, eps 1e-5, affine.

    Raises ValueError (torch's) when ``groups`` does not divide ``channels``.
    """
    return nn.GroupNorm(groups, channels)


def _zero(module: nn.Module) -> nn.Module:
    """LDM ``zero_module``: zero-initialise the residual branch's last layer (training init only;
    checkpoints overwrite it)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GN-SiLU-conv3x3, GN-SiLU-dropout-conv3x3, plus identity or 1x1-conv skip (GN: ``groups`` groups)."""

    def __init__(self, channels: int, out_channels: int | None = None, dropout: float = 0.0, groups: int = 8):
        super().__init__()
        out_channels = out_channels or channels
        self.in_layers = nn.Sequential(group_norm(channels, groups), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.out_layers = nn.Sequential(
            group_norm(out_channels, groups),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        _zero(self.out_layers[3])

    def forward(self, x: Tensor) -> Tensor:
        return self.skip_connection(x) + self.out_layers(self.in_layers(x))


class Downsample(nn.Module):
    """Conv3x3 with stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest x2 then conv3x3."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class CrossViewAttentionBlock(nn.Module):
    """LDM ``AttentionBlock`` with cross-view self-attention.

    ``forward(x, num_views)``: x [B*V, C, h, w] (scene-major) -> same shape. The tokens of all
    V views of a scene attend to each other: GroupNorm (``groups`` groups), 1x1 ``qkv`` (Conv1d
    C -> 3C), heads of
    ``head_channels`` in the legacy layout (the 3C channels split per head first, then into
    q, k, v), softmax(q k^T / sqrt(d)) v with the softmax in float32 (float64 inputs: float64), 1x1 ``proj_out``, residual.
    """

    def __init__(self, channels: int, head_channels: int = 32, groups: int = 8):
        super().__init__()
        self.num_heads = channels // head_channels
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = _zero(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor, num_views: int) -> Tensor:
        bv, c, h, w = x.shape
        b, t = bv // num_views, h * w
        x = x.reshape(bv, c, t)
        qkv = self.qkv(self.norm(x))  # [B*V, 3C, t]
        qkv = qkv.view(b, num_views, 3 * c, t).permute(0, 2, 1, 3)  # scene tokens: [B, 3C, V, t]
        qkv = qkv.reshape(b * self.num_heads, 3 * c // self.num_heads, num_views * t)
        q, k, v = qkv.chunk(3, dim=1)  # [B*heads, d, V*t]
        scale = 1 / math.sqrt(math.sqrt(q.shape[1]))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        # release ldm_unet/unet.py:555 ``th.softmax(weight.float(), ...)``: the float32 upcast serves
        # half precision; float64 stays float64 (as the float64 release goldens run it)
        up = weight if weight.dtype == torch.float64 else weight.float()
        weight = torch.softmax(up, dim=-1).to(weight.dtype)
        a = torch.einsum("bts,bcs->bct", weight, v).reshape(b, c, num_views, t).permute(0, 2, 1, 3).reshape(bv, c, t)
        return (x + self.proj_out(a)).reshape(bv, c, h, w)


class UNetModel(nn.Module):
    """The depth regressor's U-Net (3 levels of equal width, attention at 1/4).

    ``forward(x, num_views)``: x [B*V, C, h, w] with h, w divisible by 4 -> [B*V, C, h, w].
    Children (state-dict names as in the release): ``input_blocks`` 0 conv, 1 ResBlock,
    2 Downsample, 3 ResBlock, 4 Downsample, 5 ResBlock + attention; ``middle_block`` ResBlock,
    Identity, ResBlock; ``output_blocks`` 0 ResBlock + attention, 1 ResBlock + attention +
    Upsample, 2 ResBlock, 3 ResBlock + Upsample, 4 ResBlock, 5 ResBlock (each concatenating the
    matching ``input_blocks`` output); ``out`` GN, SiLU, conv3x3. Every GroupNorm has ``groups``
    groups (8 in the release, see the module docstring).
    """

    def __init__(self, channels: int = 128, head_channels: int = 32, levels: int = 3, attention_level: int = 2,
                 groups: int = 8):
        super().__init__()
        self.input_blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1))])
        for level in range(levels):
            layers: list[nn.Module] = [ResBlock(channels, groups=groups)]
            if level == attention_level:
                layers.append(CrossViewAttentionBlock(channels, head_channels, groups))
            self.input_blocks.append(nn.Sequential(*layers))
            if level != levels - 1:
                self.input_blocks.append(nn.Sequential(Downsample(channels)))
        self.middle_block = nn.Sequential(ResBlock(channels, groups=groups), nn.Identity(), ResBlock(channels, groups=groups))
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(levels)):
            for i in range(2):
                layers = [ResBlock(2 * channels, channels, groups=groups)]
                if level == attention_level:
                    layers.append(CrossViewAttentionBlock(channels, head_channels, groups))
                if level and i == 1:
                    layers.append(Upsample(channels))
                self.output_blocks.append(nn.Sequential(*layers))
        self.out = nn.Sequential(group_norm(channels, groups), nn.SiLU(), _zero(nn.Conv2d(channels, channels, 3, padding=1)))

    @staticmethod
    def _run(block: nn.Sequential, h: Tensor, num_views: int) -> Tensor:
        for layer in block:
            h = layer(h, num_views) if isinstance(layer, CrossViewAttentionBlock) else layer(h)
        return h

    def forward(self, x: Tensor, num_views: int) -> Tensor:
        skips = []
        h = x
        for block in self.input_blocks:
            h = self._run(block, h, num_views)
            skips.append(h)
        h = self.middle_block(h)
        for block in self.output_blocks:
            h = self._run(block, torch.cat([h, skips.pop()], dim=1), num_views)
        return self.out(h)
