"""Exact kNN (resplat.model.knn) against float64 / same-dtype brute force references.

The reference sorts *all* pairwise squared distances (dx^2 + dy^2 + dz^2, the formula pointops'
knn_query_cuda_kernel uses) with a stable sort, so equal distances keep ascending index order:
the tie rule knn() documents. Indices and distances are compared exactly, not approximately.
"""

from __future__ import annotations

import pytest
import torch

from resplat.errors import ResplatError
from resplat.formats import read_splat_arrays
from resplat.model import KnnInputError, knn




def brute_force(points: torch.Tensor, k: int, queries: torch.Tensor | None = None):
    """Reference: stable argsort of every pairwise squared distance, in the input dtype."""
    q = points if queries is None else queries
    d2 = (q[:, None, 0] - points[None, :, 0]).square()
    d2 = d2 + (q[:, None, 1] - points[None, :, 1]).square()
    d2 = d2 + (q[:, None, 2] - points[None, :, 2]).square()
    d2s, idx = torch.sort(d2, dim=1, stable=True)
    return idx[:, :k], d2s[:, :k]


def _clouds():
    g = torch.Generator().manual_seed(1234)
    uniform = torch.rand(1500, 3, generator=g, dtype=torch.float64)
    # Many exact duplicates and exact distance ties: integer lattice points, shuffled.
    dups = torch.randint(0, 6, (1200, 3), generator=g).double()
    # Tight clusters far apart (one chunk's box spans empty space), plus a few outliers.
    centres = torch.randn(5, 1, 3, generator=g, dtype=torch.float64) * 50.0
    clustered = (centres + 1e-3 * torch.randn(5, 250, 3, generator=g, dtype=torch.float64)).reshape(-1, 3)
    clustered = torch.cat([clustered, torch.randn(7, 3, generator=g, dtype=torch.float64) * 500.0])
    # A plane (zero extent along z) and a line: degenerate boxes.
    plane = torch.cat([torch.rand(600, 2, generator=g, dtype=torch.float64), torch.zeros(600, 1, dtype=torch.float64)], 1)
    return {"uniform": uniform, "duplicates": dups, "clustered": clustered, "plane": plane}


CLOUDS = _clouds()


@pytest.mark.parametrize("name", sorted(CLOUDS))
@pytest.mark.parametrize("k", [1, 8, 16])
def test_matches_float64_brute_force_exactly(name, k):
    pts = CLOUDS[name]
    idx, d2 = knn(pts, k, chunk_size=256)
    ref_idx, ref_d2 = brute_force(pts, k)
    assert idx.dtype == torch.int64 and idx.shape == (pts.shape[0], k)
    assert d2.dtype == torch.float64
    assert torch.equal(d2, ref_d2)
    assert torch.equal(idx, ref_idx)


def test_point_is_its_own_first_neighbour():
    pts = CLOUDS["uniform"]
    idx, d2 = knn(pts, 16)
    assert torch.equal(idx[:, 0], torch.arange(pts.shape[0]))
    assert bool((d2[:, 0] == 0).all())
    assert bool((d2[:, 1:] > 0).all())
    assert bool((d2[:, 1:] >= d2[:, :-1]).all())


def test_duplicates_listed_in_index_order():
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 1, 0], [5, 5, 5]])
    idx, d2 = knn(pts, 5)
    # Point 3 is a triple duplicate: its zero-distance neighbours come in index order, and the
    # tie between the two unit-distance points 1 and 4 is broken by index as well.
    assert idx[3].tolist() == [0, 2, 3, 1, 4]
    assert d2[3].tolist() == [0, 0, 0, 1, 1]
    # At the k-th place the lower index is kept (pointops' strict "<" keeps the first seen).
    idx2, _ = knn(pts, 4)
    assert idx2[3].tolist() == [0, 2, 3, 1]


@pytest.mark.parametrize("name", ["uniform", "clustered", "duplicates"])
def test_chunked_equals_unchunked(name):
    pts = CLOUDS[name]
    whole = knn(pts, 16, chunk_size=10**7)
    for cs in (3, 17, 300):
        part = knn(pts, 16, chunk_size=cs)
        assert torch.equal(part[0], whole[0]) and torch.equal(part[1], whole[1])


