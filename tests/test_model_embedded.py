"""The embedded model's file: half-precision safetensors load as float32 equal to the rounded
weights, the missing-file error, the ship tool (metadata kept, source sha256 added, overflow
refused), and the library's prune / polish after the last iteration."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from resplat.cameras import Cameras, K_from_fov
from resplat.errors import CancelledError, ResplatError
from resplat.gaussians import Gaussians
from resplat.model import checkpoint, polish, prune_transparent
from resplat.model.checkpoint import CheckpointError, build_model, load_checkpoint, load_embedded_model
from resplat.model.config import PRESETS
from resplat.model.ship import main as ship_main
from resplat.model.ship import ship_weights
from resplat.train.checkpointing import export_safetensors


@pytest.fixture(scope="module")
def tiny_model():
    """The tiny preset with every floating tensor (buffers too) drawn from a seeded normal."""
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t) * 0.5)
    return model


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_safetensors_load_as_rounded_float32(tiny_model, tmp_path, dtype):
    sd = tiny_model.state_dict()
    half = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    path = tmp_path / "half.safetensors"
    save_file(half, str(path), metadata={"preset": "tiny", "config": json.dumps(dataclasses.asdict(PRESETS["tiny"]))})
    loaded = load_checkpoint(path).state_dict()
    assert list(loaded) == list(sd)
    changed = 0
    for k, v in sd.items():
        got = loaded[k]
        if v.is_floating_point():
            assert got.dtype == torch.float32, k
            assert torch.equal(got, v.to(dtype).float()), k  # exactly the rounded values
            changed += not torch.equal(got, v)
        else:
            assert got.dtype == v.dtype and torch.equal(got, v), k
    assert changed > 400  # the rounding really happened (a float32 load would fail the equality above)


def test_missing_embedded_weights_is_one_clear_error(tmp_path, monkeypatch):
    assert checkpoint.embedded_weights_path().parts[-3:] == ("model", "weights", "tiny.safetensors")
    assert checkpoint.EMBEDDED_PRESET == "tiny"
    missing = tmp_path / "weights" / "tiny.safetensors"
    monkeypatch.setattr(checkpoint, "embedded_weights_path", lambda: missing)
    with pytest.raises(CheckpointError) as err:
        load_embedded_model()
    assert str(err.value) == f"{missing}: this copy of resplat ships no embedded weights; pass --checkpoint"


def test_ship_keeps_metadata_adds_sha256_and_loads_back(tiny_model, tmp_path, monkeypatch, capsys):
    src = tmp_path / "run" / "model.safetensors"
    export_safetensors(tiny_model, src)
    dst = tmp_path / "pkg" / "weights" / "tiny.safetensors"
    assert ship_main([str(src), str(dst)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {dst}: preset tiny, 498 tensors, 10,169,284 parameters as float16")
    with safe_open(str(src), framework="pt") as f:
        src_meta = f.metadata()
    with safe_open(str(dst), framework="pt") as f:
        meta = f.metadata()
        assert f.get_tensor("encoder.proj.weight").dtype == torch.float16
        assert f.get_tensor("encoder.update_feature.bn1.num_batches_tracked").dtype == torch.int64
    assert {k: meta[k] for k in src_meta} == src_meta  # preset and config kept verbatim
    assert meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["source_name"] == "model.safetensors" and meta["dtype"] == "float16"
    assert 20_000_000 < dst.stat().st_size < 21_000_000 < src.stat().st_size / 1.9  # 2 bytes per value
    # the embedded loader reads it (monkeypatched location) as the rounded float32 model
    monkeypatch.setattr(checkpoint, "embedded_weights_path", lambda: dst)
    model = load_embedded_model()
    assert model.config == PRESETS["tiny"]
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v.half().float() if v.is_floating_point() else v), k


def test_ship_refuses_overflow(tiny_model, tmp_path):
    sd = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    sd["encoder.proj.bias"][3] = 1e6  # beyond float16's 65504
    src = tmp_path / "big.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(src))
    with pytest.raises(CheckpointError, match=r"big\.safetensors: encoder\.proj\.bias has values up to 1e\+06, beyond float16"):
        ship_weights(src, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()
    assert ship_weights(src, tmp_path / "out.safetensors", "bfloat16")["dtype"] == "bfloat16"  # bf16 has the range


def _cloud(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, 2.0])
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    return Gaussians(means, quats, torch.full((n, 3), math.log(0.05)), torch.randn(n, generator=g) * 3,
                     torch.randn(n, 16, 3, generator=g) * 0.2)


def test_prune_transparent():
    g = _cloud()
    t = 0.2
    keep = torch.sigmoid(g.logit_opacities) >= t
    out = prune_transparent(g, t)
    assert 0 < len(out) == int(keep.sum()) < len(g)
    assert torch.equal(out.means, g.means[keep]) and torch.equal(out.sh, g.sh[keep])
    assert bool((out.opacities >= t).all())
    assert prune_transparent(g, 0.0) is g
    with pytest.raises(ResplatError, match="pruning at opacity 0.9999 would remove all 1 Gaussians"):
        prune_transparent(Gaussians(g.means[:1], g.quats[:1], g.log_scales[:1], torch.tensor([-20.0]), g.sh[:1]), 0.9999)
    with pytest.raises(ResplatError, match=r"prune opacity must be in \[0, 1\), got 1.5"):
        prune_transparent(g, 1.5)


def test_polish_improves_fit_and_cancels():
    torch.set_num_threads(1)
    gt = _cloud(seed=1)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[:, 0, 3] = torch.tensor([-0.2, 0.2])
    cams = Cameras.from_c2w(c2w, K_from_fov(math.radians(60), 32, 32), 32, 32)
    from resplat.render import render

    images = render(gt, cams, backend="torch").rgb.clamp(0, 1)
    start = Gaussians(gt.means, gt.quats, gt.log_scales, gt.logit_opacities, gt.sh * 0.2)
    result = polish(start, images, cams, 20, backend="torch")
    assert len(result.losses) == 20 and len(result.gaussians) == len(start)
    assert result.losses[-1] < 0.8 * result.losses[0]
    assert result.psnr_history[-1][1] > result.psnr_history[0][1]
    assert polish(start, images, cams, 0).gaussians.means.equal(start.means)
    with pytest.raises(CancelledError, match="polish cancelled after step 3/20"):
        polish(start, images, cams, 20, backend="torch", callback=lambda info: info.step < 3)
