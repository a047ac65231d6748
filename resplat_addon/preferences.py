"""Add-on preferences: the runtime interpreter, default checkpoint file, device, and the Check / Install
runtime buttons (operators in ``operators/check_runtime.py`` and ``operators/install_runtime.py``).

The default interpreter is the add-on's own venv under
``bpy.utils.extension_path_user(<extension>, create=True)/venv``
when it exists (the extension's writable data, as Blender's extension manual asks).
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from .runtime_formats import defaults as D
from .runtime_process import venv_python

#: The extension's package (``bl_ext.<repo>.resplat``): preferences are registered under it.
ADDON_ID = __package__.rpartition(".")[0]
#: the runtime's device names; Auto's text is the runtime's rule (resplat.device.resolve_device)
DEVICES = (("auto", "Auto", D.DEVICE_AUTO_TEXT), ("cpu", "CPU", ""), ("cuda", "CUDA", ""), ("mps", "MPS", "Apple Metal"))


def venv_dir() -> Path:
    """The add-on's runtime venv folder (user data of the extension; may not exist yet)."""
    return Path(bpy.utils.extension_path_user(ADDON_ID, create=True)) / "venv"


def runtime_parent() -> Path:
    """The extension's bundled ``runtime`` folder (holds the ``resplat`` package)."""
    return Path(__file__).resolve().parents[1] / "runtime"


class RESPLAT_AP_preferences(bpy.types.AddonPreferences):
    """Runtime settings of the ReSplat extension."""

    bl_idname = ADDON_ID

    python: StringProperty(name="Runtime Python", subtype="FILE_PATH", default="",
                           description="Python interpreter with torch and the resplat runtime "
                                       "(empty: the add-on's own venv, made by Install Runtime)")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH", default="",
                               description="ReSplat checkpoint (.safetensors/.pth) used when the panel's Model is "
                                           "Checkpoint File and names none")
    device: EnumProperty(name="Device", items=DEVICES, default="auto")
    torch_variant: EnumProperty(name="Torch", items=(("CPU", "CPU", ""), ("CUDA", "CUDA", ""), ("MPS", "MPS (Apple)", "")),
                                default="CPU", description="torch build installed by Install Runtime")
    status: StringProperty(name="Status", default="not checked", options={"SKIP_SAVE"})

    def draw(self, context):
        """Interpreter, checkpoint, device; Check and Install buttons with the last status."""
        layout = self.layout
        layout.prop(self, "python")
        layout.label(text=f"Using: {interpreter(self) or 'none (install the runtime)'}")
        layout.prop(self, "checkpoint")
        layout.label(text="Reconstruct uses the embedded model unless the panel's Model says otherwise", icon="INFO")
        layout.prop(self, "device")
        row = layout.row()
        row.operator("resplat.check_runtime")
        row.prop(self, "torch_variant", text="")
        row.operator("resplat.install_runtime")
        layout.label(text=self.status)


def interpreter(prefs) -> str:
    """The interpreter to run: the preference, else the add-on venv's python if it exists, else ""."""
    if prefs.python:
        return bpy.path.abspath(prefs.python)
    py = venv_python(venv_dir())
    return str(py) if py.is_file() else ""


def job_device(settings, prefs) -> str:
    """The runtime device of a job: the panel's choice, or the preferences' when it is "PREFS"."""
    return prefs.device if settings.device == "PREFS" else settings.device


def get_prefs(context=None):
    """This add-on's preferences object."""
    context = context or bpy.context
    return context.preferences.addons[ADDON_ID].preferences
