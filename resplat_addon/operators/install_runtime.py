"""Preferences > Install Runtime: make a venv under the extension's user folder and pip-install
torch (CPU / CUDA / MPS) and the runtime's dependencies into it, with the bundled runtime made
importable by a ``.pth`` file (``runtime_process.install_commands``). Modal, with progress from
pip's output; Esc kills pip and removes the half-made venv."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ..jobs import JobController, modal_step, start_modal
from ..preferences import get_prefs, runtime_parent, venv_dir
from ..runtime_formats import ResplatError
from ..runtime_process import default_python, install_commands, remove_tree


class InstallController(JobController):
    """Runs the install commands; progress = commands done plus pip's "Collecting"/"Installing"
    lines; removes the venv unless everything succeeded."""

    def __init__(self, context, base_python: str, venv: str, variant: str):
        super().__init__(context)
        self.venv = venv
        self.commands = install_commands(base_python, venv, str(runtime_parent()), variant)
        self.lines = 0

    def start(self) -> None:
        """Refuse an existing venv folder (never overwrite), then start the first command."""
        import os

        if os.path.exists(self.venv):
            raise ResplatError(f"{self.venv} already exists; remove it to reinstall")
        self.start_job(self.commands)

    def on_event(self, ev) -> None:
        """pip output lines move the bar (at most 95 % before the end)."""
        msg = str(ev.data.get("message", ""))
        if ev.kind == "log" and msg:
            self.lines += 1
            self.status = msg[:120]
            self.fraction = min(0.95, self.lines / 60)
            self.context.window_manager.progress_update(int(1000 * self.fraction))

    def cleanup(self, failed: bool) -> None:
        """A failed or cancelled install leaves no half-made venv."""
        if failed:
            remove_tree(self.venv)
        else:
            self.status = f"runtime installed in {self.venv}"


class RESPLAT_OT_install_runtime(bpy.types.Operator):
    """Create the add-on's runtime venv and install torch and the ReSplat runtime (Esc cancels)"""

    bl_idname = "resplat.install_runtime"
    bl_label = "Install Runtime"

    base_python: StringProperty(default="", options={"HIDDEN", "SKIP_SAVE"},
                                description="Interpreter that creates the venv (default: Blender's)")
    venv: StringProperty(default="", options={"HIDDEN", "SKIP_SAVE"}, description="venv folder (default: the add-on's)")

    def controller(self, context) -> InstallController:
        """The controller for this operator's settings (used by invoke and by tests)."""
        return InstallController(context, self.base_python or default_python(), self.venv or str(venv_dir()),
                                 get_prefs(context).torch_variant)

    def invoke(self, context, event):
        """Start the install and go modal."""
        self._ctl = self.controller(context)
        try:
            self._ctl.start()
        except ResplatError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return start_modal(self, context, self._ctl)

    def modal(self, context, event):
        """Esc cancels (pip killed, venv removed); timer events follow pip."""
        result = modal_step(self, context, event, self._ctl)
        if result != {"RUNNING_MODAL"} and result != {"PASS_THROUGH"}:
            get_prefs(context).status = self._ctl.error or self._ctl.status
        return result
