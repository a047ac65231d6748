"""Point transformer (resplat.model.point_transformer) against the manifests and float64
references written independently of the module: a per-point loop for the kNN attention, a
hand-built pixel-unshuffle case for the low-resolution multi-view attention, and permutation
equivariance of the kNN block."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from safetensors.torch import load_file
import torch
import torch.nn.functional as F

import resplat.model
from resplat.model.config import PRESETS
from resplat.model.knn import knn
from resplat.model.point_transformer import (
    KnnAttentionBlock,
    MultiViewLowresAttn,
    PlainPointTransformer,
    PointTransformerInputError,
)

MANIFESTS = Path(resplat.model.__file__).parent / "manifests"


def manifest_subset(preset: str, prefix: str) -> dict[str, list[int]]:
    m = json.loads((MANIFESTS / f"{preset}.json").read_text())
    return {k[len(prefix):]: v for k, v in m.items() if k.startswith(prefix)}


def randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)


@pytest.mark.parametrize("preset", ["small-dl3dv", "base-dl3dv", "base-re10k"])
def test_pt_state_dict_matches_manifest(preset):
    cfg = PRESETS[preset]
    with torch.device("meta"):
        pt = PlainPointTransformer(cfg.regressor_channels, cfg.pt_knn, cfg.pt_blocks, cfg.attn_proj_channels,
                                   with_mv_attn=True)
        upd = PlainPointTransformer(cfg.state_channels, cfg.update_knn, cfg.update_blocks, cfg.attn_proj_channels)
        err = MultiViewLowresAttn(cfg.error_channels)
    for module, prefix in ((pt, "encoder.pt."), (upd, "encoder.update_module.1."), (err, "encoder.update_error_attn.0.")):
        ours = {k: list(v.shape) for k, v in module.state_dict().items()}
        expected = manifest_subset(preset, prefix)
        assert list(ours) == list(expected)  # same keys in state-dict order
        assert ours == expected


def loop_block_reference(block: KnnAttentionBlock, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Per-point float64 evaluation of the pre-LN kNN block written from the formulas."""
    sd = {k: v.double() for k, v in block.state_dict().items()}
    P = sd["attn.proj.weight"].shape[1]

    def ln(v, w, b):
        mu = v.mean()
        var = ((v - mu) ** 2).mean()
        return (v - mu) / math.sqrt(var + 1e-5) * w + b

    out = torch.empty_like(x)
    for bi in range(x.shape[0]):
        h = torch.stack([ln(x[bi, n], sd["norm1.weight"], sd["norm1.bias"]) for n in range(x.shape[1])])
        qkv = h @ sd["attn.qkv.weight"].T
        q, k, v = qkv[:, :P], qkv[:, P:2 * P], qkv[:, 2 * P:]
        for n in range(x.shape[1]):
            s = torch.tensor([float(q[n] @ k[m]) / math.sqrt(P) for m in idx[bi, n].tolist()], dtype=torch.float64)
            a = torch.exp(s - s.max())
            a = a / a.sum()
            att = sum(a[j] * v[m] for j, m in enumerate(idx[bi, n].tolist()))
            y = x[bi, n] + att @ sd["attn.proj.weight"].T + sd["attn.proj.bias"]
            z = ln(y, sd["norm2.weight"], sd["norm2.bias"])
            hid = F.gelu(z @ sd["mlp.fc1.weight"].T + sd["mlp.fc1.bias"])
            out[bi, n] = y + hid @ sd["mlp.fc2.weight"].T + sd["mlp.fc2.bias"]
    return out


