"""Posed views (images + cameras) and the size changes a model needs (ReSplat: H, W multiples
of 64, the ReSplat release's DL3DV setting: H and W divisible by 64, docs/model-architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import ViewsError
from .depths import resize_depths
from .images import resize_images


@dataclass
class PosedViews:
    """V photographs with their cameras.

    Attributes:
        images: [V, 3, H, W] float32 in [0, 1], sRGB-encoded as stored (see :mod:`.images`).
        cameras: the V pinhole cameras (:class:`resplat.cameras.Cameras`, width W, height H);
            images are already undistorted to this pinhole model.
        paths: the V source image paths (strings), for messages and writers.
        depths: optional [V, 1, H, W] float32 z-depth in metres along each camera's +z axis,
            0 where unknown (:mod:`.depths`), e.g. Blender's depth pass; ``None`` without.

    Raises:
        ViewsError: the number of images, cameras, paths and depth maps or the sizes disagree.
    """

    images: Tensor
    cameras: Cameras
    paths: list[str] = field(default_factory=list)
    depths: Tensor | None = None

    def __post_init__(self) -> None:
        self.paths = [str(p) for p in self.paths]
        if self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ViewsError(f"images must have shape [V, 3, H, W], got {list(self.images.shape)}")
        v, _, h, w = self.images.shape
        if len(self.cameras) != v or len(self.paths) != v:
            raise ViewsError(f"{v} images, {len(self.cameras)} cameras and {len(self.paths)} paths: counts must match")
        if (self.cameras.width, self.cameras.height) != (w, h):
            raise ViewsError(f"images are {w}x{h} but cameras are {self.cameras.width}x{self.cameras.height}")
        if self.depths is not None and tuple(self.depths.shape) != (v, 1, h, w):
            raise ViewsError(f"depth maps must have shape [{v}, 1, {h}, {w}] like the images, got {list(self.depths.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def width(self) -> int:
        """Image width W in pixels."""
        return self.cameras.width

    @property
    def height(self) -> int:
        """Image height H in pixels."""
        return self.cameras.height

    def __getitem__(self, index) -> "PosedViews":
        """Select views by index, slice or list."""
        picked = torch.arange(len(self))[[index] if isinstance(index, int) else index].reshape(-1).tolist()
        depths = None if self.depths is None else self.depths[picked]
        return PosedViews(self.images[picked], self.cameras[picked], [self.paths[i] for i in picked], depths)


def resize(views: PosedViews, width: int, height: int) -> PosedViews:
    """Resample every image to ``width`` x ``height`` (antialiased bilinear, see
    :func:`.images.resize_images`) and scale K with :meth:`Cameras.resized` (exact for the
    half-integer pixel-centre convention); depth maps are resampled nearest-neighbour.

    Raises:
        ViewsError: a non-positive size.
    """
    images = resize_images(views.images, width, height)
    depths = None if views.depths is None else resize_depths(views.depths, width, height)
    return PosedViews(images, views.cameras.resized(width, height), views.paths, depths)


def crop(views: PosedViews, left: int, top: int, width: int, height: int) -> PosedViews:
    """Cut the window [left, left+width) x [top, top+height) from every image; the principal
    point moves by (-left, -top) exactly (:meth:`Cameras.cropped`).

    Raises:
        ViewsError: the window is not inside the images.
    """
    if left < 0 or top < 0 or width <= 0 or height <= 0 or left + width > views.width or top + height > views.height:
        raise ViewsError(f"crop {width}x{height}+{left}+{top} is outside the {views.width}x{views.height} images")
    images = views.images[:, :, top : top + height, left : left + width].contiguous()
    depths = None if views.depths is None else views.depths[:, :, top : top + height, left : left + width].contiguous()
    return PosedViews(images, views.cameras.cropped(left, top, width, height), views.paths, depths)


def fit_to_multiple(views: PosedViews, multiple: int = 64, mode: str = "crop") -> PosedViews:
    """Make H and W multiples of ``multiple`` pixels.

    Modes:
        ``"crop"``: the largest centred window whose sides are multiples (odd leftovers put the
            extra pixel on the right / bottom); no resampling, K's principal point shifts.
        ``"resize"``: resample to the nearest multiples (halves round up; at least one ``multiple``) with
            :func:`resize`; the aspect ratio may change slightly and K scales per axis.

    Raises:
        ViewsError: unknown mode, ``multiple`` < 1, or (crop) an image side below ``multiple``.
    """
    if multiple < 1:
        raise ViewsError(f"multiple must be a positive number of pixels, got {multiple}")
    w, h = views.width, views.height
    if mode == "crop":
        nw, nh = w // multiple * multiple, h // multiple * multiple
        if nw == 0 or nh == 0:
            raise ViewsError(f"images of {w}x{h} are smaller than {multiple} px and cannot be cropped to a multiple of it")
        return crop(views, (w - nw) // 2, (h - nh) // 2, nw, nh)
    if mode == "resize":
        nw = max(multiple, int(w / multiple + 0.5) * multiple)  # nearest, halves up
        nh = max(multiple, int(h / multiple + 0.5) * multiple)
        return resize(views, nw, nh)
    raise ViewsError(f"unknown fit mode {mode!r} (use 'crop' or 'resize')")
