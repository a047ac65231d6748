"""3D View sidebar tab "ReSplat": Import Cameras (COLMAP / transforms.json), the Reconstruct and
Refine options (``scene.resplat``) and buttons: the model (embedded by default, a checkpoint
file, or optimisation only), its iterations (the model's default, or a count), pruning,
optimisation steps and time-budgeted Polish; says when a checkpoint file is wanted but not set,
and shows the active result's Quality readout (PSNR / SSIM at its input views)."""

from __future__ import annotations

import bpy

from .preferences import get_prefs, interpreter
from .splat_job import object_quality


class VIEW3D_PT_resplat(bpy.types.Panel):
    """ReSplat: reconstruct splats from cameras, refine a splat object."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ReSplat"
    bl_label = "ReSplat"

    def draw(self, context):
        """Cameras and views, model options, runtime state, buttons."""
        s = context.scene.resplat
        prefs = get_prefs(context)
        col = self.layout.column()
        col.operator("import_scene.resplat_cameras", text="Import Cameras (COLMAP / transforms.json)", icon="CAMERA_DATA")
        col.prop(s, "cameras")
        if s.cameras == "COLLECTION":
            col.prop(s, "collection")
        col.prop(s, "views")
        if s.views == "RENDER":
            row = col.row(align=True)
            row.prop(s, "width")
            row.prop(s, "height")
            col.prop(s, "depth_pass")
        elif s.views == "FOLDER":
            col.prop(s, "image_folder")
        col.prop(s, "model")
        if s.model == "OPTIMIZE":
            col.prop(s, "random_count")
        else:
            if s.model == "CHECKPOINT":
                col.prop(s, "checkpoint")
                if not (s.checkpoint or prefs.checkpoint):
                    col.label(text="Choose a checkpoint file (here or in the preferences)", icon="ERROR")
            row = col.row(align=True)
            row.prop(s, "model_iterations")
            sub = row.row(align=True)
            sub.enabled = not s.model_iterations
            sub.prop(s, "iterations")
            col.prop(s, "prune_opacity")
        col.prop(s, "steps")
        row = col.row(align=True)
        row.prop(s, "polish")
        if s.polish == "CUSTOM":
            row.prop(s, "polish_seconds")
        col.prop(s, "device")
        col.prop(s, "quality")
        if not interpreter(prefs):
            col.label(text="No runtime: Preferences > Add-ons > ReSplat", icon="ERROR")
        col.operator("resplat.reconstruct")
        col.operator("resplat.refine")
        quality = object_quality(context.active_object)
        if quality:
            col.label(text=f"Quality: {quality}", icon="INFO")
