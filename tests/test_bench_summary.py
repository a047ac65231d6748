"""benchmarks/summary.py's arithmetic and text, without timing anything: the ratio and seconds
formatting, the markdown table, the recurrence rows read from a recurrence.py-shaped JSON, and
the INRIA-pattern PLY baseline holding the same splats as resplat.formats (both directions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from repo_scripts import load_script


def _load(name: str):
    return load_script("benchmarks", name, f"bench_{name}")


summary = _load("summary")


def test_ratio_is_baseline_over_ours_with_lower_bounds_and_gaps():
    assert summary.ratio(10.0, 2.0) == "5.00x"
    assert summary.ratio(1.0, 4.0) == "0.25x"
    assert summary.ratio(25.0, 1.0) == "25.0x"
    assert summary.ratio(150.0, 1.0) == "150x"
    assert summary.ratio(60.0, 2.0, at_least=True) == ">30.0x"
    assert summary.ratio(None, 1.0) == summary.ratio(1.0, None) == summary.ratio(1.0, 0.0) == "-"


def test_seconds_keep_three_significant_digits():
    assert summary.secs(0.012345) == "0.0123 s"
    assert summary.secs(4.567) == "4.57 s"
    assert summary.secs(1234.4) == "1234 s"
    assert summary.secs(None) == "-"


def test_markdown_has_one_line_per_row_and_escapes_pipes():
    rows = [summary.Row("a|b", "1 s", "2 s", "naive", "2.00x"), summary.Row("c", "-", "-", "x", "-")]
    lines = summary.markdown(rows).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| what | ours | baseline |")
    assert lines[2] == "| a\\|b | 1 s | 2 s | naive | 2.00x |"


def _recurrence_json(tmp_path: Path, reach) -> Path:
    points = [{"step": 0, "seconds": 0.0, "at": "schedule"}, {"step": 160, "seconds": 48.0, "at": "schedule"}]
    comparison = {"ref_iterations": 4, "refine_seconds": 2.0, "heldout_target_psnr": 24.5, "heldout_reach": reach,
                  "equal_time": {"step": 6.5, "seconds": 2.0, "heldout_psnr": 21.25}}
    data = {"weights": "tiny.safetensors", "threads": 2, "schedule": [0, 10, 160],
            "groups": [{"name": "synthetic", "scenes": [{"size": [256, 256]}, {"size": [256, 256]}],
                        "mean": {"comparison": comparison, "optimisation": {"points": points}}}]}
    path = tmp_path / "recurrence.json"
    path.write_text(json.dumps(data))
    return path


def test_recurrence_rows_read_the_comparison(tmp_path):
    rows = summary.recurrence_rows(_recurrence_json(tmp_path, {"step": 80, "seconds": 24.0, "time_ratio": 12.0}))
    assert "4 recurrent iterations" in rows[0].what and "2 scene(s) 256x256" in rows[0].what
    assert rows[0].ours == "4 iterations: 2 s (24.50 dB)"
    assert (rows[0].baseline, rows[0].ratio) == ("80 steps: 24 s", "12.0x")
    assert (rows[1].ours, rows[1].baseline, rows[1].ratio) == ("24.50 dB", "21.25 dB (6.5 steps)", "-3.25 dB")


def test_recurrence_rows_when_never_reached_missing_or_malformed(tmp_path):
    rows = summary.recurrence_rows(_recurrence_json(tmp_path, None))
    assert rows[0].baseline == "not reached in 160 steps (48 s)" and rows[0].ratio == ">24.0x"
    assert summary.recurrence_rows(tmp_path / "absent.json")[0].ours.startswith("not measured")
    assert summary.recurrence_rows(None)[0].ours.startswith("not measured")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert summary.recurrence_rows(bad)[0].ours.startswith("not read")


def test_ply_baseline_holds_the_same_splats_as_resplat_formats(tmp_path):
    from resplat.formats import SplatArrays, read_splat_arrays, write_splat_arrays

    ply_baseline = _load("ply_baseline")
    rng = np.random.default_rng(0)
    arrays = SplatArrays(means=rng.normal(size=(50, 3)), quats=rng.normal(size=(50, 4)),
                         log_scales=rng.normal(size=(50, 3)), logit_opacities=rng.normal(size=50),
                         sh=rng.normal(size=(50, 16, 3)))
    ours, theirs = tmp_path / "ours.ply", tmp_path / "theirs.ply"
    write_splat_arrays(arrays, ours)
    ply_baseline.save_ply(arrays, theirs)
    for got in (read_splat_arrays(theirs), ply_baseline.load_ply(ours)):
        for key, value in arrays.arrays().items():
            np.testing.assert_array_equal(getattr(got, key), value, err_msg=key)
