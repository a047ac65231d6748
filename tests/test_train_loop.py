"""Training: iteration weights, schedule shape, loss decrease on a fixed example in both
stages, bitwise resume, the chunk loader and the CLI."""

from __future__ import annotations

import io
import json
import math
import random
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_scene import make_scene  # noqa: E402

from resplat.model import build_model  # noqa: E402
from resplat.train import TrainConfig, iteration_weights, one_cycle, train  # noqa: E402
from resplat.train.chunks import ChunkDataset, ChunkFormatError  # noqa: E402
from resplat.train.losses import ImageLoss  # noqa: E402
from resplat.train.step import initial_loss, update_loss  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    return make_scene(views=3, size=64, context=2)


def test_iteration_weights():
    assert iteration_weights(1) == [1.0]
    w = iteration_weights(4, 0.9)
    assert w == pytest.approx([0.729, 0.81, 0.9, 1.0])


def test_one_cycle_shape():
    f = [one_cycle(s, 200, 0.01) for s in range(200)]
    assert f[0] == pytest.approx(0.5) and f[1] == pytest.approx(1.0)  # 2 warm-up steps
    assert f[2] == pytest.approx(1.0) and all(a >= b for a, b in zip(f[2:], f[3:]))
    assert f[101] == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 198)))
    assert 0 < f[-1] < 1e-3


def _eval(model, scene, cfg, stage):
    with torch.no_grad():
        fn = ImageLoss(cfg)
        if stage == "initial":
            return initial_loss(model, scene, fn, cfg, torch.device("cpu"))[0].item()
        return update_loss(model, scene, fn, cfg, torch.device("cpu"), random.Random(0), T=2)[0].item()


