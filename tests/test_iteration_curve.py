"""benchmarks/iteration_curve.py: per-iteration scores of a weights file, RGB only and with depth,
and their means per kind of scene (assets vs synthetic ``scene_*``), on hand-made numbers and on
the analytic plane scene of tests/test_eval_assets.py with the embedded weights."""

from __future__ import annotations

import pytest
import torch
from repo_scripts import load_script
from test_eval_assets import _plane_scene


def _bench():
    return load_script("benchmarks", "iteration_curve")


def test_means_per_kind_of_scene_and_the_table():
    b = _bench()
    scenes = [{"name": "spider", "rgb": [10.0, 12.0], "depth": [20.0, 21.0]},
              {"name": "jeep", "rgb": [14.0, 13.0], "depth": [18.0, 19.0]},
              {"name": "scene_000000", "rgb": [25.0, 26.0], "depth": [27.0, 28.0]}]
    m = b.group_means(scenes, "rgb")
    assert m == {"assets": [12.0, 12.5], "synthetic": [25.0, 26.0]}
    assert b.group_means(scenes[:2], "depth") == {"assets": [19.0, 20.0]}
    md = b.markdown({"threads": 1, "iterations": 1,
                     "weights": [{"name": "w", "scenes": scenes, "means": {k: b.group_means(scenes, k) for k in b.MODES}}]})
    assert "| w | spider | 10.00 | 12.00 |" in md and "| w | **mean, assets** | 19.00 | 20.00 |" in md
    assert md.count("| w | **mean, synthetic** |") == 2  # one per mode


def test_scene_curve_scores_every_iteration_of_both_modes():
    b = _bench()
    eval_assets = load_script("benchmarks", "eval_assets")
    from resplat.model import reconstruct
    from resplat.model.checkpoint import load_embedded_model

    model = load_embedded_model()
    model.eval()
    images, depths, cams = _plane_scene()
    scene = eval_assets.DepthScene("plane", images, cams, [0, 1, 3, 4], [2], depths)
    torch.manual_seed(0)
    curve = b.scene_curve(model, scene, 1)
    assert len(curve["rgb"]) == len(curve["depth"]) == 2
    with torch.no_grad():
        g = reconstruct(images[[0, 1, 3, 4]], cams[[0, 1, 3, 4]], model, iterations=0, device="cpu", depths=depths[[0, 1, 3, 4]])
    assert curve["depth"][0] == pytest.approx(eval_assets.score(g, scene, model.config)[1]["content_psnr"], abs=1e-6)
    assert curve["depth"][0] != pytest.approx(curve["rgb"][0], abs=0.05)  # the depth maps were used
