"""3D View > ReSplat > Reconstruct: views of the scene's cameras -> the runtime -> a splat point
cloud named after the cameras' collection, with the preview object replaced as each iteration's
splats arrive.

The panel's Model picks the command (:func:`reconstruct_commands`): **Embedded** (default) runs
``resplat reconstruct`` with the runtime's embedded tiny model, **Checkpoint File** the same with
``--checkpoint`` (the panel's file, else the preferences'), both with ``--iterations``,
``--prune-opacity`` and ``--optimize-steps`` (the polish); **Optimisation Only** runs
``resplat optimize --random``, or ``--depth-init`` when the views are rendered with the Depth
Pass option (splats start on the rendered surfaces).

``invoke`` runs modally (progress bar, status text, Esc cancels); ``execute`` runs the same
:class:`ReconstructJob` to the end in place (scripts, background mode). Either way the result is
one undo step, and a failure changes nothing (report naming the cause).
"""

from __future__ import annotations

import os

import bpy

from ..jobs import JobOperator
from ..preferences import get_prefs, interpreter, job_device
from ..runtime_formats import ResplatError
from ..runtime_process import runtime_command
from ..settings import FALLBACK_STEPS
from ..splat_job import SplatJob
from ..splats.pointcloud import build_object
from ..views import cameras_from, write_views


def model_checkpoint(settings, prefs) -> str:
    """The checkpoint file of Model "Checkpoint File" (the panel's, else the preferences', made
    absolute); "" for the other choices.

    Raises:
        ResplatError: Checkpoint File with no file set, or a file that does not exist.
    """
    if settings.model != "CHECKPOINT":
        return ""
    path = settings.checkpoint or prefs.checkpoint
    if not path:
        raise ResplatError("Model is Checkpoint File but no checkpoint is set (ReSplat panel or "
                           "Preferences > Add-ons > ReSplat)")
    path = bpy.path.abspath(path)
    if not os.path.isfile(path):
        raise ResplatError(f"checkpoint {path} not found")
    return path


def wants_depth(settings) -> bool:
    """Whether Reconstruct renders a depth pass: the option is on and the views are rendered."""
    return bool(settings.depth_pass) and settings.views == "RENDER"


def reconstruct_commands(python: str, settings, views: str, tmp, checkpoint: str, device: str) -> list[list[str]]:
    """The runtime command lines of one Reconstruct for ``settings.model`` (module docstring);
    ``checkpoint`` from :func:`model_checkpoint`, files in the folder ``tmp`` (a Path). Previews
    every quarter of the optimisation steps."""
    s, prev = settings, str(tmp / "previews")
    if s.model == "OPTIMIZE":
        steps = s.steps or FALLBACK_STEPS
        return [runtime_command(python, "optimize", views, str(tmp / "optimized.ply"), steps=steps,
                                random_count=s.random_count, depth_init=wants_depth(s), device=device, preview_dir=prev,
                                extra=("--preview-every", str(max(1, steps // 4))))]
    return [runtime_command(python, "reconstruct", views, str(tmp / "reconstructed.ply"),
                            checkpoint=checkpoint if s.model == "CHECKPOINT" else "", iterations=s.iterations,
                            steps=s.steps, prune_opacity=s.prune_opacity, device=device, preview_dir=prev,
                            extra=("--crop", "--preview-every", str(max(1, s.steps // 4))))]


class ReconstructJob(SplatJob):
    """Reconstruct from ``cameras`` with the options of ``settings`` (a ``scene.resplat``-like
    object: ``model`` EMBEDDED / CHECKPOINT / OPTIMIZE, ...) and the runtime choices ``python``,
    ``checkpoint`` (:func:`model_checkpoint`) and ``device``."""

    def __init__(self, context, settings, cameras: list, python: str, checkpoint: str, device: str):
        coll = settings.collection if settings.cameras == "COLLECTION" and settings.collection else cameras[0].users_collection[0]
        super().__init__(context, python, coll.name if coll is not context.scene.collection else "ReSplat")
        self.settings, self.cameras, self.checkpoint, self.device = settings, cameras, checkpoint, device

    def commands(self, tmp) -> list[list[str]]:
        """Write the views and return the runtime commands (in ``tmp``)."""
        s = self.settings
        views = str(write_views(self.context, self.cameras, s.views, tmp, s.width, s.height, s.image_folder,
                                depth=wants_depth(s)))
        return reconstruct_commands(self.python, s, views, tmp, self.checkpoint, self.device)

    def place_result(self, arrays):
        """A new point cloud object named after the collection."""
        return build_object(self.context, arrays, self.name)


def make_job(context) -> ReconstructJob:
    """The job for the scene's settings and the preferences (ResplatError on bad input)."""
    s = context.scene.resplat
    prefs = get_prefs(context)
    cams = cameras_from(context, s.cameras, s.collection)
    checkpoint = model_checkpoint(s, prefs)
    device = job_device(s, prefs)
    job = ReconstructJob(context, s, cams, interpreter(prefs), checkpoint, device)
    job.begin(job.commands)
    return job


class RESPLAT_OT_reconstruct(JobOperator, bpy.types.Operator):
    """Reconstruct Gaussian splats from the scene's cameras with the ReSplat runtime (Esc cancels)"""

    bl_idname = "resplat.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}
    make_job = staticmethod(make_job)
