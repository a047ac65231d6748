"""Posed views of random pixels written to disk (transforms.json + PNGs), for CLI tests that
only need valid input files, not a meaningful scene."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from resplat.cameras import Cameras, K_from_fov
from resplat.views import save_image, write_transforms_json


def write_random_views(root: Path, width: int, height: int, count: int = 3, seed: int = 0) -> Cameras:
    """``count`` cameras on a sideways line (x from -0.2 to 0.2 m, 60 degree FOV) looking down +z,
    named a, b, c...; images of uniform random pixels (seeded) in ``root/images/v<i>.png`` and
    ``root/transforms.json``. Returns the cameras."""
    c2w = torch.eye(4).repeat(count, 1, 1)
    c2w[:, 0, 3] = torch.linspace(-0.2, 0.2, count)
    names = [chr(ord("a") + i) for i in range(count)]
    cams = Cameras.from_c2w(c2w, K_from_fov(math.radians(60), width, height), width, height, names)
    gen = torch.Generator().manual_seed(seed)
    paths = []
    for i in range(count):
        p = root / "images" / f"v{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        save_image(p, torch.rand(3, height, width, generator=gen))
        paths.append(p)
    write_transforms_json(root / "transforms.json", cams, paths)
    return cams
