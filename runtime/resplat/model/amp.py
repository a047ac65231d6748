"""Mixed precision of the networks: one rule for every forward pass of the model.

bf16 autocast runs on CUDA when the model's ``amp`` flag is set (the release trains and tests
that way), and on the CPU only inside :func:`cpu_bf16` (training on processors with AVX512-BF16,
where it is measured in ``benchmarks/train_step.py``); inference on the CPU stays float32.
The rasteriser and the losses are never autocast (callers keep them outside these contexts).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

import torch

_CPU_BF16: ContextVar[bool] = ContextVar("resplat_cpu_bf16", default=False)


@contextmanager
def cpu_bf16(enabled: bool = True):
    """Within this context, :func:`autocast` also autocasts to bf16 on the CPU."""
    token = _CPU_BF16.set(bool(enabled))
    try:
        yield
    finally:
        _CPU_BF16.reset(token)


def autocast(device: torch.device | str, enabled: bool = True):
    """The autocast context of a network forward pass on ``device``: bf16 on CUDA when
    ``enabled`` (the model's ``amp`` flag), bf16 on the CPU inside :func:`cpu_bf16`, else none."""
    kind = torch.device(device).type
    if kind == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if kind == "cpu" and _CPU_BF16.get():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


__all__ = ["autocast", "cpu_bf16"]
