"""``resplat reconstruct VIEWS --checkpoint FILE --out SCENE``: feed-forward ReSplat
reconstruction (initial prediction plus recurrent updates) from posed views."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ResplatError
from .common import config_from_json, parse_size
from .preview import PreviewWriter, add_preview_options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("reconstruct", help="predict Gaussians from posed views with a ReSplat checkpoint",
                       description="Reconstruct a scene from posed VIEWS with ReSplat (arXiv 2510.08575): an "
                                   "initial feed-forward prediction refined by recurrent updates.")
    p.add_argument("views", help="transforms.json, a folder holding one, or a COLMAP model folder")
    p.add_argument("--checkpoint", required=True, type=Path, help="ReSplat checkpoint (.pth/.ckpt/.safetensors)")
    p.add_argument("--preset", default=None, help="model preset (default: inferred from the checkpoint), e.g. small-dl3dv")
    p.add_argument("--iterations", type=int, default=None,
                   help="recurrent update iterations (default: the preset's, 2 as the release evaluates)")
    p.add_argument("--out", required=True, type=Path, help="output splat file (.ply/.splat/.spz)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda, cuda:1")
    fit = p.add_mutually_exclusive_group()
    fit.add_argument("--size", type=parse_size, help="resample the views to WxH pixels (multiples of the preset's size multiple)")
    fit.add_argument("--crop", action="store_true", help="centre-crop the views to the nearest valid size")
    add_preview_options(p)
    p.add_argument("--config-json", type=Path, default=None, help=argparse.SUPPRESS)  # tests: a shrunken ModelConfig
    return p


def _load_model(args):
    from ..model.checkpoint import load_checkpoint

    preset = args.preset if args.config_json is None else config_from_json(args.config_json)
    return load_checkpoint(args.checkpoint, preset=preset)


def run(args, progress) -> None:
    from ..formats import write_splats
    from ..model.reconstruct import reconstruct
    from ..views import read_views
    from ..views.posed import fit_to_multiple, resize

    if not args.checkpoint.is_file():
        raise ResplatError(f"{args.checkpoint}: checkpoint file not found")
    views = read_views(args.views)
    preview = PreviewWriter(args.preview_dir, progress)
    model = _load_model(args)
    config = model.config
    if args.size is not None:
        views = resize(views, *args.size)
    elif args.crop:
        views = fit_to_multiple(views, config.size_multiple, mode="crop")
    iterations = config.default_iterations if args.iterations is None else args.iterations
    progress.message("load", f"{len(views)} views of {views.width}x{views.height}, preset {config.name}, "
                             f"{iterations} iterations")

    def callback(stage, it, total, gaussians) -> bool:
        if stage == "initial":
            progress.message("reconstruct", f"initial prediction: {len(gaussians)} Gaussians")
            preview("initial", 0, gaussians)
        else:
            progress.step("reconstruct", it, total, gaussians=len(gaussians))
            preview("update", it, gaussians)
        return True

    start = time.perf_counter()
    gaussians = reconstruct(views.images, views.cameras, model, iterations=iterations, device=args.device,
                            callback=callback)
    seconds = time.perf_counter() - start
    write_splats(gaussians.to("cpu"), args.out)
    progress.message("reconstruct", f"wrote {len(gaussians)} Gaussians to {args.out} in {seconds:.1f} s")
    progress.result("reconstruct", path=str(args.out),
                    metrics={"gaussians": len(gaussians), "iterations": iterations, "seconds": round(seconds, 3)})
