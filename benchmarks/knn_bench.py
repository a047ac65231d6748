"""Exact kNN (resplat.model.knn) on CPU against a brute-force baseline, printed as a table.

The baseline is what pointops' CUDA kernel does, written in torch: every query against every
point (chunked |q|^2 - 2 q.p + |p|^2 and topk; O(N^2) work, not even exact in float32). Both
run on the same random clouds in the same process; the ratio is baseline / knn. Clouds:
"uniform" (N points in a unit cube) and "surface" (points on a bumpy sheet, like Gaussians
from depth maps, where neighbourhoods are 2D). Seconds are the best of --repeat runs.

Usage: python benchmarks/knn_bench.py [--n 100000] [--k 16,8] [--threads 1] [--repeat 1]
       [--no-baseline]
One torch thread by default: on shared 2-core machines two OpenMP threads spin against other
jobs and the timings become meaningless (0 = torch's default).
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse

import torch

from resplat.model import knn
from resplat.model.knn import DEFAULT_CHUNK_SIZE
from timing import best_of


def cloud(kind: str, n: int, seed: int = 0) -> torch.Tensor:
    """[n, 3] float32 points: "uniform" in [0, 1]^3 or "surface" z = 0.1 sin(6x) cos(6y)."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=g)
    if kind == "surface":
        xyz[:, 2] = 0.1 * torch.sin(6 * xyz[:, 0]) * torch.cos(6 * xyz[:, 1])
    return xyz


def brute_force(points: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Baseline: all-pairs expansion + topk per chunk of queries (int64 [N, k])."""
    pn = points.square().sum(1)
    out = []
    for s in range(0, points.shape[0], chunk):
        q = points[s:s + chunk]
        d2 = torch.addmm(pn[None], q, points.T, alpha=-2.0).add_(q.square().sum(1)[:, None])
        out.append(d2.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--k", default="16,8")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU, {torch.get_num_threads()} torch threads, float32, chunk_size {DEFAULT_CHUNK_SIZE}")
    print()
    print("| cloud | N | k | knn (s) | brute force (s) | ratio | same neighbour sets |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("uniform", "surface"):
        pts = cloud(kind, args.n)
        for k in (int(v) for v in args.k.split(",")):
            res = {}
            t = best_of(lambda: res.__setitem__("idx", knn(pts, k)[0]), args.repeat)
            if args.no_baseline:
                print(f"| {kind} | {args.n} | {k} | {t:.3f} | - | - | - |")
                continue
            tb = best_of(lambda: res.__setitem__("ref", brute_force(pts, k)), args.repeat)
            same = (res["idx"].sort(1).values == res["ref"].sort(1).values).all(1).float().mean()
            print(f"| {kind} | {args.n} | {k} | {t:.3f} | {tb:.3f} | {tb / t:.1f}x | {100 * float(same):.2f}% of rows |")


if __name__ == "__main__":
    main()
