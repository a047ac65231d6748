"""The evaluation half of the end-to-end demo (torch, no bpy): scores each recurrent iteration
the Reconstruct operator produced, runs 3DGS optimisation for the same wall time, and draws the
held-out comparison.

Inputs (written by :mod:`blender_stage`): ``OUT/views`` (all rendered views + ``split.json``),
``OUT/iterations/preview_initial_0.ply`` and ``preview_update_<i>.ply`` (the runtime's previews,
i.e. the Gaussians after the initial prediction and after each update, before pruning) and
``OUT/scene.ply`` (the exported point cloud: iteration N, pruned).

Scores and the optimisation reuse ``benchmarks/recurrence.py`` (``views_scene``, ``evaluate``,
``model_config``): renders at the model's near/far, black background, clamped to [0, 1], PSNR /
SSIM per view averaged over the input (context) and the held-out views. The optimisation
(:func:`optimise_for`) is ``resplat.optim.optimize`` from the iteration-0 Gaussians against the
input views (one view per step, the benchmark's learning rates: SH degree +1 per step), after an
untimed warm-up, stopped at the first step whose wall time reaches the recurrent
iterations' wall time: the benchmark's ``optimisation_curve`` runs a fixed step schedule and keeps
only scores, while the demo needs the Gaussians at that step for the figure.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import time
from pathlib import Path

import torch

from resplat.formats import read_splats
from resplat.optim import OptimConfig, optimize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from figure import write_grid  # noqa: E402


def recurrence():
    """``benchmarks/recurrence.py`` as a module (benchmarks/ is not a package)."""
    name = "resplat_benchmark_recurrence"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "recurrence.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def iteration_files(folder: Path) -> list[Path]:
    """``preview_initial_0.ply`` then ``preview_update_<i>.ply`` for i = 1, 2, ... (consecutive).

    Raises:
        FileNotFoundError: no initial preview, or a gap in the updates.
    """
    files = [folder / "preview_initial_0.ply"]
    if not files[0].is_file():
        raise FileNotFoundError(f"{files[0]}: the runtime's initial preview is missing")
    steps = sorted(int(m.group(1)) for p in folder.glob("preview_update_*.ply")
                   if (m := re.fullmatch(r"preview_update_(\d+)\.ply", p.name)))
    if steps != list(range(1, len(steps) + 1)):
        raise FileNotFoundError(f"{folder}: update previews {steps} are not 1..{len(steps)}")
    return files + [folder / f"preview_update_{i}.ply" for i in steps]


def optimise_for(g0, scene, seconds: float, lr: OptimConfig) -> dict:
    """3DGS optimisation of ``g0`` against ``scene``'s input views until its wall time reaches
    ``seconds`` (module docstring). A two-step warm-up run (untimed as a whole) pays the one-time
    set-up costs and times its second step; the step budget passed to ``optimize`` (which sets
    the position rate's decay) is twice the steps that time predicts, plus ten.

    Returns:
        {"gaussians", "steps", "seconds"}; ``seconds`` < the budget only if the step budget ran out.
    """
    images, cams = scene.images[scene.context], scene.cameras[scene.context].to(dtype=g0.dtype)
    stamps: list[float] = []

    def warm_up(p) -> bool:
        stamps.append(time.perf_counter())
        return p.step < 2

    optimize(g0, images, cams, 3, lr=lr, eval_every=4, callback=warm_up)  # cancelled after step 2: no PSNR pass
    steps = math.ceil(2 * seconds / max(stamps[1] - stamps[0], 1e-3)) + 10
    done = {"steps": 0, "seconds": 0.0}
    t0 = time.perf_counter()

    def callback(p) -> bool:
        done["steps"], done["seconds"] = p.step, time.perf_counter() - t0
        return done["seconds"] < seconds

    res = optimize(g0, images, cams, steps, lr=lr, eval_every=steps + 1, callback=callback)
    return {"gaussians": res.gaussians, **done}


def _heldout(rgb, scene):
    """Held-out renders [V, 3, H, W] -> [V, H, W, 3] numpy for the figure."""
    return rgb[scene.heldout].permute(0, 2, 3, 1).numpy()


def run(out: Path, budget_s: float, threads: int = 2) -> dict:
    """Score every iteration, scene.ply and the equal-time optimisation, write
    ``out/heldout.png``; returns {"iterations": [...], "final": {...}, "optimisation": {...},
    "seconds": evaluation time} (scores as ``recurrence.evaluate`` returns them)."""
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    bench = recurrence()
    config = bench.model_config({"weights": str(bench.embedded_weights())})
    scene = bench.views_scene(out / "views", config.size_multiple)
    gs = [read_splats(p) for p in iteration_files(out / "iterations")]
    rgb0, first = bench.render_and_score(gs[0], scene, config)
    rows = [dict(first if i == 0 else bench.evaluate(g, scene, config), iteration=i, gaussians=len(g))
            for i, g in enumerate(gs)]
    final_g = read_splats(out / "scene.ply")
    rgb_final, final = bench.render_and_score(final_g, scene, config)
    final["gaussians"] = len(final_g)
    opt = optimise_for(gs[0], scene, budget_s, OptimConfig(sh_increase_every=1))
    rgb_opt, opt_scores = bench.render_and_score(opt["gaussians"], scene, config)
    opt_scores.update(steps=opt["steps"], seconds=opt["seconds"], budget_seconds=budget_s)
    held = scene.cameras[scene.heldout]
    gt = scene.images[scene.heldout].permute(0, 2, 3, 1).numpy()
    columns = [(gt, None), (_heldout(rgb0, scene), rows[0]),
               (_heldout(rgb_final, scene), final), (_heldout(rgb_opt, scene), opt_scores)]
    last = len(gs) - 1
    names = [held.names[i] if held.names else f"view {i}" for i in range(len(held))]
    write_grid(out / "heldout.png",
               [[col[v] for col, _ in columns] for v in range(len(names))],
               ["ground truth", "iteration 0", f"iteration {last} (scene.ply)",
                f"optimisation, same time ({opt['steps']} steps)"],
               names,
               [["" if s is None else f"{s['heldout_psnr_views'][v]:.2f} dB" for _, s in columns] for v in range(len(names))],
               title=f"held-out views: ReSplat {last} iterations vs 3DGS optimisation in the same "
                     f"{budget_s:.1f} s (PSNR under each)")
    return {"iterations": rows, "final": final, "optimisation": opt_scores,
            "seconds": time.perf_counter() - t_start}
