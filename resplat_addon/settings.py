"""Scene settings of the ReSplat sidebar panel (``scene.resplat``): where the views come from,
which model reconstructs them and how the runtime runs (issue 5 item 3)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .preferences import DEVICES

#: optimisation steps of "Optimisation Only" when the panel's steps are 0
FALLBACK_STEPS = 500
#: the model choices: the runtime's embedded model (default), a checkpoint file, or no model
MODELS = (("EMBEDDED", "Embedded (tiny, default)",
           "The small ReSplat model shipped with the runtime (resplat/model/weights/tiny.safetensors)"),
          ("CHECKPOINT", "Checkpoint File", "A ReSplat checkpoint: the file below, else the preferences' checkpoint"),
          ("OPTIMIZE", "Optimisation Only",
           "No model: 3DGS optimisation from random Gaussians (from the depth pass when it is on)"))


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
    depth_pass: BoolProperty(name="Depth Pass", default=False,
                             description="Also render each camera's Z pass (z-depth in metres) and send it with the "
                                         "views; Optimisation Only then starts from splats on these surfaces "
                                         "instead of random ones")
    image_folder: StringProperty(name="Folder", subtype="DIR_PATH", default="")
    width: IntProperty(name="Width", default=256, min=16, max=4096, subtype="PIXEL")
    height: IntProperty(name="Height", default=256, min=16, max=4096, subtype="PIXEL")
    model: EnumProperty(name="Model", items=MODELS, default="EMBEDDED", description="What reconstructs the views")
    iterations: IntProperty(name="Iterations", default=4, min=0, max=8,
                            description="Recurrent update iterations of the model (0: the initial prediction only)")
    prune_opacity: FloatProperty(name="Prune Opacity", default=0.005, min=0.0, max=0.5, precision=3,
                                 description="After the last iteration remove splats less opaque than this "
                                             "(0: keep every splat)")
    steps: IntProperty(name="Optimisation Steps", default=0, min=0, max=100000,
                       description="3DGS optimisation steps after the model (polish); with Optimisation Only the "
                                   f"steps ({FALLBACK_STEPS} when this is 0)")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH", default="",
                               description="Checkpoint for Model: Checkpoint File (empty: the preferences' checkpoint)")
    device: EnumProperty(name="Device", items=(("PREFS", "Preferences", "The preferences' device"), *DEVICES), default="PREFS")
    random_count: IntProperty(name="Initial Gaussians", default=20000, min=1, max=10_000_000,
                              description="Initial Gaussians of Optimisation Only: random in the cameras' common "
                                          "view, or on the depth pass's surfaces")


def register():
    """Register the group and ``Scene.resplat``."""
    bpy.utils.register_class(ResplatSceneSettings)
    bpy.types.Scene.resplat = PointerProperty(type=ResplatSceneSettings)


def unregister():
    """Undo :func:`register`."""
    del bpy.types.Scene.resplat
    bpy.utils.unregister_class(ResplatSceneSettings)
