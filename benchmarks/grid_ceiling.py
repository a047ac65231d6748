"""What a fixed grid of Gaussians can paint of one view: the ceiling of a per-pixel-cell prediction.

The embedded model predicts one Gaussian per 4x4-pixel cell of every input view ((H/4)(W/4) per
view, the release's DL3DV layout, docs/model-architecture.md section 1). This measures whether
that density, rather than the network, limits the picture: for each chosen input view of a
posed-view folder with exact depth (``demo/asset_scene.py --world open --depth``), one Gaussian
per ``cell`` x ``cell`` pixels is seeded at the cell centre's ray at the cell's mean z-depth
(cells without a finite depth at 1.5x the view's farthest depth, so that they paint the world
behind), isotropic with 0.6 of the cell's footprint (``cell * depth / fx``), opacity 0.95 and
the cell's mean colour, then optimised by :func:`resplat.optim.optimize` (3DGS, no
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
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from resplat.gaussians import Gaussians, rgb_to_sh0
from resplat.metrics import psnr
from resplat.optim import optimize
from resplat.render import render
from resplat.views import read_views


def cell_gaussians(image, depth, camera, cell: int) -> Gaussians:
    """One Gaussian per ``cell`` x ``cell`` pixels of one view.

    Args:
        image: [1, 3, H, W] float32 in [0, 1]; depth: [H, W] z-depth in metres (inf / 0: none);
        camera: one :class:`resplat.cameras.Cameras` (float32); cell: cell size in pixels
            dividing H and W.

    Returns:
        (H/cell)(W/cell) Gaussians, SH degree 0, as the module docstring describes.
    """
    d = depth.clone()
    finite = torch.isfinite(d) & (d > 0)
    d[~finite] = d[finite].max() * 1.5
    z = F.avg_pool2d(d[None, None], cell)[0, 0].reshape(-1, 1)
    colour = F.avg_pool2d(image, cell)[0].reshape(3, -1).T.clamp(0, 1)
    h, w = d.shape[0] // cell, d.shape[1] // cell
    ys, xs = torch.meshgrid(torch.arange(h) * cell + cell / 2, torch.arange(w) * cell + cell / 2, indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3).float()
    K, c2w = camera.K[0], camera.c2w[0]
    means = (pix @ torch.linalg.inv(K).T * z) @ c2w[:3, :3].T + c2w[:3, 3]
    scales = (0.6 * cell / K[0, 0] * z).expand(-1, 3)
    n = len(means)
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    return Gaussians(means, quats, scales.log(), torch.full((n,), 2.944), rgb_to_sh0(colour)[:, None])


def bilinear(image, cell: int):
    """[1, 3, H, W] area-averaged to the cell grid and bilinearly upsampled back."""
    return F.interpolate(F.avg_pool2d(image, cell), scale_factor=cell, mode="bilinear", align_corners=False)


def measure(folder: Path, view_names: list[str] | None, cells: tuple[int, ...], steps: int) -> list[dict]:
    """Rows (scene, view, cell, bilinear / seed / fitted content PSNR in dB, Gaussians, seconds)."""
    views = read_views(folder)
    names = [Path(p).stem for p in views.paths]
    if view_names is None:
        split = json.loads((folder / "split.json").read_text())["context"]
        view_names = [split[0], split[len(split) // 2]]
    rows = []
    for name in view_names:
        i = names.index(name)
        image, depth = views.images[i:i + 1].float(), views.depths[i, 0].float()
        camera = views.cameras[i:i + 1].to(dtype=torch.float32)
        mask = (torch.isfinite(depth) & (depth > 0))[None]
        for cell in cells:
            g = cell_gaussians(image, depth, camera, cell)
            t0 = time.perf_counter()
            fitted = optimize(g, image, camera, steps=steps, strategy="none", prune_opacity=1e-6).gaussians
            seconds = time.perf_counter() - t0
            score = lambda rgb: float(psnr(rgb.clamp(0, 1), image, mask=mask).mean())
            rows.append({"scene": folder.name, "view": name, "cell": cell, "gaussians": len(g.means),
                         "bilinear": score(bilinear(image, cell)), "seed": score(render(g, camera).rgb),
                         "fitted": score(render(fitted, camera).rgb), "seconds": seconds})
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
