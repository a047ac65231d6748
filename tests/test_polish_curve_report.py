"""benchmarks/polish_curve.py's reporting: scores read at fractions of the budget, results of
separate runs merged into one table (refusing mismatched settings and repeated curves), and
mean-over-scenes rows that only average curves every scene has. Hand-made results with known
numbers; nothing is optimised."""

from __future__ import annotations

import json

import pytest
from repo_scripts import load_script


def _bench():
    return load_script("benchmarks", "polish_curve")


def _run(start, strategy, psnrs, every=10.0, prep=1.0):
    pts = [{"seconds": i * every, "wall": prep + i * every, "content_psnr": p, "gaussians": 100 + i} for i, p in enumerate(psnrs)]
    label = start + ("+depth" if start.startswith("model") else "")
    return {"start": start, "label": label, "strategy": strategy, "prep_seconds": prep, "steps": 10 * len(psnrs),
            "points": pts}


def _result(scenes, budget=40.0, **extra):
    out = {"benchmark": "polish_curve", "weights": "w.safetensors", "preset": "tiny", "threads": 1, "budget": budget,
           "eval_every": 10.0, "iterations": 4, "model_depth": True, "seconds": 100.0, "scenes": []}
    for name, runs in scenes:
        out["scenes"].append({"name": name, "size": [64, 64], "context": [0, 1], "heldout": [2], "runs": runs})
    out.update(extra)
    return out


def test_scores_at_fractions_of_the_budget():
    b = _bench()
    pts = _run("random", "none", [10, 11, 12, 13, 14])["points"]
    assert b.at_fraction(pts, 4.0)["content_psnr"] == 11  # the first score at or after 4 s (10 s)
    assert b.at_fraction(pts, 10.0)["content_psnr"] == 11
    assert b.at_fraction(pts, 40.0)["content_psnr"] == 14
    assert b.at_fraction(pts, 99.0)["content_psnr"] == 14  # past the end: the last


