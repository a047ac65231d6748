"""File > Export > Gaussian Splats (.ply/.splat/.spz/.glb/.sog) of the active splat point cloud.

The object's world transform is baked into the splats (:func:`..splats.transform.bake_transform`:
means, rotations, log scales, and SH of degree > 0 rotated by the real Wigner-D matrix); only a
uniform scale can be baked. Optionally only the points selected in edit mode (the point cloud's
``.selection`` attribute) are written. Every check runs before the file is written, and the
runtime's writers are atomic, so bad input leaves an existing file untouched: the operator
reports one ERROR line and returns CANCELLED.
"""

from __future__ import annotations

import os

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ..runtime_formats import ResplatError, write_splat_arrays
from ..splats.pointcloud import read_arrays
from ..splats.transform import bake_transform
from .import_splat import FILTER_GLOB

_FORMATS = (("PLY", ".ply", "INRIA 3DGS PLY (lossless)"),
            ("SPLAT", ".splat", "antimatter15 .splat (colour only, 8-bit)"),
            ("SPZ", ".spz", "Niantic .spz (quantised, small)"),
            ("GLB", ".glb", "glTF 2.0 binary with KHR_gaussian_splatting (lossless, +Y up)"),
            ("SOG", ".sog", "PlayCanvas SOG (smallest; needs Pillow with WebP)"))
_EXT = {k: ext for k, ext, _ in _FORMATS}


class EXPORT_SCENE_OT_resplat_splat(bpy.types.Operator, ExportHelper):
    """Export the active splat point cloud as a 3D Gaussian splat file"""

    bl_idname = "export_scene.resplat_splat"
    bl_label = "Export Gaussian Splats"
    bl_options = {"REGISTER", "PRESET"}

    filename_ext = ".ply"
    filter_glob: StringProperty(default=FILTER_GLOB, options={"HIDDEN"})
    file_format: EnumProperty(name="Format", items=[(k, ext, d) for k, ext, d in _FORMATS], default="PLY",
                              description="File format (also chosen by a .ply/.splat/.spz/.glb/.sog file name)")
    selected_only: BoolProperty(name="Selected Points Only", default=False,
                                description="Write only the points selected in edit mode")
    apply_transform: BoolProperty(name="Apply Transform", default=True,
                                  description="Bake the object's world transform (uniform scale only)")

    def check(self, context):
        """Keep the file name's extension in step with the chosen format."""
        root, ext = os.path.splitext(self.filepath)
        want = _EXT[self.file_format]
        if ext.lower() != want:
            self.filepath = (root if ext.lower() in _EXT.values() else self.filepath) + want
            return True
        return False

    def _target(self) -> str:
        ext = os.path.splitext(self.filepath)[1].lower()
        return self.filepath if ext in _EXT.values() else self.filepath + _EXT[self.file_format]

    def execute(self, context):
        """Read, bake and write; ERROR report and CANCELLED (file untouched) on bad input."""
        obj = context.active_object
        path = self._target()
        try:
            arrays = read_arrays(obj, selected_only=self.selected_only)
            if len(arrays) == 0:
                raise ResplatError(f"nothing to export: object {obj.name!r} has no {'selected ' * self.selected_only}splats")
            if self.apply_transform:
                arrays = bake_transform(arrays, np.array(obj.matrix_world, dtype=np.float64))
            write_splat_arrays(arrays, path)
        except ResplatError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {len(arrays)} splats to {path}")
        return {"FINISHED"}


def menu_func(self, context):
    """File > Export entry."""
    self.layout.operator(EXPORT_SCENE_OT_resplat_splat.bl_idname, text="Gaussian Splats (.ply/.splat/.spz/.glb/.sog)")
