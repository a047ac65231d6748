"""Two sets of polish curves side by side: what a change of weights (e.g. the MetaGrad stage,
``resplat train --stage metagrad``) does to held-out quality after a short polish.

Reads two ``benchmarks/polish_curve.py --json`` results measured with the same settings but
different weights, and prints, for every curve (scene, start, densification) both have, the
content PSNR (dB, held-out views) at the start and after ``--at`` seconds of polish (the first
score at or after each), for A, B and B - A, plus the mean over the scenes. Runs nothing::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/polish_curve.py --views runs/eval/spider runs/eval/jeep \\
        runs/eval/sydney --model-depth --starts model-it0 --strategies none,default --budget 60 --eval-every 10 \\
        --json runs/curves/plain60.json
    (the same with --weights runs/tiny-metagrad/model.safetensors --json runs/curves/metagrad60.json)
    .venv/bin/python benchmarks/polish_compare.py runs/curves/plain60.json runs/curves/metagrad60.json \\
        --at 30 60 --md benchmarks/results/metagrad.md

Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from polish_curve import MERGE_KEYS, at_fraction, run_key  # noqa: E402
from recurrence import BenchmarkInputError, _f, _mean  # noqa: E402


def compare(a: dict, b: dict, at: list[float]) -> str:
    """Markdown: one row per curve of ``a`` that ``b`` also has, then the means.

    Raises:
        BenchmarkInputError: the results differ in a setting other than the weights, or share
            no curve.
    """
    for k in MERGE_KEYS:
        if k != "weights" and a.get(k) != b.get(k):
            raise BenchmarkInputError(f"the results differ in {k}: {a.get(k)!r} and {b.get(k)!r}")
    cols = ["start"] + [f"{t:g} s" for t in at]
    head = "| scene | start | densification | " + " | ".join(f"{c} A | {c} B | {c} B-A" for c in cols) + " |"
    rule = "|---|---|---|" + "---:|" * (3 * len(cols))
    rows, diffs = [], {}
    other = {(s["name"], run_key(r)): r for s in b["scenes"] for r in s["runs"]}
    for s in a["scenes"]:
        for ra in s["runs"]:
            rb = other.get((s["name"], run_key(ra)))
            if rb is None:
                continue
            cells = []
            for i, t in enumerate([None] + list(at)):
                pa = ra["points"][0] if t is None else at_fraction(ra["points"], t)
                pb = rb["points"][0] if t is None else at_fraction(rb["points"], t)
                d = pb["content_psnr"] - pa["content_psnr"]
                diffs.setdefault((ra["label"], ra["strategy"]), {}).setdefault(i, []).append((pa["content_psnr"], pb["content_psnr"], d))
                cells.append(f"{_f(pa['content_psnr'])} | {_f(pb['content_psnr'])} | {d:+.2f}")
            rows.append(f"| {s['name']} | {ra['label']} | {ra['strategy']} | " + " | ".join(cells) + " |")
    if not rows:
        raise BenchmarkInputError("the two results share no curve (scene, start, densification)")
    for (label, strategy), by_col in diffs.items():
        cells = [f"{_f(_mean([x[0] for x in v]))} | {_f(_mean([x[1] for x in v]))} | {_mean([x[2] for x in v]):+.2f}"
                 for _, v in sorted(by_col.items())]
        rows.append(f"| **mean** | {label} | {strategy} | " + " | ".join(cells) + " |")
    return "\n".join([f"A: `{a['weights']}`; B: `{b['weights']}`; content PSNR (dB) on the held-out views; CPU, "
                      f"{a['threads']} thread(s); model input: {'RGB + exact depth' if a['model_depth'] else 'RGB only'}.",
                      "", head, rule] + rows) + "\n"


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", type=Path, help="polish_curve --json result, the reference")
    p.add_argument("b", type=Path, help="polish_curve --json result, the other weights")
    p.add_argument("--at", type=float, nargs="+", default=[30.0], help="seconds of polish to compare at (default 30)")
    p.add_argument("--md", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        a, b = (json.loads(path.read_text(encoding="utf-8")) for path in (args.a, args.b))
    except (OSError, ValueError) as exc:
        raise BenchmarkInputError(f"cannot read a polish_curve result: {exc}") from None
    md = compare(a, b, args.at)
    print(md)
    if args.md is not None:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(md, encoding="utf-8")
    return md


if __name__ == "__main__":
    try:
        main()
    except BenchmarkInputError as exc:
        sys.exit(f"polish_compare: {exc}")
