"""COLMAP sparse models (``cameras`` and ``images``, text ``.txt`` or binary ``.bin``), parsed
and written with numpy and the standard library only (no torch: the Blender extension imports it).

Layouts follow COLMAP's ``scripts/python/read_write_model.py`` and ``Reconstruction::Read*``:
- cameras.txt: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...``; cameras.bin: uint64 count, then per
  camera int32 id, int32 model id, uint64 width, uint64 height, float64 params[n(model)].
- images.txt: two lines per image, ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` then
  ``(X Y POINT3D_ID)*`` (may be empty); images.bin: uint64 count, then per image int32 id,
  float64 qvec[4], float64 tvec[3], int32 camera id, NUL-terminated UTF-8 name, uint64 number of
  points, (float64 x, float64 y, int64 point id)*. All little-endian.
(qvec, tvec) is the world-to-camera pose in OpenCV axes (:func:`colmap_w2c`); COLMAP's pixel
centres are at half-integers, as in this runtime, so intrinsics are used as is.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ViewsError
from ..npmath import quat_to_rotmat as qvec_to_rotmat  # COLMAP's qvec is (w, x, y, z)
from ..npmath import rotmat_to_quat as rotmat_to_qvec

#: COLMAP camera models: id -> (name, number of params) (``CAMERA_MODELS`` in read_write_model.py).
MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
}
MODEL_IDS = {name: (i, n) for i, (name, n) in MODELS.items()}
#: Models this reader turns into pinhole views (distorted ones are undistorted).
SUPPORTED = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


@dataclass
class ColmapCamera:
    """One ``cameras`` entry: ``params`` in the model's own order (e.g. OPENCV: fx, fy, cx, cy,
    k1, k2, p1, p2; pixels)."""

    id: int
    model: str
    width: int
    height: int
    params: tuple[float, ...]


@dataclass
class ColmapImage:
    """One ``images`` entry: world-to-camera rotation as a unit quaternion ``qvec`` (w, x, y, z)
    and translation ``tvec`` (scene units), the camera id and the image name (relative path)."""

    id: int
    qvec: tuple[float, float, float, float]
    tvec: tuple[float, float, float]
    camera_id: int
    name: str


# -- reading ---------------------------------------------------------------------------------
def _data_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ViewsError(f"{path}: cannot read ({exc})") from None


def _read_cameras_text(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    for n, line in enumerate(_data_lines(path), 1):
        e = line.split()
        if not e or e[0].startswith("#"):
            continue
        try:
            cams[int(e[0])] = ColmapCamera(int(e[0]), e[1], int(e[2]), int(e[3]), tuple(map(float, e[4:])))
        except (ValueError, IndexError):
            raise ViewsError(f"{path}: line {n}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...'") from None
    return cams


def _read_images_text(path: Path) -> list[ColmapImage]:
    lines, images, n = _data_lines(path), [], 0
    while n < len(lines):
        e = lines[n].split()
        n += 1
        if not e or e[0].startswith("#"):
            continue
        try:
            f = list(map(float, e[1:8]))
            images.append(ColmapImage(int(e[0]), tuple(f[:4]), tuple(f[4:]), int(e[8]), e[9]))
        except (ValueError, IndexError):
            raise ViewsError(f"{path}: line {n}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'") from None
        n += 1  # the POINTS2D line that follows every image line
    return images


class _Reader:
    """Little-endian struct reads that turn a truncated file into a ViewsError."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as exc:
            raise ViewsError(f"{path}: cannot read ({exc.strerror})") from None
        self.pos = 0

    def read(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ViewsError(f"{self.path}: truncated binary file (at byte {self.pos})")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def skip(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise ViewsError(f"{self.path}: truncated binary file (at byte {self.pos})")
        self.pos += size

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ViewsError(f"{self.path}: truncated binary file (unterminated image name)")
        s, self.pos = self.data[self.pos : end].decode("utf-8", "replace"), end + 1
        return s


def _read_cameras_binary(path: Path) -> dict[int, ColmapCamera]:
    r, cams = _Reader(path), {}
    for _ in range(r.read("Q")[0]):
        cam_id, model_id, width, height = r.read("iiQQ")
        if model_id not in MODELS:
            raise ViewsError(f"{path}: camera {cam_id}: unknown COLMAP camera model id {model_id}")
        name, n = MODELS[model_id]
        cams[cam_id] = ColmapCamera(cam_id, name, width, height, r.read("d" * n))
    return cams


def _read_images_binary(path: Path) -> list[ColmapImage]:
    r, images = _Reader(path), []
    for _ in range(r.read("Q")[0]):
        props = r.read("idddddddi")
        name = r.cstring()
        r.skip(24 * r.read("Q")[0])  # points2D: (float64 x, float64 y, int64 id)
        images.append(ColmapImage(props[0], tuple(props[1:5]), tuple(props[5:8]), props[8], name))
    return images


def model_file(model_dir: Path, stem: str) -> Path:
    """``model_dir/stem.bin``, else ``stem.txt`` (ViewsError naming the folder if neither)."""
    for suffix in (".bin", ".txt"):  # the order of read_write_model.py's detect_model_format
        if (model_dir / (stem + suffix)).is_file():
            return model_dir / (stem + suffix)
    raise ViewsError(f"{model_dir}: no COLMAP {stem}.bin or {stem}.txt")


def read_colmap_model(model_dir: str | os.PathLike) -> tuple[dict[int, ColmapCamera], list[ColmapImage]]:
    """Raw cameras (by id) and images (file order) of a sparse model folder (``.bin`` preferred
    over ``.txt`` when both exist). Raises ViewsError for missing, truncated or malformed files."""
    model_dir = Path(model_dir)
    cam_path, img_path = model_file(model_dir, "cameras"), model_file(model_dir, "images")
    cams = (_read_cameras_binary if cam_path.suffix == ".bin" else _read_cameras_text)(cam_path)
    images = (_read_images_binary if img_path.suffix == ".bin" else _read_images_text)(img_path)
    return cams, images


def pinhole_params(cam: ColmapCamera, where: str) -> tuple[list[float], str, list[float]]:
    """([fx, fy, cx, cy], distortion model, its coefficients in the model's own order) of a
    camera of a :data:`SUPPORTED` model; the distortion model is "OPENCV" (coefficients all 0
    for the pinhole models), "RADIAL" or "SIMPLE_RADIAL".

    Raises:
        ViewsError: an unsupported model or a wrong parameter count (naming ``where`` and the
            camera id).
    """
    if cam.model not in SUPPORTED:
        raise ViewsError(f"{where}: camera {cam.id} uses the unsupported COLMAP model {cam.model} (supported: {', '.join(SUPPORTED)})")
    n = MODEL_IDS[cam.model][1]
    if len(cam.params) != n:
        raise ViewsError(f"{where}: camera {cam.id} ({cam.model}) needs {n} parameters, got {len(cam.params)}")
    p = list(cam.params)
    if cam.model in ("PINHOLE", "OPENCV"):
        return p[:4], "OPENCV", (p[4:] or [0.0] * 4)
    return [p[0], p[0], p[1], p[2]], "OPENCV" if cam.model == "SIMPLE_PINHOLE" else cam.model, (p[3:] or [0.0] * 4)



def colmap_w2c(image: ColmapImage) -> np.ndarray:
    """[4, 4] float64 world-to-camera matrix (OpenCV axes) ``[R(qvec) | tvec]`` of an image."""
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = qvec_to_rotmat(image.qvec), image.tvec
    return T


# -- writing ---------------------------------------------------------------------------------
def write_colmap_model(model_dir: str | os.PathLike, cameras: Sequence[ColmapCamera], images: Sequence[ColmapImage], binary: bool = False) -> None:
    """Write cameras and images (no 2D points; an empty points3D) in COLMAP's text or binary
    layout (module docstring), each file via a temporary file and a rename.

    Raises:
        ViewsError: an unknown camera model or a wrong parameter count.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for c in cameras:
        if c.model not in MODEL_IDS or len(c.params) != MODEL_IDS[c.model][1]:
            raise ViewsError(f"camera {c.id}: cannot write model {c.model} with {len(c.params)} parameters")
    if binary:
        cam = struct.pack("<Q", len(cameras)) + b"".join(
            struct.pack(f"<iiQQ{len(c.params)}d", c.id, MODEL_IDS[c.model][0], c.width, c.height, *c.params) for c in cameras)
        img = struct.pack("<Q", len(images)) + b"".join(
            struct.pack("<idddddddi", i.id, *i.qvec, *i.tvec, i.camera_id) + i.name.encode() + b"\0" + struct.pack("<Q", 0) for i in images)
        files = {"cameras.bin": cam, "images.bin": img, "points3D.bin": struct.pack("<Q", 0)}
    else:
        cam = "# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n" + "".join(
            " ".join(map(str, (c.id, c.model, c.width, c.height, *map(repr, c.params)))) + "\n" for c in cameras)
        img = "# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n# POINTS2D[] as (X, Y, POINT3D_ID)\n" + "".join(
            " ".join(map(str, (i.id, *map(repr, i.qvec), *map(repr, i.tvec), i.camera_id, i.name))) + "\n\n" for i in images)
        files = {"cameras.txt": cam.encode(), "images.txt": img.encode(), "points3D.txt": b""}
    for name, data in files.items():
        tmp = model_dir / f".{name}.tmp{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, model_dir / name)
