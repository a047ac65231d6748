"""Deterministic model weights for tests: every tensor of a preset's manifest filled from one
seeded generator, in manifest key order, so a test can rebuild the weights that produced a
golden file without storing them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

MANIFESTS = Path(__file__).resolve().parents[1] / "runtime" / "resplat" / "model" / "manifests"


def seeded_state_dict(preset: str, prefix: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """float64 state dict for the manifest keys starting with ``prefix`` (prefix stripped).

    One ``torch.Generator().manual_seed(seed)`` draws, key after key in manifest order,
    ``normal * 0.02``; 1-D ``.weight`` tensors (norm scales) and LayerScale ``.gamma`` get
    ``1 + normal * 0.02`` so that normalisation layers keep their signal.
    """
    manifest = json.loads((MANIFESTS / f"{preset}.json").read_text())
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in manifest.items():
        if not key.startswith(prefix):
            continue
        t = torch.randn(shape, generator=g, dtype=torch.float64) * 0.02
        name = key[len(prefix):]
        if (name.endswith(".weight") and len(shape) == 1) or name.endswith(".gamma"):
            t = t + 1.0
        out[name] = t
    return out
