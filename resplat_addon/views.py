"""Views for the runtime from Blender cameras (bpy): (a) renders of the cameras with the scene's
engine through the Standard view transform, or (b) existing images matched to the cameras (each
camera's background image, or a folder whose file names are the camera names), plus the
``transforms.json`` that poses them (:mod:`.cameras`).

Every check (cameras, images readable, one size for all) runs before anything is written; the
render settings touched are restored exactly afterwards, even on error, so the scene is unchanged.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager, nullcontext
from pathlib import Path

import bpy

from .camera_import import exact_view
from .cameras import CameraView, camera_view, write_transforms_json
from .depth_pass import depth_capture
from .runtime_formats import ResplatError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: (path below the scene, attribute) of every render setting :func:`render_views` changes.
_RENDER_SETTINGS = (
    ("", "camera"), ("render", "resolution_x"), ("render", "resolution_y"), ("render", "resolution_percentage"),
    ("render", "pixel_aspect_x"), ("render", "pixel_aspect_y"), ("render", "filepath"), ("render", "use_file_extension"),
    ("render", "use_border"), ("render", "film_transparent"), ("render.image_settings", "media_type"),
    ("render.image_settings", "file_format"), ("render.image_settings", "color_mode"),
    ("render.image_settings", "color_depth"), ("view_settings", "view_transform"), ("view_settings", "look"),
    ("view_settings", "exposure"), ("view_settings", "gamma"), ("view_settings", "use_curve_mapping"),
)


def cameras_from(context, source: str, collection=None) -> list:
    """Camera objects sorted by name: the selected ones (``source`` "SELECTED") or every camera of
    ``collection`` and its children ("COLLECTION").

    Raises:
        ResplatError: no camera found (named where it was looked for).
    """
    if source == "COLLECTION":
        if collection is None:
            raise ResplatError("no camera collection chosen")
        cams = [o for o in collection.all_objects if o.type == "CAMERA"]
        where = f"collection {collection.name!r}"
    else:
        cams = [o for o in context.selected_objects if o.type == "CAMERA"]
        where = "the selection"
    if not cams:
        raise ResplatError(f"no cameras in {where}")
    return sorted(cams, key=lambda o: o.name)


def _owner(scene, path: str):
    obj = scene
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part)
    return obj


@contextmanager
def saved_render_settings(scene):
    """Save every setting of :data:`_RENDER_SETTINGS` and restore it on exit."""
    saved = [(path, attr, getattr(_owner(scene, path), attr)) for path, attr in _RENDER_SETTINGS
             if hasattr(_owner(scene, path), attr)]
    try:
        yield
    finally:
        for path, attr, value in saved:
            setattr(_owner(scene, path), attr, value)


def safe_name(name: str) -> str:
    """A file-name-safe version of an object name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "camera"


def render_views(scene, cameras: list, width: int, height: int, folder: Path,
                 depth: bool = False) -> tuple[list[CameraView], list[Path], list[Path] | None]:
    """Render each camera at ``width`` x ``height`` (square pixels, 100 %, Standard view
    transform, 8-bit RGB PNG, so images are sRGB-encoded linear renders) into ``folder``; with
    ``depth`` also its Z pass as ``folder/depth/<i>_<camera>.npy`` (float32 metres, 0 = no
    surface; :mod:`.depth_pass`).

    Returns:
        (views, image paths, depth map paths or ``None``) in camera order.

    Raises:
        ResplatError: a camera that is not perspective (before any render), bad size, an engine
            without a depth pass.
    """
    if width <= 0 or height <= 0:
        raise ResplatError(f"render size must be positive, got {width}x{height}")
    views = [camera_view(c, width, height) for c in cameras]
    paths = [folder / f"{i:03d}_{safe_name(c.name)}.png" for i, c in enumerate(cameras)]
    depth_paths = [folder / "depth" / p.with_suffix(".npy").name for p in paths] if depth else None
    capture = depth_capture(scene, folder / "depth" / "passes") if depth else nullcontext()
    with saved_render_settings(scene), capture as depth_writer:
        r = scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
        r.pixel_aspect_x = r.pixel_aspect_y = 1.0
        r.use_border, r.film_transparent, r.use_file_extension = False, False, True
        r.image_settings.media_type = "IMAGE"
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode, r.image_settings.color_depth = "RGB", "8"
        vs = scene.view_settings
        vs.view_transform, vs.look, vs.exposure, vs.gamma, vs.use_curve_mapping = "Standard", "None", 0.0, 1.0, False
        for i, (cam, path) in enumerate(zip(cameras, paths)):
            scene.camera = cam
            r.filepath = str(path)
            if depth_writer is not None:
                depth_writer.before_render()
            bpy.ops.render.render(write_still=True, scene=scene.name)
            if not path.is_file():
                raise ResplatError(f"rendering camera {cam.name!r} wrote no image")
            if depth_writer is not None:
                depth_writer.save(cam, depth_paths[i])
    return views, paths, depth_paths


