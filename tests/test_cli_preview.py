"""``--preview-dir`` of ``resplat reconstruct`` and ``resplat optimize``: a preview PLY after the
initial prediction and after every update / every N optimisation steps, each announced by a
``preview`` JSON line before the result; the last update's preview equals the written scene; the
optimiser's initial preview is exactly the random initialisation; nothing half-written is left."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from resplat.cli.main import main
from resplat.formats import read_splat_arrays
from resplat.model.checkpoint import build_model
from resplat.optim import random_init
from resplat.train.checkpointing import export_safetensors
from resplat.views import read_views
from random_views import write_random_views


#: the sideways rig's axes are parallel, so random init needs a box (metres, around the views)
BOUNDS = "-1,-1,-3,1,1,3"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """3 random 64x64 views of a sideways rig and a random-weight tiny checkpoint."""
    root = tmp_path_factory.mktemp("preview")
    write_random_views(root, 64, 64)
    torch.manual_seed(0)
    export_safetensors(build_model("tiny").eval(), root / "tiny.safetensors")
    return root


def _events(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _same(a, b):
    for k in ("means", "quats", "log_scales", "logit_opacities"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    # the higher SH bands are zero up to rounding (1e-17) that differs between the two calls
    np.testing.assert_allclose(a.sh, b.sh, rtol=0, atol=1e-12)


def test_reconstruct_previews(scene, tmp_path, capsys):
    prev, out = tmp_path / "prev", tmp_path / "scene.ply"
    assert main(["reconstruct", str(scene), "--checkpoint", str(scene / "tiny.safetensors"), "--iterations", "2",
                 "--out", str(out), "--device", "cpu", "--progress", "jsonl", "--preview-dir", str(prev)]) == 0
    events = _events(capsys)
    previews = [(e["stage"], e["step"], e["path"]) for e in events if e["event"] == "preview"]
    assert previews == [("initial", 0, str(prev / "preview_initial_0.ply")),
                        ("update", 1, str(prev / "preview_update_1.ply")),
                        ("update", 2, str(prev / "preview_update_2.ply"))]
    kinds = [e["event"] for e in events]
    assert kinds.index("result") > max(i for i, k in enumerate(kinds) if k == "preview")
    assert sorted(p.name for p in prev.iterdir()) == ["preview_initial_0.ply", "preview_update_1.ply", "preview_update_2.ply"]
    _same(read_splat_arrays(prev / "preview_update_2.ply"), read_splat_arrays(out))
    assert len(read_splat_arrays(prev / "preview_initial_0.ply")) == len(read_splat_arrays(out))


def test_optimize_previews(scene, tmp_path, capsys):
    prev, out = tmp_path / "prev", tmp_path / "scene.ply"
    assert main(["optimize", str(scene), "--random", "40", f"--bounds={BOUNDS}", "--steps", "5", "--preview-every", "2", "--out", str(out),
                 "--device", "cpu", "--backend", "torch", "--progress", "jsonl", "--preview-dir", str(prev)]) == 0
    events = _events(capsys)
    assert [(e["stage"], e["step"]) for e in events if e["event"] == "preview"] == [("initial", 0), ("optimize", 2), ("optimize", 4)]
    # the preview after step 2 is announced after step 2's progress and before step 3's
    order = [(e["event"], e.get("step")) for e in events if e["event"] in ("progress", "preview")]
    assert order[order.index(("preview", 2)) - 1] == ("progress", 2)
    box = torch.tensor([float(v) for v in BOUNDS.split(",")]).view(2, 3)
    init = random_init(read_views(scene).cameras, 40, sh_degree=0, seed=0, bounds=box)
    got = read_splat_arrays(prev / "preview_initial_0.ply")
    np.testing.assert_array_equal(got.means, init.means.float().numpy())
    np.testing.assert_array_equal(got.sh, init.sh.float().numpy())
    p2, p4 = read_splat_arrays(prev / "preview_optimize_2.ply"), read_splat_arrays(prev / "preview_optimize_4.ply")
    assert len(p2) == len(p4) == 40 and not np.array_equal(p2.means, p4.means)
    assert not np.array_equal(p4.means, read_splat_arrays(out).means)  # step 5 moved them again
    assert sorted(p.name for p in prev.iterdir()) == ["preview_initial_0.ply", "preview_optimize_2.ply", "preview_optimize_4.ply"]


def test_preview_every_must_be_positive(scene, tmp_path, capsys):
    assert main(["optimize", str(scene), "--random", "10", f"--bounds={BOUNDS}", "--steps", "1", "--preview-every", "0",
                 "--out", str(tmp_path / "x.ply"), "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == "resplat: error: --preview-every must be >= 1, got 0"
    assert not (tmp_path / "x.ply").exists()
