"""A runtime job that produces splats (Reconstruct, Refine): temp folder, views rendered one per
tick inside the job (:class:`.views.ViewWriter`), then the runtime, the preview object replaced
as preview files arrive, the final splats read back, and full undo on failure or cancel (bpy; the
subprocess side is :mod:`.runtime_process`, the event loop :mod:`.jobs`).

On success :meth:`SplatJob.place_result` (subclass) puts the final splats in the scene, with the
Quality readout (``resplat eval`` at the input views and, apart, at the held-out cameras) in its
custom properties (:data:`QUALITY_PROPS`, :data:`HELDOUT_PROPS`); on failure or Esc (also
between two view renders) the scene's render settings, compositor and splat visibility are
restored, the preview object is deleted, selection and active object are restored and the temp
folder is removed, so the scene and the disk are as they were.
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


#: custom properties of a result object holding its quality readout: the means at the input views
#: and at the held-out cameras, and {camera name: [PSNR, SSIM]} per held-out camera
QUALITY_PROPS = {"psnr": "resplat_psnr", "ssim": "resplat_ssim", "views": "resplat_quality_views"}
HELDOUT_PROPS = {"psnr": "resplat_heldout_psnr", "ssim": "resplat_heldout_ssim", "views": "resplat_heldout_views",
                 "cameras": "resplat_heldout_cameras"}


def quality_text(quality: dict) -> str:
    """"PSNR 24.31 dB, SSIM 0.874 at 8 input views" for a quality readout."""
    views = quality.get("views")
    where = f"at {views} input views" if views else "at the input views"
    return f"PSNR {quality['psnr']:.2f} dB, SSIM {quality['ssim']:.3f} {where}"


def heldout_text(quality: dict) -> str:
    """"PSNR 21.07 dB, SSIM 0.702 at held-out Cam2" (one camera) or "... at 3 held-out cameras"
    for the held-out part of a quality readout (``cameras``: {name: (PSNR, SSIM)})."""
    cams = list(quality.get("cameras") or ())
    where = f"held-out {cams[0]}" if len(cams) == 1 else f"{quality.get('views', len(cams))} held-out cameras"
    return f"PSNR {quality['psnr']:.2f} dB, SSIM {quality['ssim']:.3f} at {where}"


def split_quality(rows: list[dict], heldout_names: dict) -> tuple[dict, dict]:
    """(input readout, held-out readout) of ``resplat eval``'s per-view rows (``view``, ``psnr``
    in dB, ``ssim``): the rows whose view is a key of ``heldout_names`` (view name -> camera
    name) are the held-out ones. Each readout holds the mean ``psnr`` and ``ssim`` over its
    views (the mean of per-view values, as ``resplat eval``'s own ``mean`` row) and ``views``,
    their count; the held-out one also ``cameras`` {camera name: (PSNR, SSIM)}. A part with no
    rows is {}."""
    parts: tuple[list, list] = ([], [])
    for row in rows:
        parts[row.get("view") in heldout_names].append(row)

    def mean(part: list[dict]) -> dict:
        if not part:
            return {}
        return {"psnr": sum(float(r["psnr"]) for r in part) / len(part),
                "ssim": sum(float(r["ssim"]) for r in part) / len(part), "views": len(part)}

    held = mean(parts[1])
    if held:
        held["cameras"] = {heldout_names[r["view"]]: (float(r["psnr"]), float(r["ssim"])) for r in parts[1]}
    return mean(parts[0]), held


def object_quality(obj) -> str:
    """The input views' quality readout stored on a result object, or "" when it has none."""
    if obj is None or QUALITY_PROPS["psnr"] not in obj:
        return ""
    return quality_text({key: obj.get(prop, float("nan")) for key, prop in QUALITY_PROPS.items()})


def object_heldout_quality(obj) -> list[str]:
    """The held-out part of the readout stored on a result object: the mean line
    (:func:`heldout_text`), then "Cam2: PSNR 21.07 dB, SSIM 0.702" per camera when there are
    several; [] when it has none."""
    if obj is None or HELDOUT_PROPS["psnr"] not in obj:
        return []
    cams = {name: tuple(v) for name, v in (obj.get(HELDOUT_PROPS["cameras"]) or {}).items()}
    lines = [heldout_text({"psnr": obj[HELDOUT_PROPS["psnr"]], "ssim": obj.get(HELDOUT_PROPS["ssim"], float("nan")),
                           "views": obj.get(HELDOUT_PROPS["views"], len(cams)), "cameras": cams})]
    if len(cams) > 1:
        lines += [f"{name}: PSNR {p:.2f} dB, SSIM {q:.3f}" for name, (p, q) in sorted(cams.items())]
    return lines


def _store(obj, props: dict, values: dict) -> None:
    """Write ``values`` into ``obj``'s custom properties named by ``props``; remove the ones with
    no value (a refined object's old readout goes)."""
    for key, prop in props.items():
        if key in values:
            value = values[key]
            obj[prop] = {k: list(v) for k, v in value.items()} if isinstance(value, dict) else value
        elif prop in obj:
            del obj[prop]


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
        self.heldout_quality: dict = {}
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

    def commands(self, tmp: Path, views: Path, quality_views: Path) -> list[list[str]]:
        """The runtime commands, once ``views`` (transforms.json: what the runtime fits) and
        ``quality_views`` (the input and held-out views the result is measured at,
        :class:`.views.ViewWriter`) are written (subclasses)."""
        raise NotImplementedError

    def tick(self) -> bool:
        """Until the views are written: one view per call (then the runtime starts); then the
        runtime's events (:meth:`.jobs.JobController.tick`). True once the job has ended."""
        if self.done or self.job is not None:
            return super().tick()
        try:
            if self.views.step():
                self.start_job(self.commands(self.tmp, self.views.json_path, self.views.quality_path))
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
        the quality readout (``resplat eval``'s per-view PSNR / SSIM, averaged over the input
        views and over the held-out cameras apart, :func:`split_quality`)."""
        if ev.kind == "result" and ev.data.get("stage") == "eval":
            rows = [r for r in ev.data.get("views") or () if "psnr" in r and "ssim" in r]
            self.quality, self.heldout_quality = split_quality(rows, self.views.heldout_names)
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
        _store(self.result, QUALITY_PROPS, self.quality)
        _store(self.result, HELDOUT_PROPS, self.heldout_quality)
        if "psnr" in self.quality:
            self.status += f", {quality_text(self.quality)}"
        if "psnr" in self.heldout_quality:
            self.status += f"; {heldout_text(self.heldout_quality)}"

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
    """``resplat eval`` of the result ``scene`` at ``views`` (the input and held-out views,
    ``quality.json``, or ``transforms.json`` when none is held out): its ``result`` event's
    per-view rows (PSNR in dB, SSIM; :mod:`resplat.metrics`) become :attr:`SplatJob.quality`
    and :attr:`SplatJob.heldout_quality`."""
    return [python, "-m", "resplat", "eval", scene, views, "--device", device, "--progress", "jsonl"]
