"""File > Import > Gaussian Splats (.ply/.splat/.spz/.glb/.sog) and drag-and-drop onto the 3D View.

Every selected file is read (``resplat.formats.read_splat_arrays``) before any Blender data is
made, so a malformed file cancels with its one-line :class:`SplatFileError` message as an ERROR
report and the scene unchanged. Each file becomes one PointCloud object (:mod:`..splats.pointcloud`)
holding the file's values in the file's axes, with an identity transform.
"""

from __future__ import annotations

import os

import bpy
from bpy.props import CollectionProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..runtime_formats import ResplatError, read_splat_arrays
from ..splats.pointcloud import build_object

FILTER_GLOB = "*.ply;*.splat;*.spz;*.glb;*.gltf;*.sog"


class IMPORT_SCENE_OT_resplat_splat(bpy.types.Operator, ImportHelper):
    """Import 3D Gaussian splats (INRIA PLY, .splat, .spz, glTF KHR_gaussian_splatting, PlayCanvas SOG) as point clouds"""

    bl_idname = "import_scene.resplat_splat"
    bl_label = "Import Gaussian Splats"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filter_glob: StringProperty(default=FILTER_GLOB, options={"HIDDEN"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    def _paths(self) -> list[str]:
        names = [f.name for f in self.files if f.name]
        if names and self.directory:
            return [os.path.join(self.directory, n) for n in names]
        return [self.filepath]

    def invoke(self, context, event):
        """Drag-and-drop arrives with the path set: import straight away; else the file browser."""
        if self.filepath or (self.directory and len(self.files)):
            return self.execute(context)
        return ImportHelper.invoke(self, context, event)

    def execute(self, context):
        """Read every file, then build the objects; ERROR report and CANCELLED on bad input."""
        try:
            loaded = [(p, read_splat_arrays(p)) for p in self._paths()]
        except ResplatError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        for path, arrays in loaded:
            name = os.path.splitext(os.path.basename(path))[0] or "Splats"
            build_object(context, arrays, name)
            self.report({"INFO"}, f"imported {len(arrays)} splats (SH degree {arrays.sh_degree}) from {path}")
        return {"FINISHED"}


class IO_FH_resplat_splat(bpy.types.FileHandler):
    """Drag-and-drop of .ply/.splat/.spz/.glb/.sog files onto the 3D View runs the import operator."""

    bl_idname = "IO_FH_resplat_splat"
    bl_label = "Gaussian Splats"
    bl_import_operator = IMPORT_SCENE_OT_resplat_splat.bl_idname
    bl_file_extensions = ".ply;.splat;.spz;.glb;.gltf;.sog"

    @classmethod
    def poll_drop(cls, context):
        """Only drops onto a 3D View."""
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_func(self, context):
    """File > Import entry."""
    self.layout.operator(IMPORT_SCENE_OT_resplat_splat.bl_idname, text="Gaussian Splats (.ply/.splat/.spz/.glb/.sog)")
