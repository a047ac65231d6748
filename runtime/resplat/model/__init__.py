"""The ReSplat model (initial Gaussian predictor and recurrent updater) and its building blocks.

Entry points: :func:`build_model` (a preset's network, state dict equal to
``manifests/<preset>.json``), :func:`load_checkpoint` (strict loading of released checkpoints),
:class:`ReSplatModel` (``forward_initial``), :func:`reconstruct` (the inference API: initial
prediction plus recurrent updates, world-space Gaussians; :func:`reconstruct_views` also says
which iteration it kept), :func:`load_embedded_model` (the
``tiny`` model shipped in ``weights/``), :func:`prune_transparent` and :func:`polish` (after the
last iteration), and the exact k-nearest-neighbour search
(:func:`knn`) of the point transformer (see docs/model-architecture.md).
"""

from .checkpoint import (EMBEDDED_PRESET, CheckpointError, build_model, embedded_weights_path, load_checkpoint,
                         load_embedded_model)
from .config import PRESETS, ModelConfig, get_config
from .encoder import ReSplatEncoder, ReSplatModel
from .initial import InitialPrediction
from .knn import KnnInputError, knn, morton_codes
from .postprocess import polish, prune_transparent
from .reconstruct import Reconstruction, reconstruct, reconstruct_views

__all__ = ["CheckpointError", "EMBEDDED_PRESET", "InitialPrediction", "KnnInputError", "ModelConfig", "PRESETS",
           "ReSplatEncoder", "ReSplatModel", "build_model", "embedded_weights_path", "get_config", "knn",
           "load_checkpoint", "load_embedded_model", "morton_codes", "polish", "prune_transparent", "reconstruct",
           "Reconstruction", "reconstruct_views"]
