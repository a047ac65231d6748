"""Long runtime jobs driven from Blender's main thread (bpy glue around
:class:`.runtime_process.RuntimeJob`).

A :class:`JobController` owns one job: :meth:`tick` drains the reader thread's queue and is the
only place that touches Blender data (RESEARCH.md section 3: never from another thread);
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

    def start_job(self, commands: list[list[str]], env: dict | None = None) -> None:
        """Start the runtime commands (ResplatError when the first cannot start)."""
        self.job = RuntimeJob(commands, env).start()
        wm = self.context.window_manager
        wm.progress_begin(0, 1000)

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
                self.fraction = min(1.0, int(ev.data.get("step") or 0) / total)
                self.status = f"{ev.data.get('stage', '')} {ev.data.get('step')}/{total}"
                self.context.window_manager.progress_update(int(1000 * self.fraction))
            elif ev.kind == "message":
                self.status = str(ev.data.get("message", ""))
            try:
                self.on_event(ev)
            except ResplatError as e:
                self.error = str(e)
                self.cancel()
                self.cancelled = False  # a failure, reported as such
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
        self.context.window_manager.progress_end()
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
        self.context.window_manager.progress_end()
        self.done = self.cancelled = True
        self.cleanup(failed=True)

    def on_event(self, ev: Event) -> None:
        """A non-exit event (after the base class updated status/fraction/error)."""

    def on_success(self) -> None:
        """The job exited with status 0 and no error event."""

    def cleanup(self, failed: bool) -> None:
        """Remove temporary files; when ``failed``, also undo scene changes."""


def modal_step(op, context, event, controller: JobController):
    """Shared modal() body: Esc cancels, timer events tick; returns the modal result set and
    reports the outcome on ``op``."""
    if event.type == "ESC":
        controller.cancel()
        _end(op, context)
        op.report({"WARNING"}, "cancelled; nothing was changed")
        return {"CANCELLED"}
    if event.type != "TIMER":
        return {"PASS_THROUGH"}
    if context.area is not None:
        context.area.header_text_set(f"ReSplat: {controller.status}")
    if not controller.tick():
        return {"RUNNING_MODAL"}
    _end(op, context)
    if controller.error:
        op.report({"ERROR"}, controller.error)
        return {"CANCELLED"}
    op.report({"INFO"}, controller.status)
    return {"FINISHED"}


def _end(op, context) -> None:
    if getattr(op, "_timer", None) is not None:
        context.window_manager.event_timer_remove(op._timer)
        op._timer = None
    if context.area is not None:
        context.area.header_text_set(None)


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
