"""Read/write time and size of splat files for N random splats (default 1M at SH degree 3).

Usage: python benchmarks/formats_bench.py [--n 1000000] [--degree 3] [--formats ply,spz,splat,glb,sog]
       [--out benchmarks/results/formats.md]

Prints a table (seconds are the best of --repeat runs, wall clock). Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from resplat.formats import read_splat_arrays, write_splat_arrays
from resplat.formats.arrays import SplatArrays
from timing import best_of


def random_splats(n: int, degree: int, seed: int = 0) -> SplatArrays:
    """Plausible random splats: means in a 20 m box, log scales around -4, SH ~ N(0, 0.1)."""
    rng = np.random.default_rng(seed)
    k = (degree + 1) ** 2
    sh = rng.normal(0.0, 0.1, (n, k, 3)).astype(np.float32)
    sh[:, 0] = rng.normal(0.0, 1.0, (n, 3))
    return SplatArrays(
        means=rng.uniform(-10, 10, (n, 3)).astype(np.float32),
        quats=rng.normal(size=(n, 4)).astype(np.float32),
        log_scales=rng.normal(-4.0, 1.0, (n, 3)).astype(np.float32),
        logit_opacities=rng.normal(0.0, 2.0, n).astype(np.float32),
        sh=sh,
    )



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--degree", type=int, default=3, choices=[0, 1, 2, 3])
    p.add_argument("--formats", default="ply,spz,splat,glb,sog")
    p.add_argument("--out", default=None, help="also write the table as markdown here")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    arrays = random_splats(args.n, args.degree)
    head = f"{args.n} random splats, SH degree {args.degree}, {os.cpu_count()} CPUs, all rows in one run"
    print(head)
    print(f"{'format':<8}{'write s':>10}{'read s':>10}{'size MB':>10}{'MB/s write':>12}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ext in args.formats.split(","):
            path = os.path.join(tmp, f"bench.{ext}")
            tw = best_of(lambda: write_splat_arrays(arrays, path), args.repeat)
            tr = best_of(lambda: read_splat_arrays(path), args.repeat)
            mb = os.path.getsize(path) / 1e6
            rows.append((ext, tw, tr, mb))
            print(f"{ext:<8}{tw:>10.2f}{tr:>10.2f}{mb:>10.1f}{mb / tw:>12.1f}", flush=True)
    if args.out:
        lines = [f"# Splat file formats: {head}", "", "| format | write s | read s | size MB |", "|---|---:|---:|---:|"]
        lines += [f"| .{e} | {w:.2f} | {r:.2f} | {m:.1f} |" for e, w, r, m in rows]
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
