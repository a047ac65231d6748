"""Posed-view files parsed with numpy and the standard library only (never torch), so the Blender
extension can read them too: COLMAP sparse models (:mod:`.colmap_model`), nerfstudio /
Blender-NeRF ``transforms.json`` (:mod:`.transforms_file`), which of them a path names
(:mod:`.locate`) and distortion coefficients in OpenCV's order (:mod:`.distortion`). :mod:`resplat.views` builds posed views (images, undistortion, cameras) on them.
"""

from .colmap_model import (ColmapCamera, ColmapImage, colmap_w2c, pinhole_params, qvec_to_rotmat, read_colmap_model,
                           rotmat_to_qvec, write_colmap_model)
from .distortion import DISTORTION_MODELS, OPENCV_KEYS, opencv5
from .locate import ViewSource, locate_views
from .transforms_file import (TransformsFrame, frame_intrinsics, read_frames, transforms_document,
                              write_transforms_document)

__all__ = [
    "DISTORTION_MODELS", "OPENCV_KEYS", "ColmapCamera", "ColmapImage", "TransformsFrame", "ViewSource", "colmap_w2c",
    "frame_intrinsics", "locate_views", "opencv5", "pinhole_params", "qvec_to_rotmat", "read_colmap_model", "read_frames",
    "rotmat_to_qvec", "transforms_document", "write_colmap_model", "write_transforms_document",
]
