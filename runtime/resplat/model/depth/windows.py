"""Swin-style window partitioning and the sine positional encoding of the UniMatch multi-view
transformer (Xu et al., UniMatch, TPAMI 2023; Liu et al., Swin Transformer, ICCV 2021;
Carion et al., DETR, ECCV 2020 for the sine encoding)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def split_windows(x: Tensor, splits: int) -> Tensor:
    """[B, H, W, C] channel-last map -> [B*K*K, H/K, W/K, C] windows (K = ``splits``), window
    index = b*K*K + row*K + col."""
    b, h, w, c = x.shape
    x = x.view(b, splits, h // splits, splits, w // splits, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * splits * splits, h // splits, w // splits, c)


def merge_windows(x: Tensor, splits: int) -> Tensor:
    """Inverse of :func:`split_windows`: [B*K*K, h, w, C] -> [B, K*h, K*w, C]."""
    bkk, h, w, c = x.shape
    b = bkk // (splits * splits)
    x = x.view(b, splits, splits, h, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, splits * h, splits * w, c)


def sine_position_encoding(h: int, w: int, channels: int, device=None) -> Tensor:
    """DETR/UniMatch 2-D sine encoding (normalised, scale 2 pi, temperature 10000) of an h x w grid.

    Returns float32 [channels, h, w]: the first channels/2 encode the row (y), the rest the
    column (x); within each half, even channels are sin and odd channels cos of
    pos / 10000^(2 floor(i/2) / (channels/2)), pos = (index + 1) / (n + 1e-6) * 2 pi.
    """
    half = channels // 2
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device)
    y = y / (h + 1e-6) * (2 * math.pi)
    x = x / (w + 1e-6) * (2 * math.pi)
    dim_t = torch.arange(half, dtype=torch.float32, device=device)
    dim_t = 10000.0 ** (2 * (dim_t // 2) / half)

    def encode(pos: Tensor) -> Tensor:  # [n] -> [n, half]
        p = pos[:, None] / dim_t
        return torch.stack((p[:, 0::2].sin(), p[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = encode(y)[:, None, :].expand(h, w, half)
    pos_x = encode(x)[None, :, :].expand(h, w, half)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)


def add_window_position(features: Tensor, splits: int) -> Tensor:
    """Add the sine encoding of one window to every one of the ``splits`` x ``splits`` windows
    of features [N, C, H, W] (UniMatch ``mv_feature_add_position``); H, W divisible by splits."""
    n, c, h, w = features.shape
    pos = sine_position_encoding(h // splits, w // splits, c, features.device)
    return features + pos.repeat(1, splits, splits)


def shifted_window_mask(h: int, w: int, splits: int, device=None) -> Tensor:
    """Swin attention mask for windows shifted by half a window: [K*K, L, L] (L = h*w/K^2),
    0 between tokens of the same region before the roll and -100 otherwise."""
    wh, ww = h // splits, w // splits
    sh, sw = wh // 2, ww // 2
    region = torch.zeros(h, w, device=device)
    count = 0
    for hs in (slice(0, -wh), slice(-wh, -sh), slice(-sh, None)):
        for ws in (slice(0, -ww), slice(-ww, -sw), slice(-sw, None)):
            region[hs, ws] = count
            count += 1
    windows = split_windows(region[None, :, :, None], splits).reshape(-1, wh * ww)
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.where(diff != 0, torch.full_like(diff, -100.0), torch.zeros_like(diff))
