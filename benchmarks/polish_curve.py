"""Held-out content PSNR against wall time for 3DGS optimisation from four starts, with and
without densification: what a time-budgeted polish buys from each start.

For every scene (posed-view folders with depth written by ``demo/asset_scene.py --world open
--depth``, and held-out synthetic scenes of ``resplat data generate``), each start is optimised
against the scene's input views by :func:`resplat.optim.optimize` for ``--budget`` seconds, once
per densification strategy (``--strategies``, default "none" and "default", the 3DGS adaptive
density control), with the polish's settings (:func:`resplat.model.postprocess.polish`:
``OptimConfig(sh_increase_every=1)``, one view per step, SH degree 3, torch backend):

- ``random``: :func:`resplat.optim.random_init` in the input cameras' common view volume
  (between near/far from the rig's look-at point; for rigs whose axes do not meet, such as the
  synthetic rooms and forward-facing rigs, between the 0.5th and 99.5th percentiles of the input
  views' exact depth, the range the model frame reads off depth maps);
- ``depth``: :func:`resplat.optim.depth_init` on the input views' exact depth maps;
- ``model-it0``: the model's initial prediction (``reconstruct(..., iterations=0)``), then
  Gaussians below opacity 0.005 removed, as ``resplat reconstruct`` does by default;
- ``model-itK``: the same after K recurrent iterations (``--iterations``, default 4).

``random`` and ``depth`` start from as many Gaussians as the model predicts before pruning
((H/4)(W/4) per input view: 32,768 for 8 views of 256x256), so the starts differ in placement.
``--model-depth`` gives the model the exact depth maps too (default: RGB only).

Every ``--eval-every`` seconds of optimisation (and at 0 s and at the end) the current Gaussians
are rendered at the held-out views and scored with ``benchmarks/eval_assets.py``'s
:func:`score`: content PSNR (pixels whose ground-truth depth is finite and > 0), whole-image PSNR
and SSIM, black background. The optimisation's clock stops while it is scored (``optimize``'s
``clock``), so the budget and the time axis count optimisation only; each curve's wall time adds
its start's own preparation (the init, or the model's reconstruction and pruning, measured), so
a model start begins later on the time axis by what its prediction cost.

Outputs: ``--json`` (every point), ``--md`` (per scene and the mean over scenes: content PSNR at
the start, at 10 %, 25 %, 50 % and 100 % of the budget (the first score at or after each), steps,
final count), ``--png``
(matplotlib: content PSNR against wall time, one panel per scene and one for the mean; colour =
start, solid = no densification, dashed = default).

The full run (10 minutes per curve: 8 curves x 600 s, about 85 minutes per scene on
one thread, 7 to 8 hours for the three assets and two synthetic scenes; run it on an otherwise
idle machine)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/polish_curve.py \\
        --views runs/eval/spider runs/eval/jeep runs/eval/sydney --synthetic runs/eval-syn256 --scenes 2 \\
        --budget 600 --eval-every 30 --threads 1 \\
        --json benchmarks/results/polish_curve.json --md benchmarks/results/polish_curve.md \\
        --png benchmarks/results/polish_curve.png

Runs split across sessions (scenes, or curves of one scene with ``--starts``, each saved with
``--json``) combine into one set of tables and plots without running anything::

    .venv/bin/python benchmarks/polish_curve.py --merge runs/curves/spider.json runs/curves/jeep.json \
        --md benchmarks/results/polish_curve.md --png benchmarks/results/polish_curve.png

(the mean table and panel take the curves every scene has.)

A quick check that it runs (one asset, 20 s per curve, about 4 minutes)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/polish_curve.py --views runs/eval/spider \\
        --budget 20 --eval-every 5 --threads 1 --md /tmp/polish_curve.md --png /tmp/polish_curve.png

Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_assets import add_output_arguments, add_scene_arguments, load_scenes, score, write_json_md  # noqa: E402
from recurrence import BenchmarkInputError, _f, _mean  # noqa: E402
from resplat.errors import ResplatError  # noqa: E402

#: fractions of the budget reported in the tables
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
STARTS = ("random", "depth", "model-it0", "model-itK")
#: densification strategies in the tables' order (resplat.optim.STRATEGIES, "none" first)
STRATEGY_ORDER = ("none", "default", "mcmc")


def prepare_start(start: str, scene, model, iterations: int, model_depth: bool, seed: int = 0):
    """(the initial Gaussians of ``start``, one of :data:`STARTS`, for ``scene``'s input views,
    the wall time in seconds they took)."""
    import torch

    from resplat.model import prune_transparent, reconstruct
    from resplat.model.frame import depth_percentiles, valid_depth
    from resplat.optim import depth_init, random_init

    ctx = scene.context
    images, cams = scene.images[ctx], scene.cameras[ctx]
    h, w = images.shape[-2:]
    count = len(ctx) * (h // 4) * (w // 4)  # the model's prediction before pruning (DL3DV presets)
    t0 = time.perf_counter()
    if start == "random":
        try:
            g = random_init(cams, count, sh_degree=3, seed=seed)
        except ResplatError:  # the axes do not meet: the depth range of the input views instead
            near, far = depth_percentiles(valid_depth(scene.depths[ctx]))
            g = random_init(cams, count, sh_degree=3, seed=seed, near=near, far=far)
    elif start == "depth":
        d = scene.depths[ctx].to(torch.float32)
        d = torch.where(torch.isfinite(d) & (d > 0), d, torch.zeros_like(d))
        g = depth_init(SimpleNamespace(depths=d[:, None], images=images, cameras=cams), count, sh_degree=3, seed=seed)
    else:
        its = 0 if start == "model-it0" else iterations
        depths = scene.depths[ctx] if model_depth else None
        with torch.no_grad():
            g = reconstruct(images, cams, model, iterations=its, device="cpu", depths=depths)
        g = prune_transparent(g, 0.005)
    return g.detach(), time.perf_counter() - t0


def run_curve(g0, scene, config, strategy: str, budget: float, eval_every: float, prep: float, seed: int = 0) -> dict:
    """Optimise ``g0`` for ``budget`` seconds with ``strategy``, scoring at the held-out views
    every ``eval_every`` seconds of optimisation (the clock stops while scoring). Points:
    {seconds (optimisation), wall (prep + seconds), step, gaussians, content_psnr, psnr, ssim}."""
    from resplat.optim import OptimConfig, optimize

    images, cams = scene.images[scene.context], scene.cameras[scene.context].to(dtype=g0.dtype)
    paused = [0.0]
    clock = lambda: time.perf_counter() - paused[0]  # noqa: E731 - optimisation time only
    points = []

    def record(g, seconds, step, n):
        t = time.perf_counter()
        sc = score(g, scene, config)[1]
        sc.pop("content_psnr_views", None)
        points.append(dict(sc, seconds=round(seconds, 3), wall=round(prep + seconds, 3), step=step, gaussians=n))
        paused[0] += time.perf_counter() - t

    record(g0, 0.0, 0, len(g0))
    next_eval = [eval_every]

    def callback(p) -> bool:
        if p.seconds >= next_eval[0] and p.seconds < budget:
            record(p.snapshot(), p.seconds, p.step, p.num_gaussians)
            while next_eval[0] <= p.seconds:
                next_eval[0] += eval_every
        return True

    start = clock()
    res = optimize(g0, images, cams, None, seconds=budget, strategy=strategy, lr=OptimConfig(sh_increase_every=1),
                   backend="torch", eval_every=0, callback=callback, seed=seed, clock=clock)
    record(res.gaussians, clock() - start, res.steps, len(res.gaussians))
    return {"strategy": strategy, "prep_seconds": round(prep, 3), "steps": res.steps, "points": points}


def at_fraction(points: list[dict], t: float) -> dict:
    """The first point scored at or after ``t`` seconds of optimisation (scores fall on the
    --eval-every grid, so t on that grid gives the score taken there), else the last one."""
    return next((p for p in points if p["seconds"] >= t - 1e-6), points[-1])


def run_key(run: dict) -> tuple[str, str]:
    """A curve's identity across scenes: (start label, densification strategy)."""
    return run["label"], run["strategy"]


