"""nerfstudio / Blender-NeRF ``transforms.json``: reader and writer.

The format and its parsing (OpenGL c2w ``transform_matrix``, intrinsics in pixels shared or per
frame, ``camera_angle_x``, OpenCV distortion keys) live in :mod:`resplat.viewfiles.transforms_file`
(standard library only, shared with the Blender extension). Here the images are loaded and
undistorted where the file gives distortion, and cameras built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from ..cameras import Cameras, intrinsics_matrix
from ..errors import CameraError, ViewsError
from ..viewfiles.transforms_file import (PINHOLE_MODELS, frame_intrinsics, read_frames,  # noqa: F401 (re-exported)
                                         transforms_document, write_transforms_document)
from .depths import load_depths
from .images import load_images
from .posed import PosedViews
from .undistort import undistort_images


def read_transforms_json(path: str | os.PathLike, background: Sequence[float] | None = None) -> PosedViews:
    """Read a nerfstudio / Blender-NeRF ``transforms.json`` and its images (frames in file order).

    Args:
        path: the json file; ``file_path`` entries are relative to its folder, with or without a
            suffix.
        background: composite RGBA images over this sRGB colour (e.g. (1, 1, 1) for the Blender
            synthetic scenes); ``None`` ignores alpha (see :func:`.images.load_image`).
    Returns:
        :class:`PosedViews` with float32 images [V, 3, H, W] in [0, 1] (undistorted where the file
        gives distortion) and float64 cameras (OpenCV w2c, K in pixels); ``depths`` [V, 1, H, W]
        metres when every frame names a ``depth_file_path`` (:mod:`.depths`), else ``None``.
    Raises:
        ViewsError: missing file, bad JSON, missing keys, unsupported camera model, a missing or
            unreadable image or depth map, sizes that differ between frames or from the images,
            bad poses, depth maps for some frames only or with distorted cameras.
    """
    path = Path(path)
    frames = read_frames(path)
    for frame in frames:
        size, first = frame.size, frames[0].size
        if size != first:
            raise ViewsError(f"{frame.where}: size {size[0]}x{size[1]} differs from frame 0's {first[0]}x{first[1]}; all views must have one size")
    paths, c2w = [f.image for f in frames], [f.c2w for f in frames]
    images = load_images(paths, background)
    img_h, img_w = images.shape[-2:]
    params, dists = [], []
    for i, frame in enumerate(frames):
        w, h, p, dist = frame_intrinsics(frame.keys, img_w, img_h, frame.where)
        if (w, h) != (img_w, img_h):
            raise ViewsError(f"{frame.where}: size {w}x{h} (w, h) differs from its image {paths[i]} ({img_w}x{img_h})")
        params.append(p)
        dists.append(dist)
    fx, fy, cx, cy = torch.tensor(params, dtype=torch.float64).unbind(-1)
    K = intrinsics_matrix(fx, fy, cx, cy, torch.float64)
    dist = torch.tensor(dists, dtype=torch.float64)
    distorted = (dist != 0).any(-1)
    depths = None
    with_depth = [f.depth is not None for f in frames]
    if any(with_depth):
        if not all(with_depth):
            raise ViewsError(f"{frames[with_depth.index(False)].where}: no 'depth_file_path' while other frames have one; give depth for every frame or none")
        if distorted.any():
            raise ViewsError(f"{path}: depth maps with distorted cameras are not supported (undistort the images and depth first)")
        depths = load_depths([f.depth for f in frames], img_w, img_h, frames[0].depth_scale)
    if distorted.any():
        images[distorted] = undistort_images(images[distorted], K[distorted], dist[distorted], "OPENCV")
    try:
        cams = Cameras.from_opengl_c2w(torch.tensor(c2w, dtype=torch.float64), K, img_w, img_h, [p.stem for p in paths])
    except CameraError as exc:
        raise ViewsError(f"{path}: {exc}") from None
    return PosedViews(images, cams, [str(p) for p in paths], depths)


def transforms_dict(cameras: Cameras, image_paths: Sequence[str | os.PathLike], root: str | os.PathLike,
                    depth_paths: Sequence[str | os.PathLike] | None = None) -> dict:
    """The ``transforms.json`` content for ``cameras`` (pinhole, ``camera_model`` "OPENCV" with no
    distortion): intrinsics at the top level when every view shares them, else inside each frame;
    ``file_path`` relative to ``root`` with '/' separators; OpenGL c2w matrices. With
    ``depth_paths`` (depth maps in metres, :mod:`.depths`) each frame gets a ``depth_file_path``
    and the top level ``depth_unit_scale_factor`` 1.0.

    Built by :func:`resplat.viewfiles.transforms_file.transforms_document`.

    Raises:
        ViewsError: the number of image or depth paths differs from the number of cameras.
    """
    if len(image_paths) != len(cameras):
        raise ViewsError(f"{len(image_paths)} image paths for {len(cameras)} cameras")
    K = cameras.K.double()
    intrinsics = torch.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]], -1).tolist()
    return transforms_document(image_paths, cameras.opengl_c2w().double().tolist(), intrinsics, cameras.width,
                               cameras.height, root, depth_paths=depth_paths)


def write_transforms_json(path: str | os.PathLike, cameras: Cameras, image_paths: Sequence[str | os.PathLike],
                          depth_paths: Sequence[str | os.PathLike] | None = None) -> None:
    """Write ``cameras`` and their images' paths as a nerfstudio ``transforms.json`` (see
    :func:`transforms_dict`; readable back with :func:`read_transforms_json`). Written to a
    temporary file in the same folder, then renamed.

    Raises:
        ViewsError: mismatched counts, or the file cannot be written.
    """
    path = Path(path)
    write_transforms_document(path, transforms_dict(cameras, image_paths, path.parent, depth_paths))
