"""Assembly and forward pass of the depth network (work in progress)."""

from __future__ import annotations

from torch import Tensor, nn

from ..config import ModelConfig, get_config
from .output import DepthOutput


class DepthPredictor(nn.Module):
    """The ReSplat depth network (release ``MultiViewUniMatch``); see :class:`DepthOutput`."""

    def __init__(self, config: ModelConfig | str):
        super().__init__()
        self.config = get_config(config)

    def forward(self, images: Tensor, intrinsics: Tensor, c2w: Tensor, near: Tensor, far: Tensor) -> DepthOutput:
        raise NotImplementedError("DepthPredictor.forward is being written")
