"""Training report (resplat.train.report): log parsing, summary means, the loss plot."""

import json

import numpy as np
import pytest
from PIL import Image

from resplat.train.report import TrainingLogError, main, moving_average, read_log, summarize


def _write_log(folder, n=30):
    folder.mkdir()
    with open(folder / "log.jsonl", "w") as f:
        for s in range(1, n + 1):
            f.write(json.dumps({"step": s, "loss": 1.0 / s, "l1": 0.5 / s, "lr": 1e-4, "T": 2}) + "\n")
    return folder


def test_moving_average_matches_numpy():
    x = list(np.random.default_rng(0).random(37))
    ma = moving_average(x, 5)
    ref = [np.mean(x[max(0, i - 4): i + 1]) for i in range(len(x))]
    assert np.allclose(ma, ref, rtol=0, atol=1e-12)


def test_summary_first_and_last_means(tmp_path):
    recs = read_log(_write_log(tmp_path / "run"))
    s = summarize(recs, window=10)
    assert s["steps"] == 30 and set(s["last"]) == {"loss", "l1"}  # lr and T are not loss terms
    assert s["first"]["loss"] == pytest.approx(np.mean([1.0 / k for k in range(1, 11)]))
    assert s["last"]["l1"] == pytest.approx(np.mean([0.5 / k for k in range(21, 31)]))


def test_bad_logs_name_the_file_and_line(tmp_path):
    run = tmp_path / "bad"
    run.mkdir()
    (run / "log.jsonl").write_text('{"step": 1, "loss": 0.5}\nnot json\n')
    with pytest.raises(TrainingLogError, match=r"log.jsonl:2: not a JSON line"):
        read_log(run)
    with pytest.raises(TrainingLogError, match="no training log"):
        read_log(tmp_path / "missing")


def test_cli_writes_png_and_json(tmp_path):
    pytest.importorskip("matplotlib")
    a, b = _write_log(tmp_path / "initial"), _write_log(tmp_path / "update", 12)
    png, js = tmp_path / "curves.png", tmp_path / "training.json"
    assert main([str(a), str(b), "--png", str(png), "--json", str(js), "--window", "5"]) == 0
    data = json.loads(js.read_text())
    assert list(data) == ["initial", "update"] and data["update"]["steps"] == 12
    img = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert img.shape[1] > 2 * img.shape[0] and img.std() > 5  # two panels side by side, not blank
    assert not list(tmp_path.glob("*.tmp*"))
