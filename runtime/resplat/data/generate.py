"""Generate a synthetic dataset: draw scenes and rigs from a seed, render, write the format of
:mod:`.dataset`. Scene ``i`` of seed ``S`` depends only on (S, i) (numpy SeedSequence [S, i]),
so datasets are reproducible byte for byte, in any order, with any number of worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import ResplatError
from .dataset import GENERATOR, write_json_atomic, write_scene
from .render import render_scene
from .rigs import RIGS, sample_rig, split_views
from .scene import Scene, random_scene
from .textures import ALL_TEXTURES

#: Bump when the same (seed, options) would produce different scenes or images.
VERSION = 1


@dataclass(frozen=True)
class GeneratorConfig:
    """Options of a generation run (all recorded in index.json and scene.json).

    width, height: image size in pixels; views: views per scene; context: how many of them are
    context views (the rest are targets); rig: "orbit", "forward", "random" or "mixed" (one of
    the three drawn per scene); supersample: s x s rays per pixel; objects: (min, max) count.
    open_fraction, soft_fraction, smooth_fraction, pattern_fraction: shares of open scenes
    (ground under a world background), soft lights, plain-painted surfaces and procedural
    floor patterns (:func:`~.scene.random_scene`);
    scale_decades: the whole world (cameras and depth; the images do not change) is scaled by
    10^u, u uniform in [-decades/2, decades/2], recorded as ``world_scale`` in scene.json.
    All five 0 (the defaults) give the scenes of the first version of the generator.
    """

    width: int = 256
    height: int = 256
    views: int = 12
    context: int = 8
    rig: str = "mixed"
    supersample: int = 2
    min_objects: int = 3
    max_objects: int = 12
    open_fraction: float = 0.0
    soft_fraction: float = 0.0
    smooth_fraction: float = 0.0
    pattern_fraction: float = 0.0
    scale_decades: float = 0.0

    def check(self) -> None:
        """Raises ResplatError on an impossible option."""
        if self.width < 8 or self.height < 8:
            raise ResplatError(f"image size must be at least 8x8, got {self.width}x{self.height}")
        if self.rig not in RIGS + ("mixed",):
            raise ResplatError(f"unknown rig {self.rig!r}: use orbit, forward, random or mixed")
        if not 1 <= self.context < self.views:
            raise ResplatError(f"context views must be between 1 and views - 1, got {self.context} of {self.views}")
        if not 1 <= self.supersample <= 8:
            raise ResplatError(f"supersample must be 1..8, got {self.supersample}")
        for name in ("open_fraction", "soft_fraction", "smooth_fraction", "pattern_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ResplatError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.scale_decades <= 6:
            raise ResplatError(f"scale_decades must be in [0, 6], got {self.scale_decades}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ResplatError(f"object counts must satisfy 0 <= min <= max, got {self.min_objects}..{self.max_objects}")


def scene_name(index: int) -> str:
    """Folder name of scene ``index`` ("scene_000123")."""
    return f"scene_{index:06d}"


@dataclass
class DrawnScene:
    """Scene ``index`` of a seed as drawn, before any renderer sees it.

    Attributes:
        scene: the :class:`~.scene.Scene` (metres, +z up, the unit world of the draw).
        cameras: its rig (:class:`~resplat.cameras.Cameras`, OpenCV, pixels) in that world.
        meta: the scene.json dict (generator, version, seed, index, options, textures, rig,
            scene, context, target), without ``world_scale``.
        world_scale: the factor :func:`finish_scene` scales cameras and depth by (None when
            ``scale_decades`` is 0).
    """

    scene: Scene
    cameras: Cameras
    meta: dict
    world_scale: float | None


def draw_scene(cfg: GeneratorConfig, seed: int, index: int) -> DrawnScene:
    """Draw scene ``index`` of ``seed`` (scene, rig, context/target split, world scale) from the
    numpy SeedSequence [seed, index], in the order every dataset of this version used, so that
    any renderer (:func:`~.render.render_scene`, or Blender's Cycles in
    ``demo/cycles_dataset.py``) gets the same scenes."""
    rng = np.random.default_rng([seed, index])
    scene = random_scene(rng, cfg.min_objects, cfg.max_objects, cfg.open_fraction, cfg.soft_fraction,
                         cfg.smooth_fraction, cfg.pattern_fraction)
    rig = cfg.rig if cfg.rig != "mixed" else RIGS[int(rng.integers(len(RIGS)))]
    cameras, rig_params = sample_rig(rng, scene, cfg.views, rig, cfg.width, cfg.height)
    context, target = split_views(rng, cfg.views, cfg.context)
    meta = {"generator": GENERATOR, "version": VERSION, "seed": seed, "index": index, "options": asdict(cfg),
            "textures": list(ALL_TEXTURES), "rig": rig_params, "scene": scene.to_dict(),
            "context": context, "target": target}
    k = 10.0 ** rng.uniform(-cfg.scale_decades / 2, cfg.scale_decades / 2) if cfg.scale_decades > 0 else None
    return DrawnScene(scene, cameras, meta, k)


def finish_scene(drawn: DrawnScene, images: Tensor, depth: Tensor) -> tuple[Tensor, Tensor, Cameras, dict]:
    """(images, depth, cameras, scene.json dict) of a rendered :class:`DrawnScene`: camera
    positions and depth [V, 1, H, W] (metres) scaled by its ``world_scale`` (recorded in the
    dict), images unchanged (a scaled world looks the same)."""
    meta, cameras, k = dict(drawn.meta), drawn.cameras, drawn.world_scale
    if k is not None:
        c2w = cameras.c2w.clone()
        c2w[:, :3, 3] *= k
        cameras = Cameras.from_c2w(c2w, cameras.K, cameras.width, cameras.height, cameras.names)
        depth = depth * k
        meta["world_scale"] = k
    return images, depth, cameras, meta


def make_scene(cfg: GeneratorConfig, seed: int, index: int) -> tuple[Tensor, Tensor, Cameras, dict]:
    """Draw and ray-cast scene ``index`` of ``seed``: (images, depths, cameras, scene.json dict)
    (:func:`draw_scene`, :func:`~.render.render_scene`, :func:`finish_scene`)."""
    drawn = draw_scene(cfg, seed, index)
    out = render_scene(drawn.scene, drawn.cameras, supersample=cfg.supersample)
    return finish_scene(drawn, out.images, out.depth)


def finished_scene_meta(folder: Path, cfg: GeneratorConfig, seed: int) -> dict | None:
    """The scene.json dict of ``folder`` when it is a complete scene made by this version with
    this seed and these options (resume support), else None."""
    try:
        meta = json.loads((folder / "scene.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = meta.get("version") == VERSION and meta.get("seed") == seed and meta.get("options") == asdict(cfg)
    return meta if ok else None


def dataset_index(cfg: GeneratorConfig, seed: int, scenes: int, seconds: float) -> dict:
    """The index.json dict of a dataset of ``scenes`` scenes (docs/dataset.md): generator,
    version, seed, options, counts, texture names, ``seconds`` (rounded to ms) and scene folders."""
    return {"generator": GENERATOR, "version": VERSION, "seed": seed, "options": asdict(cfg),
            "counts": {"scenes": scenes, "views_per_scene": cfg.views, "context": cfg.context, "target": cfg.views - cfg.context},
            "textures": list(ALL_TEXTURES), "seconds": round(seconds, 3),
            "scenes": [scene_name(i) for i in range(scenes)]}


def _work(job) -> tuple[int, float]:
    out, cfg, seed, index = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    images, depths, cameras, meta = make_scene(cfg, seed, index)
    write_scene(Path(out) / scene_name(index), images, depths, cameras, meta)
    return index, time.perf_counter() - t0


def generate_dataset(out: str | Path, scenes: int, seed: int, cfg: GeneratorConfig, workers: int = 1,
                     callback: Callable[[int, int, float], None] | None = None) -> dict:
    """Write ``scenes`` scenes under ``out`` plus index.json; returns the index dict.

    Scenes already present and made with the same seed and options are kept (resume); stale
    ``*.tmp`` folders are removed. ``callback(done, total, seconds_of_that_scene)`` after each.
    Rendering uses one torch thread per process; ``workers`` > 1 uses that many processes.

    Raises:
        ResplatError: bad options, or ``out`` holds a dataset made with other options.
    """
    cfg.check()
    if scenes < 1 or workers < 1:
        raise ResplatError(f"--scenes and --workers must be positive, got {scenes} and {workers}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    if index_path.exists():
        try:
            old = json.loads(index_path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("seed") != seed or old.get("options") != asdict(cfg) or old.get("version") != VERSION:
            raise ResplatError(f"{out}: holds a dataset made with another seed, version or options; use a new folder")
    for tmp in out.glob("scene_*.tmp"):
        shutil.rmtree(tmp)
    todo = [i for i in range(scenes) if finished_scene_meta(out / scene_name(i), cfg, seed) is None]
    jobs = [(str(out), cfg, seed, i) for i in todo]
    done = scenes - len(todo)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    try:
        if workers == 1 or len(jobs) <= 1:
            results = map(_work, jobs)
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_work, jobs)
        for _, seconds in results:
            done += 1
            if callback:
                callback(done, scenes, seconds)
    finally:
        torch.set_num_threads(threads)
        if workers > 1 and len(jobs) > 1:
            pool.terminate()
    index = dataset_index(cfg, seed, scenes, time.perf_counter() - t0)
    write_json_atomic(index_path, index)
    return index
