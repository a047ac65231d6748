"""ReSplat recurrence vs. 3DGS optimisation, and the no-error ablation, for one weights file.

For every scene (held-out synthetic scenes and posed-view folders), in one run:

1. Recurrent iterations 0..--max-iterations (default 8; the model is trained with 1..4):
   PSNR / SSIM at the input (context) views and at the held-out views, and the wall time of
   the initial prediction and of each iteration.
2. 3DGS optimisation (``resplat.optim.optimize``, Adam, L1 + 0.2 D-SSIM, one input view per
   step, no densification) from the same initial Gaussians (iteration 0) against the input
   views: PSNR at a schedule of step counts (--opt-steps) with their wall time (evaluation time
   excluded), and at the first step whose wall time reaches that of --ref-iterations (default 4)
   recurrent iterations. Reported: the steps (and their time) the optimisation needs to reach
   the held-out / input PSNR of those iterations, and the PSNR it reaches in the same time.
   The paper (arXiv 2510.08575, DL3DV 512x960 on a GPU) finds 4 iterations ~ 80 steps.
3. Ablation: iterations 1..--ref-iterations with ``reconstruct(..., zero_error=True)`` (the
   updater sees zeros instead of its rendering error). An inference-time stand-in for the
   paper's "no error input" ablation (which retrains without the error; 27.19 vs 29.07 dB).
4. Peak memory: the reconstruction runs in a fresh child process (model, inputs, reconstruct
   and nothing else), whose RSS high-water mark (``resource.getrusage``) is read right after
   ``reconstruct`` returns.

Renders are compared with the images as stored (sRGB in [0, 1], as the model is trained):
``render(g, cameras, near, far of the model)`` (black background, eps2d 0.3 as the training
loss renders), clamped to [0, 1]; PSNR / SSIM (11x11 Gaussian window, valid) per view, then
the mean over views, then over scenes.

Scenes:
- ``--synthetic DIR --scenes N``: the first N scenes of a dataset written by
  ``resplat data generate`` (context / target views from each scene.json); when DIR holds no
  index.json, N scenes are generated there first with --seed (default 1000: not the training
  seed, which --train-seed names and which is refused), --size (256x256), 12 views, 8 inputs.
- ``--views DIR ...``: transforms.json / COLMAP folders with a ``split.json``
  ``{"context": [names], "heldout": [names]}`` (names: camera names, file names or file stems);
  images are centre-cropped to the model's size multiple when needed.

Usage: .venv/bin/python benchmarks/recurrence.py [--weights FILE | --random-weights SEED]
           --synthetic DIR [--scenes 4] [--views DIR ...] [--max-iterations 8] [--ref-iterations 4]
           [--opt-steps 0,10,20,40,80] [--threads 2] [--json PATH]
Defaults: the embedded weights (runtime/resplat/model/weights/tiny.safetensors). Not a test:
nothing asserts (tests/test_recurrence_bench.py checks the numbers it writes).

Cost (tiny preset, 256x256, 8 inputs + 4 held out, 32,768 Gaussians; CPU seconds of one thread
measured 2026-11-23 on this project's 2-core machine): initial 4.6 s, iteration ~3.5 s,
no-error iteration ~1.3 s, one evaluation (render 12 views + metrics) 3.7 s, optimisation
0.45 s/step. With the defaults (8 iterations, 4 ablated, 80 steps, ~19 evaluations) about
150 s per scene on one thread, so 4 synthetic scenes + 1 asset scene take roughly 8-12 min
with 2 threads. --opt-steps 0,10,20,40,80,160,320 adds ~(240 x 0.45 + 2 x 3.7) s per scene.
Too long for benchmarks/run (make bench), which does not run it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from resplat.errors import ResplatError

DEFAULT_SCHEDULE = "0,10,20,40,80"
CHILD_FLAG = "--reconstruct-child"
#: The head of randomly initialised updaters is zero (every step is the identity); --random-weights
#: gives it this standard deviation so that iterations and the ablation exercise their code paths.
RANDOM_HEAD_STD = 1e-2


class BenchmarkInputError(ResplatError):
    """A scene folder, split.json, weights file or option that the benchmark cannot use (one line)."""


# --------------------------------------------------------------------------------------------
# model and reconstruction (the child process)
# --------------------------------------------------------------------------------------------

def embedded_weights() -> Path:
    """The embedded model's weights file (may not exist yet)."""
    try:
        from resplat.model.checkpoint import embedded_weights_path
        return Path(embedded_weights_path())
    except ImportError:
        import resplat.model
        return Path(resplat.model.__file__).resolve().parent / "weights" / "tiny.safetensors"