def common_runs(scenes: list[dict]) -> list[list[dict]]:
    """For each curve every scene has (:func:`run_key`), in the first scene's order: that curve
    in every scene (the mean rows and the mean panel)."""
    out = []
    for r in scenes[0]["runs"]:
        runs = [next((x for x in s["runs"] if run_key(x) == run_key(r)), None) for s in scenes]
        if all(x is not None for x in runs):
            out.append(runs)
    return out


#: settings that must agree between the results :func:`merge` combines
MERGE_KEYS = ("weights", "threads", "budget", "eval_every", "iterations", "model_depth")


def merge(results: list[dict], names: list[str] | None = None) -> dict:
    """One result from several runs of this benchmark (scenes, or curves of a scene, measured in
    different sessions): scenes in first-seen order, a scene's curves in the order of
    :data:`STARTS`, no densification before the strategies.

    Raises:
        BenchmarkInputError: the results differ in a setting of :data:`MERGE_KEYS`, or two of them
            hold the same curve of the same scene.
    """
    names = names or [f"result {i + 1}" for i in range(len(results))]
    if not results:
        raise BenchmarkInputError("--merge: nothing to merge")
    first = results[0]
    for r, name in zip(results[1:], names[1:]):
        for k in MERGE_KEYS:
            if r.get(k) != first.get(k):
                raise BenchmarkInputError(f"--merge: {name} has {k} = {r.get(k)!r}, {names[0]} has {first.get(k)!r}")
    scenes: dict[str, dict] = {}
    for r, name in zip(results, names):
        for s in r["scenes"]:
            have = scenes.setdefault(s["name"], dict(s, runs=[]))
            for run in s["runs"]:
                if any(run_key(x) == run_key(run) for x in have["runs"]):
                    raise BenchmarkInputError(f"--merge: {name} repeats {s['name']}'s curve {run_key(run)}")
                have["runs"].append(run)
    for s in scenes.values():  # the table's order: by start, then no densification first
        s["runs"].sort(key=lambda r: (STARTS.index(r["start"]), STRATEGY_ORDER.index(r["strategy"])))
    return dict(first, scenes=list(scenes.values()), seconds=sum(r.get("seconds", 0.0) for r in results),
                merged_from=list(names))


