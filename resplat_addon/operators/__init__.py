"""Operators, one per file (node_wrangler layout); :data:`CLASSES` in registration order."""

from .export_splat import EXPORT_SCENE_OT_resplat_splat
from .import_splat import IMPORT_SCENE_OT_resplat_splat, IO_FH_resplat_splat

CLASSES = (IMPORT_SCENE_OT_resplat_splat, IO_FH_resplat_splat, EXPORT_SCENE_OT_resplat_splat)
