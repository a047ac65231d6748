"""Reading, writing and resampling photographs (Pillow), as sRGB-encoded float tensors.

Pixel values stay exactly as stored (sRGB-encoded for ordinary photos and PNG renders): no
colour-space conversion happens anywhere here; convert to linear light where a computation needs
it. Images are tensors [V, 3, H, W] float32 in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..errors import ViewsError
from ..formats.atomic import atomic_write


def _to_array(img: Image.Image, path, background: Sequence[float] | None) -> np.ndarray:
    """[H, W, 3] float32 in [0, 1] from any Pillow mode (8/16-bit, grey, palette, alpha)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale (older Pillow opens it as "I")
        grey = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=-1)
    if img.mode == "F":
        return np.repeat(np.clip(np.asarray(img, dtype=np.float32), 0, 1)[..., None], 3, axis=-1)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info)
    rgba = np.asarray(img.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if rgba.ndim != 3:
        raise ViewsError(f"{path}: unsupported image mode {img.mode}")
    rgb = rgba[..., :3]
    if has_alpha and background is not None:
        a = rgba[..., 3:]
        rgb = rgb * a + np.asarray(background, dtype=np.float32) * (1 - a)
    return np.ascontiguousarray(rgb)


def load_image(path: str | os.PathLike, background: Sequence[float] | None = None) -> Tensor:
    """One image as [3, H, W] float32 in [0, 1], values as stored (sRGB-encoded).

    Greyscale becomes 3 equal channels; 16-bit images are divided by 65535. An alpha channel is
    dropped: with ``background=None`` the stored colour is kept as is (alpha ignored); with a
    ``background`` (r, g, b) in [0, 1] the colour is composited over it in the stored encoding,
    ``c * a + background * (1 - a)`` (as nerfstudio does for Blender-NeRF scenes).

    Raises:
        ViewsError: the file is missing or not an image Pillow can read.
    """
    try:
        with Image.open(path) as img:
            img.load()
            arr = _to_array(img, path, background)
    except FileNotFoundError:
        raise ViewsError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ViewsError(f"{path}: cannot read image ({exc.__class__.__name__}: {exc})".replace("\n", " ")) from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def load_images(paths: Sequence[str | os.PathLike], background: Sequence[float] | None = None) -> Tensor:
    """Images [V, 3, H, W] float32 in [0, 1], sRGB-encoded as stored (see :func:`load_image` for
    greyscale, 16-bit and alpha handling).

    Raises:
        ViewsError: no paths; a file that cannot be read (named); a file whose size differs from
            the first one's (naming it and both sizes).
    """
    if len(paths) == 0:
        raise ViewsError("no images to load")
    out = []
    for p in paths:
        img = load_image(p, background)
        if out and img.shape != out[0].shape:
            raise ViewsError(
                f"{p}: image is {img.shape[2]}x{img.shape[1]} but {paths[0]} is {out[0].shape[2]}x{out[0].shape[1]}; all views must have one size"
            )
        out.append(img)
    return torch.stack(out)


def views_error(path: str, problem: str) -> ViewsError:
    """A :class:`ViewsError` "<path>: <problem>" (the error type of this package's atomic writes)."""
    return ViewsError(f"{path}: {problem}")


def save_image(path: str | os.PathLike, image: Tensor) -> None:
    """Write one image [3, H, W] (or [1, H, W]) with values in [0, 1] as an 8-bit file whose
    format follows the suffix (PNG recommended), rounding to nearest; values are stored as given
    (no colour conversion). Written to a temporary file in the same folder, then renamed, so a
    failure never leaves a half-written file.

    Raises:
        ViewsError: wrong shape, an unknown file suffix, or the file cannot be written.
    """
    path = Path(path)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ViewsError(f"{path}: image to save must have shape [3, H, W] or [1, H, W], got {list(image.shape)}")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ViewsError(f"{path}: unknown image file suffix {path.suffix!r}")
    arr = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    with atomic_write(path, error=views_error) as fh:
        pil.save(fh, format=fmt)


def resize_images(images: Tensor, width: int, height: int) -> Tensor:
    """Resample [V, C, H, W] images to ``height`` x ``width`` with antialiased bilinear filtering
    (``F.interpolate(..., antialias=True)``: a triangle filter widened by the scale factor when
    shrinking, i.e. area-like averaging; plain bilinear when enlarging). The whole image is scaled,
    so intrinsics scale with :meth:`resplat.cameras.Cameras.resized`.

    Raises:
        ViewsError: a non-positive size.
    """
    if width <= 0 or height <= 0:
        raise ViewsError(f"cannot resize images to {width}x{height}")
    if (height, width) == tuple(images.shape[-2:]):
        return images
    out = F.interpolate(images.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 1).to(images.dtype)
