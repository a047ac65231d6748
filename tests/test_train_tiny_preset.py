"""The tiny preset: size, layout inference, and the trained-weights path safetensors export ->
load_checkpoint -> reconstruct."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_scene import make_scene  # noqa: E402

from resplat.model import build_model  # noqa: E402
from resplat.model.checkpoint import infer_preset, load_checkpoint, stored_config  # noqa: E402
from resplat.model.config import PRESETS  # noqa: E402
from resplat.model.depth.mono_cnn import MonoCNN  # noqa: E402
from resplat.model.reconstruct import reconstruct  # noqa: E402
from resplat.train.checkpointing import export_safetensors  # noqa: E402


def test_tiny_size_and_layout():
    with torch.device("meta"):
        m = build_model("tiny")
    total = sum(p.numel() for p in m.parameters())
    frozen = sum(p.numel() for p in m.encoder.update_feature.parameters())
    assert total == 10_169_284 and total - frozen == 9_486_212
    assert isinstance(m.encoder.depth_predictor.pretrained, MonoCNN)
    assert infer_preset(m.state_dict()) == "tiny"
    # the released presets keep their DINOv2 branch (their manifests are checked elsewhere)
    with torch.device("meta"):
        assert "encoder.depth_predictor.pretrained.pos_embed" in build_model("small-dl3dv").state_dict()


def test_mono_cnn_taps():
    net = MonoCNN(64)
    taps = net.intermediate_maps(torch.randn(2, 3, 64, 96))
    assert [tuple(t.shape) for t in taps] == [(2, 64, 8, 12)] * 4
    assert not torch.allclose(taps[0], taps[3])


def test_export_load_reconstruct(tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    path = tmp_path / "tiny.safetensors"
    export_safetensors(model, path)
    assert stored_config(path) == PRESETS["tiny"]
    loaded = load_checkpoint(path)
    assert loaded.config == PRESETS["tiny"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    # a different config survives through the metadata (not a preset name)
    from dataclasses import replace
    odd = replace(PRESETS["tiny"], name="tiny-far", far=50.0)
    model.config = odd
    export_safetensors(model, tmp_path / "odd.safetensors")
    assert load_checkpoint(tmp_path / "odd.safetensors").config.far == 50.0
    # and a plain safetensors without metadata is still recognised from its shapes
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in loaded.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    assert load_checkpoint(tmp_path / "plain.safetensors").config.name == "tiny"

    s = make_scene(views=2, size=64)
    g = reconstruct(s.images, s.cameras, loaded, iterations=1, device="cpu")
    assert g.means.shape == (2 * 16 * 16, 3) and torch.isfinite(g.means).all()
    # the loaded weights give exactly what the exported model gives
    model.config = PRESETS["tiny"]
    model.encoder.config = PRESETS["tiny"]
    g0 = reconstruct(s.images, s.cameras, model, iterations=1, device="cpu")
    assert torch.allclose(g.means, g0.means, atol=1e-6) and torch.allclose(g.sh, g0.sh, atol=1e-6)
