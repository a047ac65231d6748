"""Blender cameras -> the runtime's pinhole cameras and ``transforms.json`` (pure math + a thin
bpy reader; no torch).

Intrinsics follow Blender's ``BKE_camera_params_compute_viewplane`` (source/blender/blenkernel/
intern/camera.cc): the sensor fit (AUTO picks HORIZONTAL when ``aspect_x * width >= aspect_y *
height``) decides whether the sensor width spans the image width or the sensor height spans the
image height (in units of x pixels, ``ycor = aspect_y / aspect_x``; with AUTO the sensor
width spans the larger side); the lens shift moves the
view window by ``shift * viewfac`` x-pixels. Pixel coordinates are continuous with pixel i
covering [i, i + 1], so pixel centres lie at half-integers as in :mod:`resplat.cameras`.

Extrinsics: ``matrix_world`` with its scale removed is the OpenGL camera-to-world matrix (camera
looks down -z, +y up), exactly what nerfstudio's ``transforms.json`` stores
(written by the runtime's torch-free ``resplat.viewfiles`` writer, the one the runtime uses).

The other way (importing COLMAP / transforms.json cameras): :func:`lens_settings` inverts
:func:`intrinsics` for square pixels and :func:`opengl_c2w_from_w2c` turns an OpenCV
world-to-camera pose into the ``matrix_world`` of a Blender camera.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .runtime_formats import ResplatError, viewfiles

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")


@dataclass(frozen=True)
class CameraView:
    """One camera as the runtime sees it.

    Attributes:
        name: the camera object's name.
        K: [3, 3] float64 intrinsics in pixels (half-integer pixel centres).
        c2w: [4, 4] float64 OpenGL camera-to-world matrix, rotation orthonormal (metres).
        width, height: image size in pixels.
        distortion: OpenCV (k1, k2, p1, p2, k3) of the image as it is, or () for a pinhole
            image (the runtime undistorts to ``K``; :func:`.camera_import.exact_view`).
    """

    name: str
    K: np.ndarray
    c2w: np.ndarray
    width: int
    height: int
    distortion: tuple = ()


def intrinsics(lens: float, sensor_width: float, sensor_height: float, sensor_fit: str, width: int, height: int,
               pixel_aspect_x: float = 1.0, pixel_aspect_y: float = 1.0, shift_x: float = 0.0,
               shift_y: float = 0.0) -> np.ndarray:
    """Pinhole intrinsics of a perspective Blender camera rendered at ``width`` x ``height``.

    Args:
        lens: focal length (mm); sensor_width, sensor_height: sensor size (mm).
        sensor_fit: "AUTO", "HORIZONTAL" or "VERTICAL".
        width, height: render size in pixels (resolution times percentage).
        pixel_aspect_x, pixel_aspect_y: the render's pixel aspect.
        shift_x, shift_y: lens shift (fractions of the larger/fitted image side).

    Returns:
        [3, 3] float64 K: ``u = fx x/z + cx``, ``v = fy y/z + cy`` for OpenCV camera
        coordinates (x right, y down, z forward), u/v in pixels from the top-left corner.

    Raises:
        ResplatError: a non-positive size, lens or aspect, or an unknown sensor fit.
    """
    if sensor_fit not in SENSOR_FITS:
        raise ResplatError(f"unknown sensor fit {sensor_fit!r}, expected one of {SENSOR_FITS}")
    if min(lens, width, height, pixel_aspect_x, pixel_aspect_y) <= 0:
        raise ResplatError(f"camera needs positive lens, size and pixel aspect, got lens {lens} mm, {width}x{height}, "
                           f"aspect {pixel_aspect_x}:{pixel_aspect_y}")
    # AUTO: the sensor *width* spans the larger side (BKE_camera_sensor_size/BKE_camera_sensor_fit)
    sensor = sensor_height if sensor_fit == "VERTICAL" else sensor_width
    if sensor_fit == "AUTO":
        sensor_fit = "HORIZONTAL" if pixel_aspect_x * width >= pixel_aspect_y * height else "VERTICAL"
    ycor = pixel_aspect_y / pixel_aspect_x
    viewfac = float(width) if sensor_fit == "HORIZONTAL" else ycor * height
    if sensor <= 0:
        raise ResplatError(f"camera needs a positive sensor size, got {sensor} mm")
    fx = lens / sensor * viewfac
    cx = 0.5 * width - shift_x * viewfac
    cy = 0.5 * height + shift_y * viewfac / ycor
    return np.array([[fx, 0.0, cx], [0.0, fx / ycor, cy], [0.0, 0.0, 1.0]])


#: focal length Blender uses for imported cameras whose 36 mm sensor would need a lens < 1 mm
_MIN_LENS = 1.0
#: diag(1, -1, -1, 1): OpenGL camera axes <-> OpenCV camera axes (its own inverse)
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class LensSettings:
    """Blender camera data settings (mm; shifts in fractions of the image width) for a pinhole K."""

    lens: float
    sensor_width: float
    sensor_fit: str
    shift_x: float
    shift_y: float


def lens_settings(K: np.ndarray, width: int, height: int, sensor_width: float = 36.0) -> LensSettings:
    """The inverse of :func:`intrinsics` for square pixels: a HORIZONTAL sensor fit (the sensor
    width spans the image width whatever the aspect), so ``fx = lens / sensor_width * width``,
    ``cx = width / 2 - shift_x * width`` and ``cy = height / 2 + shift_y * width`` exactly.
    Blender has one focal length: ``K[1, 1]`` is not used (square pixels give fy = fx). The sensor
    grows when a 36 mm one would need a lens under Blender's 1 mm minimum.

    Raises:
        ResplatError: a non-positive size or focal length, or non-finite values.
    """
    K = np.asarray(K, dtype=np.float64)
    fx, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    if not (np.all(np.isfinite(K)) and fx > 0 and width > 0 and height > 0):
        raise ResplatError(f"camera needs a finite positive focal length and size, got fx {fx}, {width}x{height}")
    lens = fx * sensor_width / width
    if lens < _MIN_LENS:
        sensor_width, lens = _MIN_LENS * width / fx, _MIN_LENS
    return LensSettings(lens, sensor_width, "HORIZONTAL", (0.5 * width - cx) / width, (cy - 0.5 * height) / width)


def opengl_c2w_from_w2c(w2c: np.ndarray) -> np.ndarray:
    """[4, 4] float64 OpenGL camera-to-world matrix (a Blender camera's ``matrix_world``) of an
    OpenCV world-to-camera rigid transform (rotation transposed, no general inverse)."""
    w2c = np.asarray(w2c, dtype=np.float64)
    c2w = np.eye(4)
    c2w[:3, :3] = w2c[:3, :3].T
    c2w[:3, 3] = -w2c[:3, :3].T @ w2c[:3, 3]
    return c2w @ GL_TO_CV


def c2w_without_scale(matrix_world) -> np.ndarray:
    """[4, 4] float64 rigid part of a camera's ``matrix_world`` (columns of the 3x3 block
    normalised; Blender ignores a camera's scale when rendering).

    Raises:
        ResplatError: a degenerate (zero-scale) or mirrored matrix.
    """
    m = np.array(matrix_world, dtype=np.float64).reshape(4, 4)
    norms = np.linalg.norm(m[:3, :3], axis=0)
    if not np.all(norms > 1e-12) or np.linalg.det(m[:3, :3]) <= 0:
        raise ResplatError("camera matrix has a zero or negative scale")
    out = np.eye(4)
    out[:3, :3] = m[:3, :3] / norms
    out[:3, 3] = m[:3, 3]
    return out


def project(view: CameraView, points: np.ndarray) -> np.ndarray:
    """[M, 2] pixel coordinates (u right, v down) of [M, 3] world points (metres) in ``view``."""
    w2c = np.linalg.inv(view.c2w)
    p = points @ w2c[:3, :3].T + w2c[:3, 3]
    cv = p * np.array([1.0, -1.0, -1.0])  # OpenGL -> OpenCV camera axes
    uv = cv @ view.K.T
    return uv[:, :2] / uv[:, 2:3]


def transforms_dict(views: Sequence[CameraView], image_paths: Sequence[str | os.PathLike], root: str | os.PathLike,
                    depth_paths: Sequence[str | os.PathLike] | None = None) -> dict:
    """nerfstudio ``transforms.json`` content, written by the runtime's own torch-free
    ``resplat.viewfiles.transforms_file.transforms_document``: ``camera_model`` "OPENCV", ``w``,
    ``h``, and per frame ``file_path`` (relative to ``root``, '/' separators),
    ``transform_matrix`` (OpenGL c2w), ``fl_x``, ``fl_y``, ``cx``, ``cy`` (pixels, always per
    frame), ``k1, k2, p1, p2, k3`` for a view with distortion; with ``depth_paths`` (``.npy``
    z-depth in metres, :mod:`.depth_pass`) also ``depth_file_path`` per frame and
    ``depth_unit_scale_factor`` 1.0.

    Raises:
        ResplatError: no views, mismatched counts, or views of different sizes.
    """
    if not views:
        raise ResplatError("no cameras to write")
    sizes = {(v.width, v.height) for v in views}
    if len(sizes) != 1:
        raise ResplatError(f"cameras have different image sizes {sorted(sizes)}")
    intrinsics = [(v.K[0, 0], v.K[1, 1], v.K[0, 2], v.K[1, 2]) for v in views]
    return viewfiles.transforms_document(image_paths, [v.c2w for v in views], intrinsics, views[0].width,
                                         views[0].height, root, depth_paths=depth_paths,
                                         distortions=[v.distortion for v in views],
                                         share_intrinsics=False)


def write_transforms_json(path: str | os.PathLike, views: Sequence[CameraView], image_paths: Sequence[str | os.PathLike],
                          depth_paths: Sequence[str | os.PathLike] | None = None) -> None:
    """Write :func:`transforms_dict` to ``path`` with the runtime's own writer
    (``resplat.viewfiles.write_transforms_document``: atomic, temporary file then rename).

    Raises:
        ResplatError: bad views (see :func:`transforms_dict`) or the file cannot be written.
    """
    path = Path(path)
    viewfiles.write_transforms_document(path, transforms_dict(views, image_paths, path.parent, depth_paths))


def camera_view(obj, width: int, height: int, pixel_aspect_x: float = 1.0, pixel_aspect_y: float = 1.0) -> CameraView:
    """Read a Blender camera object (bpy) into a :class:`CameraView` for a ``width`` x ``height``
    render.

    Raises:
        ResplatError: ``obj`` is not a camera, or is orthographic or panoramic (named).
    """
    if obj is None or obj.type != "CAMERA":
        raise ResplatError(f"{'nothing' if obj is None else repr(obj.name)} is not a camera")
    cam = obj.data
    if cam.type != "PERSP":
        kind = {"ORTHO": "orthographic", "PANO": "panoramic"}.get(cam.type, cam.type.lower())
        raise ResplatError(f"camera {obj.name!r} is {kind}; only perspective cameras can be used")
    try:
        c2w = c2w_without_scale(obj.matrix_world)
    except ResplatError as e:
        raise ResplatError(f"camera {obj.name!r}: {e}") from None
    K = intrinsics(cam.lens, cam.sensor_width, cam.sensor_height, cam.sensor_fit, width, height,
                   pixel_aspect_x, pixel_aspect_y, cam.shift_x, cam.shift_y)
    return CameraView(obj.name, K, c2w, int(width), int(height))
