"""Seconds per training step of both stages on this machine: float32 against bf16 autocast on
the CPU (:func:`resplat.model.amp.cpu_bf16`), and fewer target views, on the same examples.

For each setting, the same ``--samples`` examples of a ``resplat data generate`` dataset run one
full optimiser step each (forward, backward, clip, AdamW) after ``--warmup`` untimed steps, on
``--threads`` threads; the table gives the median seconds per step, steps per minute and, for
bf16, the relative difference of the first step's loss and gradient norm from float32 (same
weights, same example). Weights: ``--weights`` (default the embedded model), so that the
numbers describe the model being trained.

Usage: .venv/bin/python benchmarks/train_step.py DATA [--samples 6] [--threads 2] [--md PATH]
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from resplat.data import SyntheticDataset
from resplat.model.amp import cpu_bf16
from resplat.model.checkpoint import embedded_weights_path, load_checkpoint, stored_config
from resplat.train.config import TrainConfig
from resplat.train.loop import trainable_parameters
from resplat.train.losses import ImageLoss
from resplat.train.step import initial_loss, update_loss


class _Fewer:
    """An example with only its first ``n`` target views."""

    def __init__(self, sample, n):
        self._s, self.target = sample, list(sample.target)[:n]

    def __getattr__(self, k):
        return getattr(self._s, k)


def _one(model, sample, cfg, loss_fn, stage, bf16, seed):
    params = trainable_parameters(model, stage)
    opt = torch.optim.AdamW(params, lr=1e-6)
    t0 = time.perf_counter()
    with cpu_bf16(bf16):
        if stage == "initial":
            loss, _ = initial_loss(model, sample, loss_fn, cfg, torch.device("cpu"), random.Random(seed))
        else:
            loss, _ = update_loss(model, sample, loss_fn, cfg, torch.device("cpu"), random.Random(seed), T=2)
    opt.zero_grad()
    loss.backward()
    g = float(torch.nn.utils.clip_grad_norm_(params, 1e9))
    opt.step()
    return time.perf_counter() - t0, float(loss), g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--frame-scale", default="lookat")
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--md", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = SyntheticDataset(args.data)
    rows = ["| stage | setting | s/step (median) | steps/min | loss rel. diff | grad-norm rel. diff |",
            "|---|---|---:|---:|---:|---:|"]
    for stage in ("initial", "update"):
        ref = {}
        for name, bf16, n_tgt in (("float32, 4 targets", False, 4), ("bf16 autocast, 4 targets", True, 4),
                                   ("bf16 autocast, 2 targets", True, 2)):
            path = embedded_weights_path() if args.weights is None else args.weights
            model = load_checkpoint(path, preset=replace(stored_config(path), frame_scale=args.frame_scale))
            cfg = TrainConfig(stage=stage, depth_prior_prob=0.0)
            loss_fn = ImageLoss(cfg, torch.device("cpu"))
            model.train()
            times, first = [], None
            for i in range(args.warmup + args.samples):
                s = ds[i % len(ds)]
                s = s if n_tgt >= len(s.target) else _Fewer(s, n_tgt)
                dt, loss, g = _one(model, s, cfg, loss_fn, stage, bf16, i)
                if i >= args.warmup:
                    times.append(dt)
                if i == args.warmup:
                    first = (loss, g)
            med = statistics.median(times)
            if not bf16:
                ref[n_tgt] = first
            dl = f"{abs(first[0] / ref[n_tgt][0] - 1):.2e}" if bf16 and n_tgt in ref else ""
            dg = f"{abs(first[1] / ref[n_tgt][1] - 1):.2e}" if bf16 and n_tgt in ref else ""
            rows.append(f"| {stage} | {name} | {med:.2f} | {60 / med:.1f} | {dl} | {dg} |")
            print(rows[-1], flush=True)
    text = "\n".join(rows) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
