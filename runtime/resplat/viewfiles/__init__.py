"""Posed-view files parsed with numpy and the standard library only (never torch), so the Blender
extension can read them too: COLMAP sparse models (:mod:`.colmap_model`), nerfstudio /
Blender-NeRF ``transforms.json`` (:mod:`.transforms_file`) and which of them a path names
(:mod:`.locate`). :mod:`resplat.views` builds posed views (images, undistortion, cameras) on them.
"""

from .colmap_model import (ColmapCamera, ColmapImage, colmap_w2c, pinhole_params, qvec_to_rotmat, read_colmap_model,
                           rotmat_to_qvec, write_colmap_model)
from .locate import ViewSource, locate_views
from .transforms_file import TransformsFrame, frame_intrinsics, read_frames

__all__ = [
    "ColmapCamera", "ColmapImage", "TransformsFrame", "ViewSource", "colmap_w2c", "frame_intrinsics",
    "locate_views", "pinhole_params", "qvec_to_rotmat", "read_colmap_model", "read_frames", "rotmat_to_qvec",
    "write_colmap_model",
]
