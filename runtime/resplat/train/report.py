"""Training report: summarise ``log.jsonl`` files of :func:`resplat.train.train` and plot their
loss curves.

``python -m resplat.train.report RUN [RUN ...] --png curves.png --json training.json`` reads
``RUN/log.jsonl`` of each run (stage "initial" then stage "update", as trained), writes one PNG
with a panel per run (raw loss per step, faint, and its moving average) and a JSON with, per run,
the step count, the mean of each logged term over the first and the last ``window`` steps, and
the run's training config when ``RUN/model.safetensors`` carries it.

The plot needs matplotlib (``pip install resplat[plot]``); the summary does not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import ResplatError

#: logged terms that are not losses (left out of the summary means)
_NOT_TERMS = ("step", "lr", "T")


class TrainingLogError(ResplatError):
    """A run folder without a readable ``log.jsonl`` (names the file and line)."""


def read_log(run: str | os.PathLike) -> list[dict]:
    """The records of ``run/log.jsonl`` (or of that file itself), one dict per optimiser step,
    in file order. Raises :class:`TrainingLogError` naming the file and line at fault."""
    p = Path(run)
    path = p / "log.jsonl" if p.is_dir() else p
    if not path.is_file():
        raise TrainingLogError(f"{path}: no training log (expected the log.jsonl of a `resplat train` run)")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise TrainingLogError(f"{path}:{n}: not a JSON line") from None
        if not isinstance(rec, dict) or "step" not in rec or "loss" not in rec:
            raise TrainingLogError(f"{path}:{n}: a training record needs 'step' and 'loss'")
        records.append(rec)
    if not records:
        raise TrainingLogError(f"{path}: empty training log")
    return records


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over at most ``window`` values (same length as ``values``)."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def summarize(records: list[dict], window: int = 100) -> dict:
    """Per logged loss term (every numeric key but step, lr, T): its mean over the first and over
    the last ``window`` records, plus ``steps`` (the last step number)."""
    terms = sorted({k for r in records for k, v in r.items()
                    if k not in _NOT_TERMS and isinstance(v, (int, float))})
    head, tail = records[:window], records[-window:]

    def mean(rows, k):
        vals = [r[k] for r in rows if k in r]
        return sum(vals) / len(vals) if vals else None

    return {"steps": records[-1]["step"], "window": window,
            "first": {k: mean(head, k) for k in terms}, "last": {k: mean(tail, k) for k in terms}}


def _config_of(run: Path) -> dict | None:
    weights = run / "model.safetensors"
    if not weights.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        meta = f.metadata() or {}
    out = {}
    for k, v in meta.items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def plot(runs: list[tuple[str, list[dict]]], png: str | os.PathLike, window: int = 50) -> None:
    """One PNG, a panel per run: the loss per step (faint) and its ``window``-step moving
    average, plus each ``l1*`` term's moving average. Written atomically (temp file + rename)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ResplatError("the loss plot needs matplotlib: pip install 'resplat[plot]'") from None
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, (name, recs) in zip(axes[0], runs):
        steps = [r["step"] for r in recs]
        loss = [r["loss"] for r in recs]
        ax.plot(steps, loss, color="tab:blue", alpha=0.2, lw=0.6)
        ax.plot(steps, moving_average(loss, window), color="tab:blue", lw=1.6, label=f"loss ({window}-step mean)")
        for k in sorted({k for r in recs for k in r if k.startswith("l1")}):
            ks = [(r["step"], r[k]) for r in recs if k in r]
            ax.plot([s for s, _ in ks], moving_average([v for _, v in ks], window), lw=1.0, label=k)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = Path(png)
    tmp = png.with_name(png.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, png)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m resplat.train.report", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (with log.jsonl) in training order")
    p.add_argument("--png", type=Path, help="loss-curve plot to write")
    p.add_argument("--json", type=Path, help="summary JSON to write")
    p.add_argument("--window", type=int, default=100, help="steps averaged in the summary (default 100)")
    args = p.parse_args(argv)
    try:
        runs = [(r.name, read_log(r)) for r in args.runs]
        summary = {name: {**summarize(recs, args.window), "config": _config_of(r)}
                   for (name, recs), r in zip(runs, args.runs)}
        if args.png:
            plot(runs, args.png)
        if args.json:
            tmp = args.json.with_name(args.json.name + ".tmp")
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, args.json)
    except ResplatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, s in summary.items():
        terms = ", ".join(f"{k} {s['first'][k]:.4f} -> {s['last'][k]:.4f}" for k in s["last"] if s["last"][k] is not None)
        print(f"{name}: {s['steps']} steps; {terms}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
