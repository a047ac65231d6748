"""Per-point input features of ReSplat's initial Gaussian regressor, on the latent grid.

Source: release ``encoder_resplat.py`` (``forward``, before the Gaussian regressor);
docs/model-architecture.md section 3.8. From the depth network's :class:`DepthOutput` and the
input images, on a grid of h x w = H / l x W / l latent points per view (l = ``latent_downsample``,
4 for DL3DV, 2 for RE10K):

- monocular: each of the four raw DINOv2 maps resized bilinearly (``align_corners=True``) to
  H/16 x W/16, pixel-shuffled by 16 / l (x4 -> D/16 channels, x8 -> D/64), concatenated;
- CNN: l = 4: the three maps resized bilinearly (``align_corners=True``) to h x w; l = 2: the
  coarser maps pixel-shuffled to 1/2 instead (u = 4: the 1/4 map x2; u = 8: 1/4 x2, 1/8 x4);
- multi-view transformer: resized to h x w (l = 4), pixel-shuffled x u/2 (l = 2);
- features = concat(mono, CNN, transformer); channels 608 (ViT-B) / 512 (ViT-S) for DL3DV,
  272 for base RE10K;
- image: raw [0, 1] RGB pixel-unshuffled by l (channel order c * l^2 + dy * l + dx);
- latent depth: the depth resized bilinearly (``align_corners=True``) by 1/l (1/(l/2) when the
  depth network ran at half resolution);
- match probability: max over candidates, nearest-resized to h x w.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ResplatError
from .config import ModelConfig
from .depth.output import DepthOutput


class LatentFeatureError(ResplatError, ValueError):
    """The depth output, images and configuration do not fit together (one line)."""


@dataclass
class LatentInputs:
    """Inputs of the Gaussian regressor on the latent grid (B*V maps of h x w).

    Attributes:
        image: [B*V, 3 l^2, h, w] pixel-unshuffled [0, 1] images.
        depth: [B, V, h, w] latent z-depth, metres.
        match_prob: [B*V, 1, h, w] matching confidence in (0, 1].
        features: [B*V, Fc, h, w] concat(mono, CNN, transformer) features.
    """

    image: Tensor
    depth: Tensor
    match_prob: Tensor
    features: Tensor

    def regressor_input(self) -> Tensor:
        """[B*V, 3 l^2 + 2 + Fc, h, w]: concat(image, depth, match_prob, features) (release order)."""
        b, v, h, w = self.depth.shape
        return torch.cat([self.image, self.depth.reshape(b * v, 1, h, w), self.match_prob, self.features], 1)

    def proj_input(self, regressor_out: Tensor) -> Tensor:
        """[B*V, C + 3 l^2 + Fc + 1, h, w]: concat(regressor_out, image, features, match_prob)."""
        return torch.cat([regressor_out, self.image, self.features, self.match_prob], 1)


def feature_channels(config: ModelConfig) -> int:
    """Fc, the channel count of :attr:`LatentInputs.features` for ``config`` (608 base DL3DV,
    512 small DL3DV, 272 base RE10K)."""
    d, c = config.vit_dim, config.feature_channels
    if config.latent_downsample == 4:
        return d // 4 + 64 + 96 + c + c
    if config.latent_downsample == 2 and config.upsample_factor == 4:
        return d // 64 * 4 + 64 + 96 + c // 4 + c // 4
    if config.latent_downsample == 2 and config.upsample_factor == 8:
        return d // 64 * 4 + 64 + 96 // 4 + c // 16 + c // 16
    raise LatentFeatureError(f"latent_downsample {config.latent_downsample} with upsample_factor "
                             f"{config.upsample_factor} is not a released configuration")


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def latent_inputs(depth: DepthOutput, images: Tensor, config: ModelConfig) -> LatentInputs:
    """Build the regressor inputs (module docstring) for one batch.

    Args:
        depth: the depth network's output for ``images`` (full- or half-resolution depth).
        images: [B, V, 3, H, W] float in [0, 1] (sRGB values as stored, not normalised).
        config: model configuration (``latent_downsample``, ``upsample_factor``,
            ``depth_half_res``).

    Returns:
        :class:`LatentInputs` on the grid h x w = H / l x W / l.

    Raises:
        LatentFeatureError: H or W not divisible by 16, or a configuration the release lacks.
    """
    b, v, _, H, W = images.shape
    l, u = config.latent_downsample, config.upsample_factor
    if H % 16 or W % 16:
        raise LatentFeatureError(f"image size {H}x{W} must be a multiple of 16 pixels")
    h, w = H // l, W // l
    feature_channels(config)  # validates the configuration
    mono = torch.cat([F.pixel_shuffle(_resize(m, (H // 16, W // 16)), 16 // l) for m in depth.mono_features], 1)
    cnn = list(depth.cnn_features)
    mv = depth.mv_features
    if l == 4:
        cnn = [_resize(f, (h, w)) for f in cnn]
        if tuple(mv.shape[-2:]) != (h, w):
            mv = _resize(mv, (h, w))
    else:
        cnn = [f if f.shape[-2] == h else F.pixel_shuffle(f, h // f.shape[-2]) for f in cnn]
        mv = F.pixel_shuffle(mv, h // mv.shape[-2])
    features = torch.cat([mono, *cnn, mv], 1)
    image = F.pixel_unshuffle(images.reshape(b * v, 3, H, W), l)
    # the release resizes by a scale factor; with align_corners=True only the output size matters
    step = l // 2 if config.depth_half_res else l
    d = depth.depth
    latent_depth = F.interpolate(d, size=(d.shape[-2] // step, d.shape[-1] // step), mode="bilinear",
                                 align_corners=True)
    if tuple(latent_depth.shape[-2:]) != (h, w):
        raise LatentFeatureError(f"depth map {tuple(d.shape[-2:])} does not give the {h}x{w} latent grid")
    match_prob = F.interpolate(depth.match_prob.reshape(b * v, 1, *depth.match_prob.shape[-2:]), size=(h, w),
                               mode="nearest")
    return LatentInputs(image, latent_depth, match_prob, features)
