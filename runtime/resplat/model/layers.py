"""Transformer building blocks shared by the ViT (depth/vit.py) and the point transformer.

Key names follow DINOv2 / timm (``fc1``, ``fc2``, ``qkv``, ``proj``) so that the release's
checkpoints load unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``: Linear(dim -> hidden), exact (erf) GELU, Linear(hidden -> dim).
    x [..., dim] -> [..., dim]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017) in the DINOv2 layout: ``qkv``
    Linear(D -> 3D) read per token as [3, heads, D/heads], scaled dot-product attention with scale
    (D/heads)^-1/2, output ``proj`` Linear(D -> D). x [B, T, D] -> [B, T, D].

    Args:
        dim: token width D (divisible by ``num_heads``).
        num_heads: attention heads.
        qkv_bias: whether ``qkv`` has a bias (DINOv2: yes; the release's multi-view blocks: no).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))
