"""A runtime job that produces splats (Reconstruct, Refine): temp folder, views rendered one per
tick inside the job (:class:`.views.ViewWriter`), then the runtime, the preview object replaced
as preview files arrive, the final splats read back, and full undo on failure or cancel (bpy; the
subprocess side is :mod:`.runtime_process`, the event loop :mod:`.jobs`).

On success :meth:`SplatJob.place_result` (subclass) puts the final splats in the scene; on
failure or Esc (also between two view renders) the scene's render settings, compositor and splat
visibility are restored, the preview object is deleted, selection and active object are
restored and the temp folder is removed, so the scene and the disk are as they were.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

from .jobs import JobController
from .runtime_formats import ResplatError, SplatArrays, read_splat_arrays
from .runtime_process import check_interpreter, remove_tree
from .splats.pointcloud import build_object
from .views import ViewWriter


#: custom properties of a result object holding its quality readout
QUALITY_PROPS = {"psnr": "resplat_psnr", "ssim": "resplat_ssim", "views": "resplat_quality_views"}


def quality_text(quality: dict) -> str:
    """"PSNR 24.31 dB, SSIM 0.874 at 8 input views" for a quality readout."""
    views = quality.get("views")
    where = f"at {views} input views" if views else "at the input views"
    return f"PSNR {quality['psnr']:.2f} dB, SSIM {quality['ssim']:.3f} {where}"


def object_quality(obj) -> str:
    """The quality readout stored on a result object, or "" when it has none."""
    if obj is None or QUALITY_PROPS["psnr"] not in obj:
        return ""
    return quality_text({key: obj.get(prop, float("nan")) for key, prop in QUALITY_PROPS.items()})


class SplatJob(JobController):
    """Base of the splat-producing jobs.

    Args:
        context: Blender context (its view layer/collection receive the objects).
        python: runtime interpreter path.
        name: name of the result (the preview is called ``name + " (preview)"``).
    """

    def __init__(self, context, python: str, name: str):
        super().__init__(context)
        self.python = python
        self.name = name
        self.tmp: Path | None = None
        self.preview = None
        self.result_path = ""
        self.result = None
        self.views = None
        self.quality: dict = {}
        self.result_metrics: dict = {}
        self._selection = [o.name for o in context.selected_objects]
        active = context.view_layer.objects.active
        self._active = active.name if active is not None else None

    def begin(self) -> None:
        """Check the interpreter, make the temp folder and call :meth:`prepare` (every check
        of the views; nothing rendered yet); on any ResplatError the temp folder is removed
        before it propagates. The views render in the following ticks, then the runtime starts."""
        check_interpreter(self.python)
        self.tmp = Path(tempfile.mkdtemp(prefix="resplat-job-"))
        try:
            self.views = self.prepare(self.tmp)
        except BaseException:
            remove_tree(self.tmp)
            self.tmp = None
            raise
        self.status, self.fraction = self.views.status, 0.0
        self.begin_progress()

    def prepare(self, tmp: Path) -> ViewWriter:
        """The views' writer for the job folder ``tmp`` (subclasses; may write input files)."""
        raise NotImplementedError

    def commands(self, tmp: Path, views: Path) -> list[list[str]]:
        """The runtime commands, once ``views`` (transforms.json) is written (subclasses)."""
        raise NotImplementedError

    def tick(self) -> bool:
        """Until the views are written: one view per call (then the runtime starts); then the
        runtime's events (:meth:`.jobs.JobController.tick`). True once the job has ended."""
        if self.done or self.job is not None:
            return super().tick()
        try:
            if self.views.step():
                self.start_job(self.commands(self.tmp, self.views.json_path))
                self.status = "starting the runtime"
            else:
                self.status = self.views.status
            self.set_progress(self.views.fraction)
        except (ResplatError, RuntimeError) as e:  # RuntimeError: bpy's render operator failed
            self.fail(str(e))
            return True
        return False

    def on_event(self, ev) -> None:
        """``preview``: replace the preview object; ``result``: remember the output file, or
        the quality readout (``resplat eval``'s mean PSNR / SSIM at the input views)."""
        if ev.kind == "result" and ev.data.get("stage") == "eval":
            mean = ev.data.get("mean") or {}
            self.quality = {k: float(mean[k]) for k in ("psnr", "ssim") if k in mean}
            self.quality["views"] = len(ev.data.get("views") or ())
        elif ev.kind == "preview":
            arrays = read_splat_arrays(ev.data["path"])
            self._drop_preview()
            self.preview = build_object(self.context, arrays, f"{self.name} (preview)")
            self.status = f"preview: {ev.data.get('stage')} {ev.data.get('step')} ({len(arrays)} splats)"
        elif ev.kind == "result":
            self.result_path = str(ev.data.get("path", ""))
            self.result_metrics = dict(ev.data.get("metrics") or {})

    def on_success(self) -> None:
        """Read the final file and hand it to :meth:`place_result`."""
        if not self.result_path:
            raise ResplatError("runtime finished without writing a result")
        arrays = read_splat_arrays(self.result_path)
        self._drop_preview()
        self.result = self.place_result(arrays)
        self.status = f"{self.name}: {len(arrays)} splats"
        for key, prop in QUALITY_PROPS.items():  # a refined object's old readout goes
            if key in self.quality:
                self.result[prop] = self.quality[key]
            elif prop in self.result:
                del self.result[prop]
        if "psnr" in self.quality:
            self.status += f", {quality_text(self.quality)}"

    def place_result(self, arrays: SplatArrays):
        """Put the final splats in the scene; returns the object (subclasses)."""
        raise NotImplementedError

    def cleanup(self, failed: bool) -> None:
        """Restore the scene if views are still rendering, remove the temp folder; on failure
        also the preview object, restoring the selection."""
        if self.views is not None:
            self.views.close()
        remove_tree(self.tmp)
        if failed:
            self._drop_preview()
            self._restore_selection()

    def _drop_preview(self) -> None:
        if self.preview is None:
            return
        try:
            data = self.preview.data
            bpy.data.objects.remove(self.preview)
            if data is not None and data.users == 0:
                bpy.data.pointclouds.remove(data)
        except ReferenceError:  # already removed (e.g. by the user)
            pass
        self.preview = None

    def _restore_selection(self) -> None:
        layer = self.context.view_layer
        for ob in layer.objects:
            ob.select_set(ob.name in self._selection)
        layer.objects.active = bpy.data.objects.get(self._active) if self._active else None


def begun(job: SplatJob) -> SplatJob:
    """``job`` after :meth:`SplatJob.begin` (every input checked, nothing rendered yet)."""
    job.begin()
    return job


def quality_command(python: str, scene: str, views: str, device: str) -> list[str]:
    """``resplat eval`` of the result ``scene`` at the input ``views``: its ``result`` event's
    ``mean`` (PSNR in dB, SSIM; :mod:`resplat.metrics`) becomes :attr:`SplatJob.quality`."""
    return [python, "-m", "resplat", "eval", scene, views, "--device", device, "--progress", "jsonl"]
