"""The ReSplat model (initial Gaussian predictor and recurrent updater) and its building blocks.

Entry points: :func:`build_model` (a preset's network, state dict equal to
``manifests/<preset>.json``), :func:`load_checkpoint` (strict loading of released checkpoints),
:class:`ReSplatModel` (``forward_initial``), :func:`reconstruct` (the inference API: initial
prediction plus recurrent updates, world-space Gaussians), and the exact k-nearest-neighbour search
(:func:`knn`) of the point transformer (see docs/model-architecture.md).
"""

from .checkpoint import CheckpointError, build_model, load_checkpoint
from .config import PRESETS, ModelConfig, get_config
from .encoder import ReSplatEncoder, ReSplatModel
from .initial import InitialPrediction
from .knn import KnnInputError, knn, morton_codes
from .reconstruct import reconstruct

__all__ = ["CheckpointError", "InitialPrediction", "KnnInputError", "ModelConfig", "PRESETS", "ReSplatEncoder",
           "ReSplatModel", "build_model", "get_config", "knn", "load_checkpoint", "morton_codes", "reconstruct"]
