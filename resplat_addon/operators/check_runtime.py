"""Preferences > Check Runtime: run ``python -c`` in the runtime interpreter and show the
runtime version, torch version, the device the preferences' Device setting resolves to there (the
runtime's one rule, ``resplat.device.resolve_device``), and whether the runtime ships the embedded
model's weights (``runtime_process.check_runtime``)."""

from __future__ import annotations

import bpy

from ..preferences import get_prefs, interpreter
from ..runtime_formats import ResplatError
from ..runtime_process import check_runtime


class RESPLAT_OT_check_runtime(bpy.types.Operator):
    """Check that the runtime interpreter imports torch and resplat, and which device it finds"""

    bl_idname = "resplat.check_runtime"
    bl_label = "Check Runtime"

    def execute(self, context):
        """Probe the interpreter; the result goes to the preferences' status line and a report."""
        prefs = get_prefs(context)
        try:
            info = check_runtime(interpreter(prefs), prefs.device)
        except ResplatError as e:
            prefs.status = str(e)
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        embedded = "present" if info.get("embedded") else "missing (choose a checkpoint file)"
        device = info["device"] or f"unavailable ({info.get('device_error', '')})"
        prefs.status = (f"resplat {info['resplat']}, torch {info['torch']}, device {prefs.device}: {device}, "
                        f"embedded model {embedded}")
        self.report({"WARNING" if not info["device"] else "INFO"}, prefs.status)
        return {"FINISHED"}