def test_knn_block_matches_per_point_loop():
    torch.manual_seed(0)
    block = KnnAttentionBlock(12, attn_proj_channels=8).double()
    randomize(block)
    x = torch.randn(2, 20, 12, dtype=torch.float64)
    pts = torch.randn(2, 20, 3, dtype=torch.float64)
    idx = knn(pts, 5)[0]
    ours = block(x, idx)
    ref = loop_block_reference(block, x, idx)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def test_knn_block_is_permutation_equivariant_and_uses_neighbours():
    torch.manual_seed(1)
    pt = PlainPointTransformer(8, knn_samples=4, num_blocks=2, attn_proj_channels=8).double()
    randomize(pt, seed=1)
    x = torch.randn(1, 30, 8, dtype=torch.float64)
    pts = torch.randn(1, 30, 3, dtype=torch.float64)
    out = pt(x, pts)
    perm = torch.randperm(30)
    out_p = pt(x[:, perm], pts[:, perm])
    torch.testing.assert_close(out_p, out[:, perm], rtol=1e-12, atol=1e-12)
    # moving the points (not the features) changes the result: neighbours are really used
    pts2 = pts.clone()
    pts2[0, :, 0] = pts2[0, :, 0] * 7.0
    assert not torch.allclose(pt(x, pts2), out, atol=1e-6)
    # a given knn_index is used as is (equal to the computed one -> same output)
    torch.testing.assert_close(pt(x, pts, knn_index=knn(pts, 4)[0]), out)


