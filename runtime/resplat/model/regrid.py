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
from .initial import parameter_blocks
from .updater import gaussian_grid_factor

HEAD_1 = "encoder.gaussian_head.0"
HEAD_2 = "encoder.gaussian_head.2"
RGB_ERROR = "encoder.update_rgb_error_proj.0.weight"


def replicate_head(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, blocks: list[int], k2: int):
    """The head of one Gaussian per point -> the head of ``k2`` (module docstring).

    Args:
        w1, b1: [G, C], [G] first Linear; w2, b2: [G, G], [G] last Linear (G = sum(blocks)).
        blocks: values per parameter block (:func:`resplat.model.initial.parameter_blocks`); the
            output of a k2 head is laid out (block value, sub-Gaussian) (``split_gaussian_grid``).
        k2: sub-Gaussians per source Gaussian (a square).

    Returns:
        (w1 [G k2, C], b1, w2 [G k2, G k2], b2), same dtype: hidden copy s (rows s G .. (s + 1) G - 1)
        feeds only the outputs of sub-Gaussian s.

    Raises:
        ResplatError: a last layer that is not [G, G].
    """
    g = sum(blocks)
    if w2.shape != (g, g):
        raise ResplatError(f"Gaussian head: last layer {list(w2.shape)} is not [{g}, {g}]")
    starts = [sum(blocks[:i]) for i in range(len(blocks))]
    order = [s * g + start + ci for start, c in zip(starts, blocks) for ci in range(c) for s in range(k2)]
    return w1.repeat(k2, 1), b1.repeat(k2), torch.block_diag(*[w2] * k2)[order], b2.repeat(k2)[order]


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
    if cfg.gaussians_per_point != 1:
        raise ResplatError("regrid: only models with 1 Gaussian per latent point are supported")
    k = int(round(gaussians_per_point ** 0.5))
    if k * k != gaussians_per_point or k < 2 or cfg.latent_downsample % k:
        raise ResplatError(f"regrid: gaussians per point must be a square > 1 whose root divides "
                           f"{cfg.latent_downsample}, got {gaussians_per_point}")
    new_cfg = dataclasses.replace(cfg, gaussians_per_point=gaussians_per_point)
    sd = {n: t.detach().float().cpu() for n, t in model.state_dict().items()}
    sd[f"{HEAD_1}.weight"], sd[f"{HEAD_1}.bias"], sd[f"{HEAD_2}.weight"], sd[f"{HEAD_2}.bias"] = replicate_head(
        sd[f"{HEAD_1}.weight"], sd[f"{HEAD_1}.bias"], sd[f"{HEAD_2}.weight"], sd[f"{HEAD_2}.bias"],
        parameter_blocks(cfg.sh_channels), k * k)
    sd[RGB_ERROR] = pool_error_projection(sd[RGB_ERROR], gaussian_grid_factor(cfg), k)
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
