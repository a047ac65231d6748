"""Convert an OpenCV chessboard calibration (``left_intrinsics.yml`` + ``leftNN.jpg``) into
undistorted posed views: ``OUT_DIR/images/leftNN.png`` and ``OUT_DIR/transforms.json``.

Usage: ``python -m resplat.tools.opencv_calibration CALIB_DIR OUT_DIR [--size WxH]``

Conventions (OpenCV ``calib3d`` docs, ``calibrateCamera``): ``camera_matrix`` is K with pixel
centres at integers (converted with :func:`resplat.cameras.opencv_to_pixel_corner_K`, +0.5 px);
``distortion_coefficients`` are (k1, k2, p1, p2, k3); each row of ``extrinsic_parameters`` is
(rvec, tvec) of one image, in image order, mapping chessboard (world) coordinates in the units of
``square_size`` (metres here) to OpenCV camera coordinates: X_cam = Rodrigues(rvec) X + tvec.
The transforms.json holds OpenGL camera-to-world matrices, as nerfstudio expects.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras, opencv_to_pixel_corner_K
from ..errors import CameraError, ResplatError, ViewsError
from ..views import PosedViews, load_images, resize, save_image, undistort_images, write_transforms_json
from .opencv_yaml import read_opencv_yaml

CALIBRATION_FILE = "left_intrinsics.yml"
_IMAGE = re.compile(r"^left(\d+)\.(jpg|jpeg|png)$", re.I)


def rodrigues(rvec) -> np.ndarray:
    """[3, 3] float64 rotation of an axis-angle vector (radians), as OpenCV's ``Rodrigues``:
    R = I + sin(t) [k]x + (1 - cos(t)) [k]x^2 with t = |rvec|, k = rvec / t."""
    r = np.asarray(rvec, dtype=np.float64)
    t = np.linalg.norm(r)
    if t < 1e-12:
        return np.eye(3)
    kx, ky, kz = r / t
    Kx = np.array([[0, -kz, ky], [kz, 0, -kx], [-ky, kx, 0]])
    return np.eye(3) + np.sin(t) * Kx + (1 - np.cos(t)) * (Kx @ Kx)


def _matrix_entry(calib: dict, key: str, sizes: tuple[int, ...], path: Path) -> np.ndarray:
    """Matrix ``key`` as float64, flattened; it must hold one of ``sizes`` values."""
    value = calib.get(key)
    if not isinstance(value, np.ndarray):
        raise ViewsError(f"{path}: missing matrix {key!r}")
    if value.size not in sizes:
        raise ViewsError(f"{path}: {key!r} must have {' or '.join(map(str, sizes))} values, got shape {list(value.shape)}")
    return value.astype(np.float64).ravel()


def calibration_images(calib_dir: Path) -> list[Path]:
    """``left<N>.jpg`` (or .png) files of ``calib_dir`` sorted by N (gaps allowed)."""
    found = [(int(m.group(1)), p) for p in calib_dir.iterdir() if (m := _IMAGE.match(p.name))]
    return [p for _, p in sorted(found)]


def read_opencv_calibration(calib_dir: str | os.PathLike) -> PosedViews:
    """Undistorted posed views of an OpenCV calibration folder (module docstring).

    Returns:
        :class:`PosedViews`: images [V, 3, H, W] float32 in [0, 1] (sRGB as stored; greyscale
        photos become 3 equal channels), float64 cameras (w2c from rvec/tvec, K with pixel
        centres at half-integers), names = image stems.
    Raises:
        ViewsError: missing/malformed calibration file, a number of images different from the
            number of extrinsics rows, images of another size than the calibration's.
    """
    calib_dir = Path(calib_dir)
    yml = calib_dir / CALIBRATION_FILE
    calib = read_opencv_yaml(yml)
    K_cv = _matrix_entry(calib, "camera_matrix", (9,), yml).reshape(3, 3)
    dist = _matrix_entry(calib, "distortion_coefficients", (4, 5), yml)  # k1, k2, p1, p2[, k3]
    paths = calibration_images(calib_dir)
    ext = calib.get("extrinsic_parameters")
    if not isinstance(ext, np.ndarray) or ext.ndim != 2 or ext.shape[1] != 6:
        raise ViewsError(f"{yml}: missing matrix 'extrinsic_parameters' with 6 columns (rvec, tvec)")
    if len(paths) != ext.shape[0]:
        raise ViewsError(f"{calib_dir}: {len(paths)} left*.jpg images but {ext.shape[0]} rows of extrinsic_parameters")
    images = load_images(paths)
    h, w = images.shape[-2:]
    if (calib.get("image_width", w), calib.get("image_height", h)) != (w, h):
        raise ViewsError(f"{paths[0]}: images are {w}x{h} but {yml.name} says {calib['image_width']}x{calib['image_height']}")
    K = opencv_to_pixel_corner_K(torch.from_numpy(K_cv))
    images = undistort_images(images, K, dist, "OPENCV")
    w2c = np.tile(np.eye(4), (len(paths), 1, 1))
    for i, row in enumerate(ext.astype(np.float64)):
        w2c[i, :3, :3], w2c[i, :3, 3] = rodrigues(row[:3]), row[3:]
    try:
        cameras = Cameras(torch.from_numpy(w2c), K, w, h, [p.stem for p in paths])
    except CameraError as exc:
        raise ViewsError(f"{yml}: {exc}") from None
    return PosedViews(images, cameras, [str(p) for p in paths])


def convert(calib_dir: str | os.PathLike, out_dir: str | os.PathLike, size: tuple[int, int] | None = None) -> Path:
    """Write ``out_dir/images/<stem>.png`` and ``out_dir/transforms.json`` for a calibration
    folder, optionally resampled to ``size`` = (width, height). Returns the json's path.

    Raises:
        ViewsError: see :func:`read_opencv_calibration`; a bad size.
    """
    views = read_opencv_calibration(calib_dir)
    if size is not None:
        views = resize(views, *size)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    out_paths = [out_dir / "images" / f"{Path(p).stem}.png" for p in views.paths]
    for img, p in zip(views.images, out_paths):
        save_image(p, img)
    write_transforms_json(out_dir / "transforms.json", views.cameras, out_paths)
    return out_dir / "transforms.json"


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT in pixels, e.g. 320x240, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 with one error line on bad input)."""
    parser = argparse.ArgumentParser(prog="python -m resplat.tools.opencv_calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("calib_dir", type=Path, help=f"folder with {CALIBRATION_FILE} and left01.jpg ... images")
    parser.add_argument("out_dir", type=Path, help="output folder (images/*.png and transforms.json)")
    parser.add_argument("--size", type=_size, default=None, metavar="WxH", help="resample the undistorted images to this size")
    args = parser.parse_args(argv)
    try:
        path = convert(args.calib_dir, args.out_dir, args.size)
    except (ResplatError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
