"""Tile binning: which projected Gaussians touch which square pixel tile, sorted front to back.

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
    conics: Tensor | None = None,
    opacities: Tensor | None = None,
) -> TileBins:
    """Build the sorted intersection list (no gradient).

    Args:
        means2d: [P, 2] projected centres (pixels) of the P drawn (view, Gaussian) entries.
        radii: [P, 2] integer extents (x, y) in pixels, > 0.
        depths: [P] camera-space z (metres), the front-to-back sort key.
        view_ids: [P] int64 view of each entry.
        n_views, width, height: number of views and image size in pixels.
        tile_size: tile edge in pixels.
        conics: optional [P, 3] inverse 2D covariances (a, b, c) and opacities [P] (compensation
            included): when given, pairs whose ellipse reaches alpha >= 1/255 at no pixel centre
            of the tile are dropped (exact and conservative; fewer pairs than gsplat's boxes, the
            same image, since such pairs are skipped by the alpha floor anyway).

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
        # per-Gaussian integers gathered once per (Gaussian, tile) candidate: first candidate, nx, x0, y0, view
        first = torch.cumsum(counts, 0) - counts
        ints = torch.stack([first, nx, x0, y0, view_ids[order]], 1)[owner]
        local = torch.arange(total, device=device) - ints[:, 0]
        dy = torch.div(local, ints[:, 1], rounding_mode="floor")
        tx, ty = ints[:, 2] + local - dy * ints[:, 1], ints[:, 3] + dy
        tile = (ints[:, 4] * ty_n + ty) * tx_n + tx
        if conics is not None:
            c = conics.detach()[order]
            limit = torch.log(opacities.detach()[order].clamp_min(1e-30) * 255.0) + 1e-3  # margin for rounding
            keep = _reaches_tile(torch.cat([m, c, limit[:, None]], 1)[owner], tx, ty, tile_size)
            owner, tile = owner[keep], tile[keep]
        # int32 keys (tile ids < 2^31) sort ~3x faster than int64 on the CPU; stable keeps depth order
        tile, perm = torch.sort(tile.to(torch.int32) if n_tiles < 2**31 else tile, stable=True)
        flatten_ids = order[owner[perm]]
        tile_offsets = torch.zeros(n_tiles + 1, dtype=torch.long, device=device)
        tile_offsets[1:] = torch.cumsum(torch.bincount(tile, minlength=n_tiles), 0)
    return TileBins(flatten_ids, tile_offsets, tx_n, ty_n, tile_size)


def _reaches_tile(g: Tensor, tx: Tensor, ty: Tensor, s: int) -> Tensor:
    """[M] bool: whether the Gaussian of each candidate may reach alpha >= 1/255 at a pixel centre
    of its tile (tx, ty). ``g`` [M, 6]: the mean (x, y) px, the conic (a, b, c) and the limit
    ln(255 opacity) + margin. True where min over the tile's pixel-centre rectangle of
    sigma(d) = 0.5 a dx^2 + b dx dy + 0.5 c dy^2 is at most the limit. The minimum of the convex
    quadratic over a box is 0 when the mean is inside, else it lies on an edge facing the mean
    (on an edge facing away, the gradient points into the box, so the mean would not be the
    minimum): the x-edge nearest the mean and the y-edge nearest the mean are evaluated, each
    with the 1D minimiser clamped to the edge."""
    mx, my, a, b, c, limit = g.unbind(1)
    lo_x, lo_y = tx.to(g.dtype) * s + 0.5, ty.to(g.dtype) * s + 0.5
    hi_x, hi_y = lo_x + (s - 1), lo_y + (s - 1)
    inside = (mx >= lo_x) & (mx <= hi_x) & (my >= lo_y) & (my <= hi_y)
    dx = mx - torch.where(mx < lo_x, lo_x, hi_x)  # edge x = lo_x or hi_x: dx fixed, dy free in [my - hi_y, my - lo_y]
    dy = (-b * dx / c).clamp(my - hi_y, my - lo_y)
    best = 0.5 * a * dx * dx + b * dx * dy + 0.5 * c * dy * dy
    dy = my - torch.where(my < lo_y, lo_y, hi_y)
    dx = (-b * dy / a).clamp(mx - hi_x, mx - lo_x)
    best = torch.minimum(best, 0.5 * a * dx * dx + b * dx * dy + 0.5 * c * dy * dy)
    return inside | (best <= limit)
