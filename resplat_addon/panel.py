"""3D View sidebar tab "ReSplat": Import Cameras (COLMAP / transforms.json), the cameras a job
uses, listed with their Held Out flags (:class:`RESPLAT_UL_cameras`), the Reconstruct and Refine
options (``scene.resplat``) and buttons: the model (embedded by default, a checkpoint file, or
optimisation only), its iterations (the model's default, or a count), pruning, optimisation steps
and time-budgeted Polish; says when a checkpoint file is wanted but not set, and shows the active
result's Quality readout (PSNR / SSIM at its input views, and apart at the held-out cameras)."""

from __future__ import annotations

import bpy

from .preferences import get_prefs, interpreter
from .runtime_formats import ResplatError
from .splat_job import object_heldout_quality, object_quality
from .views import cameras_from, is_held_out


def listed_cameras(context) -> list:
    """The cameras the panel's settings name (:func:`.views.cameras_from`: the selection or the
    collection), held-out ones included; [] where there are none."""
    s = context.scene.resplat
    try:
        return cameras_from(context, s.cameras, s.collection)
    except ResplatError:
        return []


class RESPLAT_UL_cameras(bpy.types.UIList):
    """The panel's camera list: the cameras Reconstruct uses (:func:`listed_cameras`, by name),
    each with its Held Out toggle (``Object.resplat_held_out``)."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        """One camera: its name and Held Out toggle."""
        row = layout.row(align=True)
        row.label(text=item.name, icon="HIDE_ON" if is_held_out(item) else "CAMERA_DATA")
        row.prop(item, "resplat_held_out", text="Held Out")

    def filter_items(self, context, data, propname):
        """Of ``data.<propname>`` (``bpy.data.objects``) only the listed cameras whose name
        matches the list's name filter, in name order (Blender's UIList.filter_items protocol:
        (flags, new order))."""
        objects = getattr(data, propname)
        keep = {c.name for c in listed_cameras(context)}
        helper = bpy.types.UI_UL_list
        flags = helper.filter_items_by_name(self.filter_name, self.bitflag_filter_item, objects, "name") \
            if self.filter_name else [self.bitflag_filter_item] * len(objects)
        flags = [f if ob.name in keep else 0 for f, ob in zip(flags, objects)]
        return flags, helper.sort_items_by_name(objects, "name")


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
        cams = listed_cameras(context)
        held = sum(map(is_held_out, cams))
        col.label(text=f"{len(cams) - held} input, {held} held out" if cams else "No cameras", icon="CAMERA_DATA")
        if cams:
            col.template_list("RESPLAT_UL_cameras", "", bpy.data, "objects", s, "camera_index", rows=3)
        if held and not s.quality:
            col.label(text="Held-out cameras are left out, not measured (Quality Readout is off)", icon="INFO")
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
        for i, line in enumerate(object_heldout_quality(context.active_object)):
            col.label(text=f"Held out: {line}" if i == 0 else f"    {line}", icon="HIDE_ON" if i == 0 else "BLANK1")
