"""Model building and strict checkpoint loading (resplat.model.checkpoint).

Full-size layouts are compared on the meta device (no storage); loading itself is exercised
with a shrunken configuration (~7M parameters, ~30 MB files) in .pth and .safetensors form, and
every foreign or mismatching file must raise a one-line CheckpointError naming the file."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import resplat.model
from resplat.model import config as config_module
from resplat.model.checkpoint import CheckpointError, build_model, infer_preset, load_checkpoint
from resplat.model.config import PRESETS

MANIFESTS = Path(resplat.model.__file__).parent / "manifests"
TOTALS = {"small-dl3dv": 76_630_164, "base-dl3dv": 223_978_924, "base-re10k": 222_144_100}


@pytest.mark.parametrize("preset", ["small-dl3dv", "base-dl3dv", "base-re10k", "base-dl3dv-16view"])
def test_build_model_matches_manifest(preset):
    model = build_model(preset, device="meta")
    manifest = json.loads((MANIFESTS / f"{preset.replace('-16view', '')}.json").read_text())
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(manifest)
    assert ours == manifest
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == TOTALS[preset.replace("-16view", "")]
    # inference from shapes (the 16-view model shares base-dl3dv's weights)
    assert infer_preset(model.state_dict()) == preset.replace("-16view", "")


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    monkeypatch.setitem(config_module.VIT_DIMS, "vitt", (64, 2))
    monkeypatch.setitem(config_module.DPT_CHANNELS, "vitt", (16, (8, 16, 32, 64)))
    cfg = dataclasses.replace(PRESETS["small-dl3dv"], name="tiny", vit_type="vitt", regressor_channels=32,
                              state_channels=32, error_channels=64, unet_channels=32, num_depth_candidates=32)
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():  # non-default values everywhere, buffers included
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))
    return cfg, model, tmp_path


def test_load_round_trip_pth_and_safetensors(tiny):
    cfg, model, tmp = tiny
    sd = model.state_dict()
    pth = tmp / "lightning.pth"
    torch.save({"state_dict": sd, "epoch": 3, "global_step": 10}, pth)
    st = tmp / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    for path in (pth, st):
        loaded = load_checkpoint(path, cfg)
        assert not loaded.training and not loaded.encoder.update_feature.training
        got = loaded.state_dict()
        assert list(got) == list(sd)
        assert all(torch.equal(got[k], sd[k]) for k in sd)
        assert not any(t.is_meta for t in list(loaded.parameters()) + list(loaded.buffers()))
        assert not any(p.requires_grad for p in loaded.encoder.update_feature.parameters())
        assert loaded.encoder.proj.weight.requires_grad


def test_layout_mismatches_are_named(tiny):
    cfg, model, tmp = tiny
    sd = dict(model.state_dict())
    path = tmp / "bad.pth"
    missing = dict(sd)
    del missing["encoder.proj.bias"]
    torch.save(missing, path)
    with pytest.raises(CheckpointError, match=r"bad\.pth: .*1 missing: encoder\.proj\.bias"):
        load_checkpoint(path, cfg)
    extra = dict(sd, **{"encoder.extra.weight": torch.zeros(2)})
    torch.save({"state_dict": extra}, path)
    with pytest.raises(CheckpointError, match=r"1 unexpected: encoder\.extra\.weight"):
        load_checkpoint(path, cfg)
    shaped = dict(sd, **{"encoder.gaussian_head.2.bias": torch.zeros(57)})
    torch.save(shaped, path)
    with pytest.raises(CheckpointError, match=r"wrong shape: encoder\.gaussian_head\.2\.bias \[57\] \(model \[58\]\)") as e:
        load_checkpoint(path, cfg)
    assert "\n" not in str(e.value)
    # the tiny checkpoint against a real preset: many keys mis-shaped, message stays short
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"does not match the small-dl3dv model: .* and \d+ more") as e:
        load_checkpoint(path, "small-dl3dv")
    assert len(str(e.value)) < 600


def test_foreign_files_raise_one_line_errors(tmp_path, train_ply):
    cases = {}
    cases["ply"] = train_ply
    junk = tmp_path / "pickle.pth"
    junk.write_bytes(pickle.dumps({"a": object()}, protocol=2))
    cases["pickle"] = junk
    code = tmp_path / "code.pth"
    code.write_bytes(pickle.dumps(print, protocol=2))  # a global weights_only refuses
    cases["code"] = code
    empty = tmp_path / "empty.pth"
    torch.save({"state_dict": {"epoch": 3}, "note": "x"}, empty)
    cases["no tensors"] = empty
    text = tmp_path / "text.pth"
    text.write_text("hello")
    cases["text"] = text
    cases["missing"] = tmp_path / "nope.pth"
    bad_st = tmp_path / "broken.safetensors"
    bad_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    cases["safetensors"] = bad_st
    for what, path in cases.items():
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        msg = str(e.value)
        assert msg.startswith(str(path)) and "\n" not in msg, (what, msg)
    unknown = tmp_path / "unknown.pth"
    torch.save({"encoder.proj.weight": torch.zeros(2, 2)}, unknown)
    with pytest.raises(CheckpointError, match="cannot tell which ReSplat preset"):
        load_checkpoint(unknown)

