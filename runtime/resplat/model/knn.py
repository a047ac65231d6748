"""Exact k-nearest-neighbour search over 3D points in pure PyTorch (CPU, CUDA, MPS).

ReSplat's point transformer attends over the k nearest neighbours of each Gaussian centre
(k = 16 in the initial model, k = 8 in the recurrent updater; ReSplat paper, Sec. 3.2-3.3). The
release computes them with the CUDA library pointops (``pointops.knn_query(k, p, o, p, o)``,
Pointcept's ``knn_query_cuda_kernel``): an exact brute-force search per batch segment that
keeps a max-heap of the k best squared distances, admits a point only when its distance is
*strictly* below the current k-th best, and returns ``(idx int32 [M, k], sqrt(dist2) [M, k])``
sorted ascending. :func:`knn` returns the same neighbours:

- exact, sorted by squared Euclidean distance ascending;
- when ``queries`` is None every point queries the cloud it belongs to, so a point is its own
  first neighbour (distance 0) unless exact duplicates of it exist;
- ties: among points at exactly the same distance the lower index comes first, and at the k-th
  place the lower indices are kept. pointops keeps the same *set* at the k-th place (its strict
  ``<`` admits the earliest point) but orders equal distances inside the result by heap order,
  so with exact duplicates the two may list the same neighbours in a different order;
- returned distances are *squared* (pointops returns their square roots), int64 indices;
- N < k raises (pointops silently pads with index -1).

Algorithm (exact, memory bounded by ``chunk_size x N`` distances): queries are sorted along a
Morton (Z-order) curve and split into chunks of at most ``chunk_size`` that each lie in one
octree cell, so a chunk's bounding box Q is compact. A chunk searches only the points within a
radius R of Q, R being the radius that sufficed for 90% of the previous chunk's queries (for the
first chunk, or when fewer than k points fall inside, an upper bound from up to ``chunk_size``
points inside Q). A query whose k-th distance is at most R is final, since every point left out
is farther than R from Q; the others are searched once more with R = the largest of their k-th
distances, which bounds their true k-th distances, so the second pass is exact. Within a search,
distances come from the expansion |q|^2 - 2 q.p + |p|^2 in coordinates centred on the box (one
matrix product); the k + 1 smallest are selected with ``topk``, the k selected distances are
recomputed exactly from coordinate differences, and a row is accepted only if the (k+1)-th
expanded distance exceeds the k-th exact one by more than the expansion's rounding bound. Rows
that fail (near-ties, duplicates) are redone from exact differences with a stable sort.
Half-precision inputs are computed in float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ResplatError

DEFAULT_CHUNK_SIZE = 1024
_MORTON_BITS = 10  # bits per axis; 30-bit codes


class KnnInputError(ResplatError, ValueError):
    """Unusable input to :func:`knn` (wrong shape or dtype, too few points, bad k)."""


def knn(
    points: Tensor,
    k: int,
    *,
    queries: Tensor | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest of ``points`` to each query, exactly, nearest first.

    Args:
        points: [N, 3] or [B, N, 3] floating point coordinates (any float dtype, any device;
            units are the caller's, e.g. metres).
        k: neighbours per query, 1 <= k <= N.
        queries: [M, 3] or [B, M, 3] on the same device with the same batch shape as
            ``points``; None means the points themselves (M = N), so each point's first
            neighbour is itself.
        chunk_size: queries processed at once. Peak extra memory is bounded by
            ``chunk_size x N`` distances: about 20 bytes each in float32 (expanded and exact
            distances, sort values and int64 indices), reached only when a chunk's search
            region holds every point; on surfaces or uniform clouds a region holds a few
            thousand points.

    Returns:
        ``(indices, sq_distances)``: int64 [..., M, k] indices into ``points`` (per batch item)
        and [..., M, k] squared Euclidean distances in the dtype of ``points``, ascending along
        the last axis; equal distances are ordered by index (see the module docstring).

    Raises:
        KnnInputError (a ``ValueError`` and a ``ResplatError``): shapes, dtypes, devices or
        batch sizes that do not match, k < 1, N < k, chunk_size < 1, or non-finite coordinates.
    """
    batched = _check(points, k, queries, chunk_size)
    pts = points if batched else points.unsqueeze(0)
    qrs = None if queries is None else (queries if batched else queries.unsqueeze(0))
    out_dtype = pts.dtype
    work_dtype = pts.dtype if pts.dtype in (torch.float32, torch.float64) else torch.float32
    results = [
        _knn_single(pts[b].to(work_dtype), k, None if qrs is None else qrs[b].to(work_dtype),
                    chunk_size)
        for b in range(pts.shape[0])
    ]
    idx = torch.stack([r[0] for r in results])
    d2 = torch.stack([r[1] for r in results]).to(out_dtype)
    return (idx, d2) if batched else (idx[0], d2[0])


