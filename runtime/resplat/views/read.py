"""One entry point for every posed-view source on disk."""

from __future__ import annotations

import os
from typing import Sequence

from ..viewfiles.locate import locate_views
from .colmap import read_colmap
from .posed import PosedViews
from .transforms_json import read_transforms_json


def read_views(path: str | os.PathLike, background: Sequence[float] | None = None) -> PosedViews:
    """Read posed views from ``path``, which may be (:func:`resplat.viewfiles.locate.locate_views`):

    - a ``.json`` file (nerfstudio / Blender-NeRF, :func:`read_transforms_json`);
    - a folder holding ``transforms.json``;
    - a COLMAP project folder: the model in ``sparse/0``, ``sparse`` or the folder itself
      (cameras.* and images.*), images in ``<folder>/images`` (:func:`read_colmap`);
    - a COLMAP model folder or one of its files, images in ``images`` beside it or in the
      project folder above ``sparse`` / ``sparse/0``.

    Raises:
        ViewsError: ``path`` does not exist or is none of these, or the reader's own errors.
    """
    source = locate_views(path)
    if source.kind == "transforms":
        return read_transforms_json(source.path, background)
    return read_colmap(source.path, source.images, background)
