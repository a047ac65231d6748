"""One-cycle learning-rate schedule: linear warm-up then cosine decay to zero (paper section
"Training": one-cycle, 1% warm-up; as torch's OneCycleLR with ``anneal_strategy="cos"``)."""

from __future__ import annotations

import math

import torch


def one_cycle(step: int, total: int, warmup: float = 0.01, floor: float = 0.0) -> float:
    """Learning-rate factor in [floor, 1] at 0-based ``step`` of ``total``.

    Warm-up: (step + 1) / w for the first w = max(1, round(warmup * total)) steps (warmup > 0),
    reaching 1 at step w - 1; then floor + (1 - floor) * (1 + cos(pi * p)) / 2 with
    p = (step - w) / (total - w) (factor 1 at the first decay step, approaching ``floor`` at
    the last).
    """
    w = max(1, round(warmup * total)) if warmup > 0 else 0
    if step < w:
        return (step + 1) / w
    span = max(1, total - w)
    p = min(1.0, (step - w) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p))


def one_cycle_scheduler(optimizer: torch.optim.Optimizer, total: int, warmup: float = 0.01) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`one_cycle` (its state dict resumes exactly)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: one_cycle(s, total, warmup))
