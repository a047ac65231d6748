"""COLMAP models and ``transforms.json`` files -> the cameras the import operator builds (numpy
only; no bpy, no torch).

Parsing is the bundled runtime's own (:mod:`resplat.viewfiles`, the code its view readers use), so
the add-on accepts what ``resplat reconstruct`` accepts, with the same one-line errors. Poses
become OpenGL camera-to-world matrices and K becomes Blender lens settings in one place,
:mod:`.cameras`. Two steps, so that nothing is built in Blender before the input is known good:

1. :func:`read_camera_source` reads and checks every file (missing or malformed files, unknown
   camera models, missing images, bad poses all raise :class:`ResplatError`);
2. :func:`finish_cameras` takes the images' pixel sizes (which the operator gets by loading them)
   and returns the cameras with their intrinsics plus the warnings worth reporting (different
   sizes, lens distortion, fx != fy, an image whose size differs from its camera's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cameras import CameraView, c2w_without_scale, opengl_c2w_from_w2c
from .runtime_formats import ResplatError, errors, viewfiles

_colmap = viewfiles.colmap_model


@dataclass(frozen=True)
class SourceCamera:
    """One view as read from the source, before its image's size is known.

    Attributes:
        name: the camera's name (the image file's stem).
        image: the image file (absolute path; it exists).
        c2w: [4, 4] float64 OpenGL camera-to-world, rotation orthonormal.
        where: "<file>: <frame or image>", the prefix of messages about it.
        params: COLMAP (w, h, [fx, fy, cx, cy], distortion model, coefficients); ``None`` for a
            transforms.json frame, whose intrinsics come from ``keys`` and the image's size.
        keys: the frame's merged transforms.json intrinsic keys (``None`` for COLMAP).
    """

    name: str
    image: str
    c2w: np.ndarray
    where: str
    params: tuple | None = None
    keys: dict | None = None

    def intrinsics(self, img_w: int, img_h: int) -> tuple[int, int, list[float], str, list[float]]:
        """(w, h, [fx, fy, cx, cy], distortion model, coefficients); the image's size stands in
        for a transforms.json frame without ``w`` / ``h``."""
        if self.params is not None:
            return self.params
        w, h, p, dist = viewfiles.frame_intrinsics(self.keys, img_w, img_h, self.where)
        return w, h, p, "OPENCV", dist


@dataclass(frozen=True)
class CameraSource:
    """The cameras of one source: ``name`` (for the collection), ``path`` (the json file or the
    COLMAP model folder) and ``kind`` ("transforms" or "colmap")."""

    name: str
    path: str
    kind: str
    cameras: list[SourceCamera]


@dataclass(frozen=True)
class ImportedCamera:
    """A camera ready to build: K [3, 3] in pixels (half-integer pixel centres), OpenGL c2w,
    its image size, image file and distortion (model and coefficients in the model's order; all
    zero for none)."""

    name: str
    image: str
    K: np.ndarray
    c2w: np.ndarray
    width: int
    height: int
    distortion_model: str = "OPENCV"
    distortion: tuple = ()

    @property
    def distorted(self) -> bool:
        return any(c != 0 for c in self.distortion)


@dataclass
class FinishedImport:
    """:func:`finish_cameras`'s result: the cameras, the one size they share (``None`` if they
    differ) and the warnings to report."""

    cameras: list[ImportedCamera]
    size: tuple[int, int] | None
    warnings: list[str] = field(default_factory=list)


def _rigid(c2w, where: str) -> np.ndarray:
    m = np.asarray(c2w, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ResplatError(f"{where}: the camera pose is not finite")
    try:
        return c2w_without_scale(m)
    except ResplatError as e:
        raise ResplatError(f"{where}: {e}") from None


def _from_transforms(path: Path) -> list[SourceCamera]:
    out = []
    for frame in viewfiles.read_frames(path):
        viewfiles.frame_intrinsics(frame.keys, 1, 1, frame.where)  # every key error before any image loads
        out.append(SourceCamera(frame.image.stem, os.path.abspath(frame.image), _rigid(frame.c2w, frame.where),
                                frame.where, keys=frame.keys))
    return out


def _from_colmap(model_dir: Path, images_dir: Path) -> list[SourceCamera]:
    cams, images = viewfiles.read_colmap_model(model_dir)
    cam_file, img_file = _colmap.model_file(model_dir, "cameras"), _colmap.model_file(model_dir, "images")
    if not images:
        raise ResplatError(f"{img_file}: the COLMAP model has no images")
    out = []
    for im in sorted(images, key=lambda im: im.name):
        where = f"{img_file}: image {im.name!r}"
        if im.camera_id not in cams:
            raise ResplatError(f"{where} refers to camera {im.camera_id}, which is not in the model")
        cam = cams[im.camera_id]
        p, model, dist = viewfiles.pinhole_params(cam, str(cam_file))
        path = images_dir / im.name
        if not path.is_file():
            raise ResplatError(f"{where}: image file {path} not found")
        c2w = _rigid(opengl_c2w_from_w2c(viewfiles.colmap_w2c(im)), where)
        out.append(SourceCamera(Path(im.name).stem, os.path.abspath(path), c2w, where,
                                params=(int(cam.width), int(cam.height), p, model, dist)))
    return out


def read_camera_source(path: str | os.PathLike) -> CameraSource:
    """Read the cameras of a ``transforms.json`` (or a folder holding one) or a COLMAP model (a
    project folder with ``sparse/0`` / ``sparse``, the model folder, or one of its files; images
    in ``images``), see :func:`resplat.viewfiles.locate_views`.

    Raises:
        ResplatError: one line naming the file and the problem: nothing there, malformed JSON or
            binary, missing keys, an unsupported camera model, a missing image, a bad pose.
    """
    src = viewfiles.locate_views(path)
    if src.kind == "transforms":
        cameras = _from_transforms(src.path)
    else:
        cameras = _from_colmap(src.path, src.images)
    return CameraSource(src.name, str(src.path), src.kind, cameras)


def finish_cameras(source: CameraSource, image_sizes: list[tuple[int, int]]) -> FinishedImport:
    """The cameras of ``source`` with their intrinsics, given each image's (width, height).

    Raises:
        ResplatError: a non-positive focal length or size (named).
    """
    cams, warnings = [], []
    for sc, (iw, ih) in zip(source.cameras, image_sizes):
        w, h, (fx, fy, cx, cy), model, dist = sc.intrinsics(iw, ih)
        if not (fx > 0 and fy > 0 and w > 0 and h > 0):
            raise ResplatError(f"{sc.where}: needs a positive focal length and size, got fx {fx}, fy {fy}, {w}x{h}")
        if (w, h) != (iw, ih):
            warnings.append(f"image {sc.image} is {iw}x{ih} but its camera is {w}x{h}")
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        cams.append(ImportedCamera(sc.name, sc.image, K, sc.c2w, w, h, model, tuple(dist)))
    sizes = sorted({(c.width, c.height) for c in cams})
    if len(sizes) > 1:
        warnings.append(f"the cameras have {len(sizes)} image sizes ({', '.join(f'{w}x{h}' for w, h in sizes)}): "
                        "the render resolution is unchanged, each camera keeps its size in resplat_width/resplat_height")
    distorted = [c for c in cams if c.distorted]
    if distorted:
        models = sorted({c.distortion_model for c in distorted})
        warnings.append(f"{len(distorted)} of {len(cams)} cameras have lens distortion ({', '.join(models)}): imported as "
                        "pinhole cameras with the photos as they are as background images (coefficients in resplat_distortion); "
                        "Reconstruct from Background Images has the runtime undistort them")
    ratio = max(abs(c.K[1, 1] / c.K[0, 0] - 1) for c in cams)
    if ratio > 1e-6:
        worst = max(cams, key=lambda c: abs(c.K[1, 1] / c.K[0, 0] - 1))
        warnings.append(f"fy differs from fx by up to {100 * ratio:.3g}% (camera {worst.name!r}); Blender cameras have "
                        "square pixels, so fx is used (fx, fy, cx, cy kept in resplat_intrinsics, which Reconstruct uses)")
    return FinishedImport(cams, sizes[0] if len(sizes) == 1 else None, warnings)


def exact_view(obj, view: CameraView) -> CameraView:
    """``view`` (read from the Blender camera ``obj``) with the exact intrinsics and lens
    distortion that :mod:`.operators.import_cameras` kept in ``obj``'s custom properties
    (``resplat_intrinsics`` fx, fy, cx, cy; ``resplat_distortion_model`` / ``resplat_distortion``),
    so the runtime undistorts the photo (``transforms.json`` k1..k3, p1, p2) instead of taking the
    square-pixel pinhole approximation Blender shows. Used only while the camera is as imported:
    same image size, and fx, cx, cy of the Blender camera within 1e-4 (relative) of the stored
    ones; otherwise ``view`` is returned unchanged.

    Raises:
        ResplatError: stored distortion of an unknown model or length (names the camera).
    """
    if "resplat_intrinsics" not in obj or (obj.get("resplat_width"), obj.get("resplat_height")) != (view.width, view.height):
        return view
    fx, fy, cx, cy = (float(v) for v in obj["resplat_intrinsics"])
    K = view.K
    tol = 1e-4 * max(fx, 1.0)
    if abs(K[0, 0] - fx) > tol or abs(K[0, 2] - cx) > tol or abs(K[1, 2] - cy) > tol:
        return view
    dist = ()
    if "resplat_distortion" in obj:
        try:
            dist = tuple(viewfiles.opencv5([float(c) for c in obj["resplat_distortion"]],
                                           str(obj.get("resplat_distortion_model", "OPENCV"))))
        except errors.ViewsError as e:
            raise ResplatError(f"camera {obj.name!r}: {e}") from None
    exact = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return CameraView(view.name, exact, view.c2w, view.width, view.height, dist)
