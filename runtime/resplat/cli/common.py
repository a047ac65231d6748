"""Option parsing and I/O helpers shared by the CLI subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..defaults import DEVICE_AUTO_TEXT
from ..errors import ResplatError

#: --device help of every command (the rule is resplat.device.resolve_device's)
DEVICE_HELP = f"auto ({DEVICE_AUTO_TEXT}), cpu, cuda, cuda:1, mps"


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H) in pixels; argparse type."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x192, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def parse_color(text: str) -> tuple[float, float, float]:
    """'r,g,b' with components in [0, 1] -> tuple; argparse type."""
    try:
        rgb = tuple(float(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise argparse.ArgumentTypeError(f"colour must be three numbers in [0,1] like 1,1,1, got {text!r}")
    return rgb  # type: ignore[return-value]


def add_views_options(p: argparse.ArgumentParser) -> None:
    """--size and --holdout, shared by the commands that read posed views."""
    p.add_argument("--size", type=parse_size, help="resample the views to WxH pixels (K adjusted exactly)")


def add_device_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "gsplat"), help="rasteriser backend")


def pick_device(name: str):
    """torch.device for a --device value (:func:`resplat.device.resolve_device`, the one rule);
    raises ResplatError when it is unknown or not available."""
    from ..device import resolve_device

    return resolve_device(name)


def load_views(path: str, size: tuple[int, int] | None):
    """Posed views from a transforms.json / COLMAP folder, optionally resampled to ``size``."""
    from ..views import read_views, resize

    views = read_views(path)
    if size is not None:
        views = resize(views, *size)
    return views


def holdout_split(n: int, every: int) -> tuple[list[int], list[int]]:
    """Indices (train, test): every ``every``-th view (0, every, 2 every, ...) is held out, as
    in the 3DGS/Mip-NeRF 360 evaluation protocol (``every`` = 8). ``every`` = 0 holds out none."""
    if every <= 0:
        return list(range(n)), []
    test = list(range(0, n, every))
    train = [i for i in range(n) if i not in test]
    if not train:
        raise ResplatError(f"--holdout {every} leaves no training views out of {n}")
    return train, test


def view_names(views) -> list[str]:
    """A file-name-safe name per view (camera name, else image stem, else index)."""
    names = views.cameras.names or [Path(p).stem for p in getattr(views, "paths", None) or []]
    if len(names) != len(views.cameras):
        names = [f"view_{i:03d}" for i in range(len(views.cameras))]
    return [str(n).replace("/", "_").replace(os.sep, "_") for n in names]


def config_from_json(path: Path):
    """The :class:`~resplat.model.config.ModelConfig` written as JSON at ``path`` (the hidden
    ``--config-json`` option of ``reconstruct`` and ``train``); ResplatError if it is not one."""
    import json

    from ..model.config import ModelConfig

    try:
        return ModelConfig(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ResplatError(f"{path}: not a model configuration ({exc})") from None
