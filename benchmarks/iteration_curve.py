"""Held-out content PSNR after each recurrent iteration, RGB only and with exact depth, for one or
more weights files side by side: the quick comparison behind the updater's training choices.

For every scene of ``benchmarks/eval_assets.py``'s options (asset views folders with depth and
held-out synthetic scenes), each weights file reconstructs the input views with
``--iterations`` recurrent iterations, once from RGB only and once with the exact depth maps
(``reconstruct(..., depths=...)``), and every iteration's Gaussians are scored at the held-out
views with :func:`eval_assets.score` (content PSNR: ground-truth depth finite and > 0; black
background). No floors and no optimisation: ``eval_assets.py`` gives those.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/iteration_curve.py \\
        --weights-list A.safetensors B.safetensors --views runs/eval/spider runs/eval/jeep \\
        runs/eval/sydney --synthetic runs/eval-syn256 --scenes 3 --iterations 4 --threads 1 \\
        [--json F] [--md F]

Outputs: per weights, mode and scene the content PSNR at iterations 0..N, and the mean over the
asset scenes and over the synthetic ones (markdown, ``--json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_assets import add_output_arguments, add_scene_arguments, load_scenes, score, write_json_md  # noqa: E402
from recurrence import BenchmarkInputError, _f, load_model  # noqa: E402

MODES = ("rgb", "depth")


def scene_curve(model, scene, iterations: int) -> dict:
    """{mode: [content PSNR at iteration 0..N]} of one scene (RGB only, then with exact depth)."""
    import torch

    from resplat.model import reconstruct

    ctx = scene.context
    out = {}
    for mode in MODES:
        snaps = []
        with torch.no_grad():
            reconstruct(scene.images[ctx], scene.cameras[ctx], model, iterations=iterations, device="cpu",
                        depths=scene.depths[ctx] if mode == "depth" else None,
                        callback=lambda stage, it, total, g: snaps.append(g))
        out[mode] = [score(g, scene, model.config)[1]["content_psnr"] for g in snaps]
    return out


def group_means(scenes: list[dict], mode: str) -> dict:
    """{"assets": [...], "synthetic": [...]}: per-iteration means over each kind of scene
    (synthetic scenes are named ``scene_*``); a kind without scenes is left out."""
    out = {}
    for kind, pick in (("assets", lambda n: not n.startswith("scene_")), ("synthetic", lambda n: n.startswith("scene_"))):
        rows = [s[mode] for s in scenes if pick(s["name"])]
        if rows:
            out[kind] = [sum(r[i] for r in rows) / len(rows) for i in range(len(rows[0]))]
    return out


def markdown(result: dict) -> str:
    """One table per mode: a row per (weights, scene) and per (weights, kind mean)."""
    n = result["iterations"]
    lines = [f"Content PSNR (dB) on held-out views after each recurrent iteration; CPU, {result['threads']} thread(s)."]
    for mode in MODES:
        lines += ["", f"#### {'RGB only' if mode == 'rgb' else 'with exact depth'}", "",
                  "| weights | scene | " + " | ".join(f"it {i}" for i in range(n + 1)) + " |",
                  "|---|---|" + "---:|" * (n + 1)]
        for w in result["weights"]:
            for s in w["scenes"]:
                lines.append(f"| {w['name']} | {s['name']} | " + " | ".join(_f(x) for x in s[mode]) + " |")
            for kind, row in w["means"][mode].items():
                lines.append(f"| {w['name']} | **mean, {kind}** | " + " | ".join(_f(x) for x in row) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scene_arguments(p)
    p.add_argument("--weights-list", type=Path, nargs="+", default=None,
                   help="weights files to compare (default: --weights, or the embedded tiny weights)")
    p.add_argument("--iterations", type=int, default=4, help="recurrent iterations (default 4)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_output_arguments(p)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Score every weights file; print the markdown; return (and write) every number.

    Raises:
        BenchmarkInputError: unusable options or a missing weights file, one line.
    """
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.iterations < 0:
        raise BenchmarkInputError("--iterations must be >= 0")
    path, model, scenes = load_scenes(args)
    t0 = time.perf_counter()
    result = {"benchmark": "iteration_curve", "threads": args.threads, "iterations": args.iterations, "weights": []}
    for w in args.weights_list or [path]:
        if not Path(w).is_file():
            raise BenchmarkInputError(f"{w}: no such weights file")
        m = model if Path(w).resolve() == Path(path).resolve() else load_model({"weights": str(Path(w).resolve())})
        m.eval()
        rows = []
        for s in scenes:
            rows.append(dict(name=s.name, **scene_curve(m, s, args.iterations)))
            print(f"{w} {s.name} " + " ".join(f"{k} {[round(x, 2) for x in rows[-1][k]]}" for k in MODES), flush=True)
        result["weights"].append({"name": str(w), "scenes": rows, "means": {k: group_means(rows, k) for k in MODES}})
    result["seconds"] = round(time.perf_counter() - t0, 1)
    md = markdown(result)
    print(md)
    write_json_md(args, result, md)
    return result


if __name__ == "__main__":
    try:
        main()
    except BenchmarkInputError as e:
        raise SystemExit(f"iteration_curve: error: {e}") from None
