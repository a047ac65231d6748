"""ReSplat for Blender: the extension's entry point (Blender loads this package).

It only registers :mod:`resplat_addon`, where everything lives (node_wrangler layout: this file
registers, operators live one per file under ``resplat_addon/operators/``).
"""

from . import resplat_addon


def register():
    """Register the add-on's classes and menu entries (Blender calls this on enable)."""
    resplat_addon.register()


def unregister():
    """Undo :func:`register` (Blender calls this on disable/uninstall)."""
    resplat_addon.unregister()