def test_lowres_attn_token_layout_hand_built():
    """Token t of view v at low-res cell (Y, X) must hold channel c*16 + dy*4 + dx = x[v, c, 4Y+dy, 4X+dx]."""
    torch.manual_seed(2)
    C, V, h, w = 2, 2, 8, 4
    blk = MultiViewLowresAttn(C * 2, down_factor=4, num_heads=1).double()
    # capture proj1's input through a hook
    seen = {}
    blk.proj1.register_forward_hook(lambda m, inp, out: seen.update(tokens=inp[0]))
    x = torch.randn(1, V, C * 2, h, w, dtype=torch.float64)
    blk(x)
    tokens = seen["tokens"]  # [1, V * 2 * 1, 16 * 2C]
    assert tokens.shape == (1, V * (h // 4) * (w // 4), 16 * C * 2)
    for v in range(V):
        for Y in range(h // 4):
            for X in range(w // 4):
                t = v * (h // 4) * (w // 4) + Y * (w // 4) + X
                for c in range(C * 2):
                    for dy in range(4):
                        for dx in range(4):
                            assert tokens[0, t, c * 16 + dy * 4 + dx] == x[0, v, c, 4 * Y + dy, 4 * X + dx]


def test_lowres_attn_float64_reference_and_cross_view_mixing():
    torch.manual_seed(3)
    C, V, h, w = 8, 2, 8, 8
    blk = MultiViewLowresAttn(C, down_factor=4, num_heads=2).double()
    randomize(blk, seed=3, std=0.1)
    x = torch.randn(1, V, C, h, w, dtype=torch.float64)
    out = blk(x)
    sd = {k: v for k, v in blk.state_dict().items()}
    # reference: explicit loops over tokens/heads
    tok = torch.stack([F.pixel_unshuffle(x[0, v], 4).reshape(16 * C, -1).T for v in range(V)]).reshape(-1, 16 * C)
    t = F.layer_norm(tok @ sd["proj1.weight"].T + sd["proj1.bias"], (C,), sd["norm1.weight"], sd["norm1.bias"])
    n1 = F.layer_norm(t, (C,), sd["attn.norm1.weight"], sd["attn.norm1.bias"])
    qkv = n1 @ sd["attn.attn.qkv.weight"].T  # [T, 3C] = [3, heads, d]
    T, d = t.shape[0], C // 2
    att = torch.zeros(T, C, dtype=torch.float64)
    for head in range(2):
        q = qkv[:, head * d:(head + 1) * d]
        k = qkv[:, C + head * d:C + (head + 1) * d]
        v = qkv[:, 2 * C + head * d:2 * C + (head + 1) * d]
        att[:, head * d:(head + 1) * d] = torch.softmax(q @ k.T / math.sqrt(d), -1) @ v
    t = t + att @ sd["attn.attn.proj.weight"].T + sd["attn.attn.proj.bias"]
    n2 = F.layer_norm(t, (C,), sd["attn.norm2.weight"], sd["attn.norm2.bias"])
    t = t + F.gelu(n2 @ sd["attn.mlp.fc1.weight"].T + sd["attn.mlp.fc1.bias"]) @ sd["attn.mlp.fc2.weight"].T + sd["attn.mlp.fc2.bias"]
    t = F.layer_norm(t @ sd["proj2.weight"].T + sd["proj2.bias"], (16 * C,), sd["norm2.weight"], sd["norm2.bias"])
    per_view = t.reshape(V, (h // 4) * (w // 4), 16 * C)
    ref = torch.stack([
        F.conv2d(F.pixel_shuffle(per_view[v].T.reshape(16 * C, h // 4, w // 4), 4)[None], sd["conv.weight"],
                 sd["conv.bias"], padding=1)[0] + x[0, v]
        for v in range(V)])
    torch.testing.assert_close(out[0], ref, rtol=1e-10, atol=1e-10)
    # attention is global over views: changing view 1 changes view 0's output
    x2 = x.clone()
    x2[0, 1] += 1.0
    assert not torch.allclose(blk(x2)[0, 0], out[0, 0], atol=1e-8)


def test_mv_transformer_order_and_errors():
    torch.manual_seed(4)
    pt = PlainPointTransformer(8, knn_samples=4, num_blocks=2, attn_proj_channels=8, with_mv_attn=True, mv_heads=2).double()
    randomize(pt, seed=4, std=0.1)
    V, h, w = 2, 4, 8
    x = torch.randn(1, V * h * w, 8, dtype=torch.float64)
    pts = torch.randn(1, V * h * w, 3, dtype=torch.float64)
    idx = knn(pts, 4)[0]
    ref = x
    for i in range(2):  # kNN block i then mv block i
        ref = pt.blocks[i](ref, idx)
        ref = pt.mv_blocks[i](ref.reshape(1, V, h, w, 8).permute(0, 1, 4, 2, 3)).permute(0, 1, 3, 4, 2).reshape(1, -1, 8)
    torch.testing.assert_close(pt(x, pts, grid=(V, h, w)), ref)
    with pytest.raises(PointTransformerInputError):
        pt(x, pts)  # grid missing
    with pytest.raises(PointTransformerInputError):
        pt(x, pts[:, :10], grid=(V, h, w))


GOLDEN = Path(__file__).parent / "data" / "golden" / "point_transformer.safetensors"


def seeded_weights(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Fill every state-dict entry in order with normal * 0.1 from ``gen`` (float64)."""
    module.load_state_dict({k: torch.randn(v.shape, generator=gen, dtype=torch.float64) * 0.1
                            for k, v in module.state_dict().items()})


def test_golden_release_outputs():
    """Outputs of the release's ``PlainPointTransformer`` (point_transformer/layer.py at commit
    cc4594a; pointops replaced by a brute-force kNN with index-ordered ties) and of its
    ``MultViewLowresAttn(down_factor=8)``, float64, produced in a scratch folder outside the
    repository by:

        pt = PlainPointTransformer(32, 16, 2, attn_proj_channels=16, with_mv_attn=True,
                                   with_mv_attn_lowres=True, mvattn_down_factor=4).double()
        g = torch.Generator().manual_seed(0)   # weights: normal * 0.1 per key in state-dict order
        gi = torch.Generator().manual_seed(1)  # inputs
        x = randn(1, 128, 32, gi); p = rand(1, 128, 3, gi)        # V=2 views of 8x8 latent points
        out = pt((p[0], x[0], tensor([128])), b=1, v=2, h=8, w=8)
        err = MultViewLowresAttn(32, down_factor=8) (weights continue from g)
        mv8_out = err(mv8_in = randn(1, 128, 32, gi), v=2, h=8, w=8)
    """
    ref = load_file(str(GOLDEN))
    g = torch.Generator().manual_seed(0)
    pt = PlainPointTransformer(32, 16, 2, attn_proj_channels=16, with_mv_attn=True).double()
    seeded_weights(pt, g)
    torch.testing.assert_close(pt(ref["x"], ref["points"], grid=(2, 8, 8)), ref["out"], rtol=1e-12, atol=1e-12)
    err = MultiViewLowresAttn(32, down_factor=8).double()
    seeded_weights(err, g)
    y = ref["mv8_in"].reshape(1, 2, 8, 8, 32).permute(0, 1, 4, 2, 3)
    out = err(y).permute(0, 1, 3, 4, 2).reshape(1, 128, 32)
    torch.testing.assert_close(out, ref["mv8_out"], rtol=1e-12, atol=1e-12)
