"""The depth network's result record (:class:`DepthOutput`), shared by the depth predictor and
the initial-Gaussian regressor that consumes it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class DepthOutput:
    """Everything the ReSplat encoder takes from the depth network (release
    ``MultiViewUniMatch.forward`` results dict, as read by ``encoder_resplat.py``).

    B = batch, V = views, H x W = depth-network input size (the image size, or half of it when
    ``ModelConfig.depth_half_res``), u = ``ModelConfig.upsample_factor`` (8 or 4). All float
    tensors share the input's dtype and device.

    Attributes:
        depth: [B, V, H, W] z-depth in metres at the depth-network input resolution, in
            [near, far] (release ``depth_preds[-1]``).
        match_prob: [B, V, 1, H/u, W/u] maximum over the depth candidates of the softmax
            matching probability, in (0, 1] (release ``match_probs[-1].max(1)``).
        match_probs: [B, V, D, H/u, W/u] the full softmax over the D = num_depth_candidates
            log-depth candidates (release ``match_probs[-1]``), kept for completeness.
        cnn_features: CNN outputs from high to low resolution (release
            ``features_cnn_all_scales[::-1]``): [B*V, 64, H/2, W/2], [B*V, 96, H/2 (u=4) or
            H/4 (u=8), ...], [B*V, 128, H/u, W/u].
        mv_features: [B*V, 128, H/u, W/u] multi-view transformer output (release
            ``features_mv[0]``).
        mono_features: the 4 raw DINOv2 block outputs (blocks 2, 5, 8, 11 after the final norm,
            class token dropped) as maps [B*V, D, h14, w14] with D the ViT width and h14 x w14
            the ViT patch grid (release ``raw_mono_features``).
        mono_intermediate: the same 4 maps resized bilinearly (align_corners=True) to
            [B*V, D, H/8, W/8] (release ``features_mono_intermediate``; the release's
            ``feature_upsampler`` reads these).
    """

    depth: Tensor
    match_prob: Tensor
    match_probs: Tensor
    cnn_features: list[Tensor]
    mv_features: Tensor
    mono_features: list[Tensor]
    mono_intermediate: list[Tensor]
