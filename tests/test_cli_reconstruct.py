"""`resplat reconstruct` end to end on a tiny random-weight checkpoint (a shrunken small-dl3dv
configuration passed with the hidden --config-json): JSON-lines progress per iteration, the
written PLY equals the library's reconstruct() on the same cropped views, and one-line errors for
a size that needs --crop and for a missing checkpoint."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from resplat.cli.main import main
from resplat.formats import read_splats
from resplat.model import config as config_module
from resplat.model.checkpoint import build_model
from resplat.model.config import PRESETS
from resplat.model.reconstruct import reconstruct_views
from resplat.views import read_views
from resplat.views.posed import fit_to_multiple
from random_views import write_random_views


@pytest.fixture(autouse=True)
def _tiny_vit(monkeypatch):
    """Register the shrunken ViT width of the tiny config."""
    monkeypatch.setitem(config_module.VIT_DIMS, "vitt", (64, 2))
    monkeypatch.setitem(config_module.DPT_CHANNELS, "vitt", (16, (8, 16, 32, 64)))


@pytest.fixture
def setup(tmp_path, _tiny_vit):
    cfg = dataclasses.replace(PRESETS["small-dl3dv"], name="tiny", vit_type="vitt", regressor_channels=32,
                              unet_channels=32, num_depth_candidates=32)
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():  # make the updates move the Gaussians
        model.encoder.update_head[-1].weight.normal_(0, 1e-3)
    ckpt = tmp_path / "tiny.pth"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    cfg_json = tmp_path / "tiny.json"
    cfg_json.write_text(json.dumps(dataclasses.asdict(cfg)))
    # 3 views of 70x66 (not multiples of 64: --crop takes the centred 64x64)
    write_random_views(tmp_path, 70, 66)
    return tmp_path, ckpt, cfg_json, model


def test_reconstruct_cli_writes_the_library_result(setup, capsys):
    root, ckpt, cfg_json, model = setup
    out = root / "scene.ply"
    code = main(["reconstruct", str(root), "--checkpoint", str(ckpt), "--config-json", str(cfg_json),
                 "--iterations", "2", "--out", str(out), "--crop", "--device", "cpu", "--progress", "jsonl"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps = [(e["step"], e["total"]) for e in events if e["event"] == "progress"]
    assert steps == [(1, 2), (2, 2)] and all(e["stage"] == "reconstruct" for e in events if e["event"] == "progress")
    result = [e for e in events if e["event"] == "result"][0]
    assert result["path"] == str(out) and result["metrics"]["gaussians"] == 3 * 16 * 16
    written = read_splats(out)
    views = fit_to_multiple(read_views(root), 64, mode="crop")
    full = reconstruct_views(views.images, views.cameras, model.eval(), iterations=2, device="cpu")
    expected = full.gaussians
    # the kept iteration and every iteration's fit to the inputs are reported
    assert result["metrics"]["kept_iteration"] == full.kept
    assert result["metrics"]["input_psnr"] == pytest.approx(full.input_psnr, abs=1e-3)
    assert any(e["event"] == "message" and f"kept iteration {full.kept} of 0..2" in e["message"] for e in events)
    torch.testing.assert_close(written.means, expected.means, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(written.sh, expected.sh, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(written.logit_opacities, expected.logit_opacities, rtol=1e-5, atol=1e-5)


def test_reconstruct_cli_one_line_errors(setup, capsys):
    root, ckpt, cfg_json, _ = setup
    base = ["reconstruct", str(root), "--config-json", str(cfg_json), "--out", str(root / "x.ply"), "--device", "cpu"]
    assert main(base + ["--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("resplat: error: image size 70x66 is not a multiple of 64 for preset 'tiny': "
                   "crop to 64x64 (e.g. --crop)")
    assert main(base + ["--checkpoint", str(root / "missing.pth")]) == 2
    assert "missing.pth: checkpoint file not found" in capsys.readouterr().err
    assert not (root / "x.ply").exists()
