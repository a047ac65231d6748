"""Point transformer of ReSplat: kNN attention blocks and low-resolution multi-view attention.

ReSplat (arXiv 2510.08575, Sec. 3.2) refines per-Gaussian features with a point transformer
whose blocks attend over each point's k nearest neighbours in 3D (k = 16 in the initial model,
k = 8 in the recurrent updater), interleaved in the initial model with a global attention over
the tokens of all views at a low resolution. Layout and forward pass follow the release
(``point_transformer/layer.py``; docs/model-architecture.md sections 2 and 3.10):

- :class:`KnnAttentionBlock`: pre-LN residual block ``x + proj(attn(LN1 x))`` then
  ``x + fc2(GELU(fc1(LN2 x)))``; the attention is single-head over the k neighbours (the point
  itself included), q/k/v of width ``attn_proj_channels`` from one bias-free linear, scaled by
  ``attn_proj_channels ** -0.5``.
- :class:`MultiViewLowresAttn`: pixel-unshuffle by 4 (after a x0.5 bilinear resize when the
  factor is 8), ``proj1`` + LayerNorm, a DINOv2-style transformer block over every view's tokens
  together, ``proj2`` + LayerNorm, pixel-shuffle back, a 3x3 conv, plus the input.
- :class:`PlainPointTransformer`: kNN block i, then (optionally) multi-view block i, for each i.

Every block is residual itself; the caller adds its own input again where the release does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ResplatError
from .knn import knn
from .layers import Mlp, SelfAttention


class PointTransformerInputError(ResplatError, ValueError):
    """Shapes given to the point transformer do not fit together (one line naming them)."""


class KnnAttention(nn.Module):
    """Single-head attention of each point over its k nearest neighbours.

    ``qkv`` Linear(C -> 3P, no bias) split into q, k, v (in that order along the channels),
    ``proj`` Linear(P -> C); scores q_n . k_m * P^-1/2 over the neighbours m of n, softmax, sum
    of v_m (the release's ``KNNAttention`` with ``num_heads=1``).
    """

    def __init__(self, channels: int, proj_channels: int):
        super().__init__()
        self.proj_channels = proj_channels
        self.qkv = nn.Linear(channels, 3 * proj_channels, bias=False)
        self.proj = nn.Linear(proj_channels, channels)

    def forward(self, x: Tensor, knn_index: Tensor) -> Tensor:
        """x [B, N, C], knn_index int64 [B, N, k] (indices into N per batch item) -> [B, N, C]."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # [B, N, P] each
        b, n, kk = knn_index.shape
        flat = knn_index.reshape(b, n * kk, 1).expand(b, n * kk, self.proj_channels)
        k_nb = torch.gather(k, 1, flat).reshape(b, n, kk, self.proj_channels)
        v_nb = torch.gather(v, 1, flat).reshape(b, n, kk, self.proj_channels)
        scores = torch.einsum("bnc,bnkc->bnk", q, k_nb) * self.proj_channels ** -0.5
        out = torch.einsum("bnk,bnkc->bnc", scores.softmax(dim=-1), v_nb)
        return self.proj(out)


class KnnAttentionBlock(nn.Module):
    """Pre-LN transformer block with kNN attention (release ``TransformerBlock``).

    Keys: ``norm1``, ``attn.qkv`` (no bias), ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``.
    ``forward(x [B, N, C], knn_index int64 [B, N, k]) -> [B, N, C]``:
    ``x += attn(LN1 x)``, then ``x += mlp(LN2 x)`` (MLP width 4C, GELU; LayerNorm eps 1e-5).
    """

    def __init__(self, channels: int, attn_proj_channels: int = 64):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.attn = KnnAttention(channels, attn_proj_channels)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = Mlp(channels, 4 * channels)

    def forward(self, x: Tensor, knn_index: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), knn_index)
        return x + self.mlp(self.norm2(x))


