"""benchmarks/recurrence.py end to end on a tiny case: random tiny weights (exported as a
safetensors file, as training writes them), 2 synthetic scenes of 64x64 (4 input + 2 held-out
views), 2 iterations, 30 optimisation steps. The JSON's iteration-0 PSNRs equal PSNRs recomputed
here from reconstruct() and render(); the no-error ablation changes the numbers; the
optimisation curve starts at the iteration-0 numbers and its times grow."""

from __future__ import annotations

import json

import pytest
import torch

from resplat.data import GeneratorConfig, SyntheticDataset, generate_dataset
from resplat.metrics import psnr
from resplat.model import build_model, load_checkpoint, reconstruct
from resplat.render import render
from resplat.train.checkpointing import export_safetensors
from repo_scripts import load_script


def _bench():
    return load_script("benchmarks", "recurrence", "recurrence_bench")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recurrence")
    generate_dataset(tmp / "syn", 2, 1000, GeneratorConfig(width=64, height=64, views=6, context=4, supersample=1))
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    with torch.no_grad():  # the zero-initialised head would make every update the identity
        model.encoder.update_head[-1].weight.normal_(0, 1e-2, generator=torch.Generator().manual_seed(1))
    export_safetensors(model, tmp / "tiny.safetensors")
    result = _bench().main(["--weights", str(tmp / "tiny.safetensors"), "--synthetic", str(tmp / "syn"), "--scenes", "2",
                            "--max-iterations", "2", "--ref-iterations", "2", "--opt-steps", "0,2,30",
                            "--threads", "1", "--json", str(tmp / "out.json")])
    return tmp, result


def test_iteration0_psnr_matches_an_independent_recomputation(run):
    tmp, result = run
    written = json.loads((tmp / "out.json").read_text())
    assert written["groups"][0]["name"] == "synthetic" and len(written["groups"][0]["scenes"]) == 2
    model = load_checkpoint(tmp / "tiny.safetensors")
    for i, sample in enumerate(SyntheticDataset(tmp / "syn")):
        ctx, tgt = sample.context, sample.target
        g = reconstruct(sample.images[ctx], sample.cameras[ctx], model, iterations=0, device="cpu")
        with torch.no_grad():
            rgb = render(g, sample.cameras, near=model.config.near, far=model.config.far).rgb.clamp(0, 1)
        scene = written["groups"][0]["scenes"][i]
        assert scene["context"] == ctx and scene["heldout"] == tgt and scene["gaussians"] == len(g) == 4 * 16 * 16
        it0 = scene["recurrent"][0]
        assert it0["heldout_psnr"] == pytest.approx(float(psnr(rgb[tgt], sample.images[tgt]).mean()), abs=1e-3)
        assert it0["input_psnr"] == pytest.approx(float(psnr(rgb[ctx], sample.images[ctx]).mean()), abs=1e-3)
    mean = written["groups"][0]["mean"]["recurrent"][0]["heldout_psnr"]
    assert mean == pytest.approx(sum(s["recurrent"][0]["heldout_psnr"] for s in written["groups"][0]["scenes"]) / 2)


def test_ablation_and_optimisation_numbers(run):
    _, result = run
    for scene in result["groups"][0]["scenes"]:
        rec, abl = scene["recurrent"], scene["ablation"]
        assert [r["iteration"] for r in rec] == [0, 1, 2] and [a["iteration"] for a in abl] == [1, 2]
        for it in (1, 2):  # the iterations move the Gaussians, and the error input matters
            assert abs(rec[it]["heldout_psnr"] - rec[0]["heldout_psnr"]) > 1e-4
            assert abs(abl[it - 1]["heldout_psnr"] - rec[it]["heldout_psnr"]) > 1e-4
            assert abs(abl[it - 1]["input_psnr"] - rec[it]["input_psnr"]) > 1e-4
        points = [p for p in scene["optimisation"]["points"] if p["at"] == "schedule"]
        assert [p["step"] for p in points] == [0, 2, 30]
        assert points[0]["heldout_psnr"] == rec[0]["heldout_psnr"] and points[0]["seconds"] == 0
        assert points[1]["input_psnr"] != points[0]["input_psnr"]  # the optimisation changed the Gaussians
        assert 0 < points[1]["seconds"] < points[2]["seconds"]
        assert len(scene["optimisation"]["cumulative_seconds"]) == 30
        budget = [p for p in scene["optimisation"]["points"] if p["at"] == "budget"]  # 2 iterations ~ 10 steps
        assert len(budget) == 1 and 2 <= budget[0]["step"] < 30 and budget[0]["seconds"] >= sum(scene["timing"]["iteration_s"])
        t = scene["timing"]
        assert t["initial_s"] > 0 and len(t["iteration_s"]) == 2 and t["peak_rss_mb"] >= t["rss_before_mb"] > 0
        c = scene["comparison"]
        assert c["heldout_target_psnr"] == rec[2]["heldout_psnr"]
        assert c["refine_seconds"] == pytest.approx(sum(t["iteration_s"]))


def test_views_folder_with_split(tmp_path):
    from random_views import write_random_views

    bench = _bench()
    write_random_views(tmp_path, 70, 64, count=4)  # 70 px wide: cropped to 64
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"context": ["v0", "v1.png", "images/v3.png"], "heldout": ["v2"]}))
    scene = bench.views_scene(tmp_path, 64)
    assert (scene.context, scene.heldout) == ([0, 1, 3], [2])
    assert tuple(scene.images.shape) == (4, 3, 64, 64) and scene.cameras.width == 64
    split.write_text(json.dumps({"context": ["v0", "v1"], "heldout": ["v9"]}))
    with pytest.raises(bench.BenchmarkInputError, match=r"split.json: heldout view 'v9' is not in .* \(4 views\)$"):
        bench.views_scene(tmp_path, 64)
    split.write_text(json.dumps({"context": ["v0", "v1"], "heldout": ["v1"]}))
    with pytest.raises(bench.BenchmarkInputError, match="both context and heldout"):
        bench.views_scene(tmp_path, 64)
