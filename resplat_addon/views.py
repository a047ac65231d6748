"""Views for the runtime from Blender cameras (bpy): (a) renders of the cameras with the scene's
engine through the Standard view transform, or (b) existing images matched to the cameras (each
camera's background image, or a folder whose file names are the camera names), plus the
``transforms.json`` that poses them (:mod:`.cameras`).

Every check (cameras, images readable, one size for all) runs before anything is written. While
the views render, every splat object is hidden and the render settings are the views' own; each
is restored exactly afterwards, even on error or cancel, so the scene is unchanged. Renders go
one camera per step (:class:`ViewWriter`), so the modal jobs show progress and take Esc between
views. Cameras marked Held Out (:func:`job_cameras`) get views too, for the Quality readout only:
they stay out of the ``transforms.json`` the runtime fits.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import ExitStack, contextmanager
from pathlib import Path

import bpy

from .camera_import import exact_view
from .cameras import CameraView, camera_view, write_transforms_json
from .depth_pass import depth_capture
from .display import MODIFIER_NAME
from .runtime_formats import ResplatError
from .splats.pointcloud import splat_schema

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


def _camera_source(context, source: str, collection=None) -> tuple[list, str]:
    """(camera objects sorted by name, where they were looked for) of :func:`cameras_from`."""
    if source == "COLLECTION":
        if collection is None:
            raise ResplatError("no camera collection chosen")
        cams = [o for o in collection.all_objects if o.type == "CAMERA"]
        where = f"collection {collection.name!r}"
    else:
        cams = [o for o in context.selected_objects if o.type == "CAMERA"]
        where = "the selection"
    return sorted(cams, key=lambda o: o.name), where


def cameras_from(context, source: str, collection=None) -> list:
    """Camera objects sorted by name: the selected ones (``source`` "SELECTED") or every camera of
    ``collection`` and its children ("COLLECTION"), held-out ones included.

    Raises:
        ResplatError: no camera found (named where it was looked for).
    """
    cams, where = _camera_source(context, source, collection)
    if not cams:
        raise ResplatError(f"no cameras in {where}")
    return cams


def is_held_out(cam) -> bool:
    """Whether the camera object is marked Held Out (``Object.resplat_held_out``,
    :mod:`.settings`): left out of the views a job fits, rendered only as ground truth for the
    Quality readout."""
    return bool(getattr(cam, "resplat_held_out", False))


def job_cameras(context, source: str, collection=None) -> tuple[list, list]:
    """(input cameras, held-out cameras) of :func:`cameras_from`, each sorted by name: the input
    ones are the views Reconstruct / Refine fit, the held-out ones (:func:`is_held_out`) only
    measure the result: test views the fit never sees, as in the 3DGS / Mip-NeRF 360 evaluation
    protocol that ``resplat --holdout`` follows (runtime/resplat/cli/common.py ``holdout_split``),
    here chosen by the artist.

    Raises:
        ResplatError: no camera found, or every camera is held out (named where they were looked
            for).
    """
    cams, where = _camera_source(context, source, collection)
    if not cams:
        raise ResplatError(f"no cameras in {where}")
    inputs = [c for c in cams if not is_held_out(c)]
    if not inputs:
        raise ResplatError(f"every camera in {where} is held out ({len(cams)}): clear Held Out on at least one "
                           "to reconstruct from it")
    return inputs, [c for c in cams if is_held_out(c)]


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


@contextmanager
def hidden_splats(scene):
    """Hide every splat object of ``scene`` (:func:`is_splat_object`: imported, reconstructed,
    refined and preview objects) from rendering, and give each its own ``hide_render`` back on
    exit, even on error. The splats render in Cycles and EEVEE (docs/blender-display.md), so
    without this a view would show an earlier result, and Refine would fit an object partly to
    its own rendering. Objects removed meanwhile are skipped."""
    saved = [(ob, ob.hide_render) for ob in scene.objects if is_splat_object(ob)]
    try:
        for ob, _ in saved:
            ob.hide_render = True
        yield [ob.name for ob, _ in saved]
    finally:
        for ob, flag in saved:
            try:
                ob.hide_render = flag
            except ReferenceError:  # removed while the views rendered (modal job)
                pass


def is_splat_object(ob) -> bool:
    """A point cloud with splat attributes, or any object carrying the splat display modifier."""
    return splat_schema(ob) is not None or any(m.name == MODIFIER_NAME for m in ob.modifiers)


class ViewRenderer:
    """Renders ``cameras`` at ``width`` x ``height`` into ``folder``, one camera per
    :meth:`step`, so a modal job can draw progress and take Esc between views (square pixels,
    100 %, Standard view transform, 8-bit RGB PNG: images are sRGB-encoded linear renders); with
    ``depth`` also each camera's Z pass as ``folder/depth/<i>_<camera>.npy`` (float32 metres, 0 =
    no surface; :mod:`.depth_pass`). Splat objects are hidden (:func:`hidden_splats`).

    From the first :meth:`step` until the last (or :meth:`close`) the scene's render settings,
    compositor and splat visibility are changed; :meth:`close` (idempotent; called on the last
    step, on any error and on cancel) restores each exactly.

    Raises (constructor, before anything is changed):
        ResplatError: a camera that is not perspective, a bad size.
    """

    def __init__(self, scene, cameras: list, width: int, height: int, folder: Path, depth: bool = False):
        if width <= 0 or height <= 0:
            raise ResplatError(f"render size must be positive, got {width}x{height}")
        self.scene, self.cameras, self.width, self.height, self.folder = scene, cameras, width, height, folder
        self.views = [camera_view(c, width, height) for c in cameras]
        self.paths = [folder / f"{i:03d}_{safe_name(c.name)}.png" for i, c in enumerate(cameras)]
        self.depth_paths = [folder / "depth" / p.with_suffix(".npy").name for p in self.paths] if depth else None
        self.index = 0
        self._stack: ExitStack | None = None
        self._depth = None

    def _open(self) -> None:
        stack = ExitStack()
        try:
            stack.enter_context(hidden_splats(self.scene))
            stack.enter_context(saved_render_settings(self.scene))
            if self.depth_paths is not None:
                self._depth = stack.enter_context(depth_capture(self.scene, self.folder / "depth" / "passes"))
            r = self.scene.render
            r.resolution_x, r.resolution_y, r.resolution_percentage = self.width, self.height, 100
            r.pixel_aspect_x = r.pixel_aspect_y = 1.0
            r.use_border, r.film_transparent, r.use_file_extension = False, False, True
            r.image_settings.media_type = "IMAGE"
            r.image_settings.file_format = "PNG"
            r.image_settings.color_mode, r.image_settings.color_depth = "RGB", "8"
            vs = self.scene.view_settings
            vs.view_transform, vs.look, vs.exposure, vs.gamma, vs.use_curve_mapping = "Standard", "None", 0.0, 1.0, False
        except BaseException:
            stack.close()
            raise
        self._stack = stack

    @property
    def done(self) -> bool:
        """Every camera has been rendered."""
        return self.index >= len(self.cameras)

    def step(self) -> bool:
        """Render the next camera; returns :attr:`done`. On any error the scene is restored
        (:meth:`close`) before it propagates.

        Raises:
            ResplatError: a render that wrote no image, an engine without a depth pass.
        """
        if self.done:
            return True
        try:
            if self._stack is None:
                self._open()
            cam, path, scene = self.cameras[self.index], self.paths[self.index], self.scene
            scene.camera = cam
            scene.render.filepath = str(path)
            if self._depth is not None:
                self._depth.before_render()
            bpy.ops.render.render(write_still=True, scene=scene.name)
            if not path.is_file():
                raise ResplatError(f"rendering camera {cam.name!r} wrote no image")
            if self._depth is not None:
                self._depth.save(cam, self.depth_paths[self.index])
        except BaseException:
            self.close()
            raise
        self.index += 1
        if self.done:
            self.close()
        return self.done

    def close(self) -> None:
        """Restore the scene (render settings, compositor, splat visibility); idempotent."""
        stack, self._stack, self._depth = self._stack, None, None
        if stack is not None:
            stack.close()


def render_views(scene, cameras: list, width: int, height: int, folder: Path,
                 depth: bool = False) -> tuple[list[CameraView], list[Path], list[Path] | None]:
    """Render every camera at once (:class:`ViewRenderer`, its steps in a row).

    Returns:
        (views, image paths, depth map paths or ``None``) in camera order.

    Raises:
        ResplatError: see :class:`ViewRenderer`.
    """
    r = ViewRenderer(scene, cameras, width, height, folder, depth)
    try:
        while not r.step():
            pass
    finally:
        r.close()
    return r.views, r.paths, r.depth_paths


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


class ViewWriter:
    """The views of ``cameras`` (``source`` "RENDER", "BACKGROUND" or "FOLDER") and their
    ``transforms.json`` in ``folder``, made step by step for a modal job: every check runs in the
    constructor (nothing rendered or changed yet); matched images are copied there too; renders
    take one :meth:`step` per camera (:class:`ViewRenderer`). ``depth`` (with "RENDER" only) adds
    each camera's depth pass (``depth_file_path``).

    ``heldout`` cameras (:func:`job_cameras`) get their views made the same way, after the
    others, but stay out of ``transforms.json`` (what the runtime fits); ``quality.json`` lists
    every view, the input ones first, for ``resplat eval`` (the Quality readout), without depth.

    Attributes:
        json_path: the written ``transforms.json``, ``None`` until :meth:`step` returned True.
        quality_path: the views to evaluate the result at: ``quality.json`` with held-out
            cameras, else ``transforms.json`` (``None`` until written).
        heldout_names: {view name as the runtime reads it (the image file's stem): camera name}
            of the held-out cameras.
        status: one line for the UI ("rendering view 2/4 (Cam1)"). fraction: 0..1.

    Raises (constructor):
        ResplatError: see :class:`ViewRenderer` and :func:`matched_views`.
    """

    def __init__(self, context, cameras: list, source: str, folder: Path, width: int = 256, height: int = 256,
                 image_folder: str = "", depth: bool = False, heldout: list = ()):
        self.folder, self.json_path, self.quality_path, self.renderer = folder, None, None, None
        self.inputs, every = len(cameras), list(cameras) + list(heldout)
        if source == "RENDER":
            self.renderer = ViewRenderer(context.scene, every, width, height, folder, depth)
            self._views = None
        else:
            self._views = matched_views(every, source, image_folder, folder) + (None,)
        paths = self.renderer.paths if self.renderer is not None else self._views[1]
        self.heldout_names = {p.stem: c.name for p, c in zip(paths[self.inputs:], every[self.inputs:])}
        self.status, self.fraction = self._next_status(), 0.0

    def _next_status(self) -> str:
        r = self.renderer
        if r is None or r.done:
            return "writing transforms.json"
        which = ", held out" if r.index >= self.inputs else ""
        return f"rendering view {r.index + 1}/{len(r.cameras)} ({r.cameras[r.index].name}{which})"

    def step(self) -> bool:
        """Render the next view, or write ``transforms.json`` (and ``quality.json``) once all are
        there; True when done."""
        r = self.renderer
        if r is not None and not r.done:
            r.step()
            self.fraction = r.index / len(r.cameras)
            self.status = self._next_status()
            return False
        if self.json_path is None:
            views, paths, depth_paths = self._views if r is None else (r.views, r.paths, r.depth_paths)
            n, out = self.inputs, self.folder / "transforms.json"
            write_transforms_json(out, views[:n], paths[:n], None if depth_paths is None else depth_paths[:n])
            self.quality_path = out
            if len(views) > n:
                self.quality_path = self.folder / "quality.json"
                write_transforms_json(self.quality_path, views, paths)
            self.json_path, self.fraction = out, 1.0
        return True

    def close(self) -> None:
        """Restore the scene if a render is under way (error, cancel); idempotent."""
        if self.renderer is not None:
            self.renderer.close()


def write_views(context, cameras: list, source: str, folder: Path, width: int = 256, height: int = 256,
                image_folder: str = "", depth: bool = False) -> Path:
    """:class:`ViewWriter` run to the end at once; returns the ``transforms.json`` path.

    Raises:
        ResplatError: see :class:`ViewRenderer` and :func:`matched_views`.
    """
    w = ViewWriter(context, cameras, source, folder, width, height, image_folder, depth)
    try:
        while not w.step():
            pass
    finally:
        w.close()
    return w.json_path
