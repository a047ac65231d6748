"""File > Import > ReSplat Cameras (COLMAP / transforms.json), also a button in the ReSplat
sidebar: a COLMAP model or a ``transforms.json`` becomes one Blender camera per view, each with
its image as the camera's background image, in a new collection named after the source.

Order (so bad input leaves the scene as it was): every file is parsed and checked first
(:func:`..camera_import.read_camera_source`); then the images are loaded
(``bpy.data.images.load(check_existing=True)``), and removed again if one cannot be read; only
then are cameras, the collection and the scene settings made (one undo step). Each camera is
named after its image's stem, holds the pose in ``matrix_world`` and the intrinsics as lens,
HORIZONTAL sensor fit and lens shift (:func:`..cameras.lens_settings`), plus custom properties
``resplat_width`` / ``resplat_height`` (its image size), ``resplat_intrinsics`` (fx, fy, cx,
cy in pixels) and, for distorted models, ``resplat_distortion_model`` / ``resplat_distortion``.
When all views share one size the render resolution becomes that size. The sidebar's cameras
become this collection with views from the background images, ready for Reconstruct.
"""

from __future__ import annotations

import os

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper
from mathutils import Matrix

from ..camera_import import FinishedImport, finish_cameras, read_camera_source
from ..cameras import lens_settings
from ..runtime_formats import ResplatError


def remove_images(images: list) -> None:
    """Remove ``images`` (distinct, still in the blend data) from the blend data."""
    for img in images:
        bpy.data.images.remove(img)


def load_images(paths: list[str]) -> tuple[list, list]:
    """(images, the ones this call added): each image loaded, reusing one already loaded from the
    same file. If one cannot be read, the added ones are removed and ResplatError names the file."""
    before = {im.as_pointer() for im in bpy.data.images}
    images, added = [], []
    try:
        for p in paths:
            try:
                img = bpy.data.images.load(p, check_existing=True)
            except RuntimeError:
                raise ResplatError(f"{p}: cannot read the image") from None
            images.append(img)
            if img.as_pointer() not in before and all(a != img for a in added):
                added.append(img)
            if img.size[0] <= 0 or img.size[1] <= 0:
                raise ResplatError(f"{p}: cannot read the image")
    except ResplatError:
        remove_images(added)
        raise
    return images, added


def build_cameras(context, name: str, result: FinishedImport, images: list):
    """The collection of cameras (see the module docstring), linked to the scene; returns it."""
    scene = context.scene
    coll = bpy.data.collections.new(name)
    scene.collection.children.link(coll)
    for ob in context.selected_objects:
        ob.select_set(False)
    objects = []
    for cam, img in zip(result.cameras, images):
        data = bpy.data.cameras.new(cam.name)
        ls = lens_settings(cam.K, cam.width, cam.height)
        data.sensor_fit, data.sensor_width, data.lens = ls.sensor_fit, ls.sensor_width, ls.lens
        data.sensor_height = ls.sensor_width * cam.height / cam.width
        data.shift_x, data.shift_y = ls.shift_x, ls.shift_y
        bg = data.background_images.new()
        bg.image = img
        data.show_background_images = True
        ob = bpy.data.objects.new(cam.name, data)
        ob.rotation_mode = "QUATERNION"
        ob.matrix_world = Matrix(cam.c2w.tolist())
        ob["resplat_width"], ob["resplat_height"] = cam.width, cam.height
        ob["resplat_intrinsics"] = [float(cam.K[0, 0]), float(cam.K[1, 1]), float(cam.K[0, 2]), float(cam.K[1, 2])]
        if cam.distorted:
            ob["resplat_distortion_model"], ob["resplat_distortion"] = cam.distortion_model, [float(c) for c in cam.distortion]
        coll.objects.link(ob)
        ob.select_set(True)
        objects.append(ob)
    context.view_layer.objects.active = objects[0]
    if result.size is not None:
        r = scene.render
        r.resolution_x, r.resolution_y = result.size
        r.resolution_percentage, r.pixel_aspect_x, r.pixel_aspect_y = 100, 1.0, 1.0
    if scene.camera is None:
        scene.camera = objects[0]
    s = scene.resplat
    s.cameras, s.collection, s.views = "COLLECTION", coll, "BACKGROUND"
    return coll


def import_cameras(context, path: str) -> tuple:
    """Parse ``path``, load the images, build the cameras: (collection, warnings).

    Raises:
        ResplatError: bad input (the scene is unchanged).
    """
    source = read_camera_source(bpy.path.abspath(path))
    images, added = load_images([c.image for c in source.cameras])
    try:
        result = finish_cameras(source, [tuple(img.size) for img in images])
    except ResplatError:
        remove_images(added)
        raise
    return build_cameras(context, source.name, result, images), result.warnings


class IMPORT_SCENE_OT_resplat_cameras(bpy.types.Operator, ImportHelper):
    """Import a COLMAP model or a transforms.json as cameras with their images as background images"""

    bl_idname = "import_scene.resplat_cameras"
    bl_label = "Import ReSplat Cameras"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.json;*.bin;*.txt", options={"HIDDEN"})

    def execute(self, context):
        """Import ``filepath`` (a transforms.json, a folder holding one, a COLMAP project or model
        folder, or a model file); ERROR report and CANCELLED on bad input."""
        path = self.filepath
        if not path:
            self.report({"ERROR"}, "choose a transforms.json or a COLMAP model folder")
            return {"CANCELLED"}
        try:
            coll, warnings = import_cameras(context, path)
        except ResplatError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        for w in warnings:
            self.report({"WARNING"}, w)
        self.report({"INFO"}, f"imported {len(coll.objects)} cameras into collection {coll.name!r} from {os.path.normpath(path)}")
        return {"FINISHED"}


def menu_func(self, context):
    """File > Import entry."""
    self.layout.operator(IMPORT_SCENE_OT_resplat_cameras.bl_idname, text="ReSplat Cameras (COLMAP / transforms.json)")
