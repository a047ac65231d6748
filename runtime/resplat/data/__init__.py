"""Synthetic training data, made here without network access: procedural multi-object scenes
with real-photo (CC0 / public-domain) textures, an analytic ray-casting renderer with depth,
camera rigs, and the on-disk dataset format with its loader (docs/dataset.md)."""

from .dataset import DatasetError, SceneSample, SyntheticDataset, load_scene, write_scene
from .generate import VERSION, GeneratorConfig, generate_dataset, make_scene
from .render import RenderedViews, render_scene
from .rigs import look_at, sample_rig, split_views
from .scene import Scene, random_scene

__all__ = [
    "DatasetError", "GeneratorConfig", "RenderedViews", "Scene", "SceneSample", "SyntheticDataset",
    "VERSION", "generate_dataset", "load_scene", "look_at", "make_scene", "random_scene",
    "render_scene", "sample_rig", "split_views", "write_scene",
]
