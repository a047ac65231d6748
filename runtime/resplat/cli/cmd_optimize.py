"""``resplat optimize VIEWS --out SCENE``: standard 3DGS optimisation from a splat file or a
random initialisation, with optional held-out evaluation."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..defaults import OPTIMIZE_STEPS
from ..errors import ResplatError
from ..optim.config import OptimConfig
from .common import add_device_options, add_views_options, holdout_split, load_views, parse_color, pick_device
from .preview import PreviewWriter, add_preview_options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("optimize", help="optimise Gaussians to fit posed views (3DGS)",
                       description="Fit Gaussians to VIEWS with Adam on L1 + 0.2 D-SSIM (Kerbl et al. 2023).")
    p.add_argument("views", help="transforms.json, a folder holding one, or a COLMAP model folder")
    init = p.add_mutually_exclusive_group(required=True)
    init.add_argument("--init", help="start from this splat file (.ply/.splat/.spz)")
    init.add_argument("--random", type=int, metavar="N", help="start from N random Gaussians in the cameras' common view volume")
    init.add_argument("--depth-init", type=int, metavar="N",
                      help="start from N Gaussians on the surfaces of the views' depth maps (depth_file_path in transforms.json)")
    p.add_argument("--out", required=True, type=Path, help="output splat file (.ply/.splat/.spz)")
    p.add_argument("--bounds", type=parse_bounds, metavar="X0,Y0,Z0,X1,Y1,Z1",
                   help="with --random: sample in this world box (metres) instead of the whole common view volume")
    p.add_argument("--sh-dc-lr", type=float, default=OptimConfig.sh_dc_lr,
                   help=f"learning rate of the SH DC colour (default {OptimConfig.sh_dc_lr}, 3DGS's)")
    p.add_argument("--steps", type=int, default=OPTIMIZE_STEPS, help=f"optimisation steps (default {OPTIMIZE_STEPS})")
    p.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="wall-clock budget: stop after S seconds or --steps steps, whichever comes first")
    p.add_argument("--strategy", choices=("none", "default", "mcmc"), default="none",
                   help="densification: none (default: the count is kept), default (3DGS adaptive density "
                        "control) or mcmc (relocation of dead Gaussians at a fixed count; the best from --random)")
    p.add_argument("--sh-degree", type=int, choices=(0, 1, 2, 3), default=None,
                   help="SH degree of the result (default: the init's, 0 for --random / --depth-init)")
    p.add_argument("--prune", type=float, default=None, metavar="OPACITY",
                   help="remove Gaussians whose opacity falls below this (e.g. 0.005)")
    p.add_argument("--holdout", type=int, default=0, metavar="K",
                   help="hold out every K-th view (0, K, 2K, ...) and report PSNR on them (default 0: none)")
    p.add_argument("--background", type=parse_color, default=(0.0, 0.0, 0.0), help="r,g,b in [0,1]")
    p.add_argument("--seed", type=int, default=0)
    add_views_options(p)
    add_device_options(p)
    add_preview_options(p, every=True)
    return p


def parse_bounds(text: str):
    """'x0,y0,z0,x1,y1,z1' (metres) -> [2, 3] tensor of box corners; argparse type."""
    import torch

    try:
        v = [float(t) for t in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 6 or not all(lo < hi for lo, hi in zip(v[:3], v[3:])):
        raise argparse.ArgumentTypeError(f"bounds must be six numbers x0,y0,z0,x1,y1,z1 with each min < max, got {text!r}")
    return torch.tensor([v[:3], v[3:]])


def preview_due(info, every: int) -> bool:
    """Whether to write a preview after the step of ``info`` (a :class:`resplat.optim.Progress`):
    every ``every`` steps, except after the last one (the result file holds it), i.e. only while
    neither the step count (``total``, None with a time budget alone) nor the time budget
    (``budget`` seconds, None without one) is reached."""
    if info.step % every or info.snapshot is None:
        return False
    return (info.total is None or info.step < info.total) and (info.budget is None or info.seconds < info.budget)


def run(args, progress) -> None:
    import torch

    from ..formats import read_splats, write_splats
    from ..metrics import psnr
    from ..optim import depth_init, optimize, random_init
    from ..render import render

    if args.steps < 0:
        raise ResplatError(f"--steps must be >= 0, got {args.steps}")
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds >= 0):
        raise ResplatError(f"--seconds must be a finite number >= 0, got {args.seconds}")
    device = pick_device(args.device)
    views = load_views(args.views, args.size)
    train, test = holdout_split(len(views.cameras), args.holdout)
    cams_train, images_train = views.cameras[train], views.images[train]
    progress.message("load", f"{len(views.cameras)} views of {views.cameras.width}x{views.cameras.height}, "
                             f"{len(train)} for training, {len(test)} held out")
    if args.bounds is not None and not args.random:
        raise ResplatError("--bounds applies to --random initialisation only")
    if args.init:
        gaussians = read_splats(args.init)
        if args.sh_degree is not None:
            gaussians = gaussians.with_sh_degree(args.sh_degree)
    elif args.depth_init is not None:
        if args.depth_init <= 0:
            raise ResplatError(f"--depth-init needs a positive count, got {args.depth_init}")
        if views.depths is None:
            raise ResplatError(f"--depth-init: {args.views} gives no depth maps (no 'depth_file_path' in its frames)")
        gaussians = depth_init(views[train], args.depth_init, sh_degree=args.sh_degree or 0, seed=args.seed)
        progress.message("load", f"{len(gaussians)} initial Gaussians from the depth maps of {len(train)} views")
    else:
        if args.random <= 0:
            raise ResplatError(f"--random needs a positive count, got {args.random}")
        gaussians = random_init(cams_train, args.random, sh_degree=args.sh_degree or 0, seed=args.seed, bounds=args.bounds)
    bg = torch.tensor(args.background)
    if args.preview_every < 1:
        raise ResplatError(f"--preview-every must be >= 1, got {args.preview_every}")
    preview = PreviewWriter(args.preview_dir, progress)
    preview("initial", 0, gaussians)

    def callback(info) -> bool:
        metrics = {"loss": info.loss, "gaussians": info.num_gaussians, "seconds": info.seconds}
        if getattr(info, "psnr", None) is not None:
            metrics["psnr"] = info.psnr
        progress.step("optimize", info.step, info.total, **metrics)
        if preview_due(info, args.preview_every):
            preview("optimize", info.step, info.snapshot())
        return True

    result = optimize(gaussians.to(device), images_train.to(device), cams_train.to(device), args.steps,
                      backend=args.backend, background=bg.to(device), prune_opacity=args.prune,
                      lr=OptimConfig(sh_dc_lr=args.sh_dc_lr),
                      callback=callback, seed=args.seed, seconds=args.seconds, strategy=args.strategy)
    final = result.gaussians.detach()
    metrics = {"gaussians": len(final), "seconds": round(result.seconds, 3)}
    if test:
        with torch.no_grad():
            out = render(final, views.cameras[test].to(device), background=bg.to(device), backend=args.backend)
            scores = psnr(out.rgb.clamp(0, 1), views.images[test].to(device))
        metrics["holdout_psnr"] = float(scores.mean())
        progress.message("eval", f"held-out PSNR {metrics['holdout_psnr']:.2f} dB over {len(test)} views")
    write_splats(final.to("cpu"), args.out)
    progress.message("optimize", f"wrote {len(final)} Gaussians to {args.out} in {result.seconds:.1f} s")
    progress.result("optimize", path=str(args.out), metrics=metrics)