def load_model(spec: dict):
    """``spec``: {"weights": path} (``load_checkpoint``) or {"random": seed, "preset": name}
    (``build_model`` under ``torch.manual_seed(seed)``, last update-head layer ~ N(0, 1e-2))."""
    import torch

    from resplat.model import build_model, load_checkpoint

    if spec.get("random") is None:
        return load_checkpoint(spec["weights"]).eval()
    torch.manual_seed(int(spec["random"]))
    model = build_model(spec["preset"]).eval()
    with torch.no_grad():
        model.encoder.update_head[-1].weight.normal_(0, RANDOM_HEAD_STD)
    return model


def model_config(spec: dict):
    """The :class:`ModelConfig` of the model ``spec`` names (from the safetensors metadata when
    present, else by loading the file)."""
    from resplat.model import get_config
    from resplat.model.checkpoint import stored_config

    if spec.get("random") is not None:
        return get_config(spec["preset"])
    return stored_config(spec["weights"]) or load_model(spec).config


def child_main(job_path: str) -> None:
    """Run in a fresh process: load the model and the input views of ``job_path`` (torch file
    of images [V, 3, H, W], w2c, K, size; loaded with weights_only=True), reconstruct with
    ``iterations`` updates (timed between callbacks; snapshots written to disk inside the
    callbacks, whose own time is excluded), read ru_maxrss, then the zero_error ablation.
    Prints one JSON line: stage seconds, RSS before / peak (MiB), Gaussian count."""
    import resource

    import torch

    job = torch.load(job_path, weights_only=True)
    spec = json.loads(job["spec"])
    torch.set_num_threads(spec["threads"])
    from resplat.cameras import Cameras
    from resplat.model import reconstruct

    model = load_model(spec["model"])
    images = job["images"]
    cams = Cameras(job["w2c"], job["K"], int(job["width"]), int(job["height"]))
    out = Path(spec["out"])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def run(tag: str, iterations: int, zero_error: bool) -> tuple[list[float], int]:
        times: list[float] = []
        count = [0]
        last = [time.perf_counter()]

        def callback(stage, it, total, g):
            times.append(time.perf_counter() - last[0])
            torch.save(g.tensors(), out / f"{tag}_{it}.pt")
            count[0] = len(g)
            last[0] = time.perf_counter()

        reconstruct(images, cams, model, iterations=iterations, device="cpu", callback=callback,
                    zero_error=zero_error)
        return times, count[0]

    times, n = run("rec", spec["iterations"], False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ablation, _ = run("abl", spec["ablation_iterations"], True) if spec["ablation_iterations"] else ([], 0)
    print(json.dumps({"seconds": times, "ablation_seconds": ablation, "rss_before_mb": rss_before,
                      "peak_rss_mb": peak, "gaussians": n}))


# --------------------------------------------------------------------------------------------
# scenes
# --------------------------------------------------------------------------------------------

@dataclass
class EvalScene:
    """One evaluation scene: images [V, 3, H, W] float32 sRGB in [0, 1], their cameras, and the
    input (context) and held-out view indices (disjoint)."""

    name: str
    images: object
    cameras: object
    context: list
    heldout: list


def synthetic_scenes(root: Path, count: int, seed: int, train_seed: int, size: tuple[int, int]) -> list[EvalScene]:
    """The first ``count`` scenes of the dataset at ``root`` (generated first when ``root`` has
    no index.json). Raises BenchmarkInputError for a dataset made with ``train_seed`` or with
    fewer scenes."""
    from resplat.data import GeneratorConfig, SyntheticDataset, generate_dataset

    if not (root / "index.json").is_file():
        if seed == train_seed:
            raise BenchmarkInputError(f"--seed {seed} is the training seed: held-out scenes need another one")
        generate_dataset(root, count, seed, GeneratorConfig(width=size[0], height=size[1]))
    data = SyntheticDataset(root)
    if data.index.get("seed") == train_seed:
        raise BenchmarkInputError(f"{root}: generated with seed {train_seed}, the training seed (--train-seed): not held out")
    if len(data) < count:
        raise BenchmarkInputError(f"{root}: holds {len(data)} scenes, --scenes asks for {count}")
    out = []
    for i in range(count):
        s = data[i]
        out.append(EvalScene(Path(s.path).name, s.images, s.cameras, list(s.context), list(s.target)))
    return out


def views_scene(folder: Path, multiple: int) -> EvalScene:
    """A posed-view folder with split.json {"context": [names], "heldout": [names]}, centre-
    cropped to multiples of ``multiple`` px. Raises BenchmarkInputError (or ViewsError)."""
    return split_scene(folder, read_fitted_views(folder, multiple))


def read_fitted_views(folder: Path, multiple: int):
    """The posed views of ``folder`` (:func:`resplat.views.read_views`), centre-cropped to
    multiples of ``multiple`` px. Raises ViewsError."""
    from resplat.views import fit_to_multiple, read_views

    views = read_views(folder)
    if views.width % multiple or views.height % multiple:
        views = fit_to_multiple(views, multiple, mode="crop")
    return views


def split_scene(folder: Path, views) -> EvalScene:
    """The :class:`EvalScene` of ``views`` (a :class:`resplat.views.Views` read from ``folder``)
    split by ``folder``/split.json into context and held-out views. Raises BenchmarkInputError."""
    split_path = folder / "split.json"
    try:
        split = json.loads(split_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchmarkInputError(f"{split_path}: not found (needs {{\"context\": [names], \"heldout\": [names]}})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchmarkInputError(f"{split_path}: not valid JSON ({exc})") from None
    lookup = {}
    for i, p in enumerate(views.paths):
        for key in (Path(p).name, Path(p).stem, os.path.relpath(p, folder)):
            lookup.setdefault(key, i)
        if views.cameras.names:
            lookup.setdefault(views.cameras.names[i], i)
    picked = {}
    for key in ("context", "heldout"):
        names = split.get(key) if isinstance(split, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BenchmarkInputError(f"{split_path}: '{key}' must be a non-empty list of view names")
        missing = [n for n in names if n not in lookup]
        if missing:
            raise BenchmarkInputError(f"{split_path}: {key} view {missing[0]!r} is not in {folder} ({len(views)} views)")
        picked[key] = [lookup[n] for n in names]
    if set(picked["context"]) & set(picked["heldout"]):
        raise BenchmarkInputError(f"{split_path}: a view is both context and heldout")
    return EvalScene(folder.name, views.images, views.cameras, picked["context"], picked["heldout"])


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------

def render_and_score(g, scene: EvalScene, config):
    """``g`` rendered at every view of ``scene`` (near/far of ``config``, clamped to [0, 1]):
    (renders [V, 3, H, W], scores): PSNR (dB) and SSIM against the stored images, means over the
    input and held-out views, and the per-view PSNR lists."""
    import torch

    from resplat.metrics import psnr, ssim
    from resplat.render import render

    with torch.no_grad():
        rgb = render(g, scene.cameras.to(dtype=g.dtype), near=config.near, far=config.far).rgb.clamp(0, 1)
        p, s = psnr(rgb, scene.images), ssim(rgb, scene.images)
    out = {}
    for key, idx in (("input", scene.context), ("heldout", scene.heldout)):
        out[f"{key}_psnr"] = float(p[idx].mean())
        out[f"{key}_ssim"] = float(s[idx].mean())
        out[f"{key}_psnr_views"] = [round(float(x), 4) for x in p[idx]]
    return rgb, out


def evaluate(g, scene: EvalScene, config) -> dict:
    """The scores of :func:`render_and_score` alone."""
    return render_and_score(g, scene, config)[1]


def load_gaussians(path: Path):
    import torch

    from resplat.gaussians import Gaussians

    return Gaussians(**torch.load(path, weights_only=True))


def run_child(scene: EvalScene, model_spec: dict, iterations: int, ablation: int, threads: int, tmp: Path) -> dict:
    """Reconstruct ``scene``'s input views in a fresh process (:func:`child_main`); returns its
    JSON line as a dict; the Gaussians of every stage are left in ``tmp`` as rec_<i>.pt and
    abl_<i>.pt (dicts of tensors)."""
    import torch

    cams = scene.cameras[scene.context]
    spec = {"model": model_spec, "threads": threads, "iterations": iterations, "ablation_iterations": ablation,
            "out": str(tmp)}
    job = tmp / "job.pt"
    torch.save({"images": scene.images[scene.context].contiguous(), "w2c": cams.w2c.contiguous(), "K": cams.K.contiguous(),
                "width": cams.width, "height": cams.height, "spec": json.dumps(spec)}, job)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, str(job)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        raise BenchmarkInputError(f"{scene.name}: reconstruction failed in the child process: {lines[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def optimisation_curve(g0, scene: EvalScene, config, schedule: list[int], budget_s: float, lr, first: dict) -> dict:
    """Optimise ``g0`` against the input views for max(schedule) steps; evaluate at each
    scheduled step and at the first step whose wall time reaches ``budget_s``. Wall times
    exclude the evaluations (measured around them and subtracted). ``first``: the evaluation
    of ``g0`` (step 0)."""
    from resplat.optim import optimize

    steps = max(schedule)
    first = {k: v for k, v in first.items() if k != "iteration"}
    points = [dict(first, step=0, seconds=0.0, at="schedule")] if 0 in schedule else []
    cumulative: list[float] = []
    excluded = 0.0
    budget_done = budget_s <= 0
    images, cams = scene.images[scene.context], scene.cameras[scene.context]
    if steps:  # one untimed step first: the process's first backward pass pays one-time set-up costs
        optimize(g0, images, cams.to(dtype=g0.dtype), 1, lr=lr, eval_every=2)
    t0 = time.perf_counter()

    def callback(p) -> bool:
        nonlocal excluded, budget_done
        now = time.perf_counter()
        elapsed = now - t0 - excluded
        cumulative.append(round(elapsed, 4))
        marks = (["schedule"] if p.step in schedule else []) + ([] if budget_done or elapsed < budget_s else ["budget"])
        if marks:
            budget_done = budget_done or "budget" in marks
            scores = evaluate(p.snapshot(), scene, config)
            points.extend(dict(scores, step=p.step, seconds=elapsed, at=at) for at in marks)
            excluded += time.perf_counter() - now
        return p.step < steps  # stop after the last scheduled step (no final evaluation inside optimize)

    if steps:
        # steps + 1 with a stop at ``steps``: optimize's own PSNR pass (every eval_every and at its
        # last step) never runs, so it costs no time; the position rate decays over steps + 1
        optimize(g0, images, cams.to(dtype=g0.dtype), steps + 1, lr=lr, eval_every=steps + 1, callback=callback)
    return {"points": points, "cumulative_seconds": cumulative,
            "seconds_per_step": cumulative[-1] / len(cumulative) if cumulative else None}


def reach(points: list[dict], key: str, target: float) -> dict | None:
    """The first scheduled point whose ``key`` PSNR is >= ``target``: {step, seconds}; None if none."""
    for p in sorted((p for p in points if p["at"] == "schedule"), key=lambda p: p["step"]):
        if p[key] >= target:
            return {"step": p["step"], "seconds": p["seconds"]}
    return None


def compare(rec: list[dict], points: list[dict], refine_s: float, ref: int) -> dict:
    """Recurrent iteration ``ref`` vs the optimisation: steps / time to reach its PSNRs, and the
    optimisation's PSNR at equal wall time."""
    out = {"ref_iterations": ref, "refine_seconds": refine_s}
    for key in ("heldout", "input"):
        target = rec[ref][f"{key}_psnr"]
        r = reach(points, f"{key}_psnr", target)
        if r is not None:
            r["time_ratio"] = r["seconds"] / refine_s if refine_s > 0 else None
        out[f"{key}_target_psnr"] = target
        out[f"{key}_reach"] = r
    budget = next((p for p in points if p["at"] == "budget"), None)
    out["equal_time"] = None if budget is None else {k: budget[k] for k in ("step", "seconds", "heldout_psnr", "input_psnr",
                                                                            "heldout_ssim", "input_ssim")}
    return out


def benchmark_scene(scene: EvalScene, args, model_spec: dict, config, lr) -> dict:
    """Every number of one scene (module docstring, points 1-4)."""
    schedule = args.schedule
    ref = min(args.ref_iterations, args.max_iterations)
    with tempfile.TemporaryDirectory(prefix="resplat-recurrence-") as tmp:
        child = run_child(scene, model_spec, args.max_iterations, ref, args.threads, Path(tmp))
        rec_g = [load_gaussians(Path(tmp) / f"rec_{i}.pt") for i in range(args.max_iterations + 1)]
        abl_g = [load_gaussians(Path(tmp) / f"abl_{i}.pt") for i in range(1, ref + 1)]
    rec = [dict(evaluate(g, scene, config), iteration=i, seconds=child["seconds"][i]) for i, g in enumerate(rec_g)]
    abl = [dict(evaluate(g, scene, config), iteration=i + 1, seconds=child["ablation_seconds"][i + 1])
           for i, g in enumerate(abl_g)]
    refine_s = sum(child["seconds"][1:ref + 1])
    opt = optimisation_curve(rec_g[0], scene, config, schedule, refine_s, lr, rec[0])
    h, w = scene.images.shape[-2:]
    return {
        "name": scene.name, "size": [int(w), int(h)], "context": scene.context, "heldout": scene.heldout,
        "gaussians": child["gaussians"], "recurrent": rec, "ablation": abl,
        "timing": {"initial_s": child["seconds"][0], "iteration_s": child["seconds"][1:],
                   "ablation_initial_s": child["ablation_seconds"][0] if child["ablation_seconds"] else None,
                   "ablation_iteration_s": child["ablation_seconds"][1:],
                   "reconstruct_ref_s": child["seconds"][0] + refine_s, "refine_ref_s": refine_s,
                   "reconstruct_max_s": sum(child["seconds"]),
                   "rss_before_mb": child["rss_before_mb"], "peak_rss_mb": child["peak_rss_mb"]},
        "optimisation": opt,
        "comparison": compare(rec, opt["points"], refine_s, ref),
    }


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _mean_records(rows: list[list[dict]], keys: tuple[str, ...]) -> list[dict]:
    """Element-wise mean over scenes of lists of equally long records."""
    return [{k: _mean([r[j][k] for r in rows]) for k in keys} for j in range(len(rows[0]))]


METRIC_KEYS = ("input_psnr", "input_ssim", "heldout_psnr", "heldout_ssim")


def group_mean(scenes: list[dict], ref: int) -> dict:
    """Means over the scenes of a group; the reach of the mean curves; max peak memory."""
    rec = _mean_records([s["recurrent"] for s in scenes], METRIC_KEYS + ("iteration", "seconds"))
    abl = _mean_records([s["ablation"] for s in scenes], METRIC_KEYS + ("iteration", "seconds")) if scenes[0]["ablation"] else []
    sched = [[p for p in s["optimisation"]["points"] if p["at"] == "schedule"] for s in scenes]
    points = [dict(p, at="schedule") for p in _mean_records(sched, METRIC_KEYS + ("step", "seconds"))]
    budgets = [s["comparison"]["equal_time"] for s in scenes if s["comparison"]["equal_time"]]
    if len(budgets) == len(scenes):  # else some scene's optimisation ended before the iterations' time
        points.append({**{k: _mean([b[k] for b in budgets]) for k in ("step", "seconds") + METRIC_KEYS}, "at": "budget"})
    t = [s["timing"] for s in scenes]
    timing = {k: _mean([x[k] for x in t]) for k in ("initial_s", "ablation_initial_s", "reconstruct_ref_s", "refine_ref_s",
                                                    "reconstruct_max_s", "rss_before_mb")}
    timing["iteration_s"] = [_mean([x["iteration_s"][i] for x in t]) for i in range(len(t[0]["iteration_s"]))]
    timing["ablation_iteration_s"] = [_mean([x["ablation_iteration_s"][i] for x in t])
                                      for i in range(len(t[0]["ablation_iteration_s"]))]
    timing["peak_rss_mb"] = max(x["peak_rss_mb"] for x in t)
    per_step = _mean([s["optimisation"]["seconds_per_step"] for s in scenes])
    return {"scenes": len(scenes), "recurrent": rec, "ablation": abl, "optimisation": {"points": points, "seconds_per_step": per_step},
            "timing": timing, "comparison": compare(rec, points, timing["refine_ref_s"], ref)}


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------

def _f(x, spec: str = ".2f", none: str = "-") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def print_group(title: str, g: dict, scenes: list[dict], schedule: list[int]) -> None:
    """The markdown tables of one group (its mean over scenes)."""
    s0, c, t = scenes[0], g["comparison"], g["timing"]
    ref = c["ref_iterations"]
    print(f"\n### {title}: {g['scenes']} scene(s), {s0['size'][0]}x{s0['size'][1]}, {len(s0['context'])} input + "
          f"{len(s0['heldout'])} held-out views, {s0['gaussians']:,} Gaussians (mean over scenes)\n")
    print("| iteration | input PSNR | input SSIM | held-out PSNR | held-out SSIM | no-error input PSNR "
          "| no-error held-out PSNR | time (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    abl = {a["iteration"]: a for a in g["ablation"]}
    for r in g["recurrent"]:
        a = abl.get(r["iteration"], {})
        label = f"{r['iteration']:.0f}" + (" (initial)" if r["iteration"] == 0 else "")
        print(f"| {label} | {_f(r['input_psnr'])} | {_f(r['input_ssim'], '.4f')} | {_f(r['heldout_psnr'])} | "
              f"{_f(r['heldout_ssim'], '.4f')} | {_f(a.get('input_psnr'))} | {_f(a.get('heldout_psnr'))} | "
              f"{_f(r['seconds'])} |")
    print(f"\n3DGS optimisation from the iteration-0 Gaussians against the input views "
          f"({_f(g['optimisation']['seconds_per_step'], '.3f')} s/step):\n")
    print("| steps | wall time (s) | input PSNR | held-out PSNR | held-out SSIM |")
    print("|---:|---:|---:|---:|---:|")
    for p in sorted(g["optimisation"]["points"], key=lambda p: (p["seconds"], p["at"] == "budget")):
        label = f"{p['step']:.0f}" if p["at"] == "schedule" else f"{p['step']:.1f} (= time of {ref} iterations)"
        print(f"| {label} | {_f(p['seconds'])} | {_f(p['input_psnr'])} | {_f(p['heldout_psnr'])} | "
              f"{_f(p['heldout_ssim'], '.4f')} |")
    print(f"\n| {ref} recurrent iterations vs optimisation | held-out | input |")
    print("|---|---:|---:|")
    print(f"| PSNR after {ref} iterations | {_f(c['heldout_target_psnr'])} dB | {_f(c['input_target_psnr'])} dB |")
    reach_cells = []
    for key in ("heldout", "input"):
        r = c[f"{key}_reach"]
        reach_cells.append((f"> {max(schedule)}", "-", "-") if r is None else
                           (f"{r['step']:.0f}", f"{r['seconds']:.2f} s", f"{_f(r['time_ratio'], '.1f')}x"))
    print(f"| optimisation steps to reach it (first of {','.join(map(str, schedule))}) | "
          f"{reach_cells[0][0]} | {reach_cells[1][0]} |")
    print(f"| wall time of those steps | {reach_cells[0][1]} | {reach_cells[1][1]} |")
    print(f"| wall time of the {ref} iterations | {_f(c['refine_seconds'])} s | {_f(c['refine_seconds'])} s |")
    print(f"| time ratio (optimisation / iterations) | {reach_cells[0][2]} | {reach_cells[1][2]} |")
    e = c["equal_time"]
    if e is None:
        print(f"| optimisation PSNR in the same wall time | (the {max(schedule)} steps took less time in some scene: "
              f"raise --opt-steps) | |")
    else:
        print(f"| optimisation PSNR in the same wall time ({e['step']:.1f} steps) | {_f(e['heldout_psnr'])} dB | "
              f"{_f(e['input_psnr'])} dB |")
    iters = t["iteration_s"]
    print(f"\n| reconstruction, CPU (child process) | value |")
    print("|---|---:|")
    print(f"| initial prediction | {_f(t['initial_s'])} s |")
    print(f"| per iteration (mean of {len(iters)}) | {_f(_mean(iters))} s |")
    print(f"| per no-error iteration (no render, mean of {len(t['ablation_iteration_s'])}) | "
          f"{_f(_mean(t['ablation_iteration_s']))} s |")
    print(f"| initial + {ref} iterations | {_f(t['reconstruct_ref_s'])} s |")
    if len(iters) != ref:
        print(f"| initial + {len(iters)} iterations | {_f(t['reconstruct_max_s'])} s |")
    print(f"| peak RSS of the process (max over scenes) | {t['peak_rss_mb']:.0f} MiB "
          f"(before reconstruct {t['rss_before_mb']:.0f} MiB) |")
    if len(scenes) > 1:
        print(f"\n| scene | held-out PSNR it 0 | it {ref} | no-error it {ref} | opt. steps to reach it {ref} "
              f"| opt. PSNR at equal time |")
        print("|---|---:|---:|---:|---:|---:|")
        for s in scenes:
            sc = s["comparison"]
            r, e = sc["heldout_reach"], sc["equal_time"]
            a = s["ablation"][ref - 1]["heldout_psnr"] if s["ablation"] else None
            print(f"| {s['name']} | {_f(s['recurrent'][0]['heldout_psnr'])} | {_f(s['recurrent'][ref]['heldout_psnr'])} | "
                  f"{_f(a)} | {f'> {max(schedule)}' if r is None else r['step']} | {_f(e and e['heldout_psnr'])} |")


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def _schedule(text: str) -> list[int]:
    try:
        steps = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--opt-steps must be comma-separated integers, got {text!r}") from None
    if not steps or steps[0] < 0:
        raise argparse.ArgumentTypeError(f"--opt-steps must be integers >= 0, got {text!r}")
    return steps


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be WxH, got {text!r}") from None
    return w, h


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    w = p.add_mutually_exclusive_group()
    w.add_argument("--weights", type=Path, default=None, help="checkpoint (default: the embedded tiny weights)")
    w.add_argument("--random-weights", type=int, default=None, metavar="SEED",
                   help="random --preset weights (numbers meaningless; for checking the code paths)")
    p.add_argument("--preset", default="tiny", help="preset of --random-weights (default tiny)")
    p.add_argument("--synthetic", type=Path, default=None, help="synthetic dataset folder (generated if absent)")
    p.add_argument("--scenes", type=int, default=4, help="synthetic scenes to evaluate (default 4)")
    p.add_argument("--seed", type=int, default=1000, help="seed when generating --synthetic (default 1000)")
    p.add_argument("--train-seed", type=int, default=0, help="the training data's seed, refused (default 0)")
    p.add_argument("--size", type=_size, default=(256, 256), help="WxH when generating --synthetic (default 256x256)")
    p.add_argument("--views", type=Path, nargs="*", default=[], help="posed-view folders with split.json")
    p.add_argument("--max-iterations", type=int, default=8, help="recurrent iterations evaluated (default 8)")
    p.add_argument("--ref-iterations", type=int, default=4,
                   help="iterations compared with the optimisation and ablated (default 4)")
    p.add_argument("--opt-steps", type=_schedule, default=_schedule(DEFAULT_SCHEDULE), dest="schedule",
                   help=f"optimisation steps at which to evaluate (default {DEFAULT_SCHEDULE})")
    p.add_argument("--sh-increase-every", type=int, default=1,
                   help="optimisation: rendered SH degree +1 every N steps (default 1: the model's degree 3 "
                        "from step 4; 3DGS's 1000 would fit colours at degree 0 for the whole run)")
    p.add_argument("--threads", type=int, default=2, help="torch threads, here and in the child (default 2)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    args, _ = p.parse_known_args(argv)  # benchmarks/run passes its own arguments to every script
    return args


def main(argv=None) -> dict:
    """Run the benchmark; print the tables; return (and with --json write) every number.

    Raises:
        ResplatError (BenchmarkInputError, ViewsError, DatasetError, CheckpointError): unusable
            inputs, one line.
    """
    args = parse_args(argv)
    import torch

    from resplat.optim import OptimConfig

    torch.set_num_threads(args.threads)
    if args.synthetic is None and not args.views:
        raise BenchmarkInputError("nothing to evaluate: give --synthetic DIR and/or --views DIR ...")
    if args.max_iterations < 1 or args.ref_iterations < 1 or args.scenes < 1:
        raise BenchmarkInputError("--max-iterations, --ref-iterations and --scenes must be >= 1")
    if args.random_weights is not None:
        model_spec = {"random": args.random_weights, "preset": args.preset}
        weights_label = f"random {args.preset} (seed {args.random_weights})"
    else:
        path = args.weights or embedded_weights()
        if not path.is_file():
            raise BenchmarkInputError(f"{path}: no such weights file (train the tiny model, or pass --weights / --random-weights)")
        model_spec = {"weights": str(path.resolve())}
        weights_label = str(path)
    config = model_config(model_spec)
    lr = OptimConfig(sh_increase_every=args.sh_increase_every)
    ref = min(args.ref_iterations, args.max_iterations)
    t0 = time.perf_counter()
    groups = []
    if args.synthetic is not None:
        scenes = synthetic_scenes(args.synthetic, args.scenes, args.seed, args.train_seed, args.size)
        groups.append(("synthetic", str(args.synthetic), scenes))
    for folder in args.views:
        groups.append((folder.name, str(folder), [views_scene(folder, config.size_multiple)]))
    print(f"weights: {weights_label} ({config.name}); CPU, {args.threads} thread(s); "
          f"{args.max_iterations} iterations, optimisation to {max(args.schedule)} steps")
    result = {
        "benchmark": "recurrence", "weights": weights_label, "preset": config.name, "threads": args.threads,
        "max_iterations": args.max_iterations, "ref_iterations": ref, "schedule": args.schedule,
        "render": {"near": config.near, "far": config.far, "background": "black", "clamp": [0, 1],
                   "psnr": "per view, mean over views then scenes", "ssim": "11x11 Gaussian window sigma 1.5, valid"},
        "optim": dataclasses.asdict(lr), "groups": [],
    }
    for name, source, scenes in groups:
        rows = [benchmark_scene(s, args, model_spec, config, lr) for s in scenes]
        mean = group_mean(rows, ref)
        result["groups"].append({"name": name, "source": source, "scenes": rows, "mean": mean})
        print_group(name, mean, rows, args.schedule)
    result["seconds"] = time.perf_counter() - t0
    print(f"\n(total {result['seconds']:.0f} s)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        child_main(sys.argv[2])
        sys.exit(0)
    try:
        main()
    except ResplatError as exc:
        print(f"recurrence: error: {exc}", file=sys.stderr)
        sys.exit(2)