def _image_size(path: str, label: str) -> tuple[int, int]:
    """(width, height) of an image file, loading it into Blender and removing it again."""
    if not os.path.isfile(path):
        raise ResplatError(f"{label}: image {path} not found")
    try:
        img = bpy.data.images.load(path, check_existing=False)
    except RuntimeError:
        raise ResplatError(f"{label}: image {path} cannot be read") from None
    try:
        size = tuple(img.size)
        ok = size[0] > 0 and size[1] > 0 and img.has_data
    finally:
        bpy.data.images.remove(img)
    if not ok:
        raise ResplatError(f"{label}: image {path} cannot be read")
    return size  # type: ignore[return-value]


def _matched_path(cam, mode: str, folder: str) -> str:
    if mode == "BACKGROUND":
        for bg in cam.data.background_images:
            if bg.image is not None and bg.image.filepath:
                return bpy.path.abspath(bg.image.filepath, library=bg.image.library)
        raise ResplatError(f"camera {cam.name!r} has no background image")
    folder = bpy.path.abspath(folder)
    if not os.path.isdir(folder):
        raise ResplatError(f"image folder {folder} not found")
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if stem == cam.name and ext.lower() in IMAGE_SUFFIXES:
            return os.path.join(folder, name)
    raise ResplatError(f"camera {cam.name!r} has no image named {cam.name}.png/.jpg in {folder}")


def matched_views(cameras: list, mode: str, folder: str, out: Path) -> tuple[list[CameraView], list[Path]]:
    """Copy the image matched to each camera (``mode`` "BACKGROUND" or "FOLDER") into ``out``.
    Cameras made by the camera import keep their exact intrinsics and lens distortion
    (:func:`.camera_import.exact_view`): the runtime undistorts those photos.

    Raises:
        ResplatError: a camera without an image, an unreadable image, images of different sizes,
            or a camera that is not perspective, each naming the camera/image; nothing is
            copied before every check passed.
    """
    for c in cameras:  # orthographic / panoramic cameras first
        camera_view(c, 1, 1)
    sources = [_matched_path(c, mode, folder) for c in cameras]
    sizes = [_image_size(p, f"camera {c.name!r}") for c, p in zip(cameras, sources)]
    if len(set(sizes)) > 1:
        odd = next(i for i, s in enumerate(sizes) if s != sizes[0])
        raise ResplatError(f"images have different sizes: {sources[0]} is {sizes[0][0]}x{sizes[0][1]}, "
                           f"{sources[odd]} (camera {cameras[odd].name!r}) is {sizes[odd][0]}x{sizes[odd][1]}")
    w, h = sizes[0]
    views = [exact_view(c, camera_view(c, w, h)) for c in cameras]
    paths = [out / f"{i:03d}_{safe_name(c.name)}{os.path.splitext(p)[1].lower()}" for i, (c, p) in enumerate(zip(cameras, sources))]
    for src, dst in zip(sources, paths):
        shutil.copyfile(src, dst)
    return views, paths


def write_views(context, cameras: list, source: str, folder: Path, width: int = 256, height: int = 256,
                image_folder: str = "", depth: bool = False) -> Path:
    """Views of ``cameras`` (``source`` "RENDER", "BACKGROUND" or "FOLDER") and their
    ``transforms.json`` in ``folder``; returns the json's path. ``depth`` (with "RENDER" only)
    adds each camera's depth pass (``depth_file_path``).

    Raises:
        ResplatError: see :func:`render_views` and :func:`matched_views`.
    """
    depth_paths = None
    if source == "RENDER":
        views, paths, depth_paths = render_views(context.scene, cameras, width, height, folder, depth)
    else:
        views, paths = matched_views(cameras, source, image_folder, folder)
    out = folder / "transforms.json"
    write_transforms_json(out, views, paths, depth_paths)
    return out
