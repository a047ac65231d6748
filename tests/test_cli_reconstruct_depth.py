"""`resplat reconstruct` uses the views' depth maps (nerfstudio depth_file_path, as the Blender
extension's Depth Pass writes them) by default and says so in its JSON progress; --ignore-depth
refuses them. A synthetic 64x64 scene with exact depth, the tiny preset with random weights."""

from __future__ import annotations

import json

import torch

from resplat.cli.main import main
from resplat.data.generate import GeneratorConfig, generate_dataset
from resplat.formats import read_splats
from resplat.model.checkpoint import build_model
from resplat.model.reconstruct import reconstruct
from resplat.views import read_views


def _result(capsys):
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [e for e in events if e["event"] == "result"][0], [e for e in events if e["event"] == "message"]


def test_reconstruct_uses_depth_maps_unless_told_not_to(tmp_path, capsys):
    generate_dataset(tmp_path / "d", 1, 5, GeneratorConfig(width=64, height=64, views=3, context=2, open_fraction=1.0))
    scene = tmp_path / "d" / "scene_000000"
    torch.manual_seed(0)
    model = build_model("tiny")
    ckpt = tmp_path / "tiny.pth"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    base = ["reconstruct", str(scene), "--checkpoint", str(ckpt), "--preset", "tiny", "--iterations", "0",
            "--prune-opacity", "0", "--device", "cpu", "--progress", "jsonl"]
    assert main(base + ["--out", str(tmp_path / "a.ply")]) == 0
    result, messages = _result(capsys)
    assert result["metrics"]["depth"] == "exact"
    assert any("depth exact (the views' depth maps)" in m.get("message", "") for m in messages)
    views = read_views(scene)
    assert views.depths is not None
    expected = reconstruct(views.images, views.cameras, model.eval(), iterations=0, device="cpu", depths=views.depths)
    written = read_splats(tmp_path / "a.ply")
    torch.testing.assert_close(written.means, expected.means, rtol=1e-5, atol=1e-5)
    assert main(base + ["--out", str(tmp_path / "b.ply"), "--ignore-depth"]) == 0
    result, _ = _result(capsys)
    assert result["metrics"]["depth"] == "ignored"
    free = read_splats(tmp_path / "b.ply")
    assert float((free.means - written.means).norm(dim=-1).max()) > 1e-2
