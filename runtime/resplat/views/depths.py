"""Depth maps that come with posed views (nerfstudio ``depth_file_path``).

A depth map stores, per pixel, the z-depth in metres along the camera's viewing axis (OpenCV +z,
not the distance along the ray), 0 where no surface was seen (background). Files: ``.npy``
(a float or integer array [H, W], numpy's format) or a 16-bit / 8-bit single-channel PNG; the
stored values are multiplied by the file's ``depth_unit_scale_factor`` (nerfstudio convention,
"Data conventions": PNGs in millimetres with factor 1e-3). Blender's Cycles and EEVEE "Depth"
(Z) pass is exactly this z-depth (measured: a plane facing the camera at 5 m reads 5.0 in every
pixel, corners included); the extension writes ``.npy`` in metres.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..errors import ViewsError


def load_depth(path: str | os.PathLike, scale: float = 1.0) -> Tensor:
    """One depth map as float32 [H, W] metres (stored value x ``scale``; non-finite, negative
    and 0 stored values become 0 = no depth).

    Raises:
        ViewsError: the file is missing or unreadable, not 2-D, or not a number array.
    """
    path = os.fspath(path)
    try:
        if path.lower().endswith(".npy"):
            arr = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as img:
                if img.mode not in ("I;16", "I;16B", "I", "L", "F"):
                    raise ViewsError(f"{path}: depth PNG must have one channel (16-bit, 8-bit or float), got mode {img.mode}")
                arr = np.asarray(img)
    except FileNotFoundError:
        raise ViewsError(f"{path}: depth map not found") from None
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise ViewsError(f"{path}: cannot read depth map ({exc.__class__.__name__}: {exc})".replace("\n", " ")) from None
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ViewsError(f"{path}: depth map must be a 2-D number array [H, W], got {arr.dtype} {list(arr.shape)}")
    d = arr.astype(np.float64) * scale
    d[~np.isfinite(d) | (d < 0)] = 0.0
    return torch.from_numpy(d.astype(np.float32))


def load_depths(paths: Sequence[str | os.PathLike], width: int, height: int, scale: float = 1.0) -> Tensor:
    """The depth maps of V views as float32 [V, 1, H, W] metres (see :func:`load_depth`).

    Raises:
        ViewsError: a file is missing or unreadable, or its size is not ``width`` x ``height``
            (the views' image size), named with both sizes.
    """
    out = []
    for p in paths:
        d = load_depth(p, scale)
        if tuple(d.shape) != (height, width):
            raise ViewsError(f"{os.fspath(p)}: depth map is {d.shape[1]}x{d.shape[0]} but its image is {width}x{height}")
        out.append(d)
    return torch.stack(out)[:, None]


def save_depth(path: str | os.PathLike, depth: Tensor) -> None:
    """Write a depth map [H, W] or [1, H, W] (metres) as float32 ``.npy`` (the format the
    extension writes and :func:`load_depth` reads with ``scale`` 1)."""
    d = depth.detach().to("cpu", torch.float32).reshape(depth.shape[-2:]).numpy()
    np.save(os.fspath(path), d, allow_pickle=False)


def resize_depths(depths: Tensor, width: int, height: int) -> Tensor:
    """Nearest-neighbour resampling of depth maps [V, 1, H, W] to ``width`` x ``height`` (depth
    is never averaged across an occlusion edge; 0 stays "no depth")."""
    return torch.nn.functional.interpolate(depths, size=(height, width), mode="nearest-exact")
