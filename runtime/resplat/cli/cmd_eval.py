"""``resplat eval SCENE VIEWS``: per-view PSNR / SSIM (and LPIPS with user weights) table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_device_options, add_views_options, load_views, parse_color, pick_device, view_names


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="per-view PSNR/SSIM of a splat scene against posed views",
                       description="Render SCENE from every camera of VIEWS and compare with the photos.")
    p.add_argument("scene", help="splat file to evaluate")
    p.add_argument("views", help="transforms.json, a folder holding one, or a COLMAP model folder")
    p.add_argument("--background", type=parse_color, default=(0.0, 0.0, 0.0), help="r,g,b in [0,1]")
    p.add_argument("--lpips-weights", type=Path, help="LPIPS network weights file (nothing is downloaded)")
    p.add_argument("--json", type=Path, dest="json_out", help="also write the table as JSON")
    add_views_options(p)
    add_device_options(p)
    return p


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of ``rows`` (dicts with a 'view' key and float ``columns``)."""
    head = "| view | " + " | ".join(columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    body = [f"| {r['view']} | " + " | ".join(f"{r[c]:.4f}" for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def run(args, progress) -> None:
    import torch

    from ..formats import read_splats
    from ..metrics import psnr, ssim
    from ..render import render

    device = pick_device(args.device)
    gaussians = read_splats(args.scene).to(device)
    views = load_views(args.views, args.size)
    names = view_names(views)
    lpips_fn = None
    if args.lpips_weights is not None:
        from ..metrics import load_lpips

        lpips_fn = load_lpips(args.lpips_weights).to(device)
    bg = torch.tensor(args.background, device=device)
    rows = []
    total = len(views.cameras)
    for i in range(total):
        with torch.no_grad():
            pred = render(gaussians, views.cameras[i], background=bg, backend=args.backend).rgb.clamp(0, 1)
            target = views.images[i : i + 1].to(device)
            row = {"view": names[i], "psnr": float(psnr(pred, target)[0]), "ssim": float(ssim(pred, target)[0])}
            if lpips_fn is not None:
                row["lpips"] = float(lpips_fn(pred, target)[0])
        rows.append(row)
        progress.step("eval", i + 1, total, psnr=row["psnr"])
    columns = [c for c in ("psnr", "ssim", "lpips") if c in rows[0]]
    mean = {"view": "mean", **{c: sum(r[c] for r in rows) / len(rows) for c in columns}}
    table = format_table(rows + [mean], columns)
    if progress.mode != "jsonl":
        print(table)
    if args.json_out:
        args.json_out.write_text(json.dumps({"views": rows, "mean": mean}, indent=2))
    progress.result("eval", views=rows, mean=mean)
    sys.stdout.flush()
