"""Speed of the synthetic-data generator (resplat.data) and a contact sheet of its output.

Renders --scenes scenes of --views views at --size (seed --seed, scene i = SeedSequence[seed, i])
in this process with one torch thread, timing drawing + ray casting separately from writing the
scene folder (PNG, npy, json), and prints seconds per scene and per view. With --sheet PATH it
also writes a contact sheet: one row per scene, its first --sheet-views views as thumbnails of
--thumb pixels, then the first view's z-depth (grey, near = bright).

Usage: python benchmarks/synthetic_data.py [--scenes 8] [--views 12] [--size 256x256]
       [--seed 0] [--sheet docs/images/synthetic.png] [--sheet-views 4] [--thumb 96]
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from resplat.data import GeneratorConfig, make_scene, write_scene


def thumb(img: torch.Tensor, size: int) -> np.ndarray:
    """[C, H, W] in [0, 1] -> uint8 [size, size*W/H, 3] (antialiased)."""
    h, w = img.shape[-2:]
    t = F.interpolate(img[None].float(), size=(size, round(size * w / h)), mode="bilinear", antialias=True)[0]
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return (t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--views", type=int, default=12)
    ap.add_argument("--size", default="256x256")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--sheet-views", type=int, default=4)
    ap.add_argument("--thumb", type=int, default=96)
    args = ap.parse_args()
    torch.set_num_threads(1)
    w, h = (int(v) for v in args.size.split("x"))
    cfg = GeneratorConfig(width=w, height=h, views=args.views, context=max(1, args.views - 4))
    rows, t_render, t_write = [], 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.scenes):
            t0 = time.perf_counter()
            images, depths, cameras, meta = make_scene(cfg, args.seed, i)
            t1 = time.perf_counter()
            write_scene(Path(tmp) / f"scene_{i:06d}", images, depths, cameras, meta)
            t2 = time.perf_counter()
            t_render, t_write = t_render + t1 - t0, t_write + t2 - t1
            print(f"scene {i}: {meta['rig']['kind']:<8} {len(meta['scene']['kinds']):2d} objects, {meta['scene']['room']:<4} room, "
                  f"render {t1 - t0:.2f} s, write {t2 - t1:.2f} s")
            if args.sheet:
                d = depths[0]
                inv = (d.min() / d).clamp(0, 1)
                rows.append(np.concatenate([thumb(images[v], args.thumb) for v in range(min(args.sheet_views, args.views))]
                                           + [thumb(inv, args.thumb)], axis=1))
    n = args.scenes
    total = t_render + t_write
    print(f"{n} scenes x {args.views} views at {w}x{h}: {total / n:.2f} s per scene ({n / total:.3f} scenes/s), "
          f"{t_render / (n * args.views):.3f} s per view rendering + {t_write / (n * args.views):.3f} s writing")
    if args.sheet:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.sheet, optimize=True)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
