"""DINOv2 vision transformer (``depth_predictor.pretrained``), built from scratch (weights come
from the ReSplat checkpoint; nothing is downloaded).

Source: Oquab et al., "DINOv2" (2023), ``dinov2/models/vision_transformer.py`` with the
arguments the release uses (``img_size=518, patch_size=14, init_values=1.0, block_chunks=0,
num_register_tokens=0, interpolate_offset=0.1, interpolate_antialias=False``), ``mask_token``
deleted; docs/model-architecture.md section 2, item ``pretrained``, and section 3, item 5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import Mlp, SelfAttention


class PatchEmbed(nn.Module):
    """Conv 14x14/14 (3 -> D) then flattening: [N, 3, H, W] -> [N, (H/14)(W/14), D]."""

    def __init__(self, dim: int, patch_size: int = 14):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` [D]."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm ViT block with LayerScale: x + ls1(attn(norm1(x))), then + ls2(mlp(norm2(x)));
    LayerNorm eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def interpolate_pos_embed(pos_embed: Tensor, rows: int, cols: int, square_image: bool, offset: float = 0.1) -> Tensor:
    """DINOv2 position-embedding resampling for a rows x cols patch grid.

    pos_embed [1, 1 + M*M, D] (class token first, then an M x M grid, M = 37) -> [1, 1 + rows*cols,
    D]. Returned unchanged when rows * cols == M * M and the image is square in pixels
    (``square_image``; the release's shortcut); otherwise the grid is resized bicubically (no
    antialias, align_corners=False) in float32 (float64 embeddings: float64) with scale factors ((rows + offset) / M,
    (cols + offset) / M) -- the scale factors, not the output size, set the sampling positions,
    which is why the 0.1 offset changes the numbers -- and cast back to the input dtype.
    """
    n = pos_embed.shape[1] - 1
    m = int(math.sqrt(n))
    if n != m * m:
        raise ValueError(f"position embedding has {n} patch tokens, not a square grid")
    if rows * cols == n and square_image:
        return pos_embed
    dtype, d = pos_embed.dtype, pos_embed.shape[-1]
    # release dinov2/dinov2.py:187 ``self.pos_embed.float()`` (an upcast for half precision);
    # float64 stays float64 (as the float64 release goldens run it)
    pe = pos_embed if pos_embed.dtype == torch.float64 else pos_embed.float()
    grid = pe[:, 1:].reshape(1, m, m, d).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid, scale_factor=((rows + offset) / m, (cols + offset) / m), mode="bicubic", antialias=False
    )
    if grid.shape[-2:] != (rows, cols):
        raise ValueError(f"position embedding resampled to {tuple(grid.shape[-2:])}, expected {(rows, cols)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, d)
    return torch.cat((pe[:, :1], grid), dim=1).to(dtype)


class DINOv2(nn.Module):
    """DINOv2 ViT-S/14 (D=384, 6 heads) or ViT-B/14 (D=768, 12 heads), 12 blocks.

    ``intermediate_maps(x, blocks)``: x [N, 3, H, W] ImageNet-normalised, H and W multiples of 14
    -> list of [N, D, H/14, W/14]: the outputs of the given blocks (0-based) after the final
    LayerNorm, class token dropped (release ``get_intermediate_layers(..., norm=True)``).
    """

    def __init__(self, dim: int = 384, num_heads: int = 6, depth: int = 12, patch_size: int = 14, img_size: int = 518):
        super().__init__()
        self.patch_size = patch_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def intermediate_maps(self, x: Tensor, blocks: tuple[int, ...] | list[int]) -> list[Tensor]:
        n, _, h, w = x.shape
        rows, cols = h // self.patch_size, w // self.patch_size
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(n, -1, -1), tokens), dim=1)
        tokens = tokens + interpolate_pos_embed(self.pos_embed, rows, cols, square_image=(h == w))
        outputs = []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in blocks:
                outputs.append(tokens)
        return [self.norm(t)[:, 1:].reshape(n, rows, cols, -1).permute(0, 3, 1, 2).contiguous() for t in outputs]