def markdown(result: dict) -> str:
    """Per scene and mean-over-scenes tables of content PSNR (dB) at fractions of the budget."""
    b = result["budget"]
    head = ("| start | densification | prep (s) | start PSNR | " + " | ".join(f"{int(f * b)} s" for f in FRACTIONS)
            + " | steps | Gaussians at the end |")
    rule = "|---|---|---:|---:|" + "---:|" * len(FRACTIONS) + "---:|---:|"
    lines = [f"weights: `{result['weights']}`; CPU, {result['threads']} thread(s); budget {b:g} s of optimisation per "
             f"curve, scored every {result['eval_every']:g} s (columns: the first score at or after that time); "
             f"content PSNR (dB, ground-truth depth > 0) on the "
             f"held-out views; model input: {'RGB + exact depth' if result['model_depth'] else 'RGB only'}; "
             f"K = {result['iterations']} iterations.", ""]
    for s in result["scenes"]:
        lines += [f"#### {s['name']} ({s['size'][0]}x{s['size'][1]}, {len(s['context'])} input + "
                  f"{len(s['heldout'])} held-out views)", "", head, rule]
        for r in s["runs"]:
            cells = [_f(at_fraction(r["points"], f * b)["content_psnr"]) for f in FRACTIONS]
            lines.append(f"| {r['label']} | {r['strategy']} | {_f(r['prep_seconds'])} | {_f(r['points'][0]['content_psnr'])} | "
                         + " | ".join(cells) + f" | {r['steps']} | {r['points'][-1]['gaussians']:,} |")
        lines.append("")
    if len(result["scenes"]) > 1:
        lines += [f"#### Mean over {len(result['scenes'])} scenes (curves every scene has)", "", head, rule]
        for runs in common_runs(result["scenes"]):
            r = runs[0]
            cells = [_f(_mean([at_fraction(x["points"], f * b)["content_psnr"] for x in runs])) for f in FRACTIONS]
            lines.append(f"| {r['label']} | {r['strategy']} | {_f(_mean([x['prep_seconds'] for x in runs]))} | "
                         f"{_f(_mean([x['points'][0]['content_psnr'] for x in runs]))} | " + " | ".join(cells)
                         + f" | {_f(_mean([x['steps'] for x in runs]), '.0f')} | "
                         f"{_f(_mean([x['points'][-1]['gaussians'] for x in runs]), ',.0f')} |")
        lines.append("")
    return "\n".join(lines)


