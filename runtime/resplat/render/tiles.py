"""Tile binning: which projected Gaussians touch which 16x16 pixel tile, sorted front to back.

Source: gsplat 1.5.3 ``isect_tiles`` / ``isect_offset_encode`` (gsplat/cuda/csrc/IntersectTile.cu):
a Gaussian with centre (x, y) and extent (rx, ry) px covers tiles
[floor((x - rx) / s), ceil((x + rx) / s)) x [floor((y - ry) / s), ceil((y + ry) / s)), clamped
to the tile grid; (tile, Gaussian) pairs are sorted by (view, tile, camera-space depth).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TileBins:
    """Sorted (tile, Gaussian) intersections.

    Attributes:
        flatten_ids: [M] int64 index into the packed Gaussians, sorted by (view, tile, depth).
        tile_offsets: [V * tiles_y * tiles_x + 1] int64, the pairs of tile t are
            ``flatten_ids[tile_offsets[t]:tile_offsets[t + 1]]``; tile t = (v * tiles_y + ty) *
            tiles_x + tx.
        tiles_x, tiles_y: tile grid size, ceil(width / tile_size), ceil(height / tile_size).
        tile_size: tile edge in pixels.
    """

    flatten_ids: Tensor
    tile_offsets: Tensor
    tiles_x: int
    tiles_y: int
    tile_size: int


def bin_gaussians(
    means2d: Tensor,
    radii: Tensor,
    depths: Tensor,
    view_ids: Tensor,
    n_views: int,
    width: int,
    height: int,
    tile_size: int = 16,
) -> TileBins:
    """Build the sorted intersection list (no gradient).

    Args:
        means2d: [P, 2] projected centres (pixels) of the P drawn (view, Gaussian) entries.
        radii: [P, 2] integer extents (x, y) in pixels, > 0.
        depths: [P] camera-space z (metres), the front-to-back sort key.
        view_ids: [P] int64 view of each entry.
        n_views, width, height: number of views and image size in pixels.
        tile_size: tile edge in pixels.

    Returns:
        :class:`TileBins`.
    """
    device = means2d.device
    tx_n = (width + tile_size - 1) // tile_size
    ty_n = (height + tile_size - 1) // tile_size
    n_tiles = n_views * tx_n * ty_n
    with torch.no_grad():
        order = torch.argsort(depths.detach(), stable=True)
        m = means2d.detach()[order]
        r = radii[order].to(m.dtype)
        x0 = torch.floor((m[:, 0] - r[:, 0]) / tile_size).clamp(0, tx_n).long()
        x1 = torch.ceil((m[:, 0] + r[:, 0]) / tile_size).clamp(0, tx_n).long()
        y0 = torch.floor((m[:, 1] - r[:, 1]) / tile_size).clamp(0, ty_n).long()
        y1 = torch.ceil((m[:, 1] + r[:, 1]) / tile_size).clamp(0, ty_n).long()
        nx = (x1 - x0).clamp_min(0)
        counts = nx * (y1 - y0).clamp_min(0)
        total = int(counts.sum())
        owner = torch.repeat_interleave(torch.arange(len(order), device=device), counts, output_size=total)
        first = torch.cumsum(counts, 0) - counts
        local = torch.arange(total, device=device) - first[owner]
        nxo = nx[owner]
        tile = (view_ids[order][owner] * ty_n + y0[owner] + local // nxo) * tx_n + x0[owner] + local % nxo
        tile, perm = torch.sort(tile, stable=True)
        flatten_ids = order[owner[perm]]
        tile_offsets = torch.zeros(n_tiles + 1, dtype=torch.long, device=device)
        tile_offsets[1:] = torch.cumsum(torch.bincount(tile, minlength=n_tiles), 0)
    return TileBins(flatten_ids, tile_offsets, tx_n, ty_n, tile_size)
