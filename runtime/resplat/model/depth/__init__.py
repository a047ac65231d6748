"""The ReSplat depth network ``depth_predictor`` (the release's MultiViewUniMatch as ReSplat
configures it; DepthSplat, Xu et al. 2025): UniMatch CNN + multi-view swin transformer + plane
sweep cost volume in log depth + DINOv2 monocular features + LDM U-Net regressor + DPT upsampler.
See docs/model-architecture.md section 2 and 3."""

from .output import DepthOutput
from .predictor import DepthPredictor

__all__ = ["DepthOutput", "DepthPredictor"]
