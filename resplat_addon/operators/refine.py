"""3D View > ReSplat > Refine: optimise the active splat object from the selected cameras
(``resplat optimize --init``; issue 5 item 5) and update it in place as one undo step.

The object's current splats are read with its world transform baked in (the File > Export code:
:func:`..splats.transform.bake_transform`), so the runtime works in world space; the refined
splats replace the object's point cloud data and its transform is reset to identity, so the
splats stay where they were. Views come from the cameras as for Reconstruct.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..jobs import JobOperator
from ..preferences import get_prefs, interpreter, job_device
from ..runtime_formats import write_splat_arrays
from ..runtime_process import runtime_command
from ..splat_job import SplatJob
from ..splats.pointcloud import build_object, read_arrays
from ..splats.transform import bake_transform
from ..views import cameras_from, write_views


class RefineJob(SplatJob):
    """Refine ``target`` (a splat PointCloud object) from ``cameras`` with ``settings.steps``
    optimisation steps (at least 1)."""

    def __init__(self, context, settings, target, cameras: list, python: str, device: str):
        super().__init__(context, python, target.name)
        self.settings, self.target, self.cameras, self.device = settings, target, cameras, device
        self.arrays = bake_transform(read_arrays(target), np.array(target.matrix_world, dtype=np.float64))

    def commands(self, tmp) -> list[list[str]]:
        """Write the baked splats and the views; the optimize command."""
        s = self.settings
        init = tmp / "init.ply"
        write_splat_arrays(self.arrays, init)
        views = str(write_views(self.context, self.cameras, s.views, tmp, s.width, s.height, s.image_folder))
        steps = max(1, s.steps)
        return [runtime_command(self.python, "optimize", views, str(tmp / "refined.ply"), steps=steps, init=str(init),
                                device=self.device, preview_dir=str(tmp / "previews"),
                                extra=("--preview-every", str(max(1, steps // 4))))]

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
    """The job for the active object and the selected cameras (ResplatError on bad input)."""
    s = context.scene.resplat
    prefs = get_prefs(context)
    target = context.view_layer.objects.active
    device = job_device(s, prefs)
    job = RefineJob(context, s, target, [], interpreter(prefs), device)  # the splat object is checked first
    job.cameras = cameras_from(context, "SELECTED")
    job.begin(job.commands)
    return job


class RESPLAT_OT_refine(JobOperator, bpy.types.Operator):
    """Optimise the active splat object from the selected cameras' views, in place (Esc cancels)"""

    bl_idname = "resplat.refine"
    bl_label = "Refine from Selected Cameras"
    bl_options = {"REGISTER", "UNDO"}
    make_job = staticmethod(make_job)
