"""Shared test fixtures: paths to the real third-party inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RESPLAT_SHARED", REPO.parent / "shared"))
FIXTURES = REPO / ".cache" / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Every test runs with one intra-op thread. On shared 2-core machines torch's default two
    OpenMP threads spin-wait against other jobs (the real-photo fit took ~95 s with 2 threads
    and ~10 s with 1, same results); results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def train_ply() -> Path:
    """The first 1,000 Gaussians of a real trained 3DGS scene ("train", 7,000 iterations) from the
    Voxel51 ``gaussian_splatting`` dataset (Apache-2.0), as the loaders.gl PLY tests use it: INRIA
    PLY layout, SH degree 3, 62 float32 properties (sha256 caf784f7...). It is not in the
    repository; ``RESPLAT_SHARED`` names the folder holding ``data/train-1000.ply`` (default: the
    folder ``shared`` beside the repository)."""
    p = SHARED / "data" / "train-1000.ply"
    if not p.exists():
        pytest.fail(f"missing fixture {p}: set RESPLAT_SHARED to the folder holding data/train-1000.ply")
    return p


@pytest.fixture(scope="session")
def opencv_calib_dir() -> Path:
    """OpenCV's calibration photos (installed by scripts/fetch-fixtures)."""
    p = FIXTURES / "opencv"
    if not (p / "left_intrinsics.yml").exists():
        pytest.fail(f"missing {p}: run `bash scripts/fetch-fixtures` (make test does)")
    return p


@pytest.fixture(scope="module")
def blender_factory_scene_after():
    """For test modules that replace Blender's scene (``pytestmark = pytest.mark.usefixtures(...)``):
    leave Blender's factory startup scene (cube, camera, light) for the next test module."""
    yield
    import bpy

    bpy.ops.wm.read_homefile(use_factory_startup=True)
