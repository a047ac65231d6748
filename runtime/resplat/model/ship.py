"""Make the embedded model's file from a training export: ``python -m resplat.model.ship SRC DST``.

``resplat train`` ends with ``RUN/model.safetensors`` (float32, metadata ``{"preset",
"config"}``: :func:`resplat.train.checkpointing.export_safetensors`). The package ships the
``tiny`` model as ``resplat/model/weights/tiny.safetensors`` in float16 (10.2M parameters x 2
bytes = 20.3 MB, within the 40 MB the project allows the weights every extension download
carries; float32 would exceed it)::

    python -m resplat.model.ship runs/update/model.safetensors runtime/resplat/model/weights/tiny.safetensors

The source is loaded strictly (:func:`~resplat.model.checkpoint.load_checkpoint`), every
floating-point tensor is rounded to float16 (or bfloat16 with ``--dtype bfloat16``; integer
buffers are kept), the source's metadata is kept and ``source_sha256`` (of the source file),
``source_name`` and ``dtype`` are added; integer buffers are stored as the model's integers; the file is written atomically and loaded back strictly
before the command reports success. Loading upcasts to float32
(:func:`~resplat.model.checkpoint.load_checkpoint`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from ..errors import ResplatError
from .checkpoint import CheckpointError, build_model, load_checkpoint

#: Largest shipped weights file, bytes: the project's limit on the weights every extension download
#: carries (the zip ships them, runtime/resplat/model/weights/).
MAX_SHIPPED_BYTES = 40_000_000
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` string map of a safetensors file; {} for other files."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # a .pth source, or no metadata
        return {}


def ship_weights(src: str | os.PathLike, dst: str | os.PathLike, dtype: str = "float16") -> dict:
    """Write ``src``'s weights to ``dst`` as a half-precision safetensors file (module docstring).

    Args:
        src: a checkpoint :func:`load_checkpoint` accepts (normally a ``resplat train`` export).
        dst: the file to write (parent folders are created).
        dtype: "float16" (default) or "bfloat16".

    Returns:
        {"path", "bytes", "tensors", "parameters", "dtype", "preset", "source_sha256",
        "max_rounding_error"} (the largest absolute change of any value by the rounding).

    Raises:
        CheckpointError: ``src`` does not load strictly; a value overflows ``dtype`` (names the
            tensor); the file would exceed :data:`MAX_SHIPPED_BYTES`; ``dst`` cannot be written.
        ResplatError: unknown ``dtype``.
    """
    from safetensors.torch import save

    from ..formats.atomic import atomic_write

    if dtype not in DTYPES:
        raise ResplatError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    src, dst = Path(src), Path(dst)
    model = load_checkpoint(src)
    # dtypes of a fresh model: integer buffers (BatchNorm's num_batches_tracked) stay integers even
    # where the source stored them as floats (resplat train's export writes every tensor float32)
    kinds = {k: v.dtype for k, v in build_model(model.config, device="meta").state_dict().items()}
    out, worst = {}, 0.0
    for key, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        if not kinds[key].is_floating_point:
            t = t.to(kinds[key])
        elif t.is_floating_point():
            half = t.to(DTYPES[dtype])
            if not torch.isfinite(half).all() and torch.isfinite(t).all():
                raise CheckpointError(src, f"{key} has values up to {t.abs().max().item():.4g}, beyond {dtype}'s range")
            worst = max(worst, (half.float() - t.float()).abs().max().item() if t.numel() else 0.0)
            t = half
        out[key] = t.contiguous()
    size = sum(t.numel() * t.element_size() for t in out.values())
    if size > MAX_SHIPPED_BYTES:
        raise CheckpointError(dst, f"{size / 1e6:.1f} MB of weights exceeds the {MAX_SHIPPED_BYTES / 1e6:.0f} MB "
                                   f"limit of the shipped model")
    meta = _source_metadata(src)
    meta.update(preset=model.config.name, config=json.dumps(dataclasses.asdict(model.config)),
                source_sha256=file_sha256(src), source_name=src.name, dtype=dtype)
    data = save(out, metadata=meta)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(dst, CheckpointError) as f:
        f.write(data)
    load_checkpoint(dst)  # the shipped file must load strictly, as the CLI will load it
    return {"path": str(dst), "bytes": len(data), "tensors": len(out),
            "parameters": sum(p.numel() for p in model.parameters()), "dtype": dtype, "preset": model.config.name,
            "source_sha256": meta["source_sha256"], "max_rounding_error": worst}


def main(argv: list[str] | None = None) -> int:
    """``python -m resplat.model.ship SRC DST [--dtype float16|bfloat16]``; one summary line
    on success (exit 0), ``resplat: error: ...`` on stderr and exit 2 on a ResplatError."""
    p = argparse.ArgumentParser(prog="python -m resplat.model.ship",
                                description="Round a trained ReSplat model to half precision for shipping "
                                            "(keeps its metadata, adds the source's sha256).")
    p.add_argument("src", type=Path, help="training export, e.g. RUN/model.safetensors")
    p.add_argument("dst", type=Path, help="file to write, e.g. runtime/resplat/model/weights/tiny.safetensors")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float16")
    args = p.parse_args(argv)
    try:
        info = ship_weights(args.src, args.dst, args.dtype)
    except ResplatError as exc:
        print(f"resplat: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {info['path']}: preset {info['preset']}, {info['tensors']} tensors, {info['parameters']:,} "
          f"parameters as {info['dtype']}, {info['bytes'] / 1e6:.1f} MB, largest rounding error "
          f"{info['max_rounding_error']:.3g}, source sha256 {info['source_sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
