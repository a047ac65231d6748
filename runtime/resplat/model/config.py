"""Model configurations: the released presets of ReSplat and their constructor flags.

Values are those of the release's configs (``config/model/encoder/resplat.yaml`` and
``config/experiment/{dl3dv,re10k}.yaml``; see docs/model-architecture.md section 1). A preset's
:func:`resplat.model.build_model` state dict matches ``manifests/<preset>.json`` key by key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..npmath import sh_coeff_count

#: Raw values per Gaussian before its SH block, in the Gaussian head's order: rotation (xyzw),
#: scale, opacity, pixel offset (release layout; the SH follow, 3 (degree + 1)^2 values).
PARAMETER_BLOCKS = (4, 3, 1, 2)
#: The updater's per-Gaussian parameter vector before its SH block: means, scales, quaternion
#: (xyzw), opacity logit (the release's ``prev_gaussians_concat``; the SH follow, channel-major).
UPDATE_BLOCKS = (3, 3, 4, 1)

#: DINOv2 widths and head counts per ViT type (Oquab et al. 2023).
VIT_DIMS = {"vits": (384, 6), "vitb": (768, 12), "vitl": (1024, 16), "cnn": (64, 0)}
#: DPT upsampler (features F, out channels O) per ViT type, as the release (DepthSplat) sets them.
DPT_CHANNELS = {"vits": (32, (48, 96, 192, 384)), "vitb": (48, (96, 192, 384, 768)), "vitl": (64, (128, 256, 512, 1024)),
                "cnn": (32, (32, 64, 96, 128))}


@dataclass(frozen=True)
class ModelConfig:
    """Constructor and forward flags of one ReSplat model.

    Attributes:
        name: preset name.
        vit_type: DINOv2 monocular branch, "vits" or "vitb" (or "vitl"); "cnn" replaces it by the
            small from-scratch :class:`~resplat.model.depth.mono_cnn.MonoCNN` (D = 64; tiny preset).
        regressor_channels: C, width of the Gaussian regressor and point transformer.
        upsample_factor: u, stride of the CNN/transformer features and of the DPT upsampler (8 or 4).
        latent_downsample: one latent point per ``latent_downsample``^2 pixels (4 DL3DV, 2 RE10K).
        gaussians_per_point: Gaussians per latent point (1 DL3DV, 4 RE10K: one per pixel).
        scale_max: upper clamp of the Gaussian scales (metres; 3.0 for the 16-view model).
        scale_mode: how the head's scale outputs become sizes (:func:`resplat.model.initial.activate`):
            "absolute" (the release: ``softplus(raw - 4)`` in model units, so a model serves
            one image resolution) or "footprint" (the same times ``FOOTPRINT_GAIN`` times the
            footprint of the Gaussian's grid cell, ``z * cell / f``, as pixelSplat / MVSplat
            scale by depth and pixel size: sizes follow the resolution and the depth; tiny).
        update_mode: units of the updater's mean and scale steps (:meth:`resplat.model.updater.
            Updater.step`): "absolute" (the release: model units, so the steps learnt at one
            resolution are too large at a finer one) or "footprint" (multiples of
            ``FOOTPRINT_GAIN`` times the Gaussian's cell footprint at its current depth in its
            own view, and the scales it reads in those units too: steps follow the resolution
            and the depth, as the "footprint" sizes; tiny).
        depth_half_res: run depth on half-resolution images (16-view 540x960 model).
        near, far: depth range of the plane sweep, metres, with ``frame_scale="metric"``
            (the released presets; after pose normalisation); else the rasteriser's clip range.
        frame_scale: how the model frame is scaled (:mod:`resplat.model.frame`): "metric" (the
            release: metres, fixed near/far) or "lookat" (scale-free: the cameras sit
            ``frame_distance`` units from what they look at, near/far per scene).
        frame_distance: model-frame distance of the cameras to their look-at point ("lookat").
        lookat_range: (near, far) in multiples of ``frame_distance`` when no depth map gives
            the range and the cameras converge on a look-at point ("lookat").
        baseline_depth_ratio: with neither depth maps nor a look-at point (forward-facing rigs),
            the scene's typical depth is taken as this many rig baselines ("lookat"; a prior,
            :mod:`resplat.model.frame`).
        baseline_range: (near, far) in multiples of ``frame_distance`` in that case (wider:
            the depth is a guess).
        num_depth_candidates: plane-sweep candidates, uniform in log depth.
        feature_channels: CNN / multi-view transformer width.
        num_transformer_layers: multi-view transformer layers.
        unet_channels: depth U-Net width.
        unet_norm_groups: groups of every GroupNorm inside the depth U-Net (ResBlocks, attention,
            output layer): 8 in the release (``ldm_unet/util.py`` ``normalization()`` returns
            ``GroupNorm8(8, C)``), 32 for ``tiny`` (its weights were trained so). Not visible in
            any weight shape: a wrong value loads strictly and gives wrong depth.
        pt_knn, pt_blocks: neighbours and blocks of the initial point transformer.
        attn_proj_channels: q/k/v width of the kNN attention.
        update_knn, update_blocks: neighbours and blocks of the updater's point transformer.
        state_channels: hidden state width of the updater.
        error_channels: width of the rendering-error features.
        sh_degree: SH degree of the predicted Gaussians.
        size_multiple: input H and W must be multiples of this (pixels).
        default_iterations: recurrent iterations used by the release at test time.
        mono_max_width: the ViT input is resized to at most this width (pixels).
    """

    name: str
    vit_type: str = "vitb"
    regressor_channels: int = 512
    upsample_factor: int = 8
    latent_downsample: int = 4
    gaussians_per_point: int = 1
    scale_max: float = 1.0
    scale_mode: str = "absolute"
    update_mode: str = "absolute"
    depth_half_res: bool = False
    near: float = 0.01
    far: float = 200.0
    frame_scale: str = "metric"
    frame_distance: float = 4.0
    lookat_range: tuple[float, float] = (0.1, 5.0)
    baseline_depth_ratio: float = 8.0
    baseline_range: tuple[float, float] = (0.1, 5.0)
    num_depth_candidates: int = 128
    feature_channels: int = 128
    num_transformer_layers: int = 6
    unet_channels: int = 128
    unet_norm_groups: int = 8
    pt_knn: int = 16
    pt_blocks: int = 6
    attn_proj_channels: int = 64
    update_knn: int = 8
    update_blocks: int = 4
    state_channels: int = 512
    error_channels: int = 256
    sh_degree: int = 3
    size_multiple: int = 64
    default_iterations: int = 2
    mono_max_width: int = 560

    @property
    def vit_dim(self) -> int:
        return VIT_DIMS[self.vit_type][0]

    @property
    def vit_heads(self) -> int:
        return VIT_DIMS[self.vit_type][1]

    @property
    def dpt_features(self) -> int:
        return DPT_CHANNELS[self.vit_type][0]

    @property
    def dpt_out_channels(self) -> tuple[int, ...]:
        return DPT_CHANNELS[self.vit_type][1]

    @property
    def sh_channels(self) -> int:
        """SH coefficients per Gaussian: 3 colour channels x (degree + 1)^2."""
        return 3 * sh_coeff_count(self.sh_degree)

    @property
    def gaussian_channels(self) -> int:
        """Raw head outputs per Gaussian: :data:`PARAMETER_BLOCKS` (rotation 4, scale 3, opacity 1,
        offset 2) + SH."""
        return sum(PARAMETER_BLOCKS) + self.sh_channels

    @property
    def update_channels(self) -> int:
        """Per-Gaussian parameter vector of the updater: :data:`UPDATE_BLOCKS` (means 3, scales 3,
        quat 4, opacity 1) + SH."""
        return sum(UPDATE_BLOCKS) + self.sh_channels


PRESETS: dict[str, ModelConfig] = {
    "small-dl3dv": ModelConfig("small-dl3dv", vit_type="vits", regressor_channels=256),
    "base-dl3dv": ModelConfig("base-dl3dv"),
    "base-re10k": ModelConfig(
        "base-re10k", upsample_factor=4, latent_downsample=2, gaussians_per_point=4, far=100.0, size_multiple=16,
    ),
}
#: Our CPU-sized preset trained from scratch on this project's synthetic data: same architecture family and interfaces,
#: a small CNN instead of DINOv2, narrow regressor/U-Net/updater, 32 depth candidates, 2
#: transformer layers; about 5M parameters (measured in tests/test_train_tiny_preset.py); scale-free
#: model frame (resplat.model.frame) with a wider depth range than the look-at default and the
#: forward-rig prior of the generator's rigs; sizes relative to the grid-cell footprint, so one
#: model serves every resolution. Stored configs lacking a field read the dataclass default, so
#: the first shipped weights (stored without ``frame_scale`` / ``scale_mode``) load with the
#: metric frame and absolute sizes they were trained with, and weights stored without
#: ``update_mode`` with the absolute updater steps they were trained with.
PRESETS["tiny"] = ModelConfig(
    "tiny", vit_type="cnn", regressor_channels=64, num_depth_candidates=32, num_transformer_layers=2,
    unet_channels=64, unet_norm_groups=32, pt_blocks=2, update_blocks=2, state_channels=128, frame_scale="lookat",
    scale_mode="footprint", update_mode="footprint", lookat_range=(0.1, 8.0), baseline_depth_ratio=40.0, baseline_range=(0.05, 20.0),
)
#: The 16-view 540x960 DL3DV model: base-dl3dv weights, half-resolution depth, scale max 3.
PRESETS["base-dl3dv-16view"] = replace(PRESETS["base-dl3dv"], name="base-dl3dv-16view", scale_max=3.0, depth_half_res=True)


def get_config(preset: str | ModelConfig) -> ModelConfig:
    """The :class:`ModelConfig` of a preset name (or the config itself); ``ValueError`` lists
    the known presets for an unknown name."""
    if isinstance(preset, ModelConfig):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown model preset {preset!r}; known: {', '.join(PRESETS)}") from None
