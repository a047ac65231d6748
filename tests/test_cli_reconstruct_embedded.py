"""`resplat reconstruct` without --checkpoint: the embedded model (its location monkeypatched to a
float16 file of seeded random tiny weights), the embedded default iterations (resplat.defaults), --iterations
validation, --prune-opacity (the count reported equals the count computed from the unpruned
output) and --optimize-steps (progress per polish step; the file equals the library's
prune_transparent + polish of the unpruned output)."""

from __future__ import annotations

import json

import pytest
import torch

from resplat import defaults
from resplat.cli.main import main
from resplat.formats import read_splats
from resplat.model import checkpoint, polish, prune_transparent
from resplat.model.checkpoint import build_model
from resplat.model.ship import ship_weights
from resplat.train.checkpointing import export_safetensors
from resplat.views import read_views
from random_views import write_random_views


@pytest.fixture(scope="module")
def embedded_file(tmp_path_factory):
    """A float16 tiny-weights file made by the ship tool, with a Gaussian head that spreads the
    opacities (a fresh model's zero-initialised head gives every Gaussian opacity 0.5)."""
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    with torch.no_grad():
        model.encoder.gaussian_head[-1].weight.normal_(0, 0.3)
        model.encoder.update_head[-1].weight.normal_(0, 1e-3)
    root = tmp_path_factory.mktemp("embedded")
    export_safetensors(model, root / "model.safetensors")
    ship_weights(root / "model.safetensors", root / "weights" / "tiny.safetensors")
    return root / "weights" / "tiny.safetensors"


@pytest.fixture
def views(tmp_path, monkeypatch, embedded_file):
    torch.set_num_threads(1)
    monkeypatch.setattr(checkpoint, "embedded_weights_path", lambda: embedded_file)
    write_random_views(tmp_path, 64, 64, count=2)
    return tmp_path


def _run(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main(["reconstruct", *map(str, argv), "--device", "cpu", "--progress", "jsonl"])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err


def _result(events):
    return [e for e in events if e["event"] == "result"][0]["metrics"]


def test_embedded_model_prune_and_polish(views, capsys):
    plain, polished = views / "plain.ply", views / "polished.ply"
    code, events, _ = _run(capsys, views, "--iterations", "1", "--prune-opacity", "0", "--out", plain)
    assert code == 0
    m = _result(events)
    assert m["model"] == "embedded model" and m["iterations"] == 1 and m["pruned"] == 0
    assert any("preset tiny (embedded model), 1 iterations" in e.get("message", "") for e in events)
    unpruned = read_splats(plain)
    assert len(unpruned) == m["gaussians"] == 2 * 16 * 16

    t = 0.5
    expected_pruned = int((torch.sigmoid(unpruned.logit_opacities) < t).sum())
    assert 0 < expected_pruned < len(unpruned)
    code, events, _ = _run(capsys, views, "--iterations", "1", "--prune-opacity", t, "--optimize-steps", 2,
                           "--out", polished)
    assert code == 0
    m = _result(events)
    assert m["pruned"] == expected_pruned and m["predicted"] == len(unpruned)
    assert m["gaussians"] == len(unpruned) - expected_pruned and m["optimize_steps"] == 2
    assert any(e.get("message") == f"removed {expected_pruned} of {len(unpruned)} Gaussians with opacity < 0.5"
               for e in events)
    steps = [(e["stage"], e["step"], e["total"]) for e in events if e["event"] == "progress"]
    assert steps == [("reconstruct", 1, 1), ("polish", 1, 2), ("polish", 2, 2)]
    got = read_splats(polished)
    # the library's pipeline on the unpruned output gives the same file
    v = read_views(views)
    want = polish(prune_transparent(unpruned, t), v.images, v.cameras, 2).gaussians
    assert len(got) == len(want) == len(unpruned) - expected_pruned
    torch.testing.assert_close(got.means, want.means, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.sh, want.sh, rtol=0, atol=1e-6)
    assert not torch.equal(got.sh, prune_transparent(unpruned, t).sh)  # the polish changed the colours


def test_embedded_defaults_and_option_errors(views, capsys, monkeypatch):
    code, events, _ = _run(capsys, views, "--out", views / "default.ply")
    n = defaults.EMBEDDED_ITERATIONS
    assert code == 0 and _result(events)["iterations"] == n and _result(events)["prune_opacity"] == 0.005
    assert [e["step"] for e in events if e["event"] == "progress"] == list(range(1, n + 1))
    for bad, msg in ((["--iterations", "9"], "--iterations must be in 0..8, got 9"),
                     (["--iterations", "-1"], "--iterations must be in 0..8, got -1"),
                     (["--prune-opacity", "1"], r"--prune-opacity must be in [0, 1), got 1.0"),
                     (["--optimize-steps", "-3"], "--optimize-steps must be >= 0, got -3")):
        code, _, err = _run(capsys, views, *bad, "--out", views / "x.ply")
        assert code == 2 and err.strip() == f"resplat: error: {msg}"
    missing = views / "none" / "tiny.safetensors"
    monkeypatch.setattr(checkpoint, "embedded_weights_path", lambda: missing)
    code, events, err = _run(capsys, views, "--out", views / "x.ply")
    assert code == 2 and err.strip() == (f"resplat: error: {missing}: this copy of resplat ships no embedded "
                                         "weights; pass --checkpoint")
    assert not (views / "x.ply").exists()


def test_help_names_the_embedded_default(capsys):
    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: the embedded tiny model" in text and "--prune-opacity T" in text and "--optimize-steps N" in text
