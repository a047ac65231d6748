"""Fit Gaussians to OpenCV's calibration photos of a chessboard and score held-out photos.

The real-photo check of :func:`resplat.optim.optimize`: the undistorted, posed photos from
:func:`resplat.tools.opencv_calibration.read_opencv_calibration` are resampled, a few are held
out, Gaussians are initialised at random on the board's plane (z = 0 in the calibration's world
frame, metres) and optimised on the others; PSNR on each held-out photo is measured inside the
board's outline (the surroundings beyond the board differ between photos and lie off the plane).

Board geometry (OpenCV ``left_intrinsics.yml``: 9 x 6 inner corners, ``square_size`` 25 mm):
inner corners span x in [0, 8 s], y in [0, 5 s]; the printed squares reach one square further,
x in [-s, 9 s], y in [-s, 6 s].

Usage: ``python -m resplat.tools.chessboard_fit CALIB_DIR [--size 160x120] [--steps 500]``
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import ResplatError
from ..gaussians import Gaussians, rgb_to_sh0
from ..metrics import psnr
from ..optim import OptimConfig, optimize, random_init
from ..render import render

SQUARE = 0.025
#: Printed board (all squares) on the z = 0 plane: (x_min, y_min, x_max, y_max) in metres.
BOARD_RECT = (-SQUARE, -SQUARE, 9 * SQUARE, 6 * SQUARE)
#: Default held-out photos (indices into the 13 sorted photos left01..left14, no 10: left03, left07, left13).
HOLDOUT = (2, 6, 11)


def board_mask(cameras: Cameras, rect: tuple[float, float, float, float] = BOARD_RECT) -> Tensor:
    """[V, 1, H, W] bool: pixels whose centre ray meets the plane z = 0 in front of the camera
    inside ``rect`` (x_min, y_min, x_max, y_max; metres), via the plane-to-image homography
    H = K [r1 r2 t] inverted per view."""
    K, w2c = cameras.K.double(), cameras.w2c.double()
    Hm = K @ torch.cat([w2c[:, :3, :2], w2c[:, :3, 3:]], 2)
    ys, xs = torch.meshgrid(torch.arange(cameras.height, dtype=torch.float64) + 0.5,
                            torch.arange(cameras.width, dtype=torch.float64) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)
    plane = torch.einsum("vij,pj->vpi", torch.linalg.inv(Hm), pix)
    # Hm (x, y, 1) = K X_cam = z (u, v, 1), so inv(Hm) (u, v, 1) = (x, y, 1) / z: the plane point
    # is in front of the camera exactly when the third component is positive
    xy = plane[..., :2] / plane[..., 2:]
    x0, y0, x1, y1 = rect
    inside = (xy[..., 0] >= x0) & (xy[..., 0] <= x1) & (xy[..., 1] >= y0) & (xy[..., 1] <= y1) & (plane[..., 2] > 0)
    return inside.reshape(len(cameras), 1, cameras.height, cameras.width)


def masked_psnr(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """[V] PSNR (dB, peak 1) over the pixels where ``mask`` [V, 1, H, W] is True (all channels)."""
    m = mask.expand_as(pred).to(pred.dtype)
    mse = ((pred - target).square() * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    return 10 * torch.log10(1 / mse)


@dataclass
class BoardFit:
    """Result of :func:`fit_board`: held-out view names, their board-masked PSNR (dB) and
    whole-image PSNR (dB) before and after, the number of Gaussians and the optimisation time (s);
    the optimised Gaussians and the background colour [3] they were fitted over (CPU), for
    writing and rendering them."""

    names: list[str]
    psnr_board_before: list[float]
    psnr_board: list[float]
    psnr_full: list[float]
    num_gaussians: int
    seconds: float
    gaussians: Gaussians | None = None
    background: Tensor | None = None


def fit_board(
    calib_dir: str | os.PathLike,
    width: int,
    height: int,
    *,
    steps: int = 400,
    n: int = 3000,
    holdout: tuple[int, ...] = HOLDOUT,
    seed: int = 0,
    backend: str = "auto",
    device: str = "cpu",
    config: OptimConfig = OptimConfig(),
) -> BoardFit:
    """Optimise ``n`` Gaussians, initialised uniformly in the board rectangle grown by one square
    with +-2 mm z jitter (opacity 0.1, random grey levels), on all photos but ``holdout`` at
    ``width`` x ``height``, for ``steps`` 3DGS steps over the mean-grey background; score the
    held-out photos.

    Raises:
        ResplatError: unreadable calibration folder (ViewsError), a holdout index out of range.
    """
    from .opencv_calibration import read_opencv_calibration
    from ..views import resize

    views = resize(read_opencv_calibration(calib_dir), width, height)
    v = len(views.images)
    if not all(0 <= i < v for i in holdout):
        raise ResplatError(f"holdout indices {holdout} out of range for {v} photos")
    train_idx = [i for i in range(v) if i not in holdout]
    cams = views.cameras.to(dtype=torch.float32)
    train, test = cams[train_idx], cams[list(holdout)]
    images = views.images.to(torch.float32)
    bg = images[train_idx].mean((0, 2, 3))
    x0, y0, x1, y1 = BOARD_RECT
    box = torch.tensor([[x0 - SQUARE, y0 - SQUARE, -0.002], [x1 + SQUARE, y1 + SQUARE, 0.002]])
    pts = random_init(train, n, seed=seed, bounds=box, min_views=1)
    grey = torch.rand(n, 1, 1, generator=torch.Generator().manual_seed(seed + 1)).expand(n, 1, 3)
    init = Gaussians(pts.means, pts.quats, pts.log_scales, pts.logit_opacities, rgb_to_sh0(grey)).to(device)
    result = optimize(init, images[train_idx].to(device), train.to(device), steps, backend=backend, lr=config,
                      background=bg.to(device), prune_opacity=0.005, seed=seed, eval_every=max(steps, 1))
    mask = board_mask(test).to(device)
    target = images[list(holdout)].to(device)
    with torch.no_grad():
        before = render(init, test.to(device), background=bg.to(device), backend=backend).rgb.clamp(0, 1)
        after = render(result.gaussians, test.to(device), background=bg.to(device), backend=backend).rgb.clamp(0, 1)
    names = [test.names[i] for i in range(len(test))] if test.names else [str(i) for i in holdout]
    return BoardFit(names, masked_psnr(before, target, mask).tolist(), masked_psnr(after, target, mask).tolist(),
                    psnr(after, target).tolist(), len(result.gaussians), result.seconds,
                    result.gaussians.detach().to("cpu"), bg.cpu())


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 160x120, got {text!r}")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    """Command line: fit and print the board PSNR per held-out photo; exit 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m resplat.tools.chessboard_fit", description=__doc__.split("\n\n")[0])
    p.add_argument("calib_dir", help="folder with left_intrinsics.yml and left*.jpg")
    p.add_argument("--size", type=_size, default=(160, 120), metavar="WxH")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--gaussians", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="auto")
    args = p.parse_args(argv)
    try:
        fit = fit_board(args.calib_dir, *args.size, steps=args.steps, n=args.gaussians, seed=args.seed,
                        backend=args.backend, device=args.device)
    except ResplatError as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.size[0]}x{args.size[1]}, {args.steps} steps, {fit.num_gaussians} Gaussians, {fit.seconds:.1f} s")
    for name, b0, b1, f in zip(fit.names, fit.psnr_board_before, fit.psnr_board, fit.psnr_full):
        print(f"{name}: board PSNR {b0:.2f} -> {b1:.2f} dB (whole image {f:.2f} dB)")
    print(f"mean board PSNR {sum(fit.psnr_board) / len(fit.psnr_board):.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
