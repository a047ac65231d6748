"""The ReSplat Blender add-on: registration of operators and menu entries.

Layout (glTF-IO / node_wrangler): ``operators/`` one operator per file; ``splats/`` the splat
point clouds (pure schema/transform code apart from bpy glue); ``runtime_formats`` the bundled
runtime's torch-free format code. Blender never imports torch.
"""

import bpy

from .operators import CLASSES, export_splat, import_cameras, import_splat
from . import settings
from .panel import RESPLAT_UL_cameras, VIEW3D_PT_resplat
from .preferences import RESPLAT_AP_preferences


def register():
    """Register classes and the File > Import / Export entries."""
    bpy.utils.register_class(RESPLAT_AP_preferences)
    settings.register()
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.utils.register_class(RESPLAT_UL_cameras)
    bpy.utils.register_class(VIEW3D_PT_resplat)
    bpy.types.TOPBAR_MT_file_import.append(import_splat.menu_func)
    bpy.types.TOPBAR_MT_file_import.append(import_cameras.menu_func)
    bpy.types.TOPBAR_MT_file_export.append(export_splat.menu_func)


def unregister():
    """Undo :func:`register`."""
    bpy.types.TOPBAR_MT_file_export.remove(export_splat.menu_func)
    bpy.types.TOPBAR_MT_file_import.remove(import_cameras.menu_func)
    bpy.types.TOPBAR_MT_file_import.remove(import_splat.menu_func)
    bpy.utils.unregister_class(VIEW3D_PT_resplat)
    bpy.utils.unregister_class(RESPLAT_UL_cameras)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    settings.unregister()
    bpy.utils.unregister_class(RESPLAT_AP_preferences)
