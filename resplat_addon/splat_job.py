"""A runtime job that produces splats (Reconstruct, Refine): temp folder, views, the preview
object replaced as preview files arrive, the final splats read back, and full undo on failure or
cancel (bpy; the subprocess side is :mod:`.runtime_process`, the event loop :mod:`.jobs`).

On success :meth:`SplatJob.place_result` (subclass) puts the final splats in the scene; on
failure or Esc the preview object is deleted, selection and active object are restored and the
temp folder is removed, so the scene and the disk are as they were.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

from .jobs import JobController
from .runtime_formats import ResplatError, SplatArrays, read_splat_arrays
from .runtime_process import check_interpreter, remove_tree
from .splats.pointcloud import build_object


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
        self._selection = [o.name for o in context.selected_objects]
        active = context.view_layer.objects.active
        self._active = active.name if active is not None else None

    def begin(self, prepare) -> None:
        """Check the interpreter, make the temp folder, call ``prepare(tmp) -> commands`` and
        start them; on any ResplatError the temp folder is removed before it propagates."""
        check_interpreter(self.python)
        self.tmp = Path(tempfile.mkdtemp(prefix="resplat-job-"))
        try:
            self.start_job(prepare(self.tmp))
        except BaseException:
            remove_tree(self.tmp)
            self.tmp = None
            raise

    def on_event(self, ev) -> None:
        """``preview``: replace the preview object; ``result``: remember the output file."""
        if ev.kind == "preview":
            arrays = read_splat_arrays(ev.data["path"])
            self._drop_preview()
            self.preview = build_object(self.context, arrays, f"{self.name} (preview)")
            self.status = f"preview: {ev.data.get('stage')} {ev.data.get('step')} ({len(arrays)} splats)"
        elif ev.kind == "result":
            self.result_path = str(ev.data.get("path", ""))

    def on_success(self) -> None:
        """Read the final file and hand it to :meth:`place_result`."""
        if not self.result_path:
            raise ResplatError("runtime finished without writing a result")
        arrays = read_splat_arrays(self.result_path)
        self._drop_preview()
        self.result = self.place_result(arrays)
        self.status = f"{self.name}: {len(arrays)} splats"

    def place_result(self, arrays: SplatArrays):
        """Put the final splats in the scene; returns the object (subclasses)."""
        raise NotImplementedError

    def cleanup(self, failed: bool) -> None:
        """Remove the temp folder; on failure also the preview object, restoring the selection."""
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
