"""``resplat render SCENE VIEWS --out DIR``: render a splat scene from posed cameras to PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_device_options, add_views_options, load_views, parse_color, pick_device, view_names


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("render", help="render a splat scene from the cameras of posed views",
                       description="Render SCENE (.ply/.splat/.spz) from every camera of VIEWS "
                                   "(transforms.json or a COLMAP folder) into PNG files.")
    p.add_argument("scene", help="splat file to render")
    p.add_argument("views", help="transforms.json, a folder holding one, or a COLMAP model folder")
    p.add_argument("--out", required=True, type=Path, help="output folder for <view>.png")
    p.add_argument("--background", type=parse_color, default=(0.0, 0.0, 0.0), help="r,g,b in [0,1] (default 0,0,0)")
    p.add_argument("--depth", action="store_true", help="also write <view>.depth.npy (expected depth, metres)")
    add_views_options(p)
    add_device_options(p)
    return p


def run(args, progress) -> None:
    import numpy as np
    import torch

    from ..formats import read_splats
    from ..formats.atomic import atomic_write
    from ..render import render
    from ..views import save_image

    device = pick_device(args.device)
    gaussians = read_splats(args.scene).to(device)
    views = load_views(args.views, args.size)
    names = view_names(views)
    bg = torch.tensor(args.background, device=device)
    total = len(views.cameras)
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(total):
        with torch.no_grad():
            out = render(gaussians, views.cameras[i], background=bg, backend=args.backend)
        save_image(args.out / f"{names[i]}.png", out.rgb[0].clamp(0, 1).cpu())
        if args.depth:
            with atomic_write(args.out / f"{names[i]}.depth.npy") as fh:
                np.save(fh, out.depth[0, 0].cpu().numpy())
        progress.step("render", i + 1, total)
    progress.message("render", f"wrote {total} images to {args.out}")
    progress.result("render", path=str(args.out), count=total)
