"""3D View > ReSplat > Refine: optimise the active splat object from the panel's cameras (the
same as Reconstruct's: the selected cameras, or every camera of the chosen collection; the list
in the panel) (``resplat optimize --init``) and update it in place as one undo step.

The object's current splats are read with its world transform baked in (the File > Export code:
:func:`..splats.transform.bake_transform`), so the runtime works in world space; the refined
splats replace the object's point cloud data and its transform is reset to identity, so the
splats stay where they were. Views come from the cameras as for Reconstruct (rendered one per
tick with every splat object hidden, so the object is not fitted to its own rendering); the
Polish setting gives the optimisation a wall-clock budget (``--seconds``), and ``resplat eval``
measures the result at the views (the Quality readout). Cameras marked Held Out are not
fitted: with the Quality readout on they are rendered as ground truth and measured apart.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..jobs import job_operator
from ..preferences import get_prefs, interpreter, job_device
from ..runtime_formats import write_splat_arrays
from ..runtime_process import runtime_command
from ..settings import polish_seconds
from ..splat_job import SplatJob, begun, quality_command
from ..splats.pointcloud import build_object, read_arrays
from ..splats.transform import bake_transform
from ..views import ViewWriter, job_cameras


class RefineJob(SplatJob):
    """Refine ``target`` (a splat PointCloud object) from ``cameras`` with ``settings.steps``
    optimisation steps (at least 1); ``heldout`` cameras only measure the result."""

    def __init__(self, context, settings, target, cameras: list, python: str, device: str, heldout: list = ()):
        super().__init__(context, python, target.name)
        self.settings, self.target, self.cameras, self.device = settings, target, cameras, device
        self.heldout = list(heldout)
        self.arrays = bake_transform(read_arrays(target), np.array(target.matrix_world, dtype=np.float64))

    def prepare(self, tmp) -> ViewWriter:
        """Write the baked splats; the views (rendered one per tick; the splat objects, this one
        included, are hidden from them), the held-out ones last when the quality readout is on."""
        write_splat_arrays(self.arrays, tmp / "init.ply")
        s = self.settings
        return ViewWriter(self.context, self.cameras, s.views, tmp, s.width, s.height, s.image_folder,
                          heldout=self.heldout if s.quality else ())

    def commands(self, tmp, views, quality_views) -> list[list[str]]:
        """The optimize command (with the Polish seconds as ``--seconds``) and the quality
        readout at ``quality_views`` when it is on."""
        s, out, steps = self.settings, str(tmp / "refined.ply"), max(1, self.settings.steps)
        cmd = runtime_command(self.python, "optimize", str(views), out, steps=steps, seconds=polish_seconds(s),
                              init=str(tmp / "init.ply"), device=self.device, preview_dir=str(tmp / "previews"),
                              extra=("--preview-every", str(max(1, steps // 4))))
        return [cmd] + ([quality_command(self.python, out, str(quality_views), self.device)] if s.quality else [])

    def place_result(self, arrays):
        """Swap the target's point cloud data for the refined splats; transform reset."""
        tmp_obj = build_object(self.context, arrays, self.target.name)
        new_data, old_data = tmp_obj.data, self.target.data
        bpy.data.objects.remove(tmp_obj)
        new_data.name = old_data.name
        self.target.data = new_data
        if old_data.users == 0:
            bpy.data.pointclouds.remove(old_data)
        self.target["resplat_sh_degree"] = arrays.sh_degree
        self.target.matrix_world = ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1))
        self._restore_selection()
        return self.target


def make_job(context) -> RefineJob:
    """The job for the active object and the panel's cameras (``scene.resplat.cameras``: the
    selection or the collection, as Reconstruct; ResplatError on bad input)."""
    s = context.scene.resplat
    prefs = get_prefs(context)
    job = RefineJob(context, s, context.view_layer.objects.active, [], interpreter(prefs), job_device(s, prefs))
    job.cameras, job.heldout = job_cameras(context, s.cameras, s.collection)  # after the splat object was checked
    return begun(job)


RESPLAT_OT_refine = job_operator(
    "RESPLAT_OT_refine", "resplat.refine", "Refine", make_job,
    "Optimise the active splat object from the views of the panel's cameras (the selected ones or the "
    "collection's, as Reconstruct), in place (Esc cancels)")
