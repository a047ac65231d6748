"""3D View > ReSplat > Reconstruct: views of the scene's cameras -> the runtime (``resplat
reconstruct`` with a checkpoint, optionally followed by ``resplat optimize --init``; without a
checkpoint ``resplat optimize --random``) -> a splat point cloud named after the cameras'
collection, with the preview object replaced as each iteration's splats arrive.

``invoke`` runs modally (progress bar, status text, Esc cancels); ``execute`` runs the same
:class:`ReconstructJob` to the end in place (scripts, background mode). Either way the result is
one undo step, and a failure changes nothing (report naming the cause).
"""

from __future__ import annotations

import bpy

from ..jobs import JobOperator
from ..preferences import get_prefs, interpreter
from ..runtime_process import runtime_command
from ..settings import FALLBACK_STEPS
from ..splat_job import SplatJob
from ..splats.pointcloud import build_object
from ..views import cameras_from, write_views


class ReconstructJob(SplatJob):
    """Reconstruct from ``cameras`` with the options of ``settings`` (a ``scene.resplat``-like
    object) and the runtime choices ``python``, ``checkpoint`` ("" = optimise) and ``device``."""

    def __init__(self, context, settings, cameras: list, python: str, checkpoint: str, device: str):
        coll = settings.collection if settings.cameras == "COLLECTION" and settings.collection else cameras[0].users_collection[0]
        super().__init__(context, python, coll.name if coll is not context.scene.collection else "ReSplat")
        self.settings, self.cameras, self.checkpoint, self.device = settings, cameras, checkpoint, device

    def commands(self, tmp) -> list[list[str]]:
        """Write the views and return the runtime commands (in ``tmp``)."""
        s = self.settings
        views = str(write_views(self.context, self.cameras, s.views, tmp, s.width, s.height, s.image_folder))
        prev = str(tmp / "previews")
        if not self.checkpoint:
            steps = s.steps or FALLBACK_STEPS
            return [runtime_command(self.python, "optimize", views, str(tmp / "optimized.ply"), steps=steps,
                                    random_count=s.random_count, device=self.device, preview_dir=prev,
                                    extra=("--preview-every", str(max(1, steps // 4))))]
        cmds = [runtime_command(self.python, "reconstruct", views, str(tmp / "reconstructed.ply"),
                                checkpoint=self.checkpoint, iterations=s.iterations, device=self.device,
                                preview_dir=prev, extra=("--crop",))]
        if s.steps:
            cmds.append(runtime_command(self.python, "optimize", views, str(tmp / "optimized.ply"), steps=s.steps,
                                        init=str(tmp / "reconstructed.ply"), device=self.device, preview_dir=prev,
                                        extra=("--preview-every", str(max(1, s.steps // 4)))))
        return cmds

    def place_result(self, arrays):
        """A new point cloud object named after the collection."""
        return build_object(self.context, arrays, self.name)


def make_job(context) -> ReconstructJob:
    """The job for the scene's settings and the preferences (ResplatError on bad input)."""
    s = context.scene.resplat
    prefs = get_prefs(context)
    cams = cameras_from(context, s.cameras, s.collection)
    checkpoint = bpy.path.abspath(s.checkpoint or prefs.checkpoint) if (s.checkpoint or prefs.checkpoint) else ""
    device = prefs.device if s.device == "PREFS" else s.device
    job = ReconstructJob(context, s, cams, interpreter(prefs), checkpoint, device)
    job.begin(job.commands)
    return job


class RESPLAT_OT_reconstruct(JobOperator, bpy.types.Operator):
    """Reconstruct Gaussian splats from the scene's cameras with the ReSplat runtime (Esc cancels)"""

    bl_idname = "resplat.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}
    make_job = staticmethod(make_job)
