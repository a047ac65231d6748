"""Multi-view swin transformer of the depth network (``depth_predictor.transformer``).

Source: UniMatch / DepthSplat ``MultiViewFeatureTransformer`` (Xu et al., TPAMI 2023; DepthSplat,
CVPR 2025) as the ReSplat release configures it: 6 layers, width 128, one head, swin windows,
FFN expansion 4; layout in docs/model-architecture.md section 2, item ``transformer``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .windows import merge_windows, shifted_window_mask, split_windows


def window_attention(q: Tensor, k: Tensor, v: Tensor, h: int, w: int, splits: int, mask: Tensor | None) -> Tensor:
    """Single-head attention inside ``splits`` x ``splits`` windows of an h x w map.

    q [N, h*w, C]; k, v [N, M, h*w, C] (M key views; a query attends to the keys of all M views
    at the pixels of its window); mask None or the [K*K, L, L] shifted-window mask, in which
    case all maps are rolled by half a window first and back after. Scale C^-1/2.

    The release lays out the keys of a window position-major (token = position * M + view) but
    tiles the shifted-window mask view-major (column = view * L + position); for M > 1 the mask
    therefore hits other keys than the geometry suggests. This is reproduced on purpose (the
    weights were trained with it). Returns [N, h*w, C].
    """
    n, _, c = q.shape
    m = k.shape[1]
    wh, ww = h // splits, w // splits
    q = q.view(n, h, w, c)
    k = k.reshape(n, m, h, w, c)
    v = v.reshape(n, m, h, w, c)
    if mask is not None:
        q = torch.roll(q, shifts=(-(wh // 2), -(ww // 2)), dims=(1, 2))
        k = torch.roll(k, shifts=(-(wh // 2), -(ww // 2)), dims=(2, 3))
        v = torch.roll(v, shifts=(-(wh // 2), -(ww // 2)), dims=(2, 3))
    q = split_windows(q, splits).reshape(-1, 1, wh * ww, c)
    # [N, M, h, w, C] -> [N, h, w, M*C] windows -> tokens ordered (position, view)
    k = split_windows(k.permute(0, 2, 3, 1, 4).reshape(n, h, w, m * c), splits).reshape(-1, 1, wh * ww * m, c)
    v = split_windows(v.permute(0, 2, 3, 1, 4).reshape(n, h, w, m * c), splits).reshape(-1, 1, wh * ww * m, c)
    bias = None
    if mask is not None:
        bias = mask.to(q.dtype).repeat(n, 1, m).unsqueeze(1)  # [N*K*K, 1, L, M*L], view-major tiling
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).squeeze(1)
    out = merge_windows(out.view(-1, wh, ww, c), splits)
    if mask is not None:
        out = torch.roll(out, shifts=(wh // 2, ww // 2), dims=(1, 2))
    return out.reshape(n, h * w, c)


class TransformerLayer(nn.Module):
    """Attention (q/k/v/merge linears without bias) -> LayerNorm message; with ``ffn``:
    output = source + LN(MLP(concat(source, message))), else source + message."""

    def __init__(self, d_model: int = 128, ffn: bool = True, ffn_expansion: int = 4):
        super().__init__()
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.merge = nn.Linear(d_model, d_model, bias=False)
        self.norm1 = nn.LayerNorm(d_model)
        self.has_ffn = ffn
        if ffn:
            self.mlp = nn.Sequential(
                nn.Linear(2 * d_model, 2 * d_model * ffn_expansion, bias=False),
                nn.GELU(),
                nn.Linear(2 * d_model * ffn_expansion, d_model, bias=False),
            )
            self.norm2 = nn.LayerNorm(d_model)

    def forward(self, source: Tensor, target: Tensor, h: int, w: int, splits: int, mask: Tensor | None) -> Tensor:
        """source [N, h*w, C]; target [N, M, h*w, C] -> [N, h*w, C]."""
        message = window_attention(self.q_proj(source), self.k_proj(target), self.v_proj(target), h, w, splits, mask)
        message = self.norm1(self.merge(message))
        if self.has_ffn:
            message = self.norm2(self.mlp(torch.cat([source, message], dim=-1)))
        return source + message


class TransformerBlock(nn.Module):
    """Self-attention layer (no FFN) then cross-attention + FFN layer; ``shifted`` selects the
    shifted-window variant (odd layers)."""

    def __init__(self, d_model: int = 128, ffn_expansion: int = 4, shifted: bool = False):
        super().__init__()
        self.shifted = shifted
        self.self_attn = TransformerLayer(d_model, ffn=False, ffn_expansion=ffn_expansion)
        self.cross_attn_ffn = TransformerLayer(d_model, ffn=True, ffn_expansion=ffn_expansion)

    def forward(self, source: Tensor, target: Tensor, h: int, w: int, splits: int, mask: Tensor | None) -> Tensor:
        mask = mask if self.shifted else None
        source = self.self_attn(source, source.unsqueeze(1), h, w, splits, mask)
        return self.cross_attn_ffn(source, target, h, w, splits, mask)


def gather_neighbours(x: Tensor, neighbours: Tensor) -> Tensor:
    """x [B, V, ...], neighbours int64 [B, V, M] -> [B, V, M, ...] (x of each view's neighbours)."""
    b, v, m = neighbours.shape
    idx = neighbours.reshape(b, v * m, *([1] * (x.dim() - 2))).expand(b, v * m, *x.shape[2:])
    return torch.gather(x, 1, idx).view(b, v, m, *x.shape[2:])


class MultiViewFeatureTransformer(nn.Module):
    """6-layer multi-view swin transformer (UniMatch / DepthSplat).

    ``forward(features, neighbours, splits)``: features [B, V, C, h, w] (CNN features with the
    positional encoding added), neighbours int64 [B, V, M] (the views each view cross-attends
    to, see :func:`resplat.model.depth.cost_volume.neighbour_views`), splits the number of
    windows per side (h, w divisible by it) -> [B, V, C, h, w]. Each layer: windowed
    self-attention, then windowed cross-attention to the M neighbour views + FFN; odd layers use
    windows shifted by half a window (mask -100).
    """

    def __init__(self, num_layers: int = 6, d_model: int = 128, ffn_expansion: int = 4):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerBlock(d_model, ffn_expansion, shifted=(i % 2 == 1)) for i in range(num_layers)
        )

    def forward(self, features: Tensor, neighbours: Tensor, splits: int) -> Tensor:
        b, v, c, h, w = features.shape
        mask = shifted_window_mask(h, w, splits, features.device) if splits > 1 else None
        x = features.flatten(3).transpose(-1, -2)  # [B, V, h*w, C]
        for layer in self.layers:
            target = gather_neighbours(x, neighbours)  # [B, V, M, h*w, C]
            x = layer(x.reshape(b * v, h * w, c), target.reshape(b * v, -1, h * w, c), h, w, splits, mask)
            x = x.view(b, v, h * w, c)
        return x.transpose(-1, -2).reshape(b, v, c, h, w)
