"""Scene settings of the ReSplat sidebar panel (``scene.resplat``): where the views come from and
how the runtime runs (issue 5 item 3)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty, PointerProperty, StringProperty

from .preferences import DEVICES

#: optimisation steps used when there is no checkpoint and the panel's steps are 0
FALLBACK_STEPS = 500


class ResplatSceneSettings(bpy.types.PropertyGroup):
    """Reconstruct / Refine options (pixels for sizes; counts for iterations and steps)."""

    cameras: EnumProperty(name="Cameras", items=(("SELECTED", "Selected", "The selected cameras"),
                                                 ("COLLECTION", "Collection", "Every camera in a collection")),
                          default="SELECTED")
    collection: PointerProperty(name="Collection", type=bpy.types.Collection)
    views: EnumProperty(name="Views", default="RENDER", items=(
        ("RENDER", "Render", "Render each camera with the scene's engine (Standard view transform)"),
        ("BACKGROUND", "Background Images", "Each camera's background image"),
        ("FOLDER", "Image Folder", "Images in a folder named after the cameras")))
    image_folder: StringProperty(name="Folder", subtype="DIR_PATH", default="")
    width: IntProperty(name="Width", default=256, min=16, max=4096, subtype="PIXEL")
    height: IntProperty(name="Height", default=256, min=16, max=4096, subtype="PIXEL")
    iterations: IntProperty(name="Iterations", default=4, min=0, max=8, description="Recurrent update iterations")
    steps: IntProperty(name="Optimisation Steps", default=0, min=0, max=100000,
                       description=f"3DGS optimisation steps after the model ({FALLBACK_STEPS} when there is no checkpoint and this is 0)")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH", default="",
                               description="Override the preferences' checkpoint")
    device: EnumProperty(name="Device", items=(("PREFS", "Preferences", "The preferences' device"), *DEVICES), default="PREFS")
    random_count: IntProperty(name="Random Gaussians", default=20000, min=1, max=10_000_000,
                              description="Initial Gaussians when optimising without a checkpoint")


def register():
    """Register the group and ``Scene.resplat``."""
    bpy.utils.register_class(ResplatSceneSettings)
    bpy.types.Scene.resplat = PointerProperty(type=ResplatSceneSettings)


def unregister():
    """Undo :func:`register`."""
    del bpy.types.Scene.resplat
    bpy.utils.unregister_class(ResplatSceneSettings)
