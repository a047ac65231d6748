"""Operators, one per file (node_wrangler layout); :data:`CLASSES` in registration order."""

from .export_splat import EXPORT_SCENE_OT_resplat_splat
from .import_splat import IMPORT_SCENE_OT_resplat_splat, IO_FH_resplat_splat

CLASSES = (IMPORT_SCENE_OT_resplat_splat, IO_FH_resplat_splat, EXPORT_SCENE_OT_resplat_splat)

# the runtime process (preferences buttons, Reconstruct, Refine)
from .check_runtime import RESPLAT_OT_check_runtime  # noqa: E402
from .install_runtime import RESPLAT_OT_install_runtime  # noqa: E402
from .reconstruct import RESPLAT_OT_reconstruct  # noqa: E402
from .refine import RESPLAT_OT_refine  # noqa: E402

CLASSES += (RESPLAT_OT_check_runtime, RESPLAT_OT_install_runtime, RESPLAT_OT_reconstruct, RESPLAT_OT_refine)

# COLMAP / transforms.json cameras (File > Import, sidebar button)
from .import_cameras import IMPORT_SCENE_OT_resplat_cameras  # noqa: E402

CLASSES += (IMPORT_SCENE_OT_resplat_cameras,)
