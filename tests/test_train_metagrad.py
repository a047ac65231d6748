"""Stage "metagrad" (ForeSplat's first-order MetaGrad, resplat.train.metagrad): anchor steps,
the gradient it gives the head against an independent computation, zero steps equal to the
plain stage-"initial" image loss, only the head trained, and the CLI stage."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_scene import make_scene  # noqa: E402

from resplat.gaussians import Gaussians  # noqa: E402
from resplat.model import build_model  # noqa: E402
from resplat.optim import OptimConfig, optimize  # noqa: E402
from resplat.render import render  # noqa: E402
from resplat.train import TrainConfig, train  # noqa: E402
from resplat.train.config import TrainConfigError  # noqa: E402
from resplat.train.loop import trainable_parameters  # noqa: E402
from resplat.train.losses import ImageLoss  # noqa: E402
from resplat.train.metagrad import anchor_steps, metagrad_loss  # noqa: E402
from resplat.train.step import initial_loss, model_frame  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def scene():
    return make_scene(views=4, size=64, context=2, gaussians=200)


def _model(seed=0):
    torch.manual_seed(seed)
    model = build_model("tiny")
    trainable_parameters(model, "metagrad")
    return model


def _head_grads(model, loss):
    head = list(model.encoder.gaussian_head.parameters())
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad.clone() for p in head]


def test_anchor_steps():
    assert anchor_steps(20, 4) == [0, 7, 13, 20]
    assert anchor_steps(20, 2) == [0, 20]
    assert anchor_steps(3, 10) == [0, 1, 2, 3]
    assert anchor_steps(0, 1) == [0]
    for bad in ((-1, 2), (5, 1), (5, 0)):
        with pytest.raises(ValueError):
            anchor_steps(*bad)
    with pytest.raises(TrainConfigError, match="metagrad"):
        TrainConfig(stage="metagrad", metagrad_steps=5, metagrad_anchors=1)


def test_zero_steps_is_the_initial_image_loss(scene):
    """K = 0: the only anchor is the prediction itself, so the head's gradient is the plain
    stage-"initial" image-loss gradient (no depth term)."""
    cfg = TrainConfig(stage="metagrad", metagrad_steps=0, metagrad_anchors=1, depth_weight=0.0)
    model = _model()
    fn = ImageLoss(cfg)
    surrogate, parts = metagrad_loss(model, scene, fn, cfg, CPU, random.Random(0))
    got = _head_grads(model, surrogate)
    loss, ref_parts = initial_loss(model, scene, fn, cfg, CPU)
    want = _head_grads(model, loss)
    assert parts["loss"] == pytest.approx(ref_parts["loss"], rel=1e-6)
    assert set(parts) == {"prior", "loss", "l1_0"}
    for g, w in zip(got, want):
        assert float(w.abs().max()) > 0
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-9)


def test_gradient_is_the_mean_anchor_gradient(scene):
    """K = 4 with 3 anchors (steps 0, 2, 4): the head's gradient is J^T mean_k dL(G_k)/dG_k,
    J = dG_0/d(head), with the G_k computed here by resplat.optim.optimize itself."""
    cfg = TrainConfig(stage="metagrad", metagrad_steps=4, metagrad_anchors=3)
    model = _model()
    fn = ImageLoss(cfg)
    surrogate, parts = metagrad_loss(model, scene, fn, cfg, CPU, random.Random(5))
    got = _head_grads(model, surrogate)
    assert set(parts) == {"prior", "loss", "l1_0", "l1_2", "l1_4"}

    ctx_img, tgt_img, ctx_cams, tgt_cams, _, frame = model_frame(scene, CPU, model.config)
    g0 = model.encoder.forward_initial(ctx_img[None], ctx_cams, None, frame).gaussians[0]
    seed = random.Random(5).randrange(2**31)  # the coin is not drawn (depth_prior_prob 0)
    mid = []  # the state after step 2 of the same 4-step polish (the rate schedule spans 4 steps)
    end = optimize(g0.detach(), ctx_img, frame.cameras(ctx_cams), 4, strategy="none", eval_every=0,
                   lr=OptimConfig(sh_increase_every=1), seed=seed,
                   callback=lambda p: mid.append(p.snapshot()) if p.step == 2 else None).gaussians
    states = [g0.detach(), mid[0], end]
    assert float((states[2].means - states[0].means).abs().max()) > 0  # the polish moved them
    names = ("means", "quats", "log_scales", "logit_opacities", "sh")
    mean_grad = [torch.zeros_like(getattr(g0, n)) for n in names]
    losses = []
    for s in states:
        leaves = [getattr(s, n).clone().requires_grad_(True) for n in names]
        rgb = render(Gaussians(*leaves), tgt_cams, near=model.config.near, far=model.config.far).rgb
        loss, _ = fn(rgb, tgt_img)
        losses.append(float(loss.detach()))
        for m, g in zip(mean_grad, torch.autograd.grad(loss, leaves)):
            m += g / 3
    head = list(model.encoder.gaussian_head.parameters())
    want = torch.autograd.grad([getattr(g0, n) for n in names], head, grad_outputs=mean_grad, allow_unused=True)
    assert parts["loss"] == pytest.approx(sum(losses) / 3, rel=1e-5)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-8)
    plain = _head_grads(model, initial_loss(model, scene, fn, TrainConfig(depth_weight=0.0), CPU)[0])
    assert any(float((g - p).abs().max()) > 1e-3 * float(p.abs().max()) for g, p in zip(got, plain))


def test_train_metagrad_changes_the_head_only(scene, tmp_path, capsys):
    from resplat.cli import cmd_train
    from resplat.cli.main import main
    from resplat.train.checkpointing import export_safetensors

    torch.manual_seed(0)
    model = build_model("tiny")
    export_safetensors(model, tmp_path / "init.safetensors")
    cfg = TrainConfig(stage="metagrad", steps=2, lr=1e-3, warmup=0.0, checkpoint_every=0, metagrad_steps=3,
                      metagrad_anchors=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, [scene], cfg, tmp_path / "run", resume=False)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("encoder.gaussian_head.") for k in changed), changed
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and {"l1_0", "l1_3"} <= set(log[0])

    monkey = pytest.MonkeyPatch()
    monkey.setattr(cmd_train, "open_dataset", lambda args: [scene])
    try:
        capsys.readouterr()
        rc = main(["train", str(tmp_path), "--out", str(tmp_path / "cli"), "--stage", "metagrad", "--steps", "1",
                   "--metagrad-steps", "2", "--metagrad-anchors", "2", "--device", "cpu", "--progress", "jsonl",
                   "--init", str(tmp_path / "init.safetensors")])
        assert rc == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert lines[-1]["event"] == "result" and "l1_2" in lines[0]["metrics"]
        rc = main(["train", str(tmp_path), "--out", str(tmp_path / "x"), "--stage", "metagrad", "--steps", "1",
                   "--device", "cpu"])
        assert rc == 2 and "--stage metagrad needs --init" in capsys.readouterr().err
    finally:
        monkey.undo()
