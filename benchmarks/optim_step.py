"""3DGS optimisation steps per second on the CPU (torch backend): this working tree against an
earlier revision, both measured in the same run, alternately, so that they share the machine's
load.

Scene: one ``resplat data generate --scenes 1 --size 256x256 --views 8 --seed 0`` scene (made in
a temporary folder unless ``--scene`` names one), 32,000 Gaussians placed on its depth maps
(:func:`resplat.optim.depth_init`, seed 0, SH degree 3), all 8 views for training, one view per
step (3DGS), strategy "none", no evaluation, the polish's learning rates
(``OptimConfig(sh_increase_every=1)``). Each measurement is a fresh subprocess (``--worker``)
that imports ``resplat`` from the tree under test (``PYTHONPATH``; the earlier revision is
unpacked with ``git archive``), runs ``--warmup`` untimed steps, then times ``--steps`` steps
of :func:`resplat.optim.optimize`; rounds alternate before / after ``--rounds`` times and the
table gives the median. The loss after the timed steps is printed beside it: the two trees
compute the same steps, so it must agree to rounding. ``--profile`` adds torch.profiler's
top operators (self CPU time) of a few steps of each tree. The report ends with what the
compositor's design rests on, measured on this tree: render forward/backward with the batches'
intermediates kept or recomputed, and the cost of the elementwise operators it avoids or uses.

Usage (the command behind benchmarks/results/optim_step.md):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optim_step.py --before 4eceabd --profile \\
        --md benchmarks/results/optim_step.md --note "..."

Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(args) -> int:
    """One measurement in this process (imports resplat from PYTHONPATH); prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    import resplat
    from resplat.optim import OptimConfig, depth_init, optimize
    from resplat.views import read_views

    views = read_views(args.scene)
    g = depth_init(views, args.gaussians, sh_degree=3, seed=0)
    lr = OptimConfig(sh_increase_every=1)
    kw = dict(backend="torch", eval_every=0, lr=lr, strategy="none", seed=0)
    optimize(g, views.images, views.cameras, args.warmup, **kw)
    t = time.perf_counter()
    result = optimize(g, views.images, views.cameras, args.steps, **kw)
    seconds = time.perf_counter() - t
    out = {"module": resplat.__file__, "steps": args.steps, "seconds": seconds, "loss": result.losses[-1],
           "views": len(views.cameras), "size": [views.cameras.width, views.cameras.height], "gaussians": len(g)}
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            optimize(g, views.images, views.cameras, args.profile, **kw)
        rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:args.top]
        out["profile"] = [{"name": e.key, "self_ms": e.self_cpu_time_total / 1000 / args.profile,
                           "calls": e.count / args.profile} for e in rows]
        total = sum(e.self_cpu_time_total for e in prof.key_averages())
        out["profile_total_ms"] = total / 1000 / args.profile
    print(json.dumps(out))
    return 0


