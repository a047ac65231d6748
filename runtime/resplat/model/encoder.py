"""The assembled ReSplat network: ``ReSplatModel.encoder`` holds every released sub-module.

Layout (state-dict prefix ``encoder.``, order of the release's ``EncoderReSplat.__init__``;
docs/model-architecture.md section 2): ``depth_predictor`` (:class:`~.depth.DepthPredictor`),
``gaussian_regressor`` (Conv3x3, GELU, Conv3x3), ``proj`` (Linear), ``pt``
(:class:`~.point_transformer.PlainPointTransformer`, k = 16, 6 kNN + 6 low-res multi-view
blocks), ``gaussian_head`` (Linear, GELU, Linear; rows from 4 m on of the last layer zero), then
the updater's ``update_proj, update_rgb_error_proj, update_module, update_head, update_feature,
update_error_attn`` (:func:`~.updater.build_update_modules`). With a preset's config the state
dict equals ``manifests/<preset>.json`` key by key and shape by shape.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..cameras import Cameras
from ..errors import CameraError
from .config import ModelConfig, get_config
from .depth.predictor import DepthPredictor
from .initial import InitialPrediction, predict_initial
from .latent_features import feature_channels
from .point_transformer import PlainPointTransformer
from .frame import ModelFrame, make_model_frame
from .initial import latent_depth_prior
from .updater import build_update_modules


class ReSplatEncoder(nn.Module):
    """All eleven children of the release's encoder (module docstring).

    Args:
        config: :class:`ModelConfig` or preset name. Channel arithmetic (docs section 2):
            regressor input 3 l'^2 + 2 + Fc (l' = 4 for DL3DV's fixed latent size, 2 for RE10K),
            ``proj`` input 3 l'^2 + Fc + C + 1, head 58 m outputs.
        amp: bf16 autocast of the networks on CUDA (the release's setting); never on CPU.
    """

    def __init__(self, config: ModelConfig | str, amp: bool = True):
        super().__init__()
        self.config = cfg = get_config(config)
        self.amp = amp
        c, fc = cfg.regressor_channels, feature_channels(cfg)
        img = 3 * cfg.latent_downsample ** 2
        m = cfg.gaussians_per_point
        self.depth_predictor = DepthPredictor(cfg, amp=amp)
        self.gaussian_regressor = nn.Sequential(nn.Conv2d(img + 2 + fc, c, 3, 1, 1), nn.GELU(), nn.Conv2d(c, c, 3, 1, 1))
        self.proj = nn.Linear(img + fc + c + 1, c)
        self.pt = PlainPointTransformer(c, cfg.pt_knn, cfg.pt_blocks, cfg.attn_proj_channels, with_mv_attn=True)
        g = cfg.gaussian_channels * m
        self.gaussian_head = nn.Sequential(nn.Linear(c, g), nn.GELU(), nn.Linear(g, g))
        with torch.no_grad():
            self.gaussian_head[-1].weight[4 * m:].zero_()
            self.gaussian_head[-1].bias[4 * m:].zero_()
        for name, module in build_update_modules(cfg).items():
            self.add_module(name, module)

    def forward_initial(self, images: Tensor, cameras: Cameras | Sequence[Cameras], depths: Tensor | None = None,
                        frame: ModelFrame | None = None) -> InitialPrediction:
        """Predict the initial Gaussians of B scenes.

        Args:
            images: [B, V, 3, H, W] float in [0, 1] (8-bit sRGB / 255, not linearised), V >= 2
                context views sorted by frame index; H, W multiples of ``config.size_multiple``.
            cameras: one :class:`Cameras` of V views per scene (a single one when B = 1), in
                any world frame and unit, image size W x H.
            depths: optional [B, V, H, W] exact z-depth of the views in world units (0, inf
                or nan where unknown, e.g. where the world background shows). When given, the
                Gaussians of every latent pixel with known depth sit at that depth
                (:func:`~.initial.latent_depth_prior`) instead of the network's, and the
                model frame takes its scale and depth range from it.
            frame: the model frame (:func:`~.frame.make_model_frame` of these cameras and
                depths); made here when None.

        Returns:
            :class:`InitialPrediction` in the model frame (:mod:`resplat.model.frame`: poses
            relative to the middle view V // 2, scaled by the config's ``frame_scale``);
            ``frame`` maps it back to the cameras' world (:meth:`InitialPrediction.world_gaussians`).

        Raises:
            CameraError: camera count, image or depth size not matching ``images``.
            DepthInputError, LatentFeatureError: unusable image sizes or view counts.
        """
        if images.dim() != 5 or images.shape[2] != 3:
            raise CameraError(f"forward_initial: images must be [B, V, 3, H, W], got {list(images.shape)}")
        b, v, _, h, w = images.shape
        cams = [cameras] if isinstance(cameras, Cameras) else list(cameras)
        if len(cams) != b:
            raise CameraError(f"forward_initial: {len(cams)} camera sets for a batch of {b} scenes")
        for i, cam in enumerate(cams):
            if len(cam) != v or (cam.width, cam.height) != (w, h):
                raise CameraError(f"forward_initial: scene {i} has {len(cam)} cameras of {cam.width}x{cam.height}, "
                                  f"images are {v} views of {w}x{h}")
        if depths is not None and tuple(depths.shape) != (b, v, h, w):
            raise CameraError(f"forward_initial: depths must be {[b, v, h, w]}, got {list(depths.shape)}")
        dtype, dev = images.dtype, images.device
        c2w = torch.stack([cam.c2w for cam in cams]).to(device=dev, dtype=dtype)
        K_norm = torch.stack([cam.normalized_K() for cam in cams]).to(device=dev, dtype=dtype)
        if frame is None:
            frame = make_model_frame(c2w, self.config, depths)
        c2w_model = frame.c2w(c2w)
        near = frame.near.to(device=dev, dtype=dtype)[:, None].expand(b, v).contiguous()
        far = frame.far.to(device=dev, dtype=dtype)[:, None].expand(b, v).contiguous()
        depth = self.depth_predictor(images, K_norm, c2w_model, near, far)
        prior = None
        if depths is not None:
            prior = latent_depth_prior(frame.depth(depths.to(device=dev, dtype=dtype)), self.config)
        pred = predict_initial(self, images, c2w_model, K_norm, depth, amp=self.amp, depth_prior=prior)
        pred.frame = frame
        return pred


class ReSplatModel(nn.Module):
    """Top-level ReSplat network with the checkpoint layout (``encoder.*`` keys).

    Attributes:
        config: the :class:`ModelConfig`.
        encoder: :class:`ReSplatEncoder`.
    """

    def __init__(self, config: ModelConfig | str, amp: bool = True):
        super().__init__()
        self.config = get_config(config)
        self.encoder = ReSplatEncoder(self.config, amp=amp)

    def forward_initial(self, images: Tensor, cameras: Cameras | Sequence[Cameras], depths: Tensor | None = None,
                        frame: ModelFrame | None = None) -> InitialPrediction:
        """See :meth:`ReSplatEncoder.forward_initial`."""
        return self.encoder.forward_initial(images, cameras, depths, frame)
