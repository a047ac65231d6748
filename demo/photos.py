"""Second demo: real calibrated photographs (OpenCV's 13 chessboard calibration photos, 640x480,
with intrinsics, distortion and one pose each) undistorted, fitted with Gaussians, scored on
held-out photos and exported as ``photos.ply`` and ``photos.spz``.

The fit is the real-photo benchmark's (``benchmarks/real_photos.py`` ->
:func:`resplat.tools.chessboard_fit.fit_board`): 10 photos fitted, left03 / left07 / left13 held
out, Gaussians initialised at random on the board's plane (the world frame is the board's: z = 0,
metres) and optimised by 3DGS steps over the photos' mean grey. Smaller than the benchmark so that
it takes a few minutes on 2 cores: 320x240 (the benchmark: 640x480), 600 steps (800), 20,000
initial Gaussians (same). Scores: PSNR inside the board's outline (the room around it differs from
photo to photo and is not on the plane) and over the whole image.

Writes ``OUT/photos.ply`` (lossless), ``OUT/photos.spz`` (Niantic, quantised), ``OUT/photos.png``
(each held-out photo | its render, PSNR under it) and ``OUT/photos.md`` (the table it prints).

Run: ``make demo-photos`` or ``.venv/bin/python demo/photos.py --out demo-output [--size 320x240
--steps 600 --gaussians 20000]`` (needs ``bash scripts/fetch-fixtures`` first).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from resplat.errors import ResplatError
from resplat.formats import read_splats, write_splats
from resplat.optim import OptimConfig
from resplat.render import render
from resplat.tools.chessboard_fit import HOLDOUT, _size, fit_board
from resplat.tools.opencv_calibration import read_opencv_calibration
from resplat.views import resize

REPO = Path(__file__).resolve().parents[1]
CALIB = REPO / ".cache" / "fixtures" / "opencv"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from figure import write_grid  # noqa: E402

#: the SH DC learning rate of the real-photo benchmark (3DGS's 0.0025 x 5 for short runs)
DC_LR = 0.0125


def table(fit, size: tuple[int, int], steps: int, n: int, seconds: dict) -> str:
    """The markdown report: board / whole-image PSNR per held-out photo and the timings."""
    w, h = size
    lines = [f"## Real photographs: OpenCV calibration chessboard, {w}x{h}, {steps} steps, {n:,} -> "
             f"{fit.num_gaussians:,} Gaussians", "",
             "| held-out photo | board PSNR at init (dB) | board PSNR (dB) | whole-image PSNR (dB) |", "|---|---:|---:|---:|"]
    for name, b0, b1, f in zip(fit.names, fit.psnr_board_before, fit.psnr_board, fit.psnr_full):
        lines.append(f"| {name} | {b0:.2f} | {b1:.2f} | {f:.2f} |")
    k = len(fit.names)
    lines.append(f"| mean | {sum(fit.psnr_board_before) / k:.2f} | {sum(fit.psnr_board) / k:.2f} | "
                 f"{sum(fit.psnr_full) / k:.2f} |")
    lines += ["", "| step | seconds |", "|---|---:|",
              *(f"| {name} | {value:.1f} |" for name, value in seconds.items())]
    return "\n".join(lines) + "\n"


def run(out: Path, calib: Path = CALIB, size: tuple[int, int] = (320, 240), steps: int = 600,
        gaussians: int = 20000, threads: int = 0) -> str:
    """Fit, export, draw and report (module docstring); returns the markdown report.

    Raises:
        ResplatError: the calibration folder cannot be read (ViewsError), or a splat file cannot be
            written; the exported files are read back and must hold every Gaussian.
    """
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fit = fit_board(calib, *size, steps=steps, n=gaussians, config=OptimConfig(sh_dc_lr=DC_LR))
    t1 = time.perf_counter()
    for name in ("photos.ply", "photos.spz"):
        write_splats(fit.gaussians, out / name)
        if len(read_splats(out / name)) != fit.num_gaussians:
            raise ResplatError(f"{out / name}: read back with a different number of Gaussians")
    t2 = time.perf_counter()
    views = resize(read_opencv_calibration(calib), *size)
    held = views.cameras[list(HOLDOUT)].to(dtype=torch.float32)
    with torch.no_grad():
        rgb = render(fit.gaussians, held, background=fit.background).rgb.clamp(0, 1)
    photos = views.images[list(HOLDOUT)].float()
    write_grid(out / "photos.png",
               [[photos[i].permute(1, 2, 0).numpy(), rgb[i].permute(1, 2, 0).numpy()] for i in range(len(HOLDOUT))],
               ["held-out photo", "render of the fitted Gaussians"], fit.names,
               [["", f"board {b:.2f} dB, image {f:.2f} dB"] for b, f in zip(fit.psnr_board, fit.psnr_full)],
               title=f"OpenCV calibration photos: {len(views) - len(HOLDOUT)} fitted, {len(HOLDOUT)} held out")
    t3 = time.perf_counter()
    seconds = {"fit (read, undistort, initialise, optimise, score)": t1 - t0,
               f"  of which optimisation ({1000 * fit.seconds / max(steps, 1):.0f} ms/step)": fit.seconds,
               "export photos.ply + photos.spz (and read back)": t2 - t1, "photos.png": t3 - t2,
               "**total**": t3 - t0}
    text = table(fit, size, steps, gaussians, seconds)
    tmp = out / "photos.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out / "photos.md")
    return text


def main(argv: list[str] | None = None) -> int:
    """Command line (module docstring); exit status 2 with one line on bad input."""
    p = argparse.ArgumentParser(prog="photos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default demo-output)")
    p.add_argument("--calib", type=Path, default=CALIB, help="folder with left_intrinsics.yml and left*.jpg")
    p.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="photo size (default 320x240)")
    p.add_argument("--steps", type=int, default=600, help="optimisation steps (default 600)")
    p.add_argument("--gaussians", type=int, default=20000, help="initial Gaussians (default 20000)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args(argv)
    if not (a.calib / "left_intrinsics.yml").is_file():
        print(f"photos: error: {a.calib}: no left_intrinsics.yml (run `bash scripts/fetch-fixtures`)", file=sys.stderr)
        return 2
    try:
        text = run(a.out, a.calib, a.size, a.steps, a.gaussians, a.threads)
    except ResplatError as exc:
        print(f"photos: error: {exc}", file=sys.stderr)
        return 2
    print(text)
    print(f"photos: wrote {', '.join(str(a.out / n) for n in ('photos.ply', 'photos.spz', 'photos.png', 'photos.md'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
