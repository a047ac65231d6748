"""Assembly and forward pass of the ReSplat depth network ``depth_predictor``.

Source: DepthSplat's ``MultiViewUniMatch`` (Xu et al., CVPR 2025) as configured and called by
the ReSplat release (``encoder_resplat.py``: ``num_scales=1, sample_log_depth=True,
return_raw_mono_features=True, attn_splits_list=[2]``, nearest-view matrix for V > 3,
half-resolution depth for the 16-view model); docs/model-architecture.md sections 2-3 and 12.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ResplatError
from ..amp import autocast
from ..config import ModelConfig, get_config
from .backbone import CNNEncoder
from .cost_volume import correlation_cost_volume, log_depth_candidates, neighbour_views
from .dpt import DPTHead
from .mono_cnn import MonoCNN
from .mv_transformer import MultiViewFeatureTransformer
from .output import DepthOutput
from .unet import UNetModel
from .vit import DINOv2
from .windows import add_window_position

#: ImageNet statistics used to normalise the [0, 1] images (CNN, transformer and ViT).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: DINOv2 blocks whose outputs feed the DPT upsampler and the Gaussian regressor.
VIT_BLOCKS = (2, 5, 8, 11)
#: Neighbour views per view in the cost volume and cross-attention when V > 3 (``local_mv_match``).
NUM_NEIGHBOURS = 2


class DepthInputError(ResplatError, ValueError):
    """Unusable input to :class:`DepthPredictor` (shapes, sizes, depth range)."""


class DepthRegressor(nn.Sequential):
    """``regressor.0``: Conv3x3(in -> 128), GroupNorm(8), GELU, U-Net (cross-view attention; its
    GroupNorms have ``unet_groups`` groups), Conv3x3; ``forward(x, num_views)``
    [B*V, in, h, w] -> [B*V, 128, h, w]."""

    def __init__(self, in_channels: int, channels: int = 128, unet_groups: int = 8):
        super().__init__(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.GELU(),
            UNetModel(channels, groups=unet_groups),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor, num_views: int) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, num_views) if isinstance(layer, UNetModel) else layer(x)
        return x


def _resize(x: Tensor, size: tuple[int, int] | None = None, scale: float | None = None) -> Tensor:
    """Bilinear, align_corners=True (the release's resize everywhere in the depth network)."""
    return F.interpolate(x, size=size, scale_factor=scale, mode="bilinear", align_corners=True)


def window_splits(feature_width: int) -> int:
    """Swin windows per side of the multi-view transformer: 2, raised to 4 above a 1/u feature
    width of 96 and to 8 above 192 (the positional encoding always uses 2)."""
    return 8 if feature_width > 192 else 4 if feature_width > 96 else 2


def vit_input_size(h: int, w: int, max_width: int = 560) -> tuple[int, int]:
    """(height, width) the ViT sees for an h x w image: multiples of 14; width capped at
    ``max_width`` // 14 * 14 with height int(h / w * max_width) // 14 * 14 when w > max_width,
    else h // 14 * 14, w // 14 * 14 (release ``max_mono_vit_input_size``)."""
    if w > max_width:
        return int((h / w) * max_width) // 14 * 14, max_width // 14 * 14
    return h // 14 * 14, w // 14 * 14


class DepthPredictor(nn.Module):
    """The ReSplat depth network: per-view z-depth plus the features the Gaussian part reads.

    Children (state-dict names of the release): ``backbone`` (UniMatch CNN), ``transformer``
    (6-layer multi-view swin transformer), ``pretrained`` (DINOv2 ViT-S/B), ``regressor``,
    ``regressor_residual``, ``depth_head`` (one-element ModuleLists, ``num_scales=1``) and
    ``upsampler`` (DPT head). ``state_dict()`` equals the manifest entries
    ``encoder.depth_predictor.*`` of the config's preset.

    Args:
        config: a :class:`ModelConfig` or preset name. Uses ``upsample_factor`` (u),
            ``num_depth_candidates`` (D), ``vit_type``, ``feature_channels``,
            ``num_transformer_layers``, ``unet_channels``, ``unet_norm_groups``, ``depth_half_res``,
            ``mono_max_width``.
        amp: run the CNN, transformers, ViT, regressor and upsampler under bf16 autocast when
            the input is on CUDA (as the release does); never on CPU.
    """

    def __init__(self, config: ModelConfig | str, amp: bool = True):
        super().__init__()
        self.config = cfg = get_config(config)
        self.amp = amp
        u, c = cfg.upsample_factor, cfg.feature_channels
        self.backbone = CNNEncoder(output_dim=c, lowest_scale=u)
        self.transformer = MultiViewFeatureTransformer(cfg.num_transformer_layers, c, ffn_expansion=4)
        self.pretrained = MonoCNN(cfg.vit_dim) if cfg.vit_type == "cnn" else DINOv2(cfg.vit_dim, cfg.vit_heads)
        in_channels = cfg.num_depth_candidates + 128 + c + cfg.vit_dim
        self.regressor = nn.ModuleList([DepthRegressor(in_channels, cfg.unet_channels, cfg.unet_norm_groups)])
        self.regressor_residual = nn.ModuleList([nn.Conv2d(in_channels, cfg.unet_channels, 1)])
        self.depth_head = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(cfg.unet_channels, 2 * cfg.unet_channels, 3, padding=1, padding_mode="replicate"),
                nn.GELU(),
                nn.Conv2d(2 * cfg.unet_channels, cfg.num_depth_candidates, 3, padding=1, padding_mode="replicate"),
            )
        ])
        self.upsampler = DPTHead(cfg.vit_dim, cfg.dpt_features, cfg.dpt_out_channels, downsample_factor=u)

    def _check(self, images: Tensor, intrinsics: Tensor, c2w: Tensor, near: Tensor, far: Tensor) -> None:
        if images.dim() != 5 or images.shape[2] != 3:
            raise DepthInputError(f"depth predictor: images must be [B, V, 3, H, W], got {tuple(images.shape)}")
        b, v, _, h, w = images.shape
        if v < 2:
            raise DepthInputError(f"depth predictor: needs at least 2 views, got {v}")
        for name, t, shape in (("intrinsics", intrinsics, (b, v, 3, 3)), ("c2w", c2w, (b, v, 4, 4)),
                               ("near", near, (b, v)), ("far", far, (b, v))):
            if tuple(t.shape) != shape:
                raise DepthInputError(f"depth predictor: {name} must be {list(shape)}, got {list(t.shape)}")
        u = self.config.upsample_factor
        f = 2 if self.config.depth_half_res else 1
        # the CNN needs multiples of u and the U-Net two halvings of the 1/u map; the swin
        # windows (2, 4 or 8 per side, by the 1/u width) must divide the 1/u map
        m = 4 * u * f
        fh, fw = h // (u * f), w // (u * f)
        splits = window_splits(fw)
        if h % m or w % m or fh % splits or fw % splits:
            raise DepthInputError(
                f"depth predictor: image size {h}x{w} must be a multiple of {m} pixels and its 1/{u * f} "
                f"feature map ({fh}x{fw}) divisible into {splits}x{splits} windows"
            )
        if not (torch.all(near > 0) and torch.all(far > near)):
            raise DepthInputError("depth predictor: need 0 < near < far for every view")

    def forward(self, images: Tensor, intrinsics: Tensor, c2w: Tensor, near: Tensor, far: Tensor) -> DepthOutput:
        """Predict depth and matching features.

        Args:
            images: [B, V, 3, H, W] float in [0, 1] (sRGB as stored; ImageNet normalisation is
                applied here).
            intrinsics: [B, V, 3, 3] normalised (row 0 divided by W, row 1 by H).
            c2w: [B, V, 4, 4] camera-to-world, OpenCV axes, metres (the caller re-expresses
                poses relative to the middle view, as the release does).
            near, far: [B, V] depth range in metres of the log-depth plane sweep.

        Returns a :class:`DepthOutput`. With ``config.depth_half_res`` the network runs on the
        images resized x0.5 (bilinear, align_corners=True): ``depth`` is then at H/2 x W/2 and
        every feature map and ``match_probs`` is resized x2 (bilinear, align_corners=True) back
        to the full-resolution grid (release ``encoder_resplat.py``), ``match_prob`` being the
        max over those resized probabilities.

        Raises:
            DepthInputError: wrong shapes, H or W not a multiple of 4u (8u with half-resolution
                depth) or a 1/u map the swin windows do not divide, fewer than 2 views, or not
                0 < near < far.
        """
        self._check(images, intrinsics, c2w, near, far)
        cfg = self.config
        b, v = images.shape[:2]
        x = images.flatten(0, 1)
        if cfg.depth_half_res:
            x = _resize(x, scale=0.5)
        h, w = x.shape[-2:]
        # float32 constants, as in the release (matters at float64 precision only)
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).to(x).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).to(x).view(1, 3, 1, 1)
        x = (x - mean) / std
        amp = autocast(x.device, self.amp)
        neighbours = neighbour_views(c2w, NUM_NEIGHBOURS)

        with amp:
            cnn = self.backbone(x)  # high -> low resolution
        low = cnn[-1]
        fh, fw = low.shape[-2:]
        tokens = add_window_position(low, 2)
        splits = window_splits(fw)
        with amp:
            mv = self.transformer(tokens.view(b, v, *tokens.shape[1:]), neighbours, splits)
        mv_flat = mv.flatten(0, 1)

        with amp:
            if cfg.vit_type == "cnn":  # tiny preset: the CNN sees the images as they are
                raw_mono = self.pretrained.intermediate_maps(x)
            else:
                vh, vw = vit_input_size(h, w, cfg.mono_max_width)
                raw_mono = self.pretrained.intermediate_maps(_resize(x, size=(vh, vw)), VIT_BLOCKS)
        mono_eighth = [_resize(m, size=(h // 8, w // 8)) for m in raw_mono]
        mono_low = mono_eighth[-1] if cfg.upsample_factor == 8 else _resize(mono_eighth[-1], scale=2)

        u = cfg.upsample_factor
        k_feat = intrinsics.clone()
        k_feat[:, :, 0] = k_feat[:, :, 0] * w / u
        k_feat[:, :, 1] = k_feat[:, :, 1] * h / u
        log_d = log_depth_candidates(near, far, cfg.num_depth_candidates)  # [B, V, D]
        cost = correlation_cost_volume(mv, k_feat, c2w, neighbours, log_d)
        concat = torch.cat((cost, low, mv_flat, mono_low), dim=1)
        with amp:
            out = self.regressor[0](concat, v) + self.regressor_residual[0](concat)
        out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
        match_probs = torch.softmax(self.depth_head[0](out), dim=1)  # [BV, D, h, w]
        log_depth = (match_probs * log_d.reshape(b * v, -1, 1, 1).to(match_probs.dtype)).sum(1, keepdim=True)

        with amp:
            residual = self.upsampler(mono_eighth, cnn, mv_flat, log_depth)
        log_full = _resize(log_depth, scale=u) + residual
        lo = torch.log(near).reshape(b * v, 1, 1, 1).to(log_full.dtype)
        hi = torch.log(far).reshape(b * v, 1, 1, 1).to(log_full.dtype)
        depth = torch.exp(log_full.clamp(min=lo, max=hi)).view(b, v, h, w)

        if cfg.depth_half_res:
            cnn = [_resize(f, scale=2) for f in cnn]
            mv_flat = _resize(mv_flat, scale=2)
            raw_mono = [_resize(m, scale=2) for m in raw_mono]
            mono_eighth = [_resize(m, scale=2) for m in mono_eighth]
            match_probs = _resize(match_probs, scale=2)
        match_probs = match_probs.view(b, v, *match_probs.shape[1:])
        return DepthOutput(
            depth=depth,
            match_prob=match_probs.max(dim=2, keepdim=True).values,
            match_probs=match_probs,
            cnn_features=cnn,
            mv_features=mv_flat,
            mono_features=raw_mono,
            mono_intermediate=mono_eighth,
        )
