"""The gsplat backend against the torch backend (needs CUDA and gsplat; skipped otherwise)."""

from __future__ import annotations

import pytest
import torch

from resplat.render import render
from resplat.render.gsplat_backend import gsplat_available
from test_render_torch import FIELDS, make_scene, rel

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and gsplat_available()), reason="gsplat backend needs CUDA and gsplat"
)


@pytest.mark.parametrize("sh_degree,antialiased", [(0, True), (3, True), (1, False)])
def test_gsplat_matches_torch_backend(sh_degree, antialiased):
    gs, cams = make_scene(400, sh_degree, seed=11 + sh_degree, width=64, height=48)
    gs, cams = gs.to("cuda", torch.float32).requires_grad_(), cams.to("cuda", torch.float32)
    bg = torch.tensor([0.2, 0.5, 0.9], device="cuda")
    outs = [render(gs, cams, background=bg, backend=b, antialiased=antialiased) for b in ("gsplat", "torch")]
    for name in ("rgb", "alpha", "depth"):
        assert rel(getattr(outs[0], name), getattr(outs[1], name)) < 1e-4, name
    w = torch.randn_like(outs[0].rgb)
    grads = [torch.autograd.grad((o.rgb * w).sum() + o.alpha.sum(), [getattr(gs, f) for f in FIELDS]) for o in outs]
    for f, a, b in zip(FIELDS, *grads):
        assert rel(a, b) < 1e-3, f
