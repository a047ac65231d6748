"""One entry point for every posed-view source on disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import ViewsError
from .colmap import read_colmap
from .posed import PosedViews
from .transforms_json import read_transforms_json


def _is_colmap_model(d: Path) -> bool:
    return any((d / f"cameras{s}").is_file() for s in (".bin", ".txt")) and any((d / f"images{s}").is_file() for s in (".bin", ".txt"))


def read_views(path: str | os.PathLike, background: Sequence[float] | None = None) -> PosedViews:
    """Read posed views from ``path``, which may be:

    - a ``.json`` file (nerfstudio / Blender-NeRF, :func:`read_transforms_json`);
    - a folder holding ``transforms.json``;
    - a COLMAP project folder: the model in ``sparse/0``, ``sparse`` or the folder itself
      (cameras.* and images.*), images in ``<folder>/images`` (:func:`read_colmap`).

    Raises:
        ViewsError: ``path`` does not exist or is none of these, or the reader's own errors.
    """
    path = Path(path)
    if path.is_file():
        return read_transforms_json(path, background)
    if not path.is_dir():
        raise ViewsError(f"{path}: no such file or folder")
    if (path / "transforms.json").is_file():
        return read_transforms_json(path / "transforms.json", background)
    for model_dir in (path / "sparse" / "0", path / "sparse", path):
        if _is_colmap_model(model_dir):
            return read_colmap(model_dir, path / "images", background)
    raise ViewsError(f"{path}: neither a transforms.json nor a COLMAP model (sparse/0, sparse or cameras.* + images.*) was found")
