"""COLMAP sparse models (``cameras`` and ``images``, text ``.txt`` or binary ``.bin``) as posed
views. Parsing and writing (the file layouts, :func:`read_colmap_model`,
:func:`write_colmap_model`, quaternions) live in :mod:`resplat.viewfiles.colmap_model` (numpy
only, shared with the Blender extension); the names are re-exported here. (qvec, tvec) is the
world-to-camera pose in OpenCV axes; COLMAP's pixel centres are at half-integers, as in this
runtime, so intrinsics are used as is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..cameras import Cameras, intrinsics_matrix
from ..errors import CameraError, ViewsError
from ..viewfiles.colmap_model import (  # noqa: F401 (re-exported)
    MODEL_IDS, MODELS, SUPPORTED, ColmapCamera, ColmapImage, colmap_w2c, model_file, pinhole_params,
    qvec_to_rotmat, read_colmap_model, rotmat_to_qvec, write_colmap_model)
from .images import load_images
from .posed import PosedViews
from .undistort import opencv_coefficients, undistort_images


def read_colmap(model_dir: str | os.PathLike, images_dir: str | os.PathLike, background: Sequence[float] | None = None) -> PosedViews:
    """Posed views from a COLMAP sparse model and its image folder, sorted by image name.

    SIMPLE_PINHOLE and PINHOLE cameras are used directly; SIMPLE_RADIAL, RADIAL and OPENCV
    photos are undistorted to a pinhole with the same K (:func:`.undistort.undistort_images`).

    Args:
        model_dir: folder with cameras.(bin|txt) and images.(bin|txt).
        images_dir: folder that the image names are relative to.
        background: see :func:`.images.load_image`.
    Returns:
        :class:`PosedViews`: images [V, 3, H, W] float32 in [0, 1] (sRGB as stored), float64
        cameras with w2c = [R(qvec) | tvec], names = COLMAP image names.
    Raises:
        ViewsError: missing/malformed model files, no images, an unsupported camera model (naming
            it and the camera id), an unknown camera id, cameras of different sizes, an image
            whose size differs from its camera's, missing or unreadable images.
    """
    model_dir, images_dir = Path(model_dir), Path(images_dir)
    cams, images = read_colmap_model(model_dir)
    if not images:
        raise ViewsError(f"{model_dir}: the COLMAP model has no images")
    images = sorted(images, key=lambda im: im.name)
    params, dists, w2c = [], [], []
    first = None
    for im in images:
        if im.camera_id not in cams:
            raise ViewsError(f"{model_dir}: image {im.name!r} refers to camera {im.camera_id}, which is not in the model")
        cam = cams[im.camera_id]
        p, model, d = pinhole_params(cam, str(model_file(model_dir, "cameras")))
        first = first or cam
        if (cam.width, cam.height) != (first.width, first.height):
            raise ViewsError(f"{model_dir}: camera {cam.id} is {cam.width}x{cam.height} but camera {first.id} is {first.width}x{first.height}; all views must have one size")
        params.append(p)
        dists.append(opencv_coefficients(d, model))
        w2c.append(colmap_w2c(im))
    paths = [images_dir / im.name for im in images]
    pixels = load_images(paths, background)
    if tuple(pixels.shape[-2:]) != (first.height, first.width):
        raise ViewsError(f"{paths[0]}: image is {pixels.shape[-1]}x{pixels.shape[-2]} but its COLMAP camera is {first.width}x{first.height}")
    fx, fy, cx, cy = torch.tensor(params, dtype=torch.float64).unbind(-1)
    K = intrinsics_matrix(fx, fy, cx, cy, torch.float64)
    dist = torch.stack(dists)
    distorted = (dist != 0).any(-1)
    if distorted.any():
        pixels[distorted] = undistort_images(pixels[distorted], K[distorted], dist[distorted], "OPENCV")
    try:
        cameras = Cameras(torch.from_numpy(np.stack(w2c)), K, first.width, first.height, [im.name for im in images])
    except CameraError as exc:
        raise ViewsError(f"{model_dir}: {exc}") from None
    return PosedViews(pixels, cameras, [str(p) for p in paths])