def test_initial_then_update_loss_decreases(scene, tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny")
    cfg = TrainConfig(stage="initial", steps=6, lr=1e-3, warmup=0.0, checkpoint_every=0)
    before = _eval(model, scene, cfg, "initial")
    train(model, [scene], cfg, tmp_path / "a", resume=False)
    after = _eval(model, scene, cfg, "initial")
    assert after < 0.9 * before
    frozen = {k: v.clone() for k, v in model.encoder.depth_predictor.state_dict().items()}
    ucfg = TrainConfig(stage="update", steps=5, lr=1e-3, warmup=0.0, checkpoint_every=0, max_iterations=2)
    before = _eval(model, scene, ucfg, "update")
    train(model, [scene], ucfg, tmp_path / "b", resume=False)
    after = _eval(model, scene, ucfg, "update")
    assert after < 0.97 * before
    for k, v in model.encoder.depth_predictor.state_dict().items():  # initial model frozen
        assert torch.equal(v, frozen[k]), k
    assert (tmp_path / "b" / "model.safetensors").is_file()


def test_resume_is_exact(scene, tmp_path):
    cfg = TrainConfig(stage="initial", steps=4, lr=1e-3, checkpoint_every=0)
    torch.manual_seed(1)
    full = build_model("tiny")
    train(full, [scene, scene], cfg, tmp_path / "full", resume=False)
    torch.manual_seed(1)
    half = build_model("tiny")
    train(half, [scene, scene], cfg, tmp_path / "half", resume=False, stop_at=2)
    assert not (tmp_path / "half" / "model.safetensors").exists()
    with open(tmp_path / "half" / "log.jsonl", "a") as f:  # a run killed after its last checkpoint
        f.write(json.dumps({"step": 3, "loss": -1.0}) + "\n")
    torch.manual_seed(99)
    again = build_model("tiny")  # other init: everything must come from the state file
    summary = train(again, [scene, scene], cfg, tmp_path / "half")
    assert summary["start"] == 2
    for k, v in full.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    log = [json.loads(l) for l in (tmp_path / "half" / "log.jsonl").read_text().splitlines()]
    ref = [json.loads(l) for l in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == [r["loss"] for r in ref]


def _write_chunk(path: Path, frames: int = 6, size=(48, 64)):
    from PIL import Image

    scenes = []
    for key in ("aaa", "bbb"):
        imgs = []
        for i in range(frames):
            arr = (torch.rand(size[0], size[1], 3) * 255).to(torch.uint8).numpy()
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG")
            imgs.append(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8))
        cams = torch.zeros(frames, 18)
        cams[:, :4] = torch.tensor([0.9, 1.2, 0.5, 0.5])
        w2c = torch.eye(4)[:3].repeat(frames, 1, 1)
        w2c[:, 0, 3] = torch.arange(frames) * 0.1
        cams[:, 6:] = w2c.reshape(frames, 12)
        scenes.append({"key": key, "url": "u", "timestamps": torch.arange(frames), "cameras": cams, "images": imgs})
    torch.save(scenes, path)


def test_chunk_loader(tmp_path):
    _write_chunk(tmp_path / "000000.torch")
    ds = ChunkDataset(tmp_path, context=3, target=2, size=(32, 32), window=6)
    assert len(ds) == 2
    s = ds[1]
    assert s.images.shape == (5, 3, 32, 32) and 0 <= s.images.min() and s.images.max() <= 1
    assert s.context == [0, 1, 2] and s.target == [3, 4] and s.depths is None
    # 64x48 centre-cropped to 48x48 then scaled by 32/48: fx = 0.9 * 64 * 2/3, cx = (32 - 8) * 2/3
    assert s.cameras.K[0, 0, 0].item() == pytest.approx(0.9 * 64 * 2 / 3)
    assert s.cameras.K[0, 0, 2].item() == pytest.approx(16.0)
    assert s.cameras.K[0, 1, 2].item() == pytest.approx(16.0)
    # the context views are the window's ends and middle: frames 0, round(2.5) = 2 and 5 (w2c translations)
    assert s.cameras.w2c[:3, 0, 3].tolist() == pytest.approx([0.0, 0.2, 0.5])
    torch.save([{"key": "x", "cameras": torch.zeros(2, 18), "images": [], "obj": Path("/")}], tmp_path / "bad.torch")
    with pytest.raises(ChunkFormatError, match="never unpickle"):
        ChunkDataset(tmp_path)


def test_cli_train_smoke(scene, tmp_path, monkeypatch, capsys):
    from resplat.cli import cmd_train
    from resplat.cli.main import main

    monkeypatch.setattr(cmd_train, "open_dataset", lambda args: [scene])
    rc = main(["train", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", "2", "--device", "cpu",
               "--progress", "jsonl"])
    assert rc == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    steps = [l for l in lines if l.get("event") == "progress"]
    assert [l["step"] for l in steps] == [1, 2] and steps[0]["stage"] == "train"
    assert math.isfinite(steps[-1]["metrics"]["loss"])
    rc = main(["train", str(tmp_path), "--out", str(tmp_path / "run2"), "--stage", "update", "--steps", "1",
               "--device", "cpu", "--init", str(tmp_path / "run" / "model.safetensors"), "--progress", "none"])
    assert rc == 0 and (tmp_path / "run2" / "model.safetensors").is_file()
    # --init keeps the weights' stored settings; an explicit --preset trains them under the preset's
    from resplat.model.checkpoint import stored_config
    from resplat.model.config import ModelConfig, PRESETS

    old = tmp_path / "old.safetensors"  # weights stored by a version without the newer fields
    from dataclasses import asdict

    from resplat.train.checkpointing import export_safetensors
    from resplat.model.checkpoint import load_checkpoint

    legacy = ModelConfig(**{k: v for k, v in asdict(PRESETS["tiny"]).items()
                            if k not in ("frame_scale", "scale_mode", "lookat_range", "baseline_depth_ratio", "baseline_range")})
    export_safetensors(load_checkpoint(tmp_path / "run" / "model.safetensors", preset=legacy), old)
    for extra, want in (([], legacy), (["--preset", "tiny"], PRESETS["tiny"])):
        out = tmp_path / f"run-init{len(extra)}"
        assert main(["train", str(tmp_path), "--out", str(out), "--steps", "1", "--device", "cpu", "--init", str(old),
                     "--progress", "none", *extra]) == 0
        assert stored_config(out / "model.safetensors") == want
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "x"), "--stage", "update", "--progress", "none"]) == 2


