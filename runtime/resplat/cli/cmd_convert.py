"""``resplat convert IN OUT``: translate between splat formats (PLY, .splat, .spz, .glb/.gltf, .sog)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("convert", help="convert a splat file between .ply, .splat, .spz, .glb, .gltf and .sog",
                       description="Convert a splat file; the formats are chosen by extension.")
    p.add_argument("input", help="source .ply, .splat, .spz, .glb, .gltf or .sog")
    p.add_argument("output", help="destination .ply, .splat, .spz, .glb, .gltf or .sog (written atomically)")
    p.add_argument("--sh-degree", type=int, choices=(0, 1, 2, 3), help="truncate or zero-pad SH to this degree")
    p.add_argument("--min-opacity", type=float, default=None, help="drop splats whose opacity is below this value")
    return p


def run(args, progress) -> None:
    import numpy as np

    from ..formats import read_splat_arrays, write_splat_arrays

    arrays = read_splat_arrays(args.input)
    n_in = len(arrays)
    if args.min_opacity is not None:
        keep = 1.0 / (1.0 + np.exp(-arrays.logit_opacities.astype(np.float64))) >= args.min_opacity
        arrays = arrays.select(keep)
    if args.sh_degree is not None:
        arrays = arrays.with_sh_degree(args.sh_degree)
    write_splat_arrays(arrays, args.output)
    progress.message("convert", f"wrote {len(arrays)} of {n_in} splats (SH degree {arrays.sh_degree}) to {args.output}")
    progress.result("convert", path=str(args.output), count=len(arrays), sh_degree=arrays.sh_degree)