def write_png(path: Path, result: dict) -> None:
    """Content PSNR against wall time (preparation + optimisation), one panel per scene and one
    for the mean over scenes (at the common scoring times), with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes = result["scenes"]
    panels = [(s["name"], s["runs"]) for s in scenes]
    if len(scenes) > 1:
        mean_runs = []
        for runs in common_runs(scenes):
            n = min(len(x["points"]) for x in runs)
            mean_runs.append(dict(runs[0], points=[{"wall": _mean([x["points"][j]["wall"] for x in runs]),
                                                    "content_psnr": _mean([x["points"][j]["content_psnr"] for x in runs])}
                                                   for j in range(n)]))
        panels.append((f"mean of {len(scenes)} scenes", mean_runs))
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    colours = dict(zip(STARTS, ("tab:grey", "tab:green", "tab:blue", "tab:purple")))
    for ax, (name, runs) in zip(axes.flat, panels):
        for r in runs:
            ax.plot([p["wall"] for p in r["points"]], [p["content_psnr"] for p in r["points"]], color=colours[r["start"]],
                    linestyle={"none": "-", "default": "--"}.get(r["strategy"], ":"), marker=".", markersize=3,
                    label=f"{r['label']}, {r['strategy']}")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("wall time (s): start + optimisation")
        ax.set_ylabel("held-out content PSNR (dB)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scene_arguments(p)
    p.add_argument("--budget", type=float, default=600.0, help="seconds of optimisation per curve (default 600)")
    p.add_argument("--eval-every", type=float, default=30.0, help="seconds of optimisation between scores (default 30)")
    p.add_argument("--starts", default=",".join(STARTS), help=f"comma-separated subset of {','.join(STARTS)}")
    p.add_argument("--strategies", default="none,default", help="comma-separated densification strategies "
                                                                 "(none, default, mcmc; default none,default)")
    p.add_argument("--iterations", type=int, default=4, help="K of the model-itK start (default 4)")
    p.add_argument("--model-depth", action="store_true", help="give the model the exact depth maps too")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                   help="run nothing: combine these --json results (same settings; scenes or curves measured "
                        "separately) into one set of tables and plots")
    add_output_arguments(p)
    return p.parse_args(argv)


def write_outputs(args, result: dict) -> None:
    """Print the markdown and write --json / --md / --png of ``result``."""
    md = markdown(result)
    print(md)
    write_json_md(args, result, md)
    if args.png is not None:
        write_png(args.png, result)


def main(argv=None) -> dict:
    """Run every curve; print the markdown; return (and write) every number.

    Raises:
        ResplatError: unusable inputs, one line.
    """
    args = parse_args(argv)
    if args.merge:
        results = []
        for path in args.merge:
            try:
                results.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise BenchmarkInputError(f"--merge: {path}: cannot read a result ({exc})") from None
        result = merge(results, [str(p) for p in args.merge])
        write_outputs(args, result)
        return result
    import torch

    from resplat.optim import STRATEGIES, optimize

    torch.set_num_threads(args.threads)
    starts = [x.strip() for x in args.starts.split(",") if x.strip()]
    strategies = [x.strip() for x in args.strategies.split(",") if x.strip()]
    if not starts or any(x not in STARTS for x in starts):
        raise BenchmarkInputError(f"--starts: choose from {', '.join(STARTS)}, got {args.starts!r}")
    if not strategies or any(x not in STRATEGIES for x in strategies):
        raise BenchmarkInputError(f"--strategies: choose from {', '.join(STRATEGIES)}, got {args.strategies!r}")
    if not args.budget > 0 or not args.eval_every > 0:
        raise BenchmarkInputError("--budget and --eval-every must be > 0 seconds")
    path, model, scenes = load_scenes(args)
    config = model.config
    result = {"benchmark": "polish_curve", "weights": str(path), "preset": config.name, "threads": args.threads,
              "budget": args.budget, "eval_every": args.eval_every, "iterations": args.iterations,
              "model_depth": args.model_depth, "scenes": []}
    t_all = time.perf_counter()
    for scene in scenes:
        out = {"name": scene.name, "size": [int(scene.images.shape[-1]), int(scene.images.shape[-2])],
               "context": scene.context, "heldout": scene.heldout, "runs": []}
        for start in starts:
            g0, prep = prepare_start(start, scene, model, args.iterations, args.model_depth)
            if not result["scenes"] and not out["runs"]:  # one untimed step: the process's first backward sets up
                optimize(g0, scene.images[scene.context], scene.cameras[scene.context], 1, backend="torch", eval_every=0)
            label = start.replace("K", str(args.iterations)) + ("+depth" if args.model_depth and "model" in start else "")
            for strategy in strategies:
                t = time.perf_counter()
                run = run_curve(g0, scene, config, strategy, args.budget, args.eval_every, prep)
                out["runs"].append(dict(run, start=start, label=label))
                pts = run["points"]
                print(f"{scene.name} {label} {strategy}: {_f(pts[0]['content_psnr'])} -> {_f(pts[-1]['content_psnr'])} dB "
                      f"in {run['steps']} steps ({time.perf_counter() - t:.0f} s with scoring)", file=sys.stderr, flush=True)
        result["scenes"].append(out)
    result["seconds"] = time.perf_counter() - t_all
    write_outputs(args, result)
    return result


if __name__ == "__main__":
    try:
        main()
    except ResplatError as exc:
        print(f"polish_curve: error: {exc}", file=sys.stderr)
        sys.exit(2)
