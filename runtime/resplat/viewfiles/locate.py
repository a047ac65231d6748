"""Which posed-view source a path names: a ``transforms.json`` (or a folder holding one) or a
COLMAP model (a project folder with ``sparse/0`` or ``sparse``, the model folder itself, or one of
its files) and the folder its images are in. Standard library only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ViewsError

#: The files of a COLMAP sparse model; choosing one of them means its folder.
COLMAP_FILES = tuple(f"{stem}{ext}" for stem in ("cameras", "images", "points3D") for ext in (".bin", ".txt"))


@dataclass(frozen=True)
class ViewSource:
    """A located view source.

    Attributes:
        kind: "transforms" or "colmap".
        path: the json file, or the COLMAP model folder (cameras.* and images.*).
        images: the folder COLMAP image names are relative to (``None`` for a json, whose
            ``file_path`` entries are relative to its own folder).
    """

    kind: str
    path: Path
    images: Path | None = None

    @property
    def name(self) -> str:
        """A display name: the folder holding the views (the COLMAP project, the json's folder)."""
        folder = self.images.parent if self.kind == "colmap" else self.path.parent
        return folder.name or self.path.stem


def is_colmap_model(d: Path) -> bool:
    """Whether folder ``d`` holds a cameras.(bin|txt) and an images.(bin|txt)."""
    return any((d / f"cameras{s}").is_file() for s in (".bin", ".txt")) and any((d / f"images{s}").is_file() for s in (".bin", ".txt"))


def colmap_images_dir(model_dir: Path) -> Path:
    """The image folder of a model chosen directly: ``images`` beside the model, else in the
    project folder above ``sparse`` or ``sparse/0``; ``model_dir/images`` when none exists (the
    reader then names the missing images there)."""
    for root in (model_dir, model_dir.parent, model_dir.parent.parent):
        if (root / "images").is_dir():
            return root / "images"
    return model_dir / "images"


def locate_views(path: str | os.PathLike) -> ViewSource:
    """Locate the views ``path`` names:

    - a COLMAP model file (cameras/images/points3D .bin/.txt): its folder's model;
    - any other file: a ``transforms.json``;
    - a folder holding ``transforms.json``;
    - a COLMAP project folder (the model in ``sparse/0`` or ``sparse``, images in ``images``);
    - a COLMAP model folder itself (images: :func:`colmap_images_dir`).

    Raises:
        ViewsError: ``path`` does not exist or is none of these.
    """
    path = Path(path)
    if path.is_file():
        if path.name in COLMAP_FILES:
            return ViewSource("colmap", path.parent, colmap_images_dir(path.parent))
        return ViewSource("transforms", path)
    if not path.is_dir():
        raise ViewsError(f"{path}: no such file or folder")
    if (path / "transforms.json").is_file():
        return ViewSource("transforms", path / "transforms.json")
    for model_dir in (path / "sparse" / "0", path / "sparse"):
        if is_colmap_model(model_dir):
            return ViewSource("colmap", model_dir, path / "images")
    if is_colmap_model(path):
        return ViewSource("colmap", path, colmap_images_dir(path))
    raise ViewsError(f"{path}: neither a transforms.json nor a COLMAP model (sparse/0, sparse or cameras.* + images.*) was found")