def test_merge_combines_sessions_and_means_only_common_curves(tmp_path):
    b = _bench()
    a = _result([("spider", [_run("random", "none", [8, 9, 10, 11, 12]), _run("random", "default", [8, 10, 12, 14, 16])])])
    c = _result([("spider", [_run("model-it0", "default", [17, 20, 21, 22, 23])]),
                 ("jeep", [_run("random", "none", [6, 7, 8, 9, 10]), _run("random", "default", [6, 8, 10, 12, 14])])])
    m = b.merge([a, c], ["a.json", "c.json"])
    assert [s["name"] for s in m["scenes"]] == ["spider", "jeep"]
    assert [b.run_key(r) for r in m["scenes"][0]["runs"]] == [("random", "none"), ("random", "default"),
                                                              ("model-it0+depth", "default")]
    assert m["seconds"] == 200.0 and m["merged_from"] == ["a.json", "c.json"]
    md = b.markdown(m)
    # per scene: 10 %, 25 %, 50 %, 100 % of 40 s -> scores at 10, 10, 20, 40 s
    assert "| model-it0+depth | default | 1.00 | 17.00 | 20.00 | 20.00 | 21.00 | 23.00 | 50 | 104 |" in md
    mean = md.split("#### Mean over 2 scenes")[1]
    assert "model-it0" not in mean  # jeep lacks it: not averaged
    assert "| random | default | 1.00 | 7.00 | 9.00 | 9.00 | 11.00 | 15.00 | 50 | 104 |" in mean
    # the command line writes the same tables and a plot
    for name, r in (("a.json", a), ("c.json", c)):
        (tmp_path / name).write_text(json.dumps(r))
    out = b.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "c.json"), "--md", str(tmp_path / "m.md"),
                  "--png", str(tmp_path / "m.png"), "--json", str(tmp_path / "m.json")])
    assert (tmp_path / "m.md").read_text() == md and out["scenes"] == m["scenes"]
    assert (tmp_path / "m.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "m.json").read_text())["merged_from"] == [str(tmp_path / "a.json"), str(tmp_path / "c.json")]


def test_merge_refuses_other_settings_and_repeated_curves():
    b = _bench()
    a = _result([("spider", [_run("random", "none", [8, 9])])])
    with pytest.raises(b.BenchmarkInputError, match="budget = 600.0"):
        b.merge([a, _result([("jeep", [_run("random", "none", [8, 9])])], budget=600.0)], ["a", "b"])
    with pytest.raises(b.BenchmarkInputError, match="repeats spider's curve"):
        b.merge([a, _result([("spider", [_run("random", "none", [1, 2])])])], ["a", "b"])


def test_compare_two_weights():
    """benchmarks/polish_compare.py: A, B and B - A at the start and at given seconds for the
    curves both results have, means over scenes, refusal of other settings."""
    cmp = load_script("benchmarks", "polish_compare")
    a = _result([("spider", [_run("model-it0", "none", [17, 18, 19, 20, 21]), _run("random", "none", [8, 9, 10, 11, 12])]),
                 ("jeep", [_run("model-it0", "none", [15, 16, 17, 18, 19])])])
    b = _result([("spider", [_run("model-it0", "none", [17, 19, 21, 22, 22])]),
                 ("jeep", [_run("model-it0", "none", [14, 16, 18, 19, 20])])], weights="meta.safetensors")
    md = cmp.compare(a, b, [15.0, 40.0])
    # scores at 15 s are the ones at 20 s (the first at or after)
    assert "| spider | model-it0+depth | none | 17.00 | 17.00 | +0.00 | 19.00 | 21.00 | +2.00 | 21.00 | 22.00 | +1.00 |" in md
    assert "| jeep | model-it0+depth | none | 15.00 | 14.00 | -1.00 | 17.00 | 18.00 | +1.00 | 19.00 | 20.00 | +1.00 |" in md
    assert "| **mean** | model-it0+depth | none | 16.00 | 15.50 | -0.50 | 18.00 | 19.50 | +1.50 | 20.00 | 21.00 | +1.00 |" in md
    assert "random" not in md and "`meta.safetensors`" in md
    with pytest.raises(cmp.BenchmarkInputError, match="budget"):
        cmp.compare(a, _result([], budget=60.0), [15.0])
    with pytest.raises(cmp.BenchmarkInputError, match="share no curve"):
        cmp.compare(a, _result([("sydney", [_run("model-it0", "none", [1, 2])])]), [15.0])


def test_random_start_of_a_rig_whose_axes_do_not_meet_uses_the_depth_range():
    """A forward-facing rig has no look-at point, so random_init alone refuses it; the benchmark's
    random start then samples between the 0.5th and 99.5th percentiles of the input depth."""
    import torch
    from resplat.cameras import Cameras, K_from_fov
    from resplat.errors import ResplatError
    from resplat.optim import random_init, visible_count

    bench = _bench()
    eval_assets = load_script("benchmarks", "eval_assets")
    v, size = 4, 32
    c2w = torch.eye(4, dtype=torch.float64).repeat(v, 1, 1)
    c2w[:, 0, 3] = torch.linspace(-0.3, 0.3, v, dtype=torch.float64)  # parallel axes along +z
    cams = Cameras.from_c2w(c2w, K_from_fov(1.0, size, size, torch.float64).expand(v, 3, 3), size, size)
    depths = torch.linspace(2.0, 6.0, v * size * size, dtype=torch.float32).reshape(v, size, size)
    depths[0, 0, :4] = torch.inf  # invalid depth is left out
    scene = eval_assets.DepthScene("fwd", torch.rand(v, 3, size, size), cams, [0, 1, 2], [3], depths)
    with pytest.raises(ResplatError, match="parallel"):
        random_init(cams[[0, 1, 2]], 16)
    g, _ = bench.prepare_start("random", scene, None, 4, False)
    assert len(g) == 3 * (size // 4) ** 2
    d = depths[:3].double().flatten()
    near, far = torch.quantile(d[torch.isfinite(d)], torch.tensor([0.005, 0.995], dtype=torch.float64)).tolist()
    seen = visible_count(g.means.double(), cams[[0, 1, 2]].to(dtype=torch.float64), near, far)
    assert bool((seen == 3).all())
    # and not a wider range: some points come close to each end of it
    z = g.means[:, 2].double()
    assert float(z.min()) < near + 0.3 and float(z.max()) > far - 0.5
