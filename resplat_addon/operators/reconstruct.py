"""3D View > ReSplat > Reconstruct: views of the scene's cameras -> the runtime -> a splat point
cloud named after the cameras' collection, with the preview object replaced as each iteration's
splats arrive.

The panel's Model picks the command (:func:`reconstruct_commands`): **Embedded** (default) runs
``resplat reconstruct`` with the runtime's embedded tiny model, **Checkpoint File** the same with
``--checkpoint`` (the panel's file, else the preferences'), both with ``--iterations`` (left out
with Model Default: the model's own), ``--prune-opacity``, ``--optimize-steps`` and the Polish
setting's ``--polish-seconds``; **Optimisation Only** runs ``resplat optimize --random``, or
``--depth-init`` when the views are rendered with the Depth Pass option (splats start on the
rendered surfaces), with the Polish seconds as ``--seconds``. Cameras marked Held Out
(:func:`..views.job_cameras`) stay out of the views the runtime gets; with the Quality readout on
they are rendered as ground truth, and ``resplat eval`` measures the result at the input views
and at them, each averaged apart.

``invoke`` runs modally: the views render one per timer tick, then the runtime runs, with the
progress bar and status text counting views, then steps, and Esc cancelling at any point;
``execute`` runs the same :class:`ReconstructJob` to the end in place (scripts, background mode).
Either way the result is one undo step, and a failure changes nothing (report naming the cause).
"""

from __future__ import annotations

import os

import bpy

from ..preferences import get_prefs, interpreter, job_device
from ..runtime_formats import ResplatError
from ..runtime_process import runtime_command
from ..jobs import job_operator
from ..settings import FALLBACK_STEPS, iterations, polish_seconds
from ..splat_job import SplatJob, begun, quality_command
from ..splats.pointcloud import build_object
from ..views import ViewWriter, job_cameras


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


def reconstruct_commands(python: str, settings, views: str, tmp, checkpoint: str, device: str,
                         quality_views: str | None = None) -> list[list[str]]:
    """The runtime command lines of one Reconstruct for ``settings.model`` (module docstring);
    ``checkpoint`` from :func:`model_checkpoint`, files in the folder ``tmp`` (a Path). Previews
    every quarter of the optimisation steps; the Polish setting adds its seconds
    (``--polish-seconds``, or ``--seconds`` for Optimisation Only); then the quality readout
    (:func:`..splat_job.quality_command`) at ``quality_views`` (default: ``views``) when it is
    on."""
    s, prev, seconds = settings, str(tmp / "previews"), polish_seconds(settings)
    if s.model == "OPTIMIZE":
        steps, out = s.steps or FALLBACK_STEPS, str(tmp / "optimized.ply")
        cmd = runtime_command(python, "optimize", views, out, steps=steps, seconds=seconds,
                              random_count=s.random_count, depth_init=wants_depth(s), device=device, preview_dir=prev,
                              extra=("--preview-every", str(max(1, steps // 4))))
    else:
        out = str(tmp / "reconstructed.ply")
        cmd = runtime_command(python, "reconstruct", views, out, checkpoint=checkpoint if s.model == "CHECKPOINT" else "",
                              iterations=iterations(s), steps=s.steps, prune_opacity=s.prune_opacity, seconds=seconds,
                              device=device, preview_dir=prev,
                              extra=("--crop", "--preview-every", str(max(1, s.steps // 4))))
    return [cmd] + ([quality_command(python, out, quality_views or views, device)] if s.quality else [])


class ReconstructJob(SplatJob):
    """Reconstruct from ``cameras`` with the options of ``settings`` (a ``scene.resplat``-like
    object: ``model`` EMBEDDED / CHECKPOINT / OPTIMIZE, ...) and the runtime choices ``python``,
    ``checkpoint`` (:func:`model_checkpoint`) and ``device``; ``heldout`` cameras only measure
    the result (Quality readout on)."""

    def __init__(self, context, settings, cameras: list, python: str, checkpoint: str, device: str,
                 heldout: list = ()):
        coll = settings.collection if settings.cameras == "COLLECTION" and settings.collection else cameras[0].users_collection[0]
        super().__init__(context, python, coll.name if coll is not context.scene.collection else "ReSplat")
        self.settings, self.cameras, self.checkpoint, self.device = settings, cameras, checkpoint, device
        self.heldout = list(heldout)

    def prepare(self, tmp) -> ViewWriter:
        """The views (rendered one per tick) in ``tmp``, the held-out ones last when the quality
        readout is on."""
        s = self.settings
        return ViewWriter(self.context, self.cameras, s.views, tmp, s.width, s.height, s.image_folder,
                          depth=wants_depth(s), heldout=self.heldout if s.quality else ())

    def commands(self, tmp, views, quality_views) -> list[list[str]]:
        """:func:`reconstruct_commands` for the written views."""
        return reconstruct_commands(self.python, self.settings, str(views), tmp, self.checkpoint, self.device,
                                    str(quality_views))

    def place_result(self, arrays):
        """A new point cloud object named after the collection."""
        return build_object(self.context, arrays, self.name)


def make_job(context) -> ReconstructJob:
    """The job for the scene's settings and the preferences (ResplatError on bad input)."""
    s = context.scene.resplat
    prefs = get_prefs(context)
    cams, heldout = job_cameras(context, s.cameras, s.collection)
    return begun(ReconstructJob(context, s, cams, interpreter(prefs), model_checkpoint(s, prefs), job_device(s, prefs),
                                heldout))


RESPLAT_OT_reconstruct = job_operator(
    "RESPLAT_OT_reconstruct", "resplat.reconstruct", "Reconstruct", make_job,
    "Reconstruct Gaussian splats from the scene's cameras with the ReSplat runtime (Esc cancels)")
