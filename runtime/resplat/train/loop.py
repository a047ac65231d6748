"""The training loop of both stages: AdamW, one-cycle schedule, gradient clipping, resumable
checkpoints, data-parallel training under torchrun, final safetensors export.

Multi-GPU: when ``WORLD_SIZE`` > 1 (set by ``torchrun``), the process group is initialised
(NCCL on CUDA, gloo on CPU), rank 0's weights are broadcast, each rank draws its own examples
(seed + rank) and the gradients are averaged with ``all_reduce`` before clipping - the
arithmetic of DistributedDataParallel without its bucketing (our model is called through
``forward_initial`` and the updater, not ``forward``). Only rank 0 writes files and reports.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist

from ..model.amp import cpu_bf16
from .checkpointing import export_safetensors, load_training_state, save_training_state
from .config import TrainConfig
from .losses import ImageLoss
from .metagrad import metagrad_loss
from .schedule import one_cycle_scheduler
from .step import initial_loss, update_loss

#: encoder children trained in stage "initial"; the others (the updater's) in stage "update".
INITIAL_MODULES = ("depth_predictor", "gaussian_regressor", "proj", "pt", "gaussian_head")
#: the updater's ResNet-18 taps stay frozen in every stage (the release freezes them too).
FROZEN_MODULES = ("update_feature",)
#: encoder children trained in stage "metagrad" (ForeSplat fine-tunes the prediction head).
METAGRAD_MODULES = ("gaussian_head",)

STATE_FILE = "train-state.pt"
WEIGHTS_FILE = "model.safetensors"
LOG_FILE = "log.jsonl"


def trainable_parameters(model, stage: str) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` for ``stage`` (module constants) and return the trainable
    parameters in a fixed order."""
    params = []
    for name, child in model.encoder.named_children():
        if stage == "metagrad":
            train = name in METAGRAD_MODULES
        else:
            train = name not in FROZEN_MODULES and ((name in INITIAL_MODULES) == (stage == "initial"))
        for p in child.parameters():
            p.requires_grad_(train)
            if train:
                params.append(p)
    return params


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return rank, world, device


def train(model, dataset: Sequence, config: TrainConfig, out_dir: str | os.PathLike,
          device: str | torch.device = "cpu", resume: bool = True,
          report: Callable[[int, int, dict], None] | None = None, stop_at: int | None = None) -> dict:
    """Train ``model`` (a :class:`resplat.model.ReSplatModel`) for ``config.steps`` steps.

    Args:
        model: the model; stages "update" and "metagrad" expect trained initial weights
            already loaded.
        dataset: indexable examples with the ``resplat.data.SceneSample`` attributes
            (:mod:`resplat.train.step`); one example per step and rank, drawn uniformly.
        config: :class:`TrainConfig`.
        out_dir: folder of ``train-state.pt`` (resumable), ``log.jsonl`` (one line per step)
            and the final ``model.safetensors``.
        device: torch device ("cpu", "cuda", ...).
        resume: continue from ``out_dir/train-state.pt`` when it exists.
        report: called on rank 0 as ``report(step, total, parts)`` after each step (parts:
            loss and its terms, lr).
        stop_at: stop after this many steps (of ``config.steps``), saving the resumable state
            without the export (a run cut short on purpose; resuming finishes it).

    Returns:
        summary dict: steps, start step, final loss parts, seconds per step, weights path.

    Raises:
        TrainCheckpointError: a state file of another stage or model; TrainSampleError and the
        model's ResplatErrors for unusable examples.
    """
    out = Path(out_dir)
    rank, world, dev = _distributed(torch.device(device))
    if not len(dataset):
        from .step import TrainSampleError
        raise TrainSampleError("training dataset is empty")
    model.to(dev).train()
    model.encoder.amp = model.encoder.depth_predictor.amp = config.bf16
    if world > 1:
        for t in model.state_dict().values():
            dist.broadcast(t, 0)
    params = trainable_parameters(model, config.stage)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = one_cycle_scheduler(optimizer, config.steps, config.warmup)
    rng = random.Random(config.seed + rank)
    torch.manual_seed(config.seed + rank)
    loss_fn = ImageLoss(config, dev)
    start = 0
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        start = load_training_state(state_path, model, optimizer, scheduler, rng, config)
    if rank == 0:
        _truncate_log(out / LOG_FILE, start)
    parts: dict = {}
    t0 = time.perf_counter()
    end = config.steps if stop_at is None else min(stop_at, config.steps)
    for step in range(start, end):
        sample = dataset[rng.randrange(len(dataset))]
        with cpu_bf16(config.bf16_cpu):
            if config.stage == "initial":
                loss, parts = initial_loss(model, sample, loss_fn, config, dev, rng)
            elif config.stage == "metagrad":
                loss, parts = metagrad_loss(model, sample, loss_fn, config, dev, rng)
            else:
                loss, parts = update_loss(model, sample, loss_fn, config, dev, rng, step=step)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        if world > 1:
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        parts["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, config.clip))
        parts["lr"] = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        if rank == 0:
            _log(out / LOG_FILE, step + 1, parts)
            if report is not None:
                report(step + 1, config.steps, parts)
            if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < end:
                save_training_state(state_path, model, optimizer, scheduler, step + 1, rng, config)
    seconds = (time.perf_counter() - t0) / max(1, end - start)
    weights = out / WEIGHTS_FILE
    if rank == 0:
        save_training_state(state_path, model, optimizer, scheduler, end, rng, config)
        if end == config.steps:
            export_safetensors(model, weights)
    model.eval()
    return {"steps": end, "start": start, "final": parts, "seconds_per_step": seconds, "weights": str(weights)}


def _truncate_log(path: Path, start: int) -> None:
    """Drop the log lines of steps after ``start`` (those of a run killed after its last
    checkpoint, which the resumed run logs again), atomically; nothing when there is no log."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= start]
    if len(keep) != len(lines):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, path)


def _log(path: Path, step: int, parts: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps({"step": step, **parts}) + "\n")
