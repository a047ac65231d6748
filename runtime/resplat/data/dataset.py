"""The synthetic dataset format on disk (documented in docs/dataset.md): writer and loader.

One folder per scene, ``scene_000123/``::

    transforms.json   cameras and depth_file_path per frame (nerfstudio layout,
                      resplat.views.write_transforms_json; readable by `resplat optimize`)
    images/000.png    8-bit sRGB RGB views
    depth/000.npy     float32 [H, W] z-depth in metres along the camera's +z axis
    scene.json        generator, version, seed, size, rig and scene parameters, and the
                      "context" / "target" view indices

and a root ``index.json`` (generator, version, seed, options, counts, scene folder names). A
scene folder is written as ``scene_X.tmp`` and renamed when complete, so a folder without the
suffix is always whole.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..cameras import Cameras
from ..errors import ResplatError
from ..views import load_depths, read_views, save_image, write_transforms_json

GENERATOR = "resplat-synthetic"


class DatasetError(ResplatError):
    """A synthetic dataset folder is missing, incomplete or inconsistent."""


@dataclass
class SceneSample:
    """One scene's views.

    Attributes:
        images: [V, 3, H, W] float32 sRGB-encoded in [0, 1].
        depths: [V, 1, H, W] float32 z-depth in metres.
        cameras: the V cameras (:class:`resplat.cameras.Cameras`).
        context: indices of the input (context) views; target: indices of the supervised views.
        path: the scene folder.
    """

    images: Tensor
    depths: Tensor
    cameras: Cameras
    context: list[int]
    target: list[int]
    path: str = ""


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_scene(folder: Path, images: Tensor, depths: Tensor, cameras: Cameras, meta: dict) -> None:
    """Write one scene folder atomically (via ``folder.tmp``). ``meta`` goes to scene.json and
    must hold "context" and "target". An existing ``folder`` is replaced."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "images").mkdir(parents=True)
    (tmp / "depth").mkdir()
    paths, depth_paths = [], []
    for i in range(images.shape[0]):
        p = tmp / "images" / f"{i:03d}.png"
        save_image(p, images[i])
        depth_paths.append(tmp / "depth" / f"{i:03d}.npy")
        np.save(depth_paths[-1], depths[i, 0].numpy().astype(np.float32))
        paths.append(p)
    write_transforms_json(tmp / "transforms.json", cameras, paths, depth_paths)
    write_json_atomic(tmp / "scene.json", meta)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def _indices(meta: dict, key: str, n: int, path: Path) -> list[int]:
    v = meta.get(key)
    if not isinstance(v, list) or not all(isinstance(i, int) and 0 <= i < n for i in v):
        raise DatasetError(f"{path}: '{key}' must be a list of view indices below {n}, got {v!r}")
    return v


def _read_json(path: Path, hint: str):
    """Parsed JSON of ``path``; DatasetError "<path>: not found (<hint>)" or "not valid JSON"."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found ({hint})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None


def load_scene(path: str | os.PathLike) -> SceneSample:
    """Read a scene folder written by :func:`write_scene`.

    Raises:
        DatasetError: missing/invalid scene.json.
        ViewsError: transforms.json, an image or a depth map cannot be read, or sizes disagree.
    """
    path = Path(path)
    meta_path = path / "scene.json"
    meta = _read_json(meta_path, "not a synthetic scene folder")
    views = read_views(path / "transforms.json")
    v, _, h, w = views.images.shape
    depths = views.depths  # listed as depth_file_path (datasets written since it was added)
    if depths is None:  # older datasets: depth/<image stem>.npy beside the images, in metres
        depths = load_depths([path / "depth" / f"{Path(p).stem}.npy" for p in views.paths], w, h)
    return SceneSample(views.images, depths, views.cameras, _indices(meta, "context", v, meta_path),
                       _indices(meta, "target", v, meta_path), str(path))


class SyntheticDataset(Dataset):
    """The scenes listed in ``root/index.json``, as :class:`SceneSample` items (a map-style torch
    Dataset; use ``collate_fn=lambda b: b`` in a DataLoader since samples are not tensors).

    Raises:
        DatasetError: index.json missing or invalid, or a listed scene folder missing.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        index = self.root / "index.json"
        data = _read_json(index, "generate one with `resplat data generate`")
        scenes = data.get("scenes") if isinstance(data, dict) else None
        if not isinstance(scenes, list) or not all(isinstance(s, str) for s in scenes):
            raise DatasetError(f"{index}: missing key 'scenes' (a list of folder names)")
        for s in scenes:
            if not (self.root / s / "scene.json").is_file():
                raise DatasetError(f"{self.root / s}: scene listed in index.json is missing or incomplete")
        self.index = data
        self.scenes = scenes

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> SceneSample:
        return load_scene(self.root / self.scenes[i])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
