"""nerfstudio / Blender-NeRF ``transforms.json`` parsed with the standard library only (no torch:
the Blender extension imports it; :mod:`resplat.views.transforms_json` builds posed views on it).

Format (nerfstudio "Data conventions" docs; the Blender NeRF synthetic scenes of Mildenhall et
al. 2020): ``frames`` is a list of ``{"file_path", "transform_matrix", ...}``; the
``transform_matrix`` is an OpenGL camera-to-world matrix (camera looks down -z, +y up).
Intrinsics are in pixels, either shared at the top level or given inside each frame (frame keys
win): ``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h`` or Blender-NeRF's ``camera_angle_x``
(horizontal field of view in radians; then fl_y = fl_x and the principal point is centred).
nerfstudio puts pixel centres at half-integers, like this runtime, so cx, cy are used as is.
OpenCV distortion ``k1, k2, p1, p2, k3`` (``camera_model`` "OPENCV") comes back as five
coefficients; removing it is the reader's job.
Depth maps (nerfstudio "depth_file_path" per frame, optional): a ``.npy`` float array [H, W] or
a 16-bit PNG, multiplied by the top-level ``depth_unit_scale_factor`` (nerfstudio's default
1e-3: PNGs in millimetres) to give z-depth in metres along the camera's viewing axis; 0 marks a
pixel without a surface. The Blender extension writes ``.npy`` in metres with the factor 1.0.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ViewsError
from .distortion import OPENCV_KEYS as DIST_KEYS

#: ``camera_model`` values that are pinhole cameras, optionally with OpenCV distortion.
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "PERSPECTIVE")
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y", "camera_model", *DIST_KEYS, "k4")
#: nerfstudio's ``depth_unit_scale_factor`` when the file gives none (depth PNGs in millimetres).
DEFAULT_DEPTH_SCALE = 1e-3
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


@dataclass(frozen=True)
class TransformsFrame:
    """One frame as stored.

    Attributes:
        where: "<json path>: frame <i>", the prefix of every message about it.
        image: the image file (exists).
        c2w: 4x4 OpenGL camera-to-world matrix as nested lists of floats (a 3x4 one is completed).
        keys: the intrinsic keys of :data:`INTRINSIC_KEYS`, top level merged with the frame's.
        depth: the frame's depth map file (exists), or ``None`` when it names none.
        depth_scale: metres per stored depth unit (``depth_unit_scale_factor``, default 1e-3).
    """

    where: str
    image: Path
    c2w: list
    keys: dict
    depth: Path | None = None
    depth_scale: float = DEFAULT_DEPTH_SCALE

    @property
    def size(self) -> tuple:
        """(w, h) as stored (either may be ``None``: then the image's size applies)."""
        return self.keys.get("w"), self.keys.get("h")


def load_json(path: Path) -> dict:
    """The json document with a non-empty ``frames`` list (ViewsError naming ``path`` otherwise)."""
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


def image_path(root: Path, file_path: str, where: str) -> Path:
    """The image a frame names: relative to the json's folder; without a suffix, try .png first
    (Blender NeRF synthetic), then .jpg / .jpeg."""
    p = root / file_path
    if p.is_file():
        return p
    if not p.suffix:
        for s in IMAGE_SUFFIXES:
            if p.with_name(p.name + s).is_file():
                return p.with_name(p.name + s)
    raise ViewsError(f"{where}: image {file_path!r} not found (looked for {p})")


def number(d: dict, key: str, where: str) -> float:
    """``d[key]`` as a finite float (ViewsError naming ``where`` and the key otherwise)."""
    try:
        value = float(d[key])
    except (TypeError, ValueError):
        raise ViewsError(f"{where}: {key!r} must be a number, got {d[key]!r}") from None
    if not math.isfinite(value):
        raise ViewsError(f"{where}: {key!r} is not finite")
    return value


def frame_intrinsics(d: dict, img_w: int, img_h: int, where: str) -> tuple[int, int, list[float], list[float]]:
    """(w, h, [fx, fy, cx, cy], [k1, k2, p1, p2, k3]) from merged top-level + frame keys ``d``;
    ``img_w`` x ``img_h`` (the image's size) stands in for missing ``w`` / ``h``.

    Raises:
        ViewsError: unsupported ``camera_model``, no focal length, a non-number, fisheye ``k4``.
    """
    model = d.get("camera_model", "OPENCV")
    if model not in PINHOLE_MODELS:
        raise ViewsError(f"{where}: unsupported camera_model {model!r} (supported: {', '.join(PINHOLE_MODELS)})")
    w = int(number(d, "w", where)) if "w" in d else img_w
    h = int(number(d, "h", where)) if "h" in d else img_h
    if "fl_x" in d:
        fx = number(d, "fl_x", where)
    elif "camera_angle_x" in d:
        fx = 0.5 * w / math.tan(0.5 * number(d, "camera_angle_x", where))
    else:
        raise ViewsError(f"{where}: missing key 'fl_x' (or 'camera_angle_x')")
    if "fl_y" in d:
        fy = number(d, "fl_y", where)
    elif "camera_angle_y" in d:
        fy = 0.5 * h / math.tan(0.5 * number(d, "camera_angle_y", where))
    else:
        fy = fx
    cx = number(d, "cx", where) if "cx" in d else w / 2
    cy = number(d, "cy", where) if "cy" in d else h / 2
    if "k4" in d and number(d, "k4", where) != 0:
        raise ViewsError(f"{where}: distortion coefficient k4 (fisheye) is not supported")
    dist = [number(d, k, where) if k in d else 0.0 for k in DIST_KEYS]
    return w, h, [fx, fy, cx, cy], dist


def frame_matrix(frame: dict, where: str) -> list[list[float]]:
    """The frame's ``transform_matrix`` as 4x4 nested lists (a 3x4 one gets [0, 0, 0, 1])."""
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


def read_frames(path: Path) -> list[TransformsFrame]:
    """Every frame of the ``transforms.json`` at ``path`` in file order: its image (which must
    exist), pose, merged intrinsic keys and optional depth map (which must exist when named). Intrinsics are checked by :func:`frame_intrinsics`,
    image sizes are not (they need the images).

    Raises:
        ViewsError: missing file, bad JSON, missing ``frames`` / ``file_path`` /
            ``transform_matrix``, a malformed matrix, a missing image or depth map, a
            non-positive ``depth_unit_scale_factor``.
    """
    path = Path(path)
    data = load_json(path)
    top = {k: data[k] for k in INTRINSIC_KEYS if k in data}
    scale = DEFAULT_DEPTH_SCALE
    if "depth_unit_scale_factor" in data:
        scale = number(data, "depth_unit_scale_factor", str(path))
        if scale <= 0:
            raise ViewsError(f"{path}: 'depth_unit_scale_factor' must be positive, got {scale}")
    frames = []
    for i, frame in enumerate(data["frames"]):
        where = f"{path}: frame {i}"
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise ViewsError(f"{where}: missing key 'file_path'")
        c2w = frame_matrix(frame, where)
        image = image_path(path.parent, str(frame["file_path"]), where)
        depth = None
        if frame.get("depth_file_path"):
            depth = path.parent / str(frame["depth_file_path"])
            if not depth.is_file():
                raise ViewsError(f"{where}: depth map {frame['depth_file_path']!r} not found (looked for {depth})")
        keys = {**top, **{k: frame[k] for k in INTRINSIC_KEYS if k in frame}}
        frames.append(TransformsFrame(where, image, c2w, keys, depth, scale))
    return frames


def relative_posix(path, root) -> str:
    """``path`` relative to the folder ``root``, with '/' separators (a ``file_path`` value)."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def transforms_document(image_paths: Sequence, c2w: Sequence, intrinsics: Sequence, width: int, height: int, root, *,
                        depth_paths: Sequence | None = None, distortions: Sequence | None = None,
                        share_intrinsics: bool = True) -> dict:
    """The ``transforms.json`` content (the format of the module docstring) for V views: the
    writer shared by :func:`resplat.views.write_transforms_json` and the Blender extension.

    Args:
        image_paths: V image files; written as ``file_path`` relative to ``root``.
        c2w: V OpenGL camera-to-world 4x4 matrices (nested lists or arrays), metres.
        intrinsics: V (fx, fy, cx, cy) in pixels; at the top level when ``share_intrinsics`` and
            every view has the same ones, else inside each frame.
        width, height: the one image size ``w``, ``h`` (pixels); ``camera_model`` is "OPENCV".
        depth_paths: optional V depth maps in metres: ``depth_file_path`` per frame and
            ``depth_unit_scale_factor`` 1.0.
        distortions: optional V OpenCV (k1, k2, p1, p2, k3) (or () for none); a view with any
            non-zero coefficient gets them as frame keys.

    Raises:
        ViewsError: the numbers of paths, poses, intrinsics, depth maps or distortions differ.
    """
    v = len(image_paths)
    for name, seq in (("poses", c2w), ("intrinsics", intrinsics), ("depth map paths", depth_paths),
                      ("distortions", distortions)):
        if seq is not None and len(seq) != v:
            raise ViewsError(f"{len(seq)} {name} for {v} image paths")
    intr = [dict(zip(("fl_x", "fl_y", "cx", "cy"), map(float, k))) for k in intrinsics]
    shared = share_intrinsics and all(k == intr[0] for k in intr)
    out: dict = {"camera_model": "OPENCV", "w": int(width), "h": int(height)}
    if shared and intr:
        out.update(intr[0])
    if depth_paths is not None:
        out["depth_unit_scale_factor"] = 1.0
    frames = []
    for i, p in enumerate(image_paths):
        frame = {"file_path": relative_posix(p, root), "transform_matrix": [[float(x) for x in row] for row in c2w[i]]}
        if not shared:
            frame.update(intr[i])
        if distortions is not None and any(c != 0 for c in distortions[i]):
            frame.update(zip(DIST_KEYS, map(float, distortions[i])))
        if depth_paths is not None:
            frame["depth_file_path"] = relative_posix(depth_paths[i], root)
        frames.append(frame)
    out["frames"] = frames
    return out


def write_transforms_document(path, document: dict) -> None:
    """Write a :func:`transforms_document` to ``path`` as indented UTF-8 JSON, atomically (a
    temporary file in the same folder, then renamed): the one ``transforms.json`` writer of the
    runtime and the Blender extension.

    Raises:
        ViewsError: the file cannot be written (naming it).
    """
    from ..formats.atomic import atomic_write

    text = json.dumps(document, indent=2)
    with atomic_write(Path(path), error=lambda p, problem: ViewsError(f"{p}: {problem}")) as fh:
        fh.write((text + "\n").encode("utf-8"))
