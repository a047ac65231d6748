"""What a fixed grid of Gaussians can paint of one view: the ceiling of a per-pixel-cell prediction.

The embedded model predicts one Gaussian per 4x4-pixel cell of every input view ((H/4)(W/4) per
view, the release's DL3DV layout, docs/model-architecture.md section 1). This measures whether
that density, rather than the network, limits the picture: for each chosen input view of a
posed-view folder with exact depth (``demo/asset_scene.py --world open --depth``), one Gaussian
per ``cell`` x ``cell`` pixels is seeded by ``eval_assets.py``'s naive unprojection
(:func:`eval_assets.unproject_blocks`: the cell centre's ray at the cell's median z-depth, the
cell's mean colour), with the pixels without a finite depth put at 1.5x the view's farthest depth
first (so that every cell has a Gaussian and those paint the world behind), isotropic with 0.6 of
the cell's footprint (``cell * depth / f``) and opacity 0.95, then optimised by :func:`resplat.optim.optimize` (3DGS, no
densification, no pruning) against that one view alone for ``--steps`` steps. Scored on that
same view: content PSNR (pixels whose ground-truth depth is finite and > 0), beside, measured in
the same run:

- ``bilinear``: the view area-averaged to the cell grid and bilinearly upsampled (the smooth
  signal a cell grid holds);
- ``seed``: the seeded Gaussians before optimisation (the naive unprojection of one view).

It is an upper bound for one view in isolation (no other view's Gaussians in front, no held-out
view to generalise to), not for held-out views.

    .venv/bin/python benchmarks/grid_ceiling.py --views runs/eval/spider runs/eval/jeep runs/eval/sydney \\
        --steps 400 --threads 2 --md benchmarks/results/grid_ceiling.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_assets import unproject_blocks, views_depth_scene  # noqa: E402
from recurrence import BenchmarkInputError  # noqa: E402
from resplat.gaussians import Gaussians  # noqa: E402
from resplat.metrics import psnr  # noqa: E402
from resplat.optim import optimize  # noqa: E402
from resplat.render import render  # noqa: E402

SEED_SIGMA = 0.6  # standard deviation of a seed in cell footprints
SEED_OPACITY = 0.95


def cell_gaussians(image, depth, camera, cell: int) -> Gaussians:
    """One Gaussian per ``cell`` x ``cell`` pixels of one view.

    Args:
        image: [1, 3, H, W] float32 in [0, 1]; depth: [H, W] z-depth in metres (inf / 0: none);
        camera: one :class:`resplat.cameras.Cameras` (float32); cell: cell size in pixels
            dividing H and W.

    Returns:
        (H/cell)(W/cell) float32 Gaussians, SH degree 0, as the module docstring describes.
    """
    d = depth.clone()
    finite = torch.isfinite(d) & (d > 0)
    d[~finite] = d[finite].max() * 1.5
    return unproject_blocks(image, d[None], camera, block=cell, opacity=SEED_OPACITY, sigma=SEED_SIGMA)


def bilinear(image, cell: int):
    """[1, 3, H, W] area-averaged to the cell grid and bilinearly upsampled back."""
    return F.interpolate(F.avg_pool2d(image, cell), scale_factor=cell, mode="bilinear", align_corners=False)


def content_psnr(rgb, image, mask) -> float:
    """PSNR (dB) of ``rgb`` clamped to [0, 1] against ``image`` ([1, 3, H, W]) over ``mask`` [1, H, W]."""
    return float(psnr(rgb.clamp(0, 1), image, mask=mask).mean())


def measure(folder: Path, view_names: list[str] | None, cells: tuple[int, ...], steps: int) -> list[dict]:
    """Rows (scene, view, cell, bilinear / seed / fitted content PSNR in dB, Gaussians, seconds).

    Raises:
        BenchmarkInputError: a view name the folder does not have, or the folder's own errors
            (:func:`eval_assets.views_depth_scene`: no split.json, no depth maps).
    """
    scene = views_depth_scene(folder, max(cells))
    names = list(scene.cameras.names)
    if view_names is None:
        picks = [scene.context[0], scene.context[len(scene.context) // 2]]
    else:
        missing = [n for n in view_names if n not in names]
        if missing:
            raise BenchmarkInputError(f"{folder}: no view {missing[0]!r} (views: {', '.join(names)})")
        picks = [names.index(n) for n in view_names]
    rows = []
    for i in picks:
        image, depth = scene.images[i:i + 1].float(), scene.depths[i].float()
        camera = scene.cameras[i:i + 1].to(dtype=torch.float32)
        mask = (torch.isfinite(depth) & (depth > 0))[None]
        for cell in cells:
            g = cell_gaussians(image, depth, camera, cell)
            t0 = time.perf_counter()
            fitted = optimize(g, image, camera, steps=steps, strategy="none", prune_opacity=1e-6).gaussians
            seconds = time.perf_counter() - t0
            rows.append({"scene": folder.name, "view": names[i], "cell": cell, "gaussians": len(g.means),
                         "bilinear": content_psnr(bilinear(image, cell), image, mask),
                         "seed": content_psnr(render(g, camera).rgb, image, mask),
                         "fitted": content_psnr(render(fitted, camera).rgb, image, mask), "seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict], steps: int, threads: int) -> str:
    lines = [f"Content PSNR (dB) on the view itself; {steps} optimisation steps per fit, CPU, {threads} thread(s).", "",
             "| scene | view | cell (px) | Gaussians | bilinear | seed | fitted | fit time (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['scene']} | {r['view']} | {r['cell']} | {r['gaussians']:,} | {r['bilinear']:.2f} | "
              f"{r['seed']:.2f} | {r['fitted']:.2f} | {r['seconds']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--views", type=Path, nargs="+", required=True, help="posed-view folders with depth and split.json")
    p.add_argument("--view", nargs="*", default=None, help="view names (default: the first and middle input views)")
    p.add_argument("--cells", type=int, nargs="+", default=[4, 2], help="cell sizes in pixels (default 4 2)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--md", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [r for folder in args.views for r in measure(folder, args.view, tuple(args.cells), args.steps)]
    text = markdown(rows, args.steps, args.threads)
    print(text)
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
