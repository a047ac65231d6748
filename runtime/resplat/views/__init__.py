"""Posed views: photographs with pinhole cameras, read from nerfstudio / Blender-NeRF
``transforms.json`` or COLMAP sparse models, undistorted, and fitted to the sizes a model needs.

Images are [V, 3, H, W] float32 in [0, 1], sRGB-encoded as stored; cameras are
:class:`resplat.cameras.Cameras` (OpenCV axes, K in pixels with half-integer pixel centres).
"""

from .colmap import ColmapCamera, ColmapImage, read_colmap, read_colmap_model, write_colmap_model
from .depths import load_depth, load_depths, resize_depths, save_depth
from .images import load_image, load_images, resize_images, save_image
from .posed import PosedViews, crop, fit_to_multiple, resize
from .read import read_views
from .transforms_json import read_transforms_json, write_transforms_json
from .undistort import distort_normalized, opencv_coefficients, undistort_images

__all__ = [
    "ColmapCamera", "ColmapImage", "PosedViews", "crop", "distort_normalized", "fit_to_multiple",
    "load_depth", "load_depths", "resize_depths", "save_depth", "load_image", "load_images", "opencv_coefficients", "read_colmap", "read_colmap_model",
    "read_transforms_json", "read_views", "resize", "resize_images", "save_image",
    "undistort_images", "write_colmap_model", "write_transforms_json",
]