def _check(points: Tensor, k: int, queries: Tensor | None, chunk_size: int) -> bool:
    if not isinstance(points, Tensor) or points.dim() not in (2, 3) or points.shape[-1] != 3:
        raise KnnInputError(f"knn: points must be [N, 3] or [B, N, 3], got {_shape(points)}")
    if not points.is_floating_point():
        raise KnnInputError(f"knn: points must be floating point, got {points.dtype}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise KnnInputError(f"knn: k must be a positive int, got {k!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise KnnInputError(f"knn: chunk_size must be a positive int, got {chunk_size!r}")
    n = points.shape[-2]
    if n < k:
        raise KnnInputError(f"knn: asked for k={k} neighbours among only N={n} points")
    if not bool(torch.isfinite(points).all()):
        raise KnnInputError("knn: points contain NaN or infinite coordinates")
    if queries is not None:
        if not isinstance(queries, Tensor) or queries.dim() != points.dim() or queries.shape[-1] != 3:
            raise KnnInputError(
                f"knn: queries must be {'[B, M, 3]' if points.dim() == 3 else '[M, 3]'} like "
                f"points {tuple(points.shape)}, got {_shape(queries)}")
        if points.dim() == 3 and queries.shape[0] != points.shape[0]:
            raise KnnInputError(f"knn: queries batch {queries.shape[0]} != points batch {points.shape[0]}")
        if queries.device != points.device or not queries.is_floating_point():
            raise KnnInputError(
                f"knn: queries ({queries.dtype}, {queries.device}) must be floating point on "
                f"the device of points ({points.device})")
        if not bool(torch.isfinite(queries).all()):
            raise KnnInputError("knn: queries contain NaN or infinite coordinates")
    return points.dim() == 3


def _shape(x: object) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__


def _knn_single(points: Tensor, k: int, queries: Tensor | None, chunk_size: int) -> tuple[Tensor, Tensor]:
    """kNN of one cloud: points [N, 3], queries [M, 3] (or None) -> int64 [M, k], [M, k]."""
    q_all = points if queries is None else queries
    m = q_all.shape[0]
    idx_out = torch.empty(m, k, dtype=torch.int64, device=points.device)
    d2_out = torch.empty(m, k, dtype=points.dtype, device=points.device)
    if m == 0:
        return idx_out, d2_out
    codes = morton_codes(q_all)
    codes, order = torch.sort(codes)
    extent = float((torch.cat([points, q_all]).amax(0) - torch.cat([points, q_all]).amin(0)).max())
    guess = None  # search radius^2 that sufficed for most queries of the previous chunk
    for start, end in _octree_chunks(codes, chunk_size):
        rows = order[start:end]
        i, d = _knn_chunk(points, q_all[rows], k, chunk_size, extent, guess)
        idx_out[rows] = i
        d2_out[rows] = d
        guess = float(torch.quantile(d[:, -1].float(), 0.9)) * (1.0 + 1e-5)
    return idx_out, d2_out


def morton_codes(xyz: Tensor) -> Tensor:
    """Z-order (Morton) codes [M] int64 of points [M, 3].

    Coordinates are quantised to 2^10 cells per axis over their bounding box and the bits of
    the three cell indices interleaved (x lowest), so the top 3L bits name the level-L octree
    cell of the bounding box that holds the point.
    """
    lo = xyz.amin(0)
    span = (xyz.amax(0) - lo).clamp_min(torch.finfo(xyz.dtype).tiny)
    cells = ((xyz - lo) / span * (2**_MORTON_BITS - 1)).round().to(torch.int64)
    code = torch.zeros(xyz.shape[0], dtype=torch.int64, device=xyz.device)
    for bit in range(_MORTON_BITS):
        for axis in range(3):
            code |= ((cells[:, axis] >> bit) & 1) << (3 * bit + axis)
    return code


def _octree_chunks(codes: Tensor, chunk_size: int) -> list[tuple[int, int]]:
    """Split sorted Morton codes [M] into ranges of at most ``chunk_size`` inside octree cells.

    A cell with too many points is split into its 8 children; consecutive small children are
    packed together up to ``chunk_size``, so every range lies inside one octree cell and has a
    compact bounding box. A finest-level cell with too many points is split by count.
    """
    out: list[tuple[int, int]] = []
    stack = [(0, codes.shape[0], 0)]
    while stack:
        start, end, level = stack.pop()
        if end - start <= chunk_size:
            out.append((start, end))
            continue
        if level == _MORTON_BITS:
            out.extend((s, min(s + chunk_size, end)) for s in range(start, end, chunk_size))
            continue
        shift = 3 * (_MORTON_BITS - level - 1)
        _, counts = torch.unique_consecutive(codes[start:end] >> shift, return_counts=True)
        children: list[tuple[int, int, int]] = []  # (start, end, level) in Morton order
        s = start
        for c in counts.tolist():
            last = children[-1] if children else None
            if c <= chunk_size and last is not None and last[1] - last[0] <= chunk_size - c:
                children[-1] = (last[0], s + c, level + 1)  # pack small siblings together
            else:
                children.append((s, s + c, level + 1))
            s += c
        stack.extend(reversed(children))
    return out


def _knn_chunk(points: Tensor, q: Tensor, k: int, cap: int, extent: float,
               r2_guess: float | None) -> tuple[Tensor, Tensor]:
    """Exact kNN of the chunk q [c, 3] among points [N, 3] (see the module docstring).

    Searches the points within sqrt(r2) of the chunk's bounding box, r2 being ``r2_guess`` (the
    previous chunk's radius) or else an upper bound from points inside the box. A query whose
    k-th distance is within the searched radius is final: every point left out is farther. The
    other queries are searched again with the largest of their k-th distances, which bounds
    their true k-th distances, so a second pass is always exact.
    """
    box_d2, centre = _box_d2(points, q)
    r2 = r2_guess
    cand = None if r2 is None else torch.nonzero(box_d2 <= r2).squeeze(1)
    if cand is None or cand.numel() < k:
        r2 = _upper_bound(points, q, centre, box_d2, k, cap, extent)
        cand = torch.nonzero(box_d2 <= r2).squeeze(1)
    sel, d2 = _select(points[cand], q, centre, k, exact=True)
    idx = cand[sel]
    short = d2[:, -1] > r2 * (1.0 - 1e-5)
    if bool(short.any()):
        rows = torch.nonzero(short).squeeze(1)
        r2 = float(d2[rows, -1].max()) * (1.0 + 1e-5)
        box_d2, centre = _box_d2(points, q[rows])
        cand = torch.nonzero(box_d2 <= r2).squeeze(1)
        sel, d2_rows = _select(points[cand], q[rows], centre, k, exact=True)
        idx[rows] = cand[sel]
        d2[rows] = d2_rows
    return idx, d2


def _box_d2(points: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Squared distance [N] of each point to the bounding box of q [c, 3], and the box centre [3]."""
    lo, hi = q.amin(0), q.amax(0)
    box_d2 = ((lo - points).clamp_min(0) + (points - hi).clamp_min(0)).square().sum(1)
    return box_d2, 0.5 * (lo + hi)


def _upper_bound(points: Tensor, q: Tensor, centre: Tensor, box_d2: Tensor, k: int, cap: int,
                 extent: float) -> float:
    """A radius^2 >= every query's k-th squared distance, from k..cap points near the box."""
    margin = 0.0
    while True:
        seed = torch.nonzero(box_d2 <= margin * margin).squeeze(1)
        if seed.numel() >= k:
            break
        margin = max(2.0 * margin, 1e-3 * extent)
    if seed.numel() > max(cap, k):
        seed = seed[torch.linspace(0, seed.numel() - 1, max(cap, k), device=seed.device).round().long()]
    _, bound_d2 = _select(points[seed], q, centre, k)
    return float(bound_d2[:, -1].max()) * (1.0 + 1e-5)


def _select(p: Tensor, q: Tensor, centre: Tensor, k: int, exact: bool = False) -> tuple[Tensor, Tensor]:
    """k nearest columns of p [m, 3] (m >= k) for each row of q [c, 3].

    Returns column indices int64 [c, k] and exact squared distances [c, k] (differences of the
    given coordinates squared and summed as dx^2 + dy^2 + dz^2), ascending. The expansion runs
    in coordinates relative to ``centre`` [3] to limit cancellation. With ``exact`` the
    selection is exact with the lower column winning ties; otherwise it may be off by rounding
    near ties (still k real points, good enough for an upper bound).
    """
    m = p.shape[0]
    kk = min(k + 1, m) if exact else k
    pc, qc = p - centre, q - centre
    pn = pc.square().sum(1)
    qn = qc.square().sum(1)
    approx = torch.addmm(pn.unsqueeze(0), qc, pc.T, alpha=-2.0).add_(qn.unsqueeze(1))
    top_val, top_col = approx.topk(kk, dim=1, largest=False, sorted=True)
    cols, d2 = _sorted_exact(p, q, top_col[:, :k])
    if exact and kk > k:
        # |expanded - exact| <= ~6 eps (|q|^2 + |p|^2) (+ centring); 32 eps leaves a wide margin.
        err = 32.0 * torch.finfo(p.dtype).eps * (qn + pn.max()) + torch.finfo(p.dtype).tiny
        unsure = top_val[:, k] - err <= d2[:, -1]
        if bool(unsure.any()):
            rows = torch.nonzero(unsure).squeeze(1)
            full = _exact_d2(p.unsqueeze(0), q[rows].unsqueeze(1))  # [r, m]
            d2_rows, cols_rows = torch.sort(full, dim=1, stable=True)
            cols[rows] = cols_rows[:, :k]
            d2[rows] = d2_rows[:, :k]
    return cols, d2


def _sorted_exact(p: Tensor, q: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
    """Exact distances of the selected columns [c, k], sorted by (distance, column)."""
    cols, _ = cols.sort(dim=1)
    d2 = _exact_d2(p[cols], q.unsqueeze(1))
    d2, perm = torch.sort(d2, dim=1, stable=True)
    return cols.gather(1, perm), d2


def _exact_d2(a: Tensor, b: Tensor) -> Tensor:
    """Squared distance of broadcast coordinate tensors [..., 3], summed in x, y, z order."""
    d2 = (a[..., 0] - b[..., 0]).square()
    d2 += (a[..., 1] - b[..., 1]).square()
    d2 += (a[..., 2] - b[..., 2]).square()
    return d2