class _TokenBlock(nn.Module):
    """DINOv2 ``Block`` as the release builds it for multi-view attention: pre-LN (eps 1e-5),
    no LayerScale, MLP x4 GELU. Keys ``norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2``."""

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.attn = SelfAttention(channels, num_heads, qkv_bias=False)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = Mlp(channels, 4 * channels)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MultiViewLowresAttn(nn.Module):
    """Global attention over all views' tokens at 1/``down_factor`` resolution, residual.

    Release ``MultViewLowresAttn`` (docs/model-architecture.md section 2). For input
    x [B, V, C, h, w] (h, w divisible by ``down_factor``):
    per view pixel-unshuffle by f = 4 (channel order c * 16 + dy * 4 + dx, torch's
    ``pixel_unshuffle``; with ``down_factor`` 8, a x0.5 bilinear ``align_corners=True`` resize
    first), tokens of all V views concatenated view-major (v, y, x), ``proj1`` Linear(16C -> C),
    ``norm1``, transformer block ``attn`` (``num_heads`` heads), ``proj2`` Linear(C -> 16C),
    ``norm2``, pixel-shuffle back, ``conv`` 3x3 (and a x2 resize back for factor 8), plus x.

    Returns [B, V, C, h, w] in the dtype of x. Raises :class:`PointTransformerInputError` for a
    wrong rank, channel count, or a grid not divisible by ``down_factor``.
    """

    def __init__(self, channels: int, down_factor: int = 4, num_heads: int = 4):
        super().__init__()
        if down_factor not in (2, 4, 8):
            raise ValueError(f"MultiViewLowresAttn: down_factor must be 2, 4 or 8, got {down_factor}")
        self.channels = channels
        self.down_factor = down_factor
        self.shuffle = 4 if down_factor == 8 else down_factor
        wide = channels * self.shuffle ** 2
        self.proj1 = nn.Linear(wide, channels)
        self.norm1 = nn.LayerNorm(channels)
        self.proj2 = nn.Linear(channels, wide)
        self.norm2 = nn.LayerNorm(wide)
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.attn = _TokenBlock(channels, num_heads)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[2] != self.channels:
            raise PointTransformerInputError(
                f"MultiViewLowresAttn: expected [B, V, {self.channels}, h, w], got {list(x.shape)}")
        b, v, c, h, w = x.shape
        if h % self.down_factor or w % self.down_factor:
            raise PointTransformerInputError(
                f"MultiViewLowresAttn: grid {h}x{w} is not divisible by {self.down_factor}")
        y = x.reshape(b * v, c, h, w)
        if self.down_factor == 8:
            y = F.interpolate(y, scale_factor=0.5, mode="bilinear", align_corners=True)
        y = F.pixel_unshuffle(y, self.shuffle)  # [BV, 16C, h', w']
        hh, ww = y.shape[-2:]
        tokens = y.reshape(b, v, -1, hh * ww).permute(0, 1, 3, 2).reshape(b, v * hh * ww, -1)
        tokens = self.norm1(self.proj1(tokens))
        tokens = self.attn(tokens)
        tokens = self.norm2(self.proj2(tokens))
        y = tokens.reshape(b * v, hh * ww, -1).transpose(1, 2).reshape(b * v, -1, hh, ww)
        y = self.conv(F.pixel_shuffle(y, self.shuffle))
        if self.down_factor == 8:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        return y.reshape(b, v, c, h, w) + x


class PlainPointTransformer(nn.Module):
    """Stack of kNN attention blocks, optionally interleaved with low-res multi-view attention.

    Release ``PlainPointTransformer`` (ReSplat Sec. 3.2; docs/model-architecture.md 2, 3.10).
    Keys ``blocks.i.*`` (:class:`KnnAttentionBlock`) and, with ``with_mv_attn``, ``mv_blocks.i.*``
    (:class:`MultiViewLowresAttn`). The kNN graph is computed once per forward (exact, each point
    its own first neighbour; :func:`resplat.model.knn.knn`) and shared by all blocks.
    """

    def __init__(self, channels: int, knn_samples: int, num_blocks: int, attn_proj_channels: int = 64,
                 with_mv_attn: bool = False, mv_down_factor: int = 4, mv_heads: int = 4):
        super().__init__()
        self.knn_samples = knn_samples
        self.blocks = nn.ModuleList(KnnAttentionBlock(channels, attn_proj_channels) for _ in range(num_blocks))
        self.mv_blocks = (nn.ModuleList(MultiViewLowresAttn(channels, mv_down_factor, mv_heads) for _ in range(num_blocks))
                          if with_mv_attn else None)

    def compute_knn(self, points: Tensor) -> Tensor:
        """int64 [B, N, k] indices of the ``knn_samples`` nearest points (per batch item) of
        points [B, N, 3] (any float dtype; metres). Raises ``KnnInputError`` for N < k."""
        return knn(points.detach(), self.knn_samples)[0]

    def forward(self, x: Tensor, points: Tensor, grid: tuple[int, int, int] | None = None,
                knn_index: Tensor | None = None) -> Tensor:
        """Refine point features.

        Args:
            x: [B, N, C] features (float).
            points: [B, N, 3] positions (world units), used only for the kNN graph.
            grid: (V, h, w) with N = V*h*w when the points are laid out view-major on latent
                grids (row-major inside a view); required when the module has mv blocks.
            knn_index: optional precomputed int64 [B, N, k] neighbour indices.

        Returns:
            [B, N, C], same dtype as x.

        Raises:
            PointTransformerInputError: shapes that do not match, or a missing ``grid``.
        """
        if x.dim() != 3 or points.shape != (*x.shape[:2], 3):
            raise PointTransformerInputError(
                f"PlainPointTransformer: x must be [B, N, C] and points [B, N, 3], got "
                f"{list(x.shape)} and {list(points.shape)}")
        b, n, c = x.shape
        if knn_index is None:
            knn_index = self.compute_knn(points)
        elif tuple(knn_index.shape[:2]) != (b, n) or knn_index.dim() != 3:
            raise PointTransformerInputError(
                f"PlainPointTransformer: knn_index must be [{b}, {n}, k], got {list(knn_index.shape)}")
        if self.mv_blocks is not None:
            if grid is None or grid[0] * grid[1] * grid[2] != n:
                raise PointTransformerInputError(
                    f"PlainPointTransformer: grid (V, h, w) with V*h*w = {n} is required, got {grid}")
            v, h, w = grid
        for i, block in enumerate(self.blocks):
            x = block(x, knn_index)
            if self.mv_blocks is not None:
                y = x.reshape(b, v, h, w, c).permute(0, 1, 4, 2, 3)
                y = self.mv_blocks[i](y)
                x = y.permute(0, 1, 3, 4, 2).reshape(b, n, c)
        return x