def details(args) -> int:
    """This tree only: the elementwise operators behind the compositor's choices, on one batch
    of its size ([128 tiles, 64 pixels, 32 Gaussians] float32, best of 5 x 100 calls), and one
    view's render forward + backward with the batches' intermediates kept for the backward
    (the default) or recomputed there (``composite.SAVE_BYTES = 0``). One JSON line."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    from resplat.optim import depth_init
    from resplat.optim.params import params_to_gaussians, split_params
    from resplat.render import composite, render
    from resplat.views import read_views

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(128, 64, 32, generator=g), torch.rand(128, 64, 32, generator=g)
    mask = x > 0.3

    def best(fn, n=100):
        fn()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - t) / n * 1e6)
        return min(times)

    ops = {"torch.where(bool mask, x, 0)": lambda: torch.where(mask, x, 0),
           "x > 0.3 (bool result)": lambda: x > 0.3,
           "F.threshold(x, 0.3, 0)": lambda: F.threshold(x, 0.3, 0.0),
           "torch.sign(x)": lambda: torch.sign(x),
           "x * y": lambda: x * y,
           "torch.exp(x)": lambda: torch.exp(x),
           "torch.cumprod(x, -1)": lambda: torch.cumprod(x, -1)}
    out = {"ops_us": {name: best(fn) for name, fn in ops.items()}}
    views = read_views(args.scene)
    params = split_params(depth_init(views, args.gaussians, sh_degree=3, seed=0))
    default = composite.SAVE_BYTES
    for label, save in (("kept", default), ("recomputed", 0)):
        composite.SAVE_BYTES = save
        fwd, bwd = [], []
        for i in range(2 + 2 * len(views.cameras)):
            t = time.perf_counter()
            rgb = render(params_to_gaussians(params), views.cameras[i % len(views.cameras)], sh_degree=3,
                         backend="torch").rgb
            t1 = time.perf_counter()
            rgb.sum().backward()
            if i >= 2:
                fwd.append(t1 - t)
                bwd.append(time.perf_counter() - t1)
        out[label] = [1000 * statistics.median(fwd), 1000 * statistics.median(bwd)]
    composite.SAVE_BYTES = default
    print(json.dumps(out))
    return 0


def _measure(tree: Path, args, profile: int, mode: str = "--worker") -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree / "runtime"), "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, __file__, mode, "--scene", str(args.scene), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--gaussians", str(args.gaussians), "--threads", str(args.threads),
           "--profile", str(profile), "--top", str(args.top)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"worker failed in {tree}:\n{r.stderr}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if mode == "--worker" and not out["module"].startswith(str(tree)):
        raise SystemExit(f"the worker imported {out['module']}, not the tree {tree}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="HEAD", help="git revision measured as 'before' (default HEAD)")
    ap.add_argument("--scene", type=Path, default=None, help="a posed-view folder with depth maps (default: generated)")
    ap.add_argument("--gaussians", type=int, default=32_000)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternating before/after measurements of each tree")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", type=int, nargs="?", const=5, default=0, metavar="STEPS",
                    help="also profile STEPS steps of each tree (default 5) and list the top operators")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--md", type=Path, default=None, help="write the markdown report here")
    ap.add_argument("--note", default="", help="a sentence on the machine's load for the report")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--details", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.details:
        return details(args)

    with tempfile.TemporaryDirectory(prefix="optim-step-") as tmp:
        tmp = Path(tmp)
        if args.scene is None:
            subprocess.run([sys.executable, "-m", "resplat", "data", "generate", str(tmp / "data"), "--scenes", "1",
                            "--size", "256x256", "--views", "8", "--seed", "0", "--progress", "none"], check=True,
                           env={**os.environ, "PYTHONPATH": str(REPO / "runtime")})
            args.scene = tmp / "data" / "scene_000000"
        before = tmp / "before"
        before.mkdir()
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.before], check=True,
                             capture_output=True, text=True).stdout.strip()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "runtime"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "runtime"], capture_output=True,
                               text=True).stdout.strip()
        trees = {f"before ({rev})": before, f"after ({head}{' + uncommitted changes' if dirty else ''})": REPO}
        load0 = os.getloadavg()
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for i in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(_measure(tree, args, args.profile if i == 0 else 0))
                r = runs[name][-1]
                print(f"round {i + 1} {name}: {r['steps'] / r['seconds']:.2f} steps/s, loss {r['loss']:.6f}", flush=True)
        extra = _measure(REPO, args, 0, "--details")
        load1 = os.getloadavg()

    first = runs[next(iter(trees))][0]
    lines = ["# 3DGS optimisation step on the CPU (benchmarks/optim_step.py)", "",
             f"{first['gaussians']:,} Gaussians on the depth maps of a `resplat data generate` scene "
             f"({first['views']} views of {first['size'][0]}x{first['size'][1]}), torch backend, one view per step, "
             f"strategy none, {args.threads} thread(s); {args.steps} timed steps after {args.warmup} untimed, "
             f"{args.rounds} alternating rounds per tree (median).", "",
             f"Machine: {os.cpu_count()} CPUs; load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end."
             + (f" {args.note}" if args.note else ""), "",
             "| tree | steps/s (median) | s/step | steps/s per round | loss after the timed steps |",
             "|---|---:|---:|---|---:|"]
    medians = {}
    for name, rs in runs.items():
        rates = [r["steps"] / r["seconds"] for r in rs]
        medians[name] = statistics.median(rates)
        lines.append(f"| {name} | {medians[name]:.2f} | {1 / medians[name]:.3f} | "
                     f"{', '.join(f'{x:.2f}' for x in rates)} | {rs[0]['loss']:.6f} |")
    (b, a) = medians.values()
    lines += ["", f"Speed-up: {a / b:.2f}x.", "",
              "### Where the compositor's choices come from (the 'after' tree, same run)", "",
              "One view's render, forward and backward (median over the views, ms): the batches' intermediates "
              "kept for the backward (`composite.SAVE_BYTES`, the default) or recomputed there "
              "(`SAVE_BYTES = 0`: every batch, as the backward always did before e7666be).", "",
              "| compositor batches | forward ms | backward ms | total ms |", "|---|---:|---:|---:|"]
    for label in ("kept", "recomputed"):
        f, bw = extra[label]
        lines.append(f"| {label} | {f:.1f} | {bw:.1f} | {f + bw:.1f} |")
    lines += ["", "Elementwise operators on one batch of the compositor's size ([128, 64, 32] float32, 2^18 elements; "
              "best of 5 x 100 calls, microseconds per call):", "", "| operator | us |", "|---|---:|"]
    lines += [f"| `{name}` | {us:.0f} |" for name, us in extra["ops_us"].items()]
    lines.append("")
    if args.profile:
        for name, rs in runs.items():
            p = rs[0]
            lines += [f"### torch.profiler, {name}: top operators by self CPU time, per step "
                      f"({args.profile} steps profiled, {p['profile_total_ms']:.0f} ms per step under the profiler)", "",
                      "| operator | self ms/step | calls/step |", "|---|---:|---:|"]
            lines += [f"| `{e['name']}` | {e['self_ms']:.1f} | {e['calls']:.0f} |" for e in p["profile"]]
            lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.md:
        args.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