def test_float32_far_from_origin_is_exact_where_expansion_cancels():
    # Neighbour spacing ~1e-3 at coordinates ~1e4: |q|^2 - 2 q.p + |p|^2 in float32 has absolute
    # error ~1e-8 * 3e8 = 3 >> 1e-6, so a plain expansion returns the wrong neighbours here.
    g = torch.Generator().manual_seed(7)
    pts = (1.0e4 + 0.1 * torch.rand(2000, 3, generator=g, dtype=torch.float64)).float()
    idx, d2 = knn(pts, 16, chunk_size=200)
    ref_idx, ref_d2 = brute_force(pts, 16)
    assert torch.equal(idx, ref_idx) and torch.equal(d2, ref_d2)
    # Show the reference really is sensitive: the naive float32 expansion disagrees.
    naive = (pts.square().sum(1)[:, None] - 2 * pts @ pts.T + pts.square().sum(1)[None])
    naive_idx = naive.topk(16, dim=1, largest=False).indices.sort(dim=1).values
    assert not torch.equal(naive_idx, ref_idx.sort(dim=1).values)


def test_float32_agrees_with_float64_distances():
    pts32 = CLOUDS["clustered"].float()
    pts64 = pts32.double()  # the same coordinates, float64 arithmetic
    idx, d2 = knn(pts32, 16)
    _, ref_d2 = brute_force(pts64, 16)
    assert d2.dtype == torch.float32
    torch.testing.assert_close(d2.double(), ref_d2, rtol=1e-5, atol=1e-9)
    # Every returned neighbour is at the distance float64 gives for that rank.
    got64 = (pts64[idx] - pts64[:, None]).square().sum(-1)
    torch.testing.assert_close(got64, ref_d2, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input(dtype):
    pts = CLOUDS["uniform"][:400].to(dtype)
    idx, d2 = knn(pts, 8)
    ref_idx, ref_d2 = brute_force(pts.float(), 8)
    assert d2.dtype == dtype
    assert torch.equal(idx, ref_idx)
    assert torch.equal(d2, ref_d2.to(dtype))


def test_separate_queries_and_batches():
    g = torch.Generator().manual_seed(3)
    pts = torch.rand(3, 700, 3, generator=g, dtype=torch.float64)
    qrs = torch.rand(3, 250, 3, generator=g, dtype=torch.float64) * 1.4 - 0.2  # some outside
    idx, d2 = knn(pts, 16, queries=qrs, chunk_size=64)
    assert idx.shape == (3, 250, 16) and d2.shape == (3, 250, 16)
    for b in range(3):
        ref_idx, ref_d2 = brute_force(pts[b], 16, qrs[b])
        assert torch.equal(idx[b], ref_idx) and torch.equal(d2[b], ref_d2)


def test_real_fixture_means(train_ply):
    means = torch.from_numpy(read_splat_arrays(train_ply).means).double()
    idx, d2 = knn(means, 16, chunk_size=128)
    ref_idx, ref_d2 = brute_force(means, 16)
    assert torch.equal(idx, ref_idx) and torch.equal(d2, ref_d2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    pts = CLOUDS["clustered"].float()
    cpu = knn(pts, 16)
    gpu = knn(pts.cuda(), 16)
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((torch.rand(10, 3), 11), {}, "k=11 neighbours among only N=10"),
        ((torch.rand(10, 2), 3), {}, "must be \\[N, 3\\]"),
        ((torch.ones(10, 3, dtype=torch.int64), 3), {}, "floating point"),
        ((torch.rand(10, 3), 0), {}, "positive int"),
        ((torch.rand(10, 3), 3), {"chunk_size": 0}, "chunk_size"),
        ((torch.tensor([[0.0, 0, float("nan")]] * 4), 2), {}, "NaN"),
        ((torch.rand(2, 10, 3), 3), {"queries": torch.rand(3, 5, 3)}, "batch"),
        ((torch.rand(10, 3), 3), {"queries": torch.rand(5, 3, 1)}, "queries must be"),
    ],
)
def test_bad_input_raises_one_line_value_error(args, kwargs, match):
    with pytest.raises(KnnInputError, match=match) as info:
        knn(*args, **kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ResplatError)
    assert "\n" not in str(info.value)
