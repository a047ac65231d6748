"""The demo's results as markdown tables (quality per iteration and of the equal-time
optimisation; timings per step) and their files ``results.md`` / ``results.json`` (pure Python)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _f(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _row(label: str, s: dict, seconds) -> str:
    return (f"| {label} | {_f(s['input_psnr'])} | {_f(s['input_ssim'], '.4f')} | {_f(s['heldout_psnr'])} | "
            f"{_f(s['heldout_ssim'], '.4f')} | {s['gaussians'] if 'gaussians' in s else '-'} | {_f(seconds)} |")


def quality_table(blender: dict, ev: dict) -> list[str]:
    """Markdown rows: PSNR (dB) / SSIM at the input and held-out views of iterations 0..N,
    scene.ply (iteration N, pruned) and the equal-time optimisation."""
    rec = blender["seconds"]["reconstruct"]
    times = [rec["initial"], *rec["iterations"]]
    opt = ev["optimisation"]
    last = len(ev["iterations"]) - 1
    lines = ["| result | input PSNR | input SSIM | held-out PSNR | held-out SSIM | splats | time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in ev["iterations"]:
        i = r["iteration"]
        lines.append(_row("iteration 0 (initial prediction)" if i == 0 else f"iteration {i}", r, times[i]))
    lines.append(_row(f"iteration {last}, pruned = scene.ply", ev["final"], rec["prune_write"]))
    lines.append(_row(f"3DGS optimisation from iteration 0, same time as the {_n(last, 'iteration')} "
                      f"({opt['steps']} steps)", dict(opt, gaussians=ev["iterations"][0]["gaussians"]), opt["seconds"]))
    return lines


def timing_table(blender: dict, ev: dict, total: float) -> list[str]:
    """Markdown rows: seconds per step of the demo."""
    s, rec = blender["seconds"], blender["seconds"]["reconstruct"]
    its = rec["iterations"]
    rows = [("build the scene (asset, room, cameras)", s["scene"]),
            (f"render {blender['views']} views (Cycles, {blender['samples']} samples)", s["render"]),
            (f"enable the extension ({blender['enable']})", s["enable"]),
            ("Reconstruct: views, runtime start, torch import, model load", rec["start"]),
            ("Reconstruct: initial prediction", rec["initial"]),
            (f"Reconstruct: {_n(len(its), 'iteration')} ({', '.join(f'{x:.2f}' for x in its)})", sum(its)),
            ("Reconstruct: prune + write", rec["prune_write"]),
            ("Reconstruct: runtime process exit", rec["exit"]),
            ("Reconstruct: result into a Blender point cloud", rec["import"]),
            ("Reconstruct operator, total", rec["total"]),
            ("save scene.blend", s["save"]),
            ("export scene.ply (extension exporter)", s["export"]),
            ("evaluation (renders, metrics, optimisation, heldout.png)", ev["seconds"]),
            ("**total**", total)]
    return ["| step | seconds |", "|---|---:|", *(f"| {k} | {v:.1f} |" for k, v in rows)]


def markdown(blender: dict, ev: dict, total: float) -> str:
    """The whole report: a heading, the quality table and the timing table."""
    size = blender["size"]
    head = (f"## ReSplat demo: spider asset, {size}x{size}, {len(blender['context'])} input + "
            f"{len(blender['heldout'])} held-out views ({', '.join(blender['heldout'])}), embedded model, "
            f"{_n(blender['iterations'], 'iteration')}")
    note = ("PSNR (dB) / SSIM: mean over views of the renders (clamped, black background) against the Cycles "
            "renders. Iteration times are between the runtime's events as Blender received them (preview "
            "file writes included); the optimisation ran for that wall time, from the iteration-0 Gaussians "
            "against the input views.")
    return "\n".join([head, "", *quality_table(blender, ev), "", note, "", *timing_table(blender, ev, total), ""])


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(out: Path, blender: dict, ev: dict, total: float) -> str:
    """Write ``out/results.md`` and ``out/results.json`` (every number); returns the markdown."""
    text = markdown(blender, ev, total)
    _write(out / "results.md", text)
    _write(out / "results.json", json.dumps({"blender": blender, "evaluation": ev, "total_seconds": total},
                                            indent=1) + "\n")
    return text
