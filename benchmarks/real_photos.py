"""Real-photo benchmark of 3DGS optimisation: OpenCV's chessboard calibration photos at full
size (640x480, or --size), 10 train / 3 held out, Gaussians initialised at random on the board
plane; prints the board-masked PSNR per held-out photo before (init) and after optimisation.

Usage: .venv/bin/python benchmarks/real_photos.py [--size 640x480] [--steps 800] [--gaussians 20000]
(runs `bash scripts/fetch-fixtures` first if the photos are missing; see
resplat.tools.chessboard_fit for the protocol).

Measured 2026-11-23 (defaults: 640x480, 800 steps, 20,000 -> 19,313 Gaussians, torch backend on
one shared CPU core, 701 ms/step, 561 s): board PSNR left03 7.92 -> 22.34 dB, left07 8.18 ->
24.73 dB, left13 9.17 -> 24.42 dB (mean 8.42 -> 23.83 dB); whole image 13.5 dB (surroundings
are not modelled)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from resplat.optim import OptimConfig
from resplat.tools.chessboard_fit import _size, fit_board

ROOT = Path(__file__).resolve().parents[1]
CALIB = ROOT / ".cache" / "fixtures" / "opencv"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=_size, default=(640, 480), metavar="WxH")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--gaussians", type=int, default=20000)
    p.add_argument("--dc-lr", type=float, default=0.0125, help="SH DC learning rate (3DGS: 0.0025; 5x for short runs)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 avoids spin-waits on shared cores)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args, _ = p.parse_known_args()  # benchmarks/run passes its own arguments to every script
    torch.set_num_threads(args.threads)
    if not (CALIB / "left_intrinsics.yml").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "fetch-fixtures")], check=True)
    t0 = time.perf_counter()
    fit = fit_board(CALIB, *args.size, steps=args.steps, n=args.gaussians, device=args.device,
                    config=OptimConfig(sh_dc_lr=args.dc_lr))
    total = time.perf_counter() - t0
    w, h = args.size
    print(f"{w}x{h}, {args.steps} steps, {args.gaussians} -> {fit.num_gaussians} Gaussians, device {args.device}, "
          f"optimise {fit.seconds:.1f} s ({1000 * fit.seconds / max(args.steps, 1):.0f} ms/step), total {total:.1f} s")
    print()
    print("| held-out photo | board PSNR at init (dB) | board PSNR after (dB) | whole-image PSNR after (dB) |")
    print("|---|---|---|---|")
    for name, b0, b1, f in zip(fit.names, fit.psnr_board_before, fit.psnr_board, fit.psnr_full):
        print(f"| {name} | {b0:.2f} | {b1:.2f} | {f:.2f} |")
    n = len(fit.names)
    print(f"| mean | {sum(fit.psnr_board_before) / n:.2f} | {sum(fit.psnr_board) / n:.2f} | {sum(fit.psnr_full) / n:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
