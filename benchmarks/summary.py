"""One table of the project's headline numbers, each row beside a baseline measured in the same
run, with the ratio baseline / ours (above 1: ours is faster or smaller). ``benchmarks/run``
(``make bench``) runs this script.

Rows (functions of the detailed scripts are imported, not repeated):

1. Rasteriser forward and forward+backward at 10k and 100k Gaussians, 256x256: the torch tile
   backend against the naive dense rasteriser (every pixel x every Gaussian, plain autograd),
   each in a fresh child process (``rasterizer.measure_in_child``: median of 3 after a warm-up;
   the naive one once, under --cap seconds, shown as ">cap" when it does not finish).
2. Reconstruction on the CPU, initial prediction and one recurrent iteration (mean of 2), at 2
   and 8 random views of 256x256 (``model.reconstruct_in_child``): the ``tiny`` preset (the
   embedded weights when the package ships them, else seeded random weights; the table says
   which) against ``small-dl3dv`` (the release's smallest architecture, random weights: same
   cost as the released checkpoint) on the same views. Each reconstruction is a child process
   (start-up, model build and reconstruction) under --model-cap seconds; past it, or when
   reconstruct refuses the memory, the row says n/a and why.
3. Recurrent iterations against 3DGS optimisation at equal held-out PSNR, read from the JSON of
   ``benchmarks/recurrence.py --json`` (--recurrence-json, default
   benchmarks/results/recurrence.json); "not measured" without it (that benchmark takes long).
4. PLY and SPZ write and read of 1M random splats at SH degree 3 (``formats_bench.random_splats``)
   with resplat.formats. Baseline of PLY: the INRIA 3DGS save_ply/load_ply pattern with plyfile
   (``ply_baseline``, what a straightforward script does). Baseline of SPZ: the same splats as
   uncompressed PLY (time and size).
5. Blender import of 1M splats in headless bpy (``blender_import``, a child process so that bpy
   shares no process with torch): the extension's importer against Blender's built-in
   ``wm.ply_import`` of the same PLY.

The detailed scripts still run on their own and print more columns: rasterizer.py (512x512,
peak memory), model.py (parameter counts, 256x448), formats_bench.py (.splat too),
knn_bench.py, reconstruct_memory.py, real_photos.py, addon_display.py, recurrence.py
(benchmarks/README.md lists them).

Usage: python benchmarks/summary.py [--quick] [--out FILE.md] [--recurrence-json FILE]
           [--threads N] [--cap S] [--model-cap S] [--sections raster,model,recurrence,formats,blender]
--quick: small sizes for development (1k/10k Gaussians at 64x64, views of 64x64, 10k splats).
The full run takes about 5-10 minutes on 2 cores. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported (tests) rather than run: the sibling scripts, last in line
    sys.path.append(str(HERE))

SECTIONS = ("raster", "model", "recurrence", "formats", "blender")
DEFAULT_RECURRENCE_JSON = HERE / "results" / "recurrence.json"


@dataclass
class Config:
    """Sizes of one run (full or --quick)."""

    raster_n: tuple[int, ...] = (10_000, 100_000)
    raster_size: int = 256
    views: tuple[int, ...] = (2, 8)
    view_size: int = 256
    splats: int = 1_000_000
    repeat: int = 1  # splat files and Blender import: best of this many


QUICK = Config(raster_n=(1_000, 10_000), raster_size=64, view_size=64, splats=10_000, repeat=3)


@dataclass
class Row:
    """One line of the table; ``baseline_is`` says what the baseline is."""

    what: str
    ours: str
    baseline: str
    baseline_is: str
    ratio: str


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------

def secs(x: float | None) -> str:
    """Seconds with 3 significant digits ("0.0123 s", "4.56 s", "123 s"); "-" for None."""
    if x is None:
        return "-"
    return f"{x:.0f} s" if x >= 100 else f"{x:.3g} s"


def ratio(baseline: float | None, ours: float | None, at_least: bool = False) -> str:
    """baseline / ours as "12.3x" (2 decimals below 10x, none from 100x); with ``at_least``
    (the baseline was capped, so it is a lower bound) ">12.3x"; "-" when either is missing
    or ``ours`` is not positive."""
    if baseline is None or ours is None or ours <= 0:
        return "-"
    r = baseline / ours
    text = f"{r:.2f}x" if r < 10 else f"{r:.1f}x" if r < 100 else f"{r:.0f}x"
    return (">" if at_least else "") + text


def markdown(rows: list[Row]) -> str:
    """The rows as one markdown table (pipes in cells escaped)."""
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| what | ours | baseline | baseline is | baseline / ours |", "|---|---:|---:|---|---:|"]
    lines += [f"| {cell(r.what)} | {cell(r.ours)} | {cell(r.baseline)} | {cell(r.baseline_is)} | {cell(r.ratio)} |"
              for r in rows]
    return "\n".join(lines)


def log(msg: str) -> None:
    print(f"[summary] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# 1. rasteriser
# --------------------------------------------------------------------------------------------

def raster_rows(cfg: Config, cap: float, threads: int) -> list[Row]:
    from rasterizer import measure_in_child

    rows = []
    size = cfg.raster_size
    for n in cfg.raster_n:
        log(f"rasteriser {n:,} Gaussians at {size}x{size}")
        ours = measure_in_child("torch", n, size, cap, threads)
        naive = measure_in_child("naive", n, size, cap, threads)
        for key, label in (("fwd", "forward"), ("fwdbwd", "forward+backward")):
            done = key in naive
            rows.append(Row(f"rasteriser {label}, {n:,} Gaussians, {size}x{size}, SH 3", secs(ours.get(key)),
                            secs(naive[key]) if done else f">{cap:.0f} s (cap)",
                            "naive dense rasteriser (every pixel x every Gaussian, autograd)",
                            ratio(naive[key] if done else cap, ours.get(key), at_least=not done)))
    return rows


# --------------------------------------------------------------------------------------------
# 2. reconstruction per stage
# --------------------------------------------------------------------------------------------

def embedded_weights_present() -> bool:
    """Whether this copy of resplat ships the embedded tiny weights."""
    from resplat.model.checkpoint import embedded_weights_path

    return embedded_weights_path().is_file()


def model_rows(cfg: Config, cap: float, threads: int) -> list[Row]:
    from model import reconstruct_in_child

    embedded = embedded_weights_present()
    ours_is = "tiny, embedded weights" if embedded else "tiny, random weights: no embedded weights shipped"
    base_is = "small-dl3dv (the release's smallest architecture, 76.6M parameters), random weights, same views"
    size = cfg.view_size
    rows = []
    for v in cfg.views:
        log(f"reconstruction, {v} views of {size}x{size}: tiny, then small-dl3dv")
        ours = reconstruct_in_child("tiny", v, size, size, 2, threads, embedded=embedded, timeout=cap)
        base = reconstruct_in_child("small-dl3dv", v, size, size, 2, threads, timeout=cap)
        where = f"reconstruction, {v} views {size}x{size}, CPU {threads} thread(s)"
        stages = (("initial_s", "initial prediction", secs), ("iteration_s", "one recurrent iteration (mean of 2)", secs),
                  ("peak_mb", "peak resident memory of the process", lambda x: f"{x:.0f} MB"))
        for key, label, fmt in stages:
            o = ours.get(key)
            b = base.get(key)
            rows.append(Row(f"{where}: {label}; ours = {ours_is}", fmt(o) if o is not None else f"n/a: {ours['error']}",
                            fmt(b) if b is not None else f"n/a: {base['error']}", base_is, ratio(b, o)))
    return rows


# --------------------------------------------------------------------------------------------
# 3. recurrence vs optimisation (from recurrence.py's JSON)
# --------------------------------------------------------------------------------------------

NOT_MEASURED = "not measured (run benchmarks/recurrence.py --json benchmarks/results/recurrence.json)"
OPT_IS = "3DGS optimisation (Adam, L1 + 0.2 D-SSIM) from the same initial Gaussians, benchmarks/recurrence.py"


def recurrence_rows(path: Path | None) -> list[Row]:
    """Rows from the JSON of benchmarks/recurrence.py (its first group, the mean over its
    scenes): the time of --ref-iterations iterations against the optimisation steps (and their
    time) that reach the same held-out PSNR, and the optimisation's PSNR in the same time."""
    what = "recurrent iterations vs optimisation steps to the same held-out PSNR"
    if path is None or not path.is_file():
        return [Row(what, NOT_MEASURED, "-", OPT_IS, "-")]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        group = data["groups"][0]
        c, scenes = group["mean"]["comparison"], group["scenes"]
        ref, refine, target = c["ref_iterations"], c["refine_seconds"], c["heldout_target_psnr"]
        reach, schedule = c["heldout_reach"], data["schedule"]
        points = group["mean"]["optimisation"]["points"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return [Row(what, f"not read: {path}: {type(e).__name__} {e}", "-", OPT_IS, "-")]
    w, h = scenes[0]["size"]
    where = (f"{ref} recurrent iterations vs optimisation to the same held-out PSNR ({group['name']}, "
             f"{len(scenes)} scene(s) {w}x{h}, weights {Path(str(data.get('weights', '?'))).name}, "
             f"{data.get('threads', '?')} thread(s))")
    ours = f"{ref} iterations: {secs(refine)} ({target:.2f} dB)"
    if reach is not None:
        rows = [Row(where, ours, f"{reach['step']:.0f} steps: {secs(reach['seconds'])}", OPT_IS,
                    ratio(reach["seconds"], refine))]
    else:
        last = max((p["seconds"] for p in points if p.get("at") == "schedule"), default=None)
        rows = [Row(where, ours, f"not reached in {max(schedule)} steps ({secs(last)})", OPT_IS,
                    ratio(last, refine, at_least=True))]
    e = c.get("equal_time")
    if e is not None:
        rows.append(Row(f"held-out PSNR in the wall time of {ref} iterations ({secs(refine)})", f"{target:.2f} dB",
                        f"{e['heldout_psnr']:.2f} dB ({e['step']:.1f} steps)", OPT_IS,
                        f"{e['heldout_psnr'] - target:+.2f} dB"))
    return rows


# --------------------------------------------------------------------------------------------
# 4. splat files
# --------------------------------------------------------------------------------------------

def formats_rows(cfg: Config, tmp: Path) -> tuple[list[Row], Path]:
    """The PLY/SPZ rows and the path of the PLY written (for the Blender rows)."""
    import numpy as np

    import ply_baseline
    from formats_bench import random_splats
    from resplat.formats import read_splat_arrays, write_splat_arrays
    from timing import best_of

    n = cfg.splats
    log(f"splat files, {n:,} splats")
    arrays = random_splats(n, 3)
    ply, spz, ply_base = tmp / "ours.ply", tmp / "ours.spz", tmp / "baseline.ply"
    t = {
        "ply_w": best_of(lambda: write_splat_arrays(arrays, ply), cfg.repeat),
        "base_w": best_of(lambda: ply_baseline.save_ply(arrays, ply_base), cfg.repeat),
        "ply_r": best_of(lambda: read_splat_arrays(ply), cfg.repeat),
        "base_r": best_of(lambda: ply_baseline.load_ply(ply), cfg.repeat),
        "spz_w": best_of(lambda: write_splat_arrays(arrays, spz), cfg.repeat),
        "spz_r": best_of(lambda: read_splat_arrays(spz), cfg.repeat),
    }
    # both sides must hold the same data, or the times compare nothing
    for name, got in (("baseline PLY", read_splat_arrays(ply_base)), ("baseline read", ply_baseline.load_ply(ply))):
        if not all(np.array_equal(getattr(got, k), v) for k, v in arrays.arrays().items()):
            raise RuntimeError(f"{name} does not hold the benchmark's splats")
    mb = {p: p.stat().st_size / 1e6 for p in (ply, spz)}
    what = f"{n:,} splats, SH degree 3"
    inria = "INRIA 3DGS save_ply / load_ply pattern (plyfile, row tuples / per-property reads)"
    as_ply = "the same splats as uncompressed PLY (resplat.formats)"
    rows = [
        Row(f"PLY write, {what}", secs(t["ply_w"]), secs(t["base_w"]), inria, ratio(t["base_w"], t["ply_w"])),
        Row(f"PLY read, {what}", secs(t["ply_r"]), secs(t["base_r"]), inria, ratio(t["base_r"], t["ply_r"])),
        Row(f"SPZ write, {what}", secs(t["spz_w"]), secs(t["ply_w"]), as_ply, ratio(t["ply_w"], t["spz_w"])),
        Row(f"SPZ read, {what}", secs(t["spz_r"]), secs(t["ply_r"]), as_ply, ratio(t["ply_r"], t["spz_r"])),
        Row(f"SPZ file size, {what}", f"{mb[spz]:.1f} MB", f"{mb[ply]:.1f} MB", as_ply, ratio(mb[ply], mb[spz])),
    ]
    return rows, ply


# --------------------------------------------------------------------------------------------
# 5. Blender import
# --------------------------------------------------------------------------------------------

def blender_rows(cfg: Config, ply: Path | None, tmp: Path) -> list[Row]:
    """Runs benchmarks/blender_import.py in a child process on ``ply`` (written here when None)."""
    if ply is None:
        from blender_import import random_ply

        ply = random_ply(tmp / "ours.ply", cfg.splats)
    log(f"Blender import, {cfg.splats:,} splats (headless bpy in a child process)")
    cmd = [sys.executable, str(HERE / "blender_import.py"), "--ply", str(ply), "--repeat", str(cfg.repeat), "--json"]
    what = f"Blender import, {cfg.splats:,} splats (PLY, SH degree 3), operator call after a warm-up import"
    base_is = ("Blender's built-in wm.ply_import of the same PLY: a mesh with every PLY property as a raw "
               "float attribute; no splat schema, no display")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        return [Row(what, f"n/a: {lines[-1]}", "-", base_is, "-")]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    o, b = r["ours"], r["builtin"]
    return [Row(what, f"{secs(o['seconds'])} ({o['points']:,} points, {o['attributes']} attributes)",
                f"{secs(b['seconds'])} ({b['points']:,} vertices, {b['attributes']} attributes)", base_is,
                ratio(b["seconds"], o["seconds"]))]


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def header(quick: bool, threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{'QUICK (development sizes, not the headline numbers); ' if quick else ''}"
            f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} CPUs, torch {_version('torch')} "
            f"({threads} thread(s)), numpy {_version('numpy')}, bpy {_version('bpy')}. "
            f"Ratio = baseline / ours: above 1, ours is faster or smaller.")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for development")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    p.add_argument("--recurrence-json", type=Path, default=None,
                   help=f"JSON of benchmarks/recurrence.py --json (default {DEFAULT_RECURRENCE_JSON.relative_to(HERE.parent)})")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all CPUs)")
    p.add_argument("--cap", type=float, default=None, help="time cap of the naive rasteriser per run, s (60; quick 10)")
    p.add_argument("--model-cap", type=float, default=120.0,
                   help="time cap of one reconstruction child process (start-up included), s (default 120)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = p.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    return args


def main(argv=None) -> str:
    """Run the selected sections, print the table (and write --out); return the markdown."""
    args = parse_args(argv)
    cfg = QUICK if args.quick else Config()
    cap = args.cap if args.cap is not None else (10.0 if args.quick else 60.0)
    recurrence_json = args.recurrence_json or (DEFAULT_RECURRENCE_JSON if DEFAULT_RECURRENCE_JSON.is_file() else None)
    sections = args.sections.split(",")
    t0 = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="resplat-summary-") as tmp_name:
        tmp, ply = Path(tmp_name), None
        if "raster" in sections:
            rows += raster_rows(cfg, cap, args.threads)
        if "model" in sections:
            rows += model_rows(cfg, args.model_cap, args.threads)
        if "recurrence" in sections:
            rows += recurrence_rows(recurrence_json)
        if "formats" in sections:
            new, ply = formats_rows(cfg, tmp)
            rows += new
        if "blender" in sections:
            rows += blender_rows(cfg, ply, tmp)
    text = f"{header(args.quick, args.threads)}\n\n{markdown(rows)}\n\n(total {time.perf_counter() - t0:.0f} s)\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
