"""nerfstudio / Blender-NeRF ``transforms.json``: reader and writer.

Format (nerfstudio "Data conventions" docs; the Blender NeRF synthetic scenes of Mildenhall et
al. 2020): ``frames`` is a list of ``{"file_path", "transform_matrix", ...}``; the
``transform_matrix`` is an OpenGL camera-to-world matrix (camera looks down -z, +y up).
Intrinsics are in pixels, either shared at the top level or given inside each frame (frame keys
win): ``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h`` or Blender-NeRF's ``camera_angle_x``
(horizontal field of view in radians; then fl_y = fl_x and the principal point is centred).
nerfstudio puts pixel centres at half-integers, like this runtime, so cx, cy are used as is.
OpenCV distortion ``k1, k2, p1, p2, k3`` (``camera_model`` "OPENCV") is removed on reading by
undistorting the images (:mod:`.undistort`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import torch

from ..cameras import Cameras, intrinsics_matrix
from ..errors import CameraError, ViewsError
from ..formats.atomic import atomic_write
from .images import views_error
from .images import load_images
from .posed import PosedViews
from .undistort import undistort_images

#: ``camera_model`` values that are pinhole cameras, optionally with OpenCV distortion.
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "PERSPECTIVE")
_DIST_KEYS = ("k1", "k2", "p1", "p2", "k3")
_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y", "camera_model", *_DIST_KEYS, "k4")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def _load_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ViewsError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ViewsError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ViewsError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not data["frames"]:
        raise ViewsError(f"{path}: missing key 'frames' (a non-empty list)")
    return data


def _image_path(root: Path, file_path: str, where: str) -> Path:
    """The image a frame names: relative to the json's folder; without a suffix, try .png first
    (Blender NeRF synthetic), then .jpg / .jpeg."""
    p = root / file_path
    if p.is_file():
        return p
    if not p.suffix:
        for s in _IMAGE_SUFFIXES:
            if p.with_name(p.name + s).is_file():
                return p.with_name(p.name + s)
    raise ViewsError(f"{where}: image {file_path!r} not found (looked for {p})")


def _number(d: dict, key: str, where: str) -> float:
    try:
        value = float(d[key])
    except (TypeError, ValueError):
        raise ViewsError(f"{where}: {key!r} must be a number, got {d[key]!r}") from None
    if not math.isfinite(value):
        raise ViewsError(f"{where}: {key!r} is not finite")
    return value


def _intrinsics(d: dict, img_w: int, img_h: int, where: str) -> tuple[int, int, list[float], list[float]]:
    """(w, h, [fx, fy, cx, cy], [k1, k2, p1, p2, k3]) from merged top-level + frame keys."""
    model = d.get("camera_model", "OPENCV")
    if model not in PINHOLE_MODELS:
        raise ViewsError(f"{where}: unsupported camera_model {model!r} (supported: {', '.join(PINHOLE_MODELS)})")
    w = int(_number(d, "w", where)) if "w" in d else img_w
    h = int(_number(d, "h", where)) if "h" in d else img_h
    if "fl_x" in d:
        fx = _number(d, "fl_x", where)
    elif "camera_angle_x" in d:
        fx = 0.5 * w / math.tan(0.5 * _number(d, "camera_angle_x", where))
    else:
        raise ViewsError(f"{where}: missing key 'fl_x' (or 'camera_angle_x')")
    if "fl_y" in d:
        fy = _number(d, "fl_y", where)
    elif "camera_angle_y" in d:
        fy = 0.5 * h / math.tan(0.5 * _number(d, "camera_angle_y", where))
    else:
        fy = fx
    cx = _number(d, "cx", where) if "cx" in d else w / 2
    cy = _number(d, "cy", where) if "cy" in d else h / 2
    if "k4" in d and _number(d, "k4", where) != 0:
        raise ViewsError(f"{where}: distortion coefficient k4 (fisheye) is not supported")
    dist = [_number(d, k, where) if k in d else 0.0 for k in _DIST_KEYS]
    return w, h, [fx, fy, cx, cy], dist


def _matrix(frame: dict, where: str) -> list[list[float]]:
    if "transform_matrix" not in frame:
        raise ViewsError(f"{where}: missing key 'transform_matrix'")
    m = frame["transform_matrix"]
    try:
        rows = [[float(x) for x in row] for row in m]
    except (TypeError, ValueError):
        raise ViewsError(f"{where}: 'transform_matrix' must be a 4x4 list of numbers") from None
    if len(rows) == 3:
        rows.append([0.0, 0.0, 0.0, 1.0])
    if len(rows) != 4 or any(len(r) != 4 for r in rows):
        raise ViewsError(f"{where}: 'transform_matrix' must be a 4x4 list of numbers")
    return rows


def read_transforms_json(path: str | os.PathLike, background: Sequence[float] | None = None) -> PosedViews:
    """Read a nerfstudio / Blender-NeRF ``transforms.json`` and its images (frames in file order).

    Args:
        path: the json file; ``file_path`` entries are relative to its folder, with or without a
            suffix.
        background: composite RGBA images over this sRGB colour (e.g. (1, 1, 1) for the Blender
            synthetic scenes); ``None`` ignores alpha (see :func:`.images.load_image`).
    Returns:
        :class:`PosedViews` with float32 images [V, 3, H, W] in [0, 1] (undistorted where the file
        gives distortion) and float64 cameras (OpenCV w2c, K in pixels).
    Raises:
        ViewsError: missing file, bad JSON, missing keys, unsupported camera model, a missing or
            unreadable image, sizes that differ between frames or from the images, bad poses.
    """
    path = Path(path)
    data = _load_json(path)
    top = {k: data[k] for k in _INTRINSIC_KEYS if k in data}
    frames = data["frames"]
    paths, c2w, merged = [], [], []
    for i, frame in enumerate(frames):
        where = f"{path}: frame {i}"
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise ViewsError(f"{where}: missing key 'file_path'")
        c2w.append(_matrix(frame, where))
        paths.append(_image_path(path.parent, str(frame["file_path"]), where))
        merged.append({**top, **{k: frame[k] for k in _INTRINSIC_KEYS if k in frame}})
        size, first = (merged[i].get("w"), merged[i].get("h")), (merged[0].get("w"), merged[0].get("h"))
        if size != first:
            raise ViewsError(f"{where}: size {size[0]}x{size[1]} differs from frame 0's {first[0]}x{first[1]}; all views must have one size")
    images = load_images(paths, background)
    img_h, img_w = images.shape[-2:]
    params, dists = [], []
    for i, d in enumerate(merged):
        where = f"{path}: frame {i}"
        w, h, p, dist = _intrinsics(d, img_w, img_h, where)
        if (w, h) != (img_w, img_h):
            raise ViewsError(f"{where}: size {w}x{h} (w, h) differs from its image {paths[i]} ({img_w}x{img_h})")
        params.append(p)
        dists.append(dist)
    fx, fy, cx, cy = torch.tensor(params, dtype=torch.float64).unbind(-1)
    K = intrinsics_matrix(fx, fy, cx, cy, torch.float64)
    dist = torch.tensor(dists, dtype=torch.float64)
    distorted = (dist != 0).any(-1)
    if distorted.any():
        images[distorted] = undistort_images(images[distorted], K[distorted], dist[distorted], "OPENCV")
    try:
        cams = Cameras.from_opengl_c2w(torch.tensor(c2w, dtype=torch.float64), K, img_w, img_h, [p.stem for p in paths])
    except CameraError as exc:
        raise ViewsError(f"{path}: {exc}") from None
    return PosedViews(images, cams, [str(p) for p in paths])


def transforms_dict(cameras: Cameras, image_paths: Sequence[str | os.PathLike], root: str | os.PathLike) -> dict:
    """The ``transforms.json`` content for ``cameras`` (pinhole, ``camera_model`` "OPENCV" with no
    distortion): intrinsics at the top level when every view shares them, else inside each frame;
    ``file_path`` relative to ``root`` with '/' separators; OpenGL c2w matrices.

    Raises:
        ViewsError: the number of paths differs from the number of cameras.
    """
    if len(image_paths) != len(cameras):
        raise ViewsError(f"{len(image_paths)} image paths for {len(cameras)} cameras")
    K = cameras.K.double()

    def intr(k) -> dict:
        return {"fl_x": float(k[0, 0]), "fl_y": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2])}

    shared = bool((K == K[:1]).all())
    out: dict = {"camera_model": "OPENCV", "w": cameras.width, "h": cameras.height}
    if shared:
        out.update(intr(K[0]))
    c2w = cameras.opengl_c2w().double()
    frames = []
    for i, p in enumerate(image_paths):
        rel = Path(os.path.relpath(os.path.abspath(p), os.path.abspath(root))).as_posix()
        frame = {"file_path": rel, "transform_matrix": c2w[i].tolist()}
        if not shared:
            frame.update(intr(K[i]))
        frames.append(frame)
    out["frames"] = frames
    return out


def write_transforms_json(path: str | os.PathLike, cameras: Cameras, image_paths: Sequence[str | os.PathLike]) -> None:
    """Write ``cameras`` and their images' paths as a nerfstudio ``transforms.json`` (see
    :func:`transforms_dict`; readable back with :func:`read_transforms_json`). Written to a
    temporary file in the same folder, then renamed.

    Raises:
        ViewsError: mismatched counts, or the file cannot be written.
    """
    path = Path(path)
    text = json.dumps(transforms_dict(cameras, image_paths, path.parent), indent=2)
    with atomic_write(path, error=views_error) as fh:
        fh.write((text + "\n").encode("utf-8"))
