"""Scene settings of the ReSplat sidebar panel (``scene.resplat``): where the views come from,
which model reconstructs them and how the runtime runs. Defaults and bounds of the options the
runtime also has come from the runtime's own :mod:`resplat.defaults` (bundled copy), so the
panel and ``resplat reconstruct`` cannot disagree."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .preferences import DEVICES
from .runtime_formats import defaults as D

#: optimisation steps of "Optimisation Only" when the panel's steps are 0
FALLBACK_STEPS = D.OPTIMIZE_ONLY_STEPS


def polish_id(seconds: float) -> str:
    """The Polish choice's identifier of a budget of the runtime's ``POLISH_SECONDS`` ("30")."""
    return f"{seconds:g}"


#: the Polish choices: none, the runtime's offered budgets, or the seconds below
POLISH = (("OFF", "Off", "No time-budgeted polish"),
          *((polish_id(s), f"{s:g} s" if s < 60 else f"{s / 60:g} min",
             f"Optimise for {s:g} s of wall-clock time after the model (Refine: instead of a step count)")
            for s in D.POLISH_SECONDS),
          ("CUSTOM", "Custom", "Optimise for the seconds given below"))
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
    depth_pass: BoolProperty(name="Depth Pass", default=True,
                             description="Also render each camera's Z pass (z-depth in metres) and send it with the "
                                         "views: the model puts its splats on these surfaces instead of guessing "
                                         "their depth, and Optimisation Only starts from them instead of random "
                                         "ones. Turn it off for engines without a Z pass (Workbench)")
    image_folder: StringProperty(name="Folder", subtype="DIR_PATH", default="")
    width: IntProperty(name="Width", default=256, min=16, max=4096, subtype="PIXEL")
    height: IntProperty(name="Height", default=256, min=16, max=4096, subtype="PIXEL")
    model: EnumProperty(name="Model", items=MODELS, default="EMBEDDED", description="What reconstructs the views")
    model_iterations: BoolProperty(name="Model Default", default=True,
                                   description="Run the model's own number of iterations (the embedded model: "
                                               f"{D.EMBEDDED_ITERATIONS}; a checkpoint: its preset's default)")
    iterations: IntProperty(name="Iterations", default=D.EMBEDDED_ITERATIONS, min=0, max=D.MAX_ITERATIONS,
                            description="Recurrent update iterations of the model (0: the initial prediction only)")
    prune_opacity: FloatProperty(name="Prune Opacity", default=D.PRUNE_OPACITY, min=0.0, max=D.MAX_PRUNE_OPACITY,
                                 precision=3,
                                 description="After the last iteration remove splats less opaque than this "
                                             "(0: keep every splat)")
    steps: IntProperty(name="Optimisation Steps", default=D.POLISH_STEPS, min=0, max=D.MAX_STEPS,
                       description="3DGS optimisation steps after the model (polish); with Optimisation Only the "
                                   f"steps ({FALLBACK_STEPS} when this is 0)")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH", default="",
                               description="Checkpoint for Model: Checkpoint File (empty: the preferences' checkpoint)")
    device: EnumProperty(name="Device", items=(("PREFS", "Preferences", "The preferences' device"), *DEVICES), default="PREFS")
    polish: EnumProperty(name="Polish", items=POLISH, default=polish_id(D.EXTENSION_POLISH_SECONDS),
                         description="Time-budgeted 3DGS optimisation: after the model (Reconstruct), or the whole "
                                     "run of Refine and Optimisation Only")
    polish_seconds: FloatProperty(name="Seconds", default=60.0, min=1.0, max=24 * 3600.0,
                                  description="Wall-clock seconds of the custom polish")
    quality: BoolProperty(name="Quality Readout", default=True,
                          description="After Reconstruct / Refine, render the result at the input views and at "
                                      "the held-out cameras and show its PSNR and SSIM against them, each set "
                                      "apart (resplat eval)")
    camera_index: IntProperty(name="Active Camera", default=0, min=0,
                              description="The highlighted row of the panel's camera list (no effect on the jobs)")
    random_count: IntProperty(name="Initial Gaussians", default=D.RANDOM_COUNT, min=1, max=D.MAX_RANDOM_COUNT,
                              description="Initial Gaussians of Optimisation Only: random in the cameras' common "
                                          "view, or on the depth pass's surfaces")


def polish_seconds(settings) -> float:
    """Seconds of the Polish choice of ``settings`` (0 when it is off)."""
    if settings.polish == "OFF":
        return 0.0
    return float(settings.polish_seconds if settings.polish == "CUSTOM" else settings.polish)


def iterations(settings) -> int | None:
    """The iterations to ask for: ``None`` (the model's own default) with Model Default on."""
    return None if settings.model_iterations else int(settings.iterations)


#: ``Object.resplat_held_out``: a camera the jobs leave out of the views they fit and measure the
#: result at instead (:func:`.views.job_cameras`); shown in the panel's camera list.
HELD_OUT = BoolProperty(name="Held Out", default=False,
                        description="Leave this camera out of the views Reconstruct and Refine fit; with the "
                                    "Quality Readout on, render it as ground truth and report the result's PSNR "
                                    "and SSIM at it apart from the input views")


def register():
    """Register the group, ``Scene.resplat`` and ``Object.resplat_held_out``."""
    bpy.utils.register_class(ResplatSceneSettings)
    bpy.types.Scene.resplat = PointerProperty(type=ResplatSceneSettings)
    bpy.types.Object.resplat_held_out = HELD_OUT


def unregister():
    """Undo :func:`register` (the flags saved in .blend files stay there as ID properties)."""
    del bpy.types.Object.resplat_held_out
    del bpy.types.Scene.resplat
    bpy.utils.unregister_class(ResplatSceneSettings)
