"""The ReSplat model (initial Gaussian predictor and recurrent updater) and its building blocks.

So far: exact k-nearest-neighbour search (:func:`knn`) for the point transformer, and the
state-dict manifests of the released checkpoints under ``manifests/`` (see
docs/model-architecture.md).
"""

from .knn import KnnInputError, knn, morton_codes

__all__ = ["KnnInputError", "knn", "morton_codes"]
