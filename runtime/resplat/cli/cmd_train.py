"""``resplat train DATA --out RUN``: train a ReSplat model (stage "initial", then stage
"update" from the initial weights; optionally stage "metagrad", ForeSplat's optimisation-aware
fine-tuning of the initial model's head), resumable, on CPU, CUDA or several GPUs under torchrun."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ResplatError
from ..train.config import STAGE_LR, STAGES, TrainConfig
from .common import DEVICE_HELP, config_from_json


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a ReSplat model on synthetic scenes or pixelSplat chunks",
                       description="Train ReSplat (arXiv 2510.08575) in two stages: --stage initial trains the "
                                   "initial model; --stage update trains the recurrent updater with the initial "
                                   "model (--init) frozen; --stage metagrad fine-tunes the initial model's Gaussian "
                                   "head (--init) so that its output polishes better (ForeSplat's MetaGrad). "
                                   "Re-running with the same --out resumes. Multi-GPU: "
                                   "torchrun --nproc-per-node N -m resplat train ...")
    p.add_argument("data", type=Path, nargs="+",
                   help="dataset folder(s): synthetic scenes (resplat.data, ray-cast or Cycles-rendered) or *.torch "
                        "chunks; several folders train on their union, in the order given")
    p.add_argument("--out", required=True, type=Path, help="run folder (train-state.pt, log.jsonl, model.safetensors)")
    p.add_argument("--stage", choices=STAGES, default="initial")
    p.add_argument("--preset", default=None,
                   help="model preset for a fresh model (default tiny); with --init, train those weights under "
                        "this preset's current settings (frame, size activation) instead of the stored ones")
    p.add_argument("--init", type=Path, default=None, help="weights to start from (stage update: the stage-initial export)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default "
                   + ", ".join(f"{v:g} {k}" for k, v in STAGE_LR.items()) + ")")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--ssim-weight", type=float, default=0.2)
    p.add_argument("--depth-weight", type=float, default=0.1, help="log-depth L1 weight (synthetic data with depth)")
    p.add_argument("--depth-prior-prob", type=float, default=0.0,
                   help="probability of feeding a sample's exact depth to the model (default 0: RGB only)")
    p.add_argument("--max-iterations", type=int, default=4,
                   help="stage update: T, the updater steps of a sample, is drawn in 1..N (default 4, the paper's)")
    p.add_argument("--recurrence-stages", type=_stages, default=(), metavar="STEP:T,...",
                   help="stage update: a staged recurrence depth instead of --max-iterations, e.g. 0:2,200:4,400:6 "
                        "(T up to 2 from step 0, up to 4 from step 200, up to 6 from step 400)")
    p.add_argument("--stability-weight", type=float, default=0.0,
                   help="stage update: weight of the mean parameter change per iteration (default 0: off)")
    p.add_argument("--metagrad-steps", type=int, default=TrainConfig.metagrad_steps, metavar="K",
                   help=f"stage metagrad: polish steps unrolled from each prediction (default {TrainConfig.metagrad_steps})")
    p.add_argument("--metagrad-anchors", type=int, default=TrainConfig.metagrad_anchors, metavar="N",
                   help=f"stage metagrad: anchor states along them, first and last included "
                        f"(default {TrainConfig.metagrad_anchors})")
    p.add_argument("--stop-at", type=int, default=None, metavar="N",
                   help="stop after step N of --steps (resumable) and export those weights as "
                        "model-stepN.safetensors in --out (the schedule still spans --steps)")
    p.add_argument("--frame-scale", choices=("metric", "lookat"), default=None,
                   help="model-frame scaling to train with (default: the preset's, or --init's stored config)")
    p.add_argument("--vgg-weights", type=Path, default=None,
                   help="LPIPS VGG16 weights file: adds the perceptual loss (weight --perceptual-weight)")
    p.add_argument("--perceptual-weight", type=float, default=0.5)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--bf16-cpu", action="store_true",
                   help="bf16 autocast of the networks on the CPU too (AVX512-BF16 processors)")
    p.add_argument("--context", type=int, default=8, help="context views per example (chunk data)")
    p.add_argument("--target", type=int, default=4, help="target views per example (chunk data)")
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"), help="chunk images resized to H W")
    p.add_argument("--config-json", type=Path, default=None, help=argparse.SUPPRESS)  # tests: a shrunken ModelConfig
    return p


def _stages(text: str) -> tuple[tuple[int, int], ...]:
    """``"0:2,200:4"`` -> ((0, 2), (200, 4)) (argparse type; order and values are checked by
    :class:`~resplat.train.config.TrainConfig`)."""
    try:
        return tuple((int(a), int(b)) for a, b in (part.split(":") for part in text.split(",") if part.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEP:T pairs separated by commas, e.g. 0:2,200:4, got {text!r}") from None


def _open_one(folder: Path, args):
    if not folder.is_dir():
        raise ResplatError(f"{folder}: dataset folder not found")
    if any(folder.glob("*.torch")):
        from ..train.chunks import ChunkDataset

        return ChunkDataset(folder, args.context, args.target, tuple(args.size), seed=args.seed)
    from ..data import SyntheticDataset

    return SyntheticDataset(folder)


def open_dataset(args):
    """The examples of every DATA folder, concatenated in the order given (a
    ``torch.utils.data.ConcatDataset`` for several): each a
    :class:`~resplat.train.chunks.ChunkDataset` when it holds ``*.torch`` chunks, else a
    ``resplat.data.SyntheticDataset``.

    Raises:
        ResplatError: a folder that does not exist or is not a dataset (named).
    """
    sets = [_open_one(Path(f), args) for f in args.data]
    if len(sets) == 1:
        return sets[0]
    from torch.utils.data import ConcatDataset

    return ConcatDataset(sets)


def _model(args, device):
    from ..model.checkpoint import build_model, load_checkpoint

    from dataclasses import replace

    from ..model.checkpoint import stored_config
    from ..model.config import get_config

    explicit = args.preset is not None or args.config_json is not None
    preset = (args.preset or "tiny") if args.config_json is None else config_from_json(args.config_json)
    if args.init is not None:
        cfg = get_config(preset) if explicit else None
        if args.frame_scale is not None:
            cfg = replace(cfg or stored_config(args.init) or get_config(preset), frame_scale=args.frame_scale)
        return load_checkpoint(args.init, preset=cfg)
    if args.frame_scale is not None:
        preset = replace(get_config(preset), frame_scale=args.frame_scale)
    if args.stage != "initial":
        raise ResplatError(f"--stage {args.stage} needs --init: the weights exported by --stage initial")
    import torch

    torch.manual_seed(args.seed)
    return build_model(preset)


def run(args, progress) -> None:
    from ..device import resolve_device
    from ..train import train

    device = resolve_device(args.device)
    lr = args.lr if args.lr is not None else STAGE_LR[args.stage]
    cfg = TrainConfig(stage=args.stage, steps=args.steps, lr=lr, seed=args.seed, checkpoint_every=args.checkpoint_every,
                      ssim_weight=args.ssim_weight, depth_weight=args.depth_weight,
                      depth_prior_prob=args.depth_prior_prob, max_iterations=args.max_iterations,
                      recurrence_stages=args.recurrence_stages, stability_weight=args.stability_weight,
                      metagrad_steps=args.metagrad_steps, metagrad_anchors=args.metagrad_anchors,
                      perceptual_weight=args.perceptual_weight,
                      perceptual_weights=str(args.vgg_weights) if args.vgg_weights else None, bf16=not args.no_bf16,
                      bf16_cpu=args.bf16_cpu)
    dataset = open_dataset(args)
    model = _model(args, device)
    summary = train(model, dataset, cfg, args.out, device=device, stop_at=args.stop_at,
                    report=lambda s, t, parts: progress.step("train", s, t, **parts))
    if args.stop_at is not None and summary["steps"] < cfg.steps:
        from ..train.checkpointing import export_safetensors

        summary["weights"] = str(args.out / f"model-step{summary['steps']}.safetensors")
        export_safetensors(model, summary["weights"])
    progress.result("train", weights=summary["weights"], steps=summary["steps"],
                    seconds_per_step=summary["seconds_per_step"], loss=summary["final"].get("loss"))
