"""``resplat data generate OUT``: write a synthetic training dataset (procedural textured
scenes rendered by our ray caster; format in docs/dataset.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import parse_size


def add_generator_arguments(g: argparse.ArgumentParser) -> None:
    """OUT, --scenes, --seed and the :class:`~resplat.data.GeneratorConfig` options (read back by
    :func:`generator_config`); shared with ``demo/cycles_dataset.py``, which renders the same
    scenes with Blender's Cycles."""
    g.add_argument("out", type=Path, help="output folder (created; an interrupted run resumes)")
    g.add_argument("--scenes", type=int, required=True, help="number of scenes")
    g.add_argument("--seed", type=int, default=0, help="dataset seed (default 0); scene i depends only on (seed, i)")
    g.add_argument("--size", type=parse_size, default=(256, 256), help="image size WxH in pixels (default 256x256)")
    g.add_argument("--views", type=int, default=12, help="views per scene (default 12)")
    g.add_argument("--context", type=int, default=None, help="context views per scene (default: views - 4, at least 1)")
    g.add_argument("--rig", choices=("orbit", "forward", "random", "mixed"), default="mixed",
                   help="camera rig (default mixed: one of orbit, forward, random per scene)")
    g.add_argument("--supersample", type=int, default=2, help="s: s x s rays per pixel for anti-aliasing (default 2)")
    g.add_argument("--open-fraction", type=float, default=0.0,
                   help="share of open scenes: objects on a ground under a world background (default 0)")
    g.add_argument("--soft-fraction", type=float, default=0.0, help="share of scenes with soft lights (default 0)")
    g.add_argument("--smooth-fraction", type=float, default=0.0, help="share of plain-painted surfaces (default 0)")
    g.add_argument("--pattern-fraction", type=float, default=0.0,
                   help="share of floors with a procedural pattern (checker, tiles, stripes; other surfaces a "
                        "third of it) (default 0)")
    g.add_argument("--scale-decades", type=float, default=0.0,
                   help="world scale spread: 10^u, u uniform in +-decades/2 (default 0: metres as drawn)")


def generator_config(args):
    """The :class:`~resplat.data.GeneratorConfig` of :func:`add_generator_arguments`' options
    (context views default to views - 4, at least 1)."""
    from ..data import GeneratorConfig

    context = args.context if args.context is not None else max(1, args.views - 4)
    return GeneratorConfig(width=args.size[0], height=args.size[1], views=args.views, context=context,
                           rig=args.rig, supersample=args.supersample, open_fraction=args.open_fraction,
                           soft_fraction=args.soft_fraction, smooth_fraction=args.smooth_fraction,
                           pattern_fraction=args.pattern_fraction, scale_decades=args.scale_decades)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("data", help="synthetic training data (generate)",
                       description="Synthetic training data for the embedded model.")
    actions = p.add_subparsers(dest="data_command", required=True, parser_class=type(p))
    g = actions.add_parser("generate", help="generate a synthetic dataset",
                           description="Render procedural multi-object scenes with real-photo textures (CC0 / public domain, "
                                       "shipped by scikit-image) from camera rigs; deterministic under --seed.")
    add_generator_arguments(g)
    g.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    g.add_argument("--progress", choices=("bar", "jsonl", "none"), default=argparse.SUPPRESS,
                   help="progress output (as for every command)")
    return p


def run(args, progress) -> None:
    from ..data import generate_dataset

    cfg = generator_config(args)

    def callback(done: int, total: int, seconds: float) -> None:
        progress.step("generate", done, total, seconds=seconds)

    index = generate_dataset(args.out, args.scenes, args.seed, cfg, workers=args.workers, callback=callback)
    rate = args.scenes / index["seconds"] if index["seconds"] > 0 else 0.0
    progress.message("generate", f"wrote {args.scenes} scenes of {cfg.views} views ({cfg.width}x{cfg.height}) "
                                 f"to {args.out} in {index['seconds']:.1f} s")
    progress.result("generate", path=str(args.out), metrics={"scenes": args.scenes, "seconds": index["seconds"],
                                                             "scenes_per_second": rate})
