"""Long runtime jobs driven from Blender's main thread (bpy glue around
:class:`.runtime_process.RuntimeJob`).

A :class:`JobController` owns one job: :meth:`tick` drains the reader thread's queue and is the
only place that touches Blender data (bpy is not thread-safe: Blender's Python API manual,
"Gotchas: Strange errors when using the threading module", so never from another thread);
:meth:`cancel` kills the process and undoes everything. The modal operators only forward their
timer events to :meth:`tick` and Esc to :meth:`cancel`, so headless tests (no window, hence no
modal handler in background mode) drive the very same controller by calling :meth:`tick` in a
loop.
"""

from __future__ import annotations

import time

from .runtime_formats import ResplatError
from .runtime_process import Event, RuntimeJob


class JobController:
    """Base controller: progress bookkeeping and the end-of-job protocol.

    Subclasses implement :meth:`on_event` (non-exit events), :meth:`on_success` and
    :meth:`cleanup` (undo what the job changed; also called after success for temp files).

    Attributes:
        status: one line for the UI. fraction: 0..1 progress. error: why the job failed, or "".
        done: the job ended (successfully when ``error`` is "" and not ``cancelled``).
    """

    def __init__(self, context):
        self.context = context
        self.job: RuntimeJob | None = None
        self.status = "starting"
        self.fraction = 0.0
        self.error = ""
        self.done = False
        self.cancelled = False
        self._progress = False

    def begin_progress(self) -> None:
        """Show the window manager's progress bar (once)."""
        if not self._progress:
            self.context.window_manager.progress_begin(0, 1000)
            self._progress = True

    def set_progress(self, fraction: float) -> None:
        """Move the progress bar to ``fraction`` (0..1)."""
        self.fraction = min(1.0, max(0.0, fraction))
        self.begin_progress()
        self.context.window_manager.progress_update(int(1000 * self.fraction))

    def _end_progress(self) -> None:
        if self._progress:
            self.context.window_manager.progress_end()
            self._progress = False

    def start_job(self, commands: list[list[str]], env: dict | None = None) -> None:
        """Start the runtime commands (ResplatError when the first cannot start)."""
        self.job = RuntimeJob(commands, env).start()
        self.begin_progress()

    def fail(self, message: str) -> None:
        """End the job as a failure with ``message``: kill the runtime, undo everything."""
        self.error = message
        self.cancel()
        self.cancelled = False  # a failure, reported as such

    def tick(self) -> bool:
        """Handle every queued event; returns True once the job has ended (success or error)."""
        if self.done:
            return True
        for ev in self.job.poll():
            if ev.kind == "exit":
                self._finish(ev.data.get("code", -1))
                return True
            if ev.kind == "error":
                self.error = self.error or str(ev.data.get("message", "runtime error"))
            elif ev.kind == "progress":
                total = max(int(ev.data.get("total") or 1), 1)
                self.set_progress(int(ev.data.get("step") or 0) / total)
                self.status = f"{ev.data.get('stage', '')} {ev.data.get('step')}/{total}"
            elif ev.kind == "message":
                self.status = str(ev.data.get("message", ""))
            try:
                self.on_event(ev)
            except ResplatError as e:
                self.fail(str(e))
                return True
        return False

    def run_to_end(self, timeout: float = 600.0, interval: float = 0.05) -> None:
        """Tick until the job ends (headless use; the modal operator ticks from its timer)."""
        end = time.monotonic() + timeout
        while not self.tick():
            if time.monotonic() > end:
                self.error = f"runtime did not finish within {timeout:.0f} s"
                self.cancel()
                return
            time.sleep(interval)

    def _finish(self, code: int) -> None:
        self.done = True
        self._end_progress()
        if code != 0 and not self.error:
            self.error = self.job.failure(code)
        if not self.error:
            try:
                self.on_success()
            except ResplatError as e:
                self.error = str(e)
        if self.error:
            self.cleanup(failed=True)
        else:
            self.cleanup(failed=False)

    def cancel(self) -> None:
        """Kill the runtime and undo everything the job changed (scene and disk); nothing to do
        once the job has ended."""
        if self.done:
            return
        if self.job is not None:
            self.job.cancel()
        self._end_progress()
        self.done = self.cancelled = True
        self.cleanup(failed=True)

    def on_event(self, ev: Event) -> None:
        """A non-exit event (after the base class updated status/fraction/error)."""

    def on_success(self) -> None:
        """The job exited with status 0 and no error event."""

    def cleanup(self, failed: bool) -> None:
        """Remove temporary files; when ``failed``, also undo scene changes."""


