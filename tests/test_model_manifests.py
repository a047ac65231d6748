"""The release's state-dict manifests (runtime/resplat/model/manifests/*.json).

They were generated from the release's module definitions (docs/model-architecture.md). These
checks pin the facts our model code will be tested against: every key carries the checkpoint's
``encoder.`` prefix, the three presets share one key set, the parameter totals equal the
published sizes (76.6M, 224.0M, 222.1M) and a few shapes that follow from the channel
arithmetic of the paper's per-point features (Sec. 3.1) hold.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import resplat.model

MANIFESTS = Path(resplat.model.__file__).parent / "manifests"
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # ResNet-18 BatchNorm state


def load(name: str) -> dict[str, list[int]]:
    return json.loads((MANIFESTS / f"{name}.json").read_text())


def parameter_count(manifest: dict[str, list[int]]) -> int:
    return sum(math.prod(shape) for key, shape in manifest.items() if not key.endswith(BUFFERS))


@pytest.mark.parametrize(
    "name, total, published_m",
    [("small-dl3dv", 76_630_164, 76.6), ("base-dl3dv", 223_978_924, 224.0), ("base-re10k", 222_144_100, 222.1)],
)
def test_parameter_totals_match_release(name, total, published_m):
    manifest = load(name)
    assert parameter_count(manifest) == total
    assert round(total / 1e6, 1) == published_m
    assert all(k.startswith("encoder.") for k in manifest)


def test_presets_share_keys_in_state_dict_order():
    keys = [list(load(n)) for n in ("small-dl3dv", "base-dl3dv", "base-re10k")]
    assert keys[0] == keys[1] == keys[2]
    assert len(keys[0]) == 842


def test_channel_arithmetic():
    base, small, re10k = load("base-dl3dv"), load("small-dl3dv"), load("base-re10k")
    # regressor input: 48 unshuffled RGB + depth + match prob + 608 features (ViT-B/4 + 128 + 64 + 96 + 128)
    assert base["encoder.gaussian_regressor.0.weight"] == [512, 658, 3, 3]
    assert small["encoder.gaussian_regressor.0.weight"] == [256, 562, 3, 3]
    assert base["encoder.proj.weight"] == [512, 48 + 608 + 512 + 1]
    # head: rotation 4 + scale 3 + opacity 1 + offset 2 + SH 48 = 58 (x4 Gaussians for RE10K)
    assert base["encoder.gaussian_head.2.weight"] == [58, 58]
    assert re10k["encoder.gaussian_head.2.weight"] == [232, 232]
    # updater input: Gaussian 59 + state 512 + error 256 = 827
    for m in (base, small, re10k):
        assert m["encoder.update_module.0.linear.weight"] == [512, 827]
        assert m["encoder.update_head.6.weight"] == [59, 512]
        assert m["encoder.update_module.1.blocks.0.attn.qkv.weight"] == [192, 512]
    assert base["encoder.pt.blocks.5.attn.qkv.weight"] == [192, 512]
    assert base["encoder.pt.mv_blocks.0.proj1.weight"] == [512, 512 * 16]
    assert re10k["encoder.update_rgb_error_proj.0.weight"] == [256, 3]
    assert base["encoder.depth_predictor.pretrained.pos_embed"] == [1, 1370, 768]