def test_train_reads_several_dataset_folders_in_order(tmp_path):
    """``resplat train A B``: the union of both datasets, A's scenes first; a missing folder is named."""
    from types import SimpleNamespace

    from resplat.cli.cmd_train import open_dataset
    from resplat.data.generate import GeneratorConfig, generate_dataset
    from resplat.errors import ResplatError

    cfg = GeneratorConfig(width=16, height=16, views=3, context=2, min_objects=1, max_objects=2)
    generate_dataset(tmp_path / "a", 2, 0, cfg)
    generate_dataset(tmp_path / "b", 1, 1, cfg)
    args = SimpleNamespace(data=[tmp_path / "a", tmp_path / "b"], context=8, target=4, size=(16, 16), seed=0)
    ds = open_dataset(args)
    assert len(ds) == 3
    assert [Path(ds[i].path).parent.name for i in range(3)] == ["a", "a", "b"]
    assert Path(ds[2].path).name == "scene_000000"
    args.data = [tmp_path / "a", tmp_path / "missing"]
    with pytest.raises(ResplatError, match="missing: dataset folder not found"):
        open_dataset(args)


def test_staged_recurrence_depth_and_its_checks():
    from resplat.train.config import TrainConfigError

    cfg = TrainConfig(stage="update", recurrence_stages=((0, 2), (200, 4), (400, 6)))
    assert [cfg.max_iterations_at(s) for s in (0, 199, 200, 399, 400, 10_000)] == [2, 2, 4, 4, 6, 6]
    assert TrainConfig(stage="update", max_iterations=3).max_iterations_at(500) == 3
    for bad in (((5, 2),), ((0, 2), (0, 4)), ((0, 0),)):
        with pytest.raises(TrainConfigError, match="recurrence_stages"):
            TrainConfig(stage="update", recurrence_stages=bad)
    with pytest.raises(TrainConfigError, match="stability_weight"):
        TrainConfig(stage="update", stability_weight=-1.0)


def test_update_draws_T_from_the_stage_and_adds_the_stability_term(scene):
    torch.manual_seed(0)
    model = build_model("tiny")
    last = [m for m in model.encoder.update_head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # the head's last layer starts at zero (no change at all): give it some
        last.weight.normal_(0, 1e-3)
    dev = torch.device("cpu")
    staged = TrainConfig(stage="update", recurrence_stages=((0, 1), (10, 3)))
    fn = ImageLoss(staged)
    with torch.no_grad():
        assert {update_loss(model, scene, fn, staged, dev, random.Random(s), step=0)[1]["T"] for s in range(8)} == {1}
        assert {update_loss(model, scene, fn, staged, dev, random.Random(s), step=10)[1]["T"] for s in range(12)} == {1, 2, 3}
    # the stability term: the mean absolute parameter change per iteration, added with its weight
    plain = TrainConfig(stage="update")
    heavy = TrainConfig(stage="update", stability_weight=2.5)
    with torch.no_grad():
        l0, p0 = update_loss(model, scene, fn, plain, dev, random.Random(0), T=2)
        l1, p1 = update_loss(model, scene, fn, heavy, dev, random.Random(0), T=2)
    assert p0["stability"] == p1["stability"] > 0
    assert float(l1) == pytest.approx(float(l0) + 2.5 * p0["stability"], rel=1e-6)
    # by hand: the two iterations' states, each step from the detached previous one
    from resplat.model.updater import Updater
    from resplat.train.step import model_frame

    with torch.no_grad():
        ctx_img, _, ctx_cams, _, depth, frame = model_frame(scene, dev, model.config, False)
        pred = model.encoder.forward_initial(ctx_img[None], ctx_cams, depth, frame)
        up = Updater(model.encoder, model.config, amp=getattr(model.encoder, "amp", True))
        state, hidden = pred.update_state(0), up.initial_hidden(pred.condition_features)
        targets = up.target_features(ctx_img, state.grid[1:])
        cams = frame.cameras(ctx_cams)
        changes = []
        for _ in range(2):
            before = state.as_vector()
            state, hidden = up.step(state, hidden, ctx_img, cams, targets)
            changes.append(float((state.as_vector() - before).abs().mean()))
    assert p0["stability"] == pytest.approx(sum(changes) / 2, rel=1e-5)
