"""Give a trained model more Gaussians per latent point: ``python -m resplat.model.regrid SRC DST --gaussians-per-point 4``.

A model with m Gaussians per latent point lays them out as sqrt(m) x sqrt(m) sub-pixels of the
latent pixel (:func:`resplat.model.initial.split_gaussian_grid`, the release's RE10K layout), so a
256x256 view at ``latent_downsample`` 4 gets one Gaussian per 4x4 pixels with m = 1 and one per
2x2 pixels with m = 4. This converts the weights of an m = 1 model into an m' = k^2 m model that
starts as the same predictor sampled on the finer grid:

- the Gaussian head (Linear(C, 58 m), GELU, Linear(58 m, 58 m)) is replicated block-diagonally:
  each of the m' / m sub-Gaussians of a parent gets a copy of the parent's hidden units and of
  its output rows, so its raw values equal the parent's exactly (then it sits at its own
  sub-pixel, takes its own sub-pixel's colour and depth, and its footprint-relative size follows
  the finer cell: ``scale_mode="footprint"``);
- the updater's rendering-error projection (Linear(3 f^2, E), f image pixels per Gaussian cell) is
  pooled to the finer cell f' = f / k: the weight of each new pixel is the sum of the weights of
  the k x k old pixels it covers, so an error that is constant over a cell gives the same token;
- every other tensor is copied.

Training then specialises the sub-Gaussians (``resplat train --stage initial --init DST``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch import Tensor

from ..errors import ResplatError
from .checkpoint import build_model, load_checkpoint

HEAD_1 = "encoder.gaussian_head.0"
HEAD_2 = "encoder.gaussian_head.2"
RGB_ERROR = "encoder.update_rgb_error_proj.0.weight"


def _blocks(config) -> list[int]:
    """Channels per parameter block of one Gaussian: rotation 4, scale 3, opacity 1, offset 2, SH."""
    return [4, 3, 1, 2, 3 * (config.sh_degree + 1) ** 2]


def replicate_head(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, blocks: list[int], m: int, k2: int):
    """The head of m Gaussians per point -> the head of m k2 (module docstring).

    Args:
        w1, b1: [G m, C], [G m] first Linear; w2, b2: [G m, G m], [G m] last Linear (G = sum(blocks)).
        blocks: channels per parameter block; the output of block c is laid out (c, sub) with
            sub the m Gaussians of a point (``split_gaussian_grid``).
        m: Gaussians per point of the source; k2: sub-Gaussians per source Gaussian (a square).

    Returns:
        (w1, b1, w2, b2) of the m k2 head, same dtype.
    """
    g = sum(blocks)
    if w2.shape != (g * m, g * m):
        raise ResplatError(f"Gaussian head: last layer {list(w2.shape)} is not [{g * m}, {g * m}]")
    if m != 1:
        raise ResplatError("regrid: only models with 1 Gaussian per latent point are supported")
    W1, B1 = w1.repeat(k2, 1), b1.repeat(k2)  # hidden copy s: rows s G .. (s + 1) G - 1
    W2 = w2.new_zeros(g * k2, g * k2)
    B2 = b2.new_zeros(g * k2)
    row = start = 0
    for c in blocks:
        for ci in range(c):
            for s in range(k2):
                W2[row, s * g:(s + 1) * g] = w2[start + ci]
                B2[row] = b2[start + ci]
                row += 1
        start += c
    return W1, B1, W2, B2


def pool_error_projection(w: Tensor, f: int, k: int) -> Tensor:
    """[E, 3 f^2] rendering-error projection (channel ``c f^2 + dy f + dx``, torch
    ``pixel_unshuffle``) -> [E, 3 (f / k)^2]: each new pixel's weight is the sum over the k x k
    old pixels it covers."""
    if f % k:
        raise ResplatError(f"regrid: {f} pixels per Gaussian cell cannot be split {k} ways")
    e = w.shape[0]
    return w.reshape(e, 3, f // k, k, f // k, k).sum((3, 5)).reshape(e, -1)


def regrid(model, gaussians_per_point: int):
    """A new model with ``gaussians_per_point`` Gaussians per latent point whose initial
    prediction equals ``model``'s sampled on the finer grid (module docstring).

    Args:
        model: a :class:`~resplat.model.checkpoint.ReSplatModel` with 1 Gaussian per point.
        gaussians_per_point: a square > 1 whose root divides ``latent_downsample``.

    Returns:
        the new model (CPU, float32, eval mode; its config differs only in ``gaussians_per_point``).

    Raises:
        ResplatError: the source has m != 1, or the count is not such a square.
    """
    cfg = model.config
    k = int(round(gaussians_per_point ** 0.5))
    if k * k != gaussians_per_point or k < 2 or cfg.latent_downsample % k:
        raise ResplatError(f"regrid: gaussians per point must be a square > 1 whose root divides "
                           f"{cfg.latent_downsample}, got {gaussians_per_point}")
    new_cfg = dataclasses.replace(cfg, gaussians_per_point=gaussians_per_point)
    sd = {n: t.detach().float().cpu() for n, t in model.state_dict().items()}
    sd[f"{HEAD_1}.weight"], sd[f"{HEAD_1}.bias"], sd[f"{HEAD_2}.weight"], sd[f"{HEAD_2}.bias"] = replicate_head(
        sd[f"{HEAD_1}.weight"], sd[f"{HEAD_1}.bias"], sd[f"{HEAD_2}.weight"], sd[f"{HEAD_2}.bias"],
        _blocks(cfg), cfg.gaussians_per_point, k * k)
    f = int(round((sd[RGB_ERROR].shape[1] // 3) ** 0.5))
    sd[RGB_ERROR] = pool_error_projection(sd[RGB_ERROR], f, k)
    out = build_model(new_cfg, device="cpu")
    out.load_state_dict(sd, strict=True)
    return out.eval()


def main(argv=None) -> int:
    from ..train.checkpointing import export_safetensors

    p = argparse.ArgumentParser(prog="python -m resplat.model.regrid", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="weights with 1 Gaussian per latent point (safetensors / checkpoint)")
    p.add_argument("dst", type=Path, help="output safetensors (float32, config in its metadata)")
    p.add_argument("--gaussians-per-point", type=int, default=4)
    args = p.parse_args(argv)
    try:
        model = regrid(load_checkpoint(args.src), args.gaussians_per_point)
        export_safetensors(model, args.dst)
    except ResplatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.dst}: {args.gaussians_per_point} Gaussians per latent point")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