def modal_step(op, context, event, controller: JobController):
    """Shared modal() body: Esc cancels, timer events tick (one tick may render one view, so Esc
    is taken between views); the header and the status bar show the controller's status (set
    after the tick, so they name what comes next). Returns the modal result set and reports the
    outcome on ``op``."""
    if event.type == "ESC":
        controller.cancel()
        _end(op, context)
        op.report({"WARNING"}, "cancelled; nothing was changed")
        return {"CANCELLED"}
    if event.type != "TIMER":
        return {"PASS_THROUGH"}
    if not controller.tick():
        show_status(context, f"ReSplat: {controller.status} (Esc cancels)")
        return {"RUNNING_MODAL"}
    _end(op, context)
    if controller.error:
        op.report({"ERROR"}, controller.error)
        return {"CANCELLED"}
    op.report({"INFO"}, controller.status)
    return {"FINISHED"}


def show_status(context, text: str | None) -> None:
    """Show ``text`` in the area header and the workspace status bar (``None`` clears both);
    headless contexts have neither."""
    if context.area is not None:
        context.area.header_text_set(text)
    if getattr(context, "workspace", None) is not None:
        context.workspace.status_text_set(text)


def _end(op, context) -> None:
    if getattr(op, "_timer", None) is not None:
        context.window_manager.event_timer_remove(op._timer)
        op._timer = None
    show_status(context, None)


def start_modal(op, context, controller: JobController):
    """Shared invoke() tail: add the timer and the modal handler."""
    op._timer = context.window_manager.event_timer_add(0.1, window=context.window)
    context.window_manager.modal_handler_add(op)
    return {"RUNNING_MODAL"}


class JobOperator:
    """Mixin for the runtime-job operators (Reconstruct, Refine): ``make_job(context)`` (a
    staticmethod of the subclass) builds and starts the controller; ``invoke`` follows it
    modally (Esc cancels), ``execute`` runs the same controller to the end in place (scripts and
    background mode, where there is no window for a modal handler). ERROR report and CANCELLED
    on failure, with nothing changed."""

    make_job = None

    def _start(self, context) -> bool:
        try:
            self._job = type(self).make_job(context)
        except ResplatError as e:
            self.report({"ERROR"}, str(e))
            return False
        return True

    def invoke(self, context, event):
        """Start the job and follow it modally."""
        if not self._start(context):
            return {"CANCELLED"}
        return start_modal(self, context, self._job)

    def modal(self, context, event):
        """Timer: drain the runtime's events; Esc: cancel and undo."""
        return modal_step(self, context, event, self._job)

    def execute(self, context):
        """Run the job to the end without a modal loop."""
        if not self._start(context):
            return {"CANCELLED"}
        self._job.run_to_end()
        if self._job.error:
            self.report({"ERROR"}, self._job.error)
            return {"CANCELLED"}
        self.report({"INFO"}, self._job.status)
        return {"FINISHED"}


def job_operator(cls_name: str, idname: str, label: str, make_job, doc: str) -> type:
    """A :class:`JobOperator` Blender operator class (REGISTER, UNDO: the result is one undo
    step) whose job comes from ``make_job(context)``; ``doc`` is its tooltip."""
    import bpy

    return type(cls_name, (JobOperator, bpy.types.Operator), {
        "__doc__": doc, "bl_idname": idname, "bl_label": label, "bl_options": {"REGISTER", "UNDO"},
        "make_job": staticmethod(make_job), "__module__": make_job.__module__})
