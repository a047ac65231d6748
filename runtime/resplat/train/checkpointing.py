"""Resumable training checkpoints and the final safetensors export.

A training checkpoint (``.pt``, read back with ``torch.load(weights_only=True)``) holds the
model's state dict, the optimiser, the scheduler, the step, the RNG states (torch CPU and CUDA,
the sampling ``random.Random``), the :class:`TrainConfig` and the model config, so that a run
resumed from it continues exactly (bitwise on CPU). Files are written to a temporary file in the
same folder and moved into place with ``os.replace`` (never a half-written file).

The export is a safetensors file of the model's state dict (``encoder.*`` keys, float32) with
header metadata ``{"preset": name, "config": ModelConfig as JSON}`` that
:func:`resplat.model.load_checkpoint` reads to rebuild the model (safetensors format:
https://github.com/huggingface/safetensors, ``__metadata__`` string map).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import tempfile
from pathlib import Path

import torch

from ..errors import ResplatError
from ..model.checkpoint import config_from_fields
from .config import TrainConfig


class TrainCheckpointError(ResplatError):
    """A training checkpoint that cannot be resumed (unreadable, or another stage/model)."""


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_training_state(path: str | os.PathLike, model, optimizer, scheduler, step: int, rng: random.Random,
                        config: TrainConfig) -> None:
    """Write a resumable checkpoint of a run after ``step`` optimiser steps (atomically)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python_rng": rng.getstate(),
        "train_config": config.to_dict(),
        "model_config": json.dumps(dataclasses.asdict(model.config)),
    }
    _atomic(Path(path), lambda tmp: torch.save(state, tmp))


def load_training_state(path: str | os.PathLike, model, optimizer, scheduler, rng: random.Random,
                        config: TrainConfig) -> int:
    """Restore model, optimiser, scheduler and RNGs from :func:`save_training_state`; returns
    the step to continue from.

    Raises:
        TrainCheckpointError: unreadable file, another training stage or another model config.
    """
    p = Path(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainCheckpointError(f"{p}: cannot resume from this file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if state.get("train_config", {}).get("stage") != config.stage:
        raise TrainCheckpointError(f"{p}: checkpoint of stage {state.get('train_config', {}).get('stage')!r}, "
                                   f"this run is stage {config.stage!r}")
    try:  # configs saved before a field existed read with that field's legacy value
        saved = config_from_fields(json.loads(state.get("model_config") or "null"))
    except (TypeError, ValueError, AttributeError):
        saved = None
    if saved != model.config:
        raise TrainCheckpointError(f"{p}: checkpoint of another model configuration than {model.config.name!r}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    rng.setstate(_as_tuple(state["python_rng"]))
    return int(state["step"])


def _as_tuple(x):
    return tuple(_as_tuple(i) for i in x) if isinstance(x, (list, tuple)) else x


def export_safetensors(model, path: str | os.PathLike) -> None:
    """Write the model's weights as safetensors (float32, contiguous) with preset/config
    metadata (module docstring), atomically."""
    from safetensors.torch import save_file

    sd = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"preset": model.config.name, "config": json.dumps(dataclasses.asdict(model.config))}
    _atomic(Path(path), lambda tmp: save_file(sd, tmp, metadata=meta))
