"""Time budgets and densification on the command line: `resplat optimize --seconds S --strategy X`
and `resplat reconstruct --polish-seconds S --strategy X` (the flags the extension's Polish
setting passes).

The budget is checked two ways: in process with :func:`resplat.optim.optimize`'s injectable
``clock`` (a clock that advances 1 s per finished step, so a budget of S seconds must run exactly
S steps and the JSON lines must report 0, 1, ..., S - 1 seconds), and once in a subprocess on the
real clock with a generous bound. The Gaussian counts follow the strategies' schedules
(:mod:`resplat.optim.strategy`): the default strategy clones/splits at step 75 (its refinements
at 75, 100, ... while the run's fraction is below its ``refine_stop`` 0.6; it prunes nothing
yet); MCMC relocates at a fixed count (``cap_factor`` 1; tests/test_optim_strategy.py checks the
relocation and the growth a larger cap allows); "none" keeps the count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import resplat.optim as optim
from resplat.cli.main import main
from resplat.formats import read_splats
from resplat.render import render
from resplat.views import save_image, write_transforms_json
from optim_scene import ring_cameras, target_gaussians

SIZE = 64  # a multiple of the embedded model's 64


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    """Three 64x64 views of optim_scene's 200 random Gaussians (black background), on disk."""
    root = tmp_path_factory.mktemp("budget")
    cams = ring_cameras(3, size=SIZE)
    with torch.no_grad():
        rgb = render(target_gaussians(), cams, backend="torch").rgb.clamp(0, 1)
    paths = []
    for i in range(len(cams)):
        paths.append(root / "images" / f"v{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        save_image(paths[-1], rgb[i])
    write_transforms_json(root / "transforms.json", cams, paths)
    return root


@pytest.fixture
def step_clock(monkeypatch):
    """``resplat.optim.optimize`` (which both commands call) with a clock that reads the number of
    finished steps in seconds: step k reports k - 1 s, and the budget check before step k + 1
    sees k s."""
    real = optim.optimize

    def with_step_clock(*args, callback=None, **kwargs):
        ticks = [0]

        def counted(info):
            ticks[0] += 1
            return None if callback is None else callback(info)

        return real(*args, callback=counted, clock=lambda: float(ticks[0]), **kwargs)

    monkeypatch.setattr(optim, "optimize", with_step_clock)


def _run(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main([*map(str, argv), "--progress", "jsonl"])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err


def _result(events) -> dict:
    return [e for e in events if e["event"] == "result"][0]["metrics"]


@pytest.mark.parametrize("strategy", ["none", "default", "mcmc"])
def test_optimize_seconds_and_strategy(views, tmp_path, capsys, step_clock, strategy):
    out = tmp_path / "fit.ply"
    code, events, err = _run(capsys, "optimize", views, "--random", 200, "--steps", 1000, "--seconds", 130,
                             "--strategy", strategy, "--out", out, "--device", "cpu")
    assert code == 0, err
    steps = [e for e in events if e["event"] == "progress" and e["stage"] == "optimize"]
    # the 130 s budget ends the run after 130 of the 1000 steps, each line reporting its seconds
    assert [e["step"] for e in steps] == list(range(1, 131)) and {e["total"] for e in steps} == {1000}
    assert [e["metrics"]["seconds"] for e in steps] == [float(k) for k in range(130)]
    counts = [e["metrics"]["gaussians"] for e in steps]
    result = _result(events)
    assert result["gaussians"] == counts[-1] == len(read_splats(out))
    # the default strategy refines at steps 75 (fraction 74/130 = 0.57, below its refine_stop 0.6)
    # and not at 100 (0.76); MCMC relocates from step 60 and never changes the count
    assert set(counts[:74]) == {200}
    if strategy in ("none", "mcmc"):
        assert set(counts) == {200}
    else:
        assert 200 < counts[74] <= 600 and set(counts[74:]) == {counts[74]}  # the cap is 3 x 200
    if strategy == "mcmc":  # against "none" from the same seed: MCMC's regularisers (opacity 0.5,
        # scale 0.864 per scene extent) shrink and fade what the views do not support
        plain = tmp_path / "plain.ply"
        code, _, err = _run(capsys, "optimize", views, "--random", 200, "--steps", 1000, "--seconds", 130,
                            "--strategy", "none", "--out", plain, "--device", "cpu")
        assert code == 0, err
        fit, ref = read_splats(out), read_splats(plain)
        assert fit.opacities.mean() < 0.8 * ref.opacities.mean()
        assert fit.scales.mean() < 0.9 * ref.scales.mean()  # measured 0.86 x


@pytest.mark.parametrize("strategy", ["none", "default", "mcmc"])
def test_reconstruct_polish_seconds_and_strategy(views, tmp_path, capsys, step_clock, strategy):
    """The embedded model's prediction (iteration 0, nothing pruned: one Gaussian per 2x2 pixels,
    3 x 32 x 32),
    polished on a 130 s budget alone (--optimize-steps 0, as the extension passes it; no step
    total) with previews every 40 steps."""
    out, prev = tmp_path / "rec.ply", tmp_path / "prev"
    code, events, err = _run(capsys, "reconstruct", views, "--iterations", 0, "--prune-opacity", 0,
                             "--optimize-steps", 0, "--polish-seconds", 130, "--strategy", strategy,
                             "--preview-dir", prev, "--preview-every", 40, "--out", out, "--device", "cpu")
    assert code == 0, err
    steps = [e for e in events if e["event"] == "progress" and e["stage"] == "polish"]
    assert [e["step"] for e in steps] == list(range(1, 131)) and {e["total"] for e in steps} == {None}
    assert [e["metrics"]["seconds"] for e in steps] == [float(k) for k in range(130)]
    assert [e["step"] for e in events if e["event"] == "preview" and e["stage"] == "polish"] == [40, 80, 120]
    counts = [e["metrics"]["gaussians"] for e in steps]
    n = 3 * (SIZE // 2) ** 2
    result = _result(events)
    assert result["predicted"] == n and result["gaussians"] == counts[-1] == len(read_splats(out))
    assert result["polish_seconds"] > 0 and "psnr" in result and result["strategy"] == strategy
    assert set(counts[:74]) == {n}
    if strategy in ("none", "mcmc"):  # (schedules as in test_optimize_seconds_and_strategy)
        assert set(counts) == {n}
    else:
        assert n < counts[74] <= 3 * n and set(counts[74:]) == {counts[74]}


def test_optimize_stops_on_the_wall_clock(views, tmp_path):
    """The real clock, in a subprocess: a 3 s budget with far more steps than fit ends after
    3 s (setup included, so never sooner) and well within a generous 30 s more."""
    out = tmp_path / "fit.ply"
    r = subprocess.run([sys.executable, "-m", "resplat", "optimize", str(views), "--random", "200",
                        "--steps", "1000000", "--seconds", "3", "--out", str(out), "--device", "cpu",
                        "--progress", "jsonl"], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    seconds = [e["metrics"]["seconds"] for e in events if e["event"] == "progress"]
    assert 0 < len(seconds) < 1_000_000 and seconds == sorted(seconds)
    assert seconds[-2] < 3 and seconds[-1] < 3 + 30
    assert 3 <= _result(events)["seconds"] < 3 + 30


@pytest.mark.parametrize("argv, message", [
    (["optimize", "{v}", "--random", "5", "--strategy", "densest"], "argument --strategy: invalid choice: 'densest'"),
    (["optimize", "{v}", "--random", "5", "--seconds", "-1"], "--seconds must be a finite number >= 0, got -1.0"),
    (["optimize", "{v}", "--random", "5", "--seconds", "inf"], "--seconds must be a finite number >= 0, got inf"),
    (["optimize", "{v}", "--random", "5", "--seconds", "soon"], "argument --seconds: invalid float value: 'soon'"),
    (["reconstruct", "{v}", "--strategy", "MCMC"], "argument --strategy: invalid choice: 'MCMC'"),
    (["reconstruct", "{v}", "--polish-seconds", "-2"], "--polish-seconds must be a finite number >= 0, got -2.0"),
    (["reconstruct", "{v}", "--polish-seconds", "nan"], "--polish-seconds must be a finite number >= 0, got nan"),
])
def test_bad_budget_or_strategy_is_one_line(views, tmp_path, capsys, argv, message):
    out = tmp_path / "x.ply"
    try:
        code = main([a.replace("{v}", str(views)) for a in argv] + ["--out", str(out), "--device", "cpu"])
    except SystemExit as exc:  # argparse's own refusals (bad choice, not a number)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    if "choice" in message:  # argparse words its list of choices differently across Python versions
        assert err.startswith(f"resplat: error: {message} (choose from ")
        assert all(name in err for name in ("none", "default", "mcmc"))
    else:
        assert err == f"resplat: error: {message}\n"


def test_progress_bar_without_a_step_total(capsys):
    """A budget-only polish has no step total: the terminal bar counts steps without a fill."""
    from resplat.cli.progress import Progress

    bar = Progress("bar")
    bar.step("polish", 1, None, seconds=0.5)
    bar.step("polish", 4, 4, seconds=1.0)  # with a total, the last step: a full bar and a new line
    err = capsys.readouterr().err
    assert "polish     [" + "." * 30 + "] 1  seconds 0.5" in err
    assert "[" + "#" * 30 + "] 4/4  seconds 1 " in err and err.endswith(" \n")
