"""``resplat reconstruct VIEWS --out SCENE``: feed-forward ReSplat reconstruction (initial
prediction plus recurrent updates) from posed views, with the embedded ``tiny`` model unless
``--checkpoint`` names another; then optional pruning of near-transparent Gaussians
(``--prune-opacity``) and an optional optimisation polish (``--optimize-steps``)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..errors import ResplatError
from ..defaults import (EMBEDDED_ITERATIONS, KEEP_ITERATION, MAX_ITERATIONS, POLISH_STEPS, POLISH_STRATEGY,
                        PRUNE_OPACITY)
from .cmd_optimize import preview_due
from .common import DEVICE_HELP, config_from_json, parse_size
from .preview import PreviewWriter, add_preview_options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("reconstruct", help="predict Gaussians from posed views with ReSplat (embedded model or a checkpoint)",
                       description="Reconstruct a scene from posed VIEWS with ReSplat (arXiv 2510.08575): an "
                                   "initial feed-forward prediction refined by recurrent updates, then optionally "
                                   "pruned and polished by 3DGS optimisation.")
    p.add_argument("views", help="transforms.json, a folder holding one, or a COLMAP model folder")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="ReSplat checkpoint (.pth/.ckpt/.safetensors); default: the embedded tiny model shipped "
                        "with resplat (resplat/model/weights/tiny.safetensors)")
    p.add_argument("--preset", default=None, help="model preset (default: inferred from the checkpoint), e.g. small-dl3dv")
    p.add_argument("--iterations", type=int, default=None, metavar=f"0..{MAX_ITERATIONS}",
                   help=f"recurrent update iterations (default: {EMBEDDED_ITERATIONS} with the embedded model, else "
                        "the preset's default_iterations: 2 as the release evaluates)")
    p.add_argument("--keep", choices=("best", "last"), default=KEEP_ITERATION,
                   help="which iteration to write: best (the one whose renders match the input views best; an "
                        f"update that fits them worse is not kept) or last, as the release (default {KEEP_ITERATION})")
    p.add_argument("--prune-opacity", type=float, default=PRUNE_OPACITY, metavar="T",
                   help=f"after the last iteration drop Gaussians with opacity < T (default {PRUNE_OPACITY}, "
                        "3DGS's pruning threshold; 0 keeps all)")
    p.add_argument("--optimize-steps", type=int, default=POLISH_STEPS, metavar="N",
                   help=f"then polish with N steps of 3DGS optimisation against the input views (default {POLISH_STEPS})")
    p.add_argument("--polish-seconds", type=float, default=0.0, metavar="S",
                   help="polish for S seconds of wall time (with --optimize-steps: whichever ends first; default 0)")
    p.add_argument("--strategy", choices=("none", "default", "mcmc"), default=POLISH_STRATEGY,
                   help=f"densification of the polish: none (the count is kept), default (3DGS's adaptive density "
                        f"control) or mcmc (default {POLISH_STRATEGY})")
    p.add_argument("--ignore-depth", action="store_true",
                   help="do not use the views' depth maps (depth_file_path, e.g. Blender's depth pass): "
                        "the network predicts depth from the images alone")
    p.add_argument("--out", required=True, type=Path, help="output splat file (.ply/.splat/.spz)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    fit = p.add_mutually_exclusive_group()
    fit.add_argument("--size", type=parse_size, help="resample the views to WxH pixels (multiples of the preset's size multiple)")
    fit.add_argument("--crop", action="store_true", help="centre-crop the views to the nearest valid size")
    add_preview_options(p, every=True)
    p.add_argument("--config-json", type=Path, default=None, help=argparse.SUPPRESS)  # tests: a shrunken ModelConfig
    return p


def _check_options(args) -> None:
    """One-line ResplatErrors for option values out of range (before any work)."""
    if args.iterations is not None and not 0 <= args.iterations <= MAX_ITERATIONS:
        raise ResplatError(f"--iterations must be in 0..{MAX_ITERATIONS}, got {args.iterations}")
    if not 0 <= args.prune_opacity < 1:
        raise ResplatError(f"--prune-opacity must be in [0, 1), got {args.prune_opacity}")
    if not (math.isfinite(args.polish_seconds) and args.polish_seconds >= 0):
        raise ResplatError(f"--polish-seconds must be a finite number >= 0, got {args.polish_seconds}")
    if args.optimize_steps < 0:
        raise ResplatError(f"--optimize-steps must be >= 0, got {args.optimize_steps}")
    if args.preview_every < 1:
        raise ResplatError(f"--preview-every must be >= 1, got {args.preview_every}")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise ResplatError(f"{args.checkpoint}: checkpoint file not found")


def _load_model(args):
    """(model, default iterations): the checkpoint's model and its preset's iterations, or the
    embedded model and :data:`resplat.defaults.EMBEDDED_ITERATIONS`."""
    from ..model import checkpoint

    preset = args.preset if args.config_json is None else config_from_json(args.config_json)
    if args.checkpoint is None:
        return checkpoint.load_embedded_model(preset=preset), EMBEDDED_ITERATIONS
    model = checkpoint.load_checkpoint(args.checkpoint, preset=preset)
    return model, model.config.default_iterations


def run(args, progress) -> None:
    from ..formats import write_splats
    from ..model.postprocess import polish, prune_transparent
    from ..model.reconstruct import reconstruct_views
    from ..views import read_views
    from ..views.posed import fit_to_multiple, resize

    _check_options(args)
    views = read_views(args.views)
    preview = PreviewWriter(args.preview_dir, progress)
    model, default_iterations = _load_model(args)
    config = model.config
    if args.size is not None:
        views = resize(views, *args.size)
    elif args.crop:
        views = fit_to_multiple(views, config.size_multiple, mode="crop")
    iterations = default_iterations if args.iterations is None else args.iterations
    source = "embedded model" if args.checkpoint is None else str(args.checkpoint)
    depths = None if args.ignore_depth or views.depths is None else views.depths
    depth_use = "exact" if depths is not None else "ignored" if views.depths is not None else "predicted"
    progress.message("load", f"{len(views)} views of {views.width}x{views.height}, preset {config.name} ({source}), "
                             f"{iterations} iterations, depth {depth_use}"
                             + (" (the views' depth maps)" if depths is not None else ""))

    def callback(stage, it, total, gaussians) -> bool:
        if stage == "initial":
            progress.message("reconstruct", f"initial prediction: {len(gaussians)} Gaussians")
            preview("initial", 0, gaussians)
        else:
            progress.step("reconstruct", it, total, gaussians=len(gaussians))
            preview("update", it, gaussians)
        return True

    start = time.perf_counter()
    result = reconstruct_views(views.images, views.cameras, model, iterations=iterations, device=args.device,
                               callback=callback, depths=depths, keep=args.keep)
    gaussians = result.gaussians
    seconds = time.perf_counter() - start
    if iterations:
        fits = ", ".join(f"{p:.2f}" for p in result.input_psnr)
        progress.message("reconstruct", f"kept iteration {result.kept} of 0..{iterations} (--keep {args.keep}); "
                                        f"input-view PSNR per iteration: {fits} dB")
    predicted = len(gaussians)
    gaussians = prune_transparent(gaussians, args.prune_opacity)
    pruned = predicted - len(gaussians)
    if args.prune_opacity > 0:
        progress.message("prune", f"removed {pruned} of {predicted} Gaussians with opacity < {args.prune_opacity:g}")
    metrics = {"gaussians": len(gaussians), "predicted": predicted, "pruned": pruned,
               "prune_opacity": args.prune_opacity, "iterations": iterations, "seconds": round(seconds, 3),
               "model": source, "depth": depth_use, "kept_iteration": result.kept,
               "input_psnr": [round(p, 4) for p in result.input_psnr]}
    if args.optimize_steps or args.polish_seconds > 0:
        def on_step(info) -> bool:
            extra = {} if info.psnr is None else {"psnr": info.psnr}
            progress.step("polish", info.step, info.total, loss=info.loss, gaussians=info.num_gaussians,
                          seconds=info.seconds, **extra)
            if preview_due(info, args.preview_every):
                preview("polish", info.step, info.snapshot())
            return True

        result = polish(gaussians, views.images, views.cameras, args.optimize_steps, callback=on_step,
                        seconds=args.polish_seconds or None, strategy=args.strategy)
        gaussians = result.gaussians
        # the polish's strategy may have changed the count
        metrics.update(gaussians=len(gaussians), optimize_steps=args.optimize_steps, polish_seconds=round(result.seconds, 3),
                       strategy=args.strategy)
        if result.psnr_history:
            metrics["psnr"] = result.psnr_history[-1][1]
    write_splats(gaussians.detach().to("cpu"), args.out)
    progress.message("reconstruct", f"wrote {len(gaussians)} Gaussians to {args.out} in "
                                    f"{time.perf_counter() - start:.1f} s")
    progress.result("reconstruct", path=str(args.out), metrics=metrics)
