"""resplat.viewfiles.locate: which view source a path names (shared by read_views and the
Blender camera import): a COLMAP project, its sparse/0 folder or one of its model files all give
the same model and image folder, and read_views reads the same views from each. The package
imports without torch or Pillow (the Blender extension uses it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resplat.errors import ViewsError
from resplat.viewfiles import locate_views
from resplat.views import ColmapCamera, ColmapImage, read_views, write_colmap_model


def _project(root, binary):
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(root / "images" / "a.png")
    cam = ColmapCamera(1, "PINHOLE", 40, 30, (33.0, 33.0, 20.0, 15.0))
    write_colmap_model(root / "sparse" / "0", [cam], [ColmapImage(1, (1, 0, 0, 0), (0.1, 0, 3), 1, "a.png")], binary=binary)
    return root


@pytest.mark.parametrize("binary", [False, True])
def test_colmap_project_model_folder_and_model_file(tmp_path, binary):
    root = _project(tmp_path / "garden", binary)
    ext = ".bin" if binary else ".txt"
    want = read_views(root)
    for pick in (root, root / "sparse" / "0", root / "sparse" / "0" / f"cameras{ext}", root / "sparse" / "0" / f"points3D{ext}"):
        src = locate_views(pick)
        assert (src.kind, src.path, src.images, src.name) == ("colmap", root / "sparse" / "0", root / "images", "garden")
        got = read_views(pick)
        assert torch.equal(got.cameras.w2c, want.cameras.w2c) and torch.equal(got.images, want.images)


def test_transforms_and_errors(tmp_path):
    (tmp_path / "lego").mkdir()
    (tmp_path / "lego" / "transforms.json").write_text(json.dumps({"frames": []}))
    for pick in (tmp_path / "lego", tmp_path / "lego" / "transforms.json"):
        src = locate_views(pick)
        assert (src.kind, src.path, src.images, src.name) == ("transforms", tmp_path / "lego" / "transforms.json", None, "lego")
    with pytest.raises(ViewsError, match="nowhere: no such file or folder"):
        locate_views(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ViewsError, match="neither a transforms.json nor a COLMAP model"):
        locate_views(tmp_path / "empty")


def test_imports_without_torch_or_pillow():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['PIL'] = None\n"
            "import resplat.viewfiles, resplat.viewfiles.colmap_model, resplat.viewfiles.transforms_file\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'PIL') and sys.modules[m] is not None]")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert r.returncode == 0, r.stderr
