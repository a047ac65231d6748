"""Textures for the synthetic scenes, as mip-mapped linear-RGB tiles: the CC0 / public-domain
photographs that scikit-image ships inside its wheel (nothing is downloaded) and a few procedural
patterns of the kind artists put on floors (Blender's Checker and Brick texture nodes, tiles,
stripes), whose repeating texels are the hard case of multi-view matching (every square looks
like its neighbour).

Licences (from each ``skimage.data`` function's docstring, scikit-image 0.26):

=====================  ==================================================================
``brick``, ``gravel``  CC0 (cc0textures.com "Bricks25", "Gravel04")
``grass``              CC0 (DeviantArt, linolafett "Grass 01")
``coffee``             CC0 (Rachel Michetti)
``chelsea``, ``cat``   CC0 (Stefan van der Walt)
``camera``             CC0 (Lav Varshney)
``clock``              public domain (Stefan van der Walt)
``astronaut``          public domain (NASA, flic.kr/p/r9qvLn)
``rocket``             public domain (SpaceX)
``hubble_deep_field``  public domain (NASA / hubblesite.org)
=====================  ==================================================================

Every photo is centre-cropped to a square, resampled to ``size`` x ``size`` texels, decoded from
sRGB to linear (IEC 61966-2-1 EOTF) and box-filtered into a mip pyramid down to 8 x 8 texels
(Williams 1983, "Pyramidal parametrics"), so that distant surfaces are sampled from a prefiltered
level instead of aliasing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: The skimage.data photographs used as textures (all CC0 or public domain, see above).
TEXTURE_NAMES = ("brick", "grass", "gravel", "coffee", "chelsea", "cat", "camera", "clock",
                 "astronaut", "rocket", "hubble_deep_field")
#: Textures that suit floors and walls (materials rather than subjects).
SURFACE_TEXTURES = ("brick", "grass", "gravel")
#: Procedural patterns, banked after the photos (texture index ``len(TEXTURE_NAMES) + k``):
#: 4 x 4 checker squares per tile at two contrasts, 4 x 4 light tiles with dark grout lines,
#: and 8 stripes per tile. Values are linear reflectances; scenes tint them.
PATTERN_NAMES = ("checker", "checker_soft", "tiles", "stripes")
#: Every texture of the bank, in bank order.
ALL_TEXTURES = TEXTURE_NAMES + PATTERN_NAMES


def pattern(name: str, size: int) -> Tensor:
    """Procedural pattern ``name`` (:data:`PATTERN_NAMES`) as float32 [3, size, size] linear
    reflectance in [0, 1], exactly periodic over the tile (so the bank's wrapping repeats it
    seamlessly). Raises ValueError for an unknown name."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # texel centres in [0, 1)
    y, x = torch.meshgrid(c, c, indexing="ij")
    if name in ("checker", "checker_soft"):
        odd = (torch.floor(x * 4) + torch.floor(y * 4)) % 2
        lo, hi = (0.06, 0.8) if name == "checker" else (0.35, 0.65)
        img = lo + (hi - lo) * odd
    elif name == "tiles":
        fx, fy = (x * 4) % 1, (y * 4) % 1
        grout = (fx < 0.06) | (fy < 0.06)
        img = torch.where(grout, torch.full_like(x, 0.08), torch.full_like(x, 0.7))
    elif name == "stripes":
        img = 0.1 + 0.6 * (torch.floor(x * 8) % 2)
    else:
        raise ValueError(f"unknown pattern {name!r}; known: {', '.join(PATTERN_NAMES)}")
    return img[None].expand(3, size, size).contiguous()


def srgb_to_linear(x: Tensor) -> Tensor:
    """sRGB EOTF (IEC 61966-2-1): encoded values in [0, 1] -> linear light, same shape/dtype."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    """sRGB OETF (IEC 61966-2-1): linear light, clamped to [0, 1] -> encoded values in [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


@dataclass
class TextureBank:
    """T square textures with mip pyramids, flattened for vectorised gathers.

    Attributes:
        texels: [sum over textures and levels of s*s, 3] float32 linear RGB.
        offsets: [T, L] int64 row of each texture's level in ``texels``.
        sizes: [L] int64 edge length of each level (size, size/2, ..., 8).
        names: the T skimage.data names.
    """

    texels: Tensor
    offsets: Tensor
    sizes: Tensor
    names: tuple[str, ...]

    @property
    def levels(self) -> int:
        """L, the number of mip levels."""
        return int(self.sizes.shape[0])

    def index(self, name: str) -> int:
        """Texture index of the skimage.data photo ``name`` (ValueError if absent)."""
        return self.names.index(name)

    def sample(self, tex: Tensor, u: Tensor, v: Tensor, level: Tensor) -> Tensor:
        """Bilinear, wrapping lookup.

        Args:
            tex: [N] int64 texture index.
            u, v: [N] float texture coordinates in tiles (1.0 = one texture width; any real value,
                the texture repeats); v grows downwards in the photo.
            level: [N] float mip level (0 = full resolution); rounded to the nearest level.

        Returns:
            [N, 3] float32 linear RGB.
        """
        lvl = level.round().clamp(0, self.levels - 1).long()
        s = self.sizes[lvl]
        base = self.offsets[tex, lvl]
        sf = s.to(u.dtype)
        x = u * sf - 0.5
        y = v * sf - 0.5
        x0, y0 = torch.floor(x), torch.floor(y)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        x0 = torch.remainder(x0.long(), s)
        y0 = torch.remainder(y0.long(), s)
        x1 = torch.remainder(x0 + 1, s)
        y1 = torch.remainder(y0 + 1, s)
        t = self.texels
        c00 = t[base + y0 * s + x0]
        c01 = t[base + y0 * s + x1]
        c10 = t[base + y1 * s + x0]
        c11 = t[base + y1 * s + x1]
        return (c00 * (1 - fx) + c01 * fx) * (1 - fy) + (c10 * (1 - fx) + c11 * fx) * fy


def _square_rgb(arr: np.ndarray) -> Tensor:
    """uint8 [H, W] or [H, W, C] -> float [3, S, S] sRGB in [0, 1], centre-cropped square."""
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    arr = arr[top:top + s, left:left + s]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0


@functools.lru_cache(maxsize=4)
def texture_bank(size: int = 256, names: tuple[str, ...] = ALL_TEXTURES) -> TextureBank:
    """Load (once per process) the textures ``names`` (skimage.data photos, or
    :data:`PATTERN_NAMES`) as a :class:`TextureBank` with ``size`` x ``size`` (a power of two
    >= 8) base level. Deterministic."""
    import skimage.data

    if size < 8 or size & (size - 1):
        raise ValueError(f"texture size must be a power of two >= 8, got {size}")
    n_levels = int(math.log2(size)) - 2
    rows, offsets, start = [], [], 0
    for name in names:
        if name in PATTERN_NAMES:
            lin = pattern(name, size)[None]
        else:
            img = _square_rgb(getattr(skimage.data, name)())[None]
            img = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            lin = srgb_to_linear(img.clamp(0, 1))
        offs = []
        for _ in range(n_levels):
            offs.append(start)
            rows.append(lin[0].permute(1, 2, 0).reshape(-1, 3))
            start += lin.shape[-1] * lin.shape[-2]
            lin = F.avg_pool2d(lin, 2)
        offsets.append(offs)
    sizes = torch.tensor([size >> i for i in range(n_levels)], dtype=torch.long)
    return TextureBank(torch.cat(rows).contiguous(), torch.tensor(offsets, dtype=torch.long), sizes, tuple(names))
