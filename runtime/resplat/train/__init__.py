"""Training of ReSplat models (``resplat train``): the two stages of the paper (initial model,
then the recurrent updater with the initial model frozen), losses, the one-cycle schedule,
resumable checkpoints, DDP through torchrun and the pixelSplat chunk loader.

Source: Xu et al., "ReSplat" (arXiv 2510.08575), section "Training" (summarised in
ReSplat paper, Sec. 4 training details); the release's ``model_wrapper.py`` / ``encoder_resplat.py``.
"""

from .config import TrainConfig
from .losses import iteration_weights
from .loop import train
from .schedule import one_cycle

__all__ = ["TrainConfig", "iteration_weights", "one_cycle", "train"]
