"""The extension's Polish setting reaches the runtime's time-budget flags: the command lines it
builds (no rendering, no runtime run) read back through the runtime's own argument parser.
The runtime's handling of those flags: tests/test_cli_polish_budget.py."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from addon_env import addon_env
from resplat.cli.main import build_parser
from resplat.defaults import POLISH_STRATEGY


def test_addon_polish_setting_reaches_the_runtime_flags(tmp_path):
    """The extension's Polish choice (Off / 30 s / 2 min / Custom) builds command lines that the
    runtime's own parser reads as that many seconds of --polish-seconds (Reconstruct) or
    --seconds (Optimisation Only); the extension passes no --strategy, so the densification is the
    runtime's default of each command (reconstruct's polish: resplat.defaults.POLISH_STRATEGY;
    optimize: none)."""
    _, addon, _ = addon_env()
    rec = importlib.import_module(f"{addon.__name__}.operators.reconstruct")
    sub = next(a for a in build_parser()._actions if getattr(a, "choices", None))
    base = dict(model="EMBEDDED", model_iterations=True, iterations=3, steps=0, prune_opacity=0.005,
                random_count=5, polish_seconds=45.0, quality=False, views="RENDER", depth_pass=False)
    for model, flag in (("EMBEDDED", "polish_seconds"), ("OPTIMIZE", "seconds")):
        for polish, seconds in (("OFF", 0.0 if model == "EMBEDDED" else None), ("30", 30.0), ("120", 120.0),
                                ("CUSTOM", 45.0)):
            s = SimpleNamespace(**{**base, "model": model, "polish": polish})
            cmd = rec.reconstruct_commands("py", s, "v.json", tmp_path, "", "cpu")[0]
            assert cmd[:3] == ["py", "-m", "resplat"]
            args = sub.choices[cmd[3]].parse_args(cmd[4:])
            want = POLISH_STRATEGY if model == "EMBEDDED" else "none"
            assert getattr(args, flag) == seconds and args.strategy == want, (model, polish, cmd)
            if model == "EMBEDDED":
                assert args.optimize_steps == 0  # the budget alone ends the polish
