"""ReSplat model table: parameter counts per preset, and CPU time / peak memory of reconstruct.

1. Parameters of each preset built on the meta device, beside the release's published sizes
   (arXiv 2510.08575 model zoo: small 76.6M, base 224.0M, re10k 222.1M).
2. ``small-dl3dv`` with random weights (same architecture and cost as the released checkpoint)
   reconstructing 2 views at 256x448 on the CPU: initial prediction and each recurrent iteration
   (wall time between the callbacks of resplat.model.reconstruct), and the peak resident memory
   of the process (ru_maxrss). The paper's GPU numbers (8 views 512x960 on a GH200-class GPU:
   0.311 s init + 0.126 s per iteration) are shown for scale only: different hardware and size.

Usage: python benchmarks/model.py [--views 2] [--size 256x448] [--iterations 2] [--threads 2]
Not a test: nothing asserts. Each reconstruction runs in a fresh child process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

PUBLISHED = {"small-dl3dv": 76.6e6, "base-dl3dv": 224.0e6, "base-re10k": 222.1e6}

CHILD = r"""
import json, math, resource, sys, time
import torch
from resplat.cameras import Cameras, K_from_fov
from resplat.model import build_model, load_embedded_model
from resplat.model.reconstruct import reconstruct
preset, v, h, w, iters, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = (load_embedded_model(preset) if sys.argv[7:] == ["embedded"] else build_model(preset)).eval()
rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
c2w = torch.eye(4).repeat(v, 1, 1)
c2w[:, 0, 3] = torch.linspace(-0.3, 0.3, v)
cams = Cameras.from_c2w(c2w, K_from_fov(math.radians(60), w, h), w, h)
stamps = []
t0 = time.perf_counter()
def cb(stage, i, total, g):
    stamps.append((stage, i, time.perf_counter() - t0, len(g)))
with torch.no_grad():
    reconstruct(torch.rand(v, 3, h, w, generator=torch.Generator().manual_seed(1)), cams, model,
                iterations=iters, device="cpu", callback=cb)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"stamps": stamps, "peak_mb": peak, "model_mb": rss_model}))
"""


def reconstruct_in_child(preset: str, views: int, h: int, w: int, iterations: int, threads: int,
                         embedded: bool = False, timeout: float | None = None) -> dict:
    """Reconstruct ``views`` random views of ``h`` x ``w`` with ``preset`` (random weights, or the
    embedded weights with ``embedded``) in a fresh child process.

    Returns {"stamps": [[stage, iteration, seconds since start, gaussians], ...], "peak_mb",
    "model_mb", "initial_s", "iteration_s" (mean per iteration)}, or {"error": one line} when
    the child fails or runs past ``timeout`` seconds."""
    cmd = [sys.executable, "-c", CHILD, preset, str(views), str(h), str(w), str(iterations), str(threads)]
    try:
        out = subprocess.run(cmd + (["embedded"] if embedded else []), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s (child process, start-up included)"}
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        return {"error": lines[-1]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    stamps = r["stamps"]
    per_iter = [b[2] - a[2] for a, b in zip(stamps, stamps[1:])]
    r["initial_s"] = stamps[0][2]
    r["iteration_s"] = sum(per_iter) / len(per_iter) if per_iter else float("nan")
    return r


def param_table() -> str:
    import torch

    from resplat.model import build_model

    rows = ["| preset | parameters (ours) | published | ratio |", "|---|---:|---:|---:|"]
    for preset, published in PUBLISHED.items():
        with torch.device("meta"):
            model = build_model(preset)
        n = sum(p.numel() for p in model.parameters())
        rows.append(f"| {preset} | {n:,} ({n / 1e6:.1f}M) | {published / 1e6:.1f}M | {n / published:.4f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small-dl3dv")
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--size", default="256x448", help="HxW (height first, as the paper writes it)")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(param_table())
    h, w = (int(v) for v in args.size.split("x"))
    r = reconstruct_in_child(args.preset, args.views, h, w, args.iterations, args.threads)
    if "error" in r:
        print(f"reconstruct failed: {r['error']}")
        return
    stamps, init, mean_iter = r["stamps"], r["initial_s"], r["iteration_s"]
    per_iter = stamps[1:]
    print()
    print(f"| {args.preset}, {args.views} views {h}x{w}, CPU {args.threads} thread(s) | ours | paper (GPU, 8 views 512x960) |")
    print("|---|---:|---:|")
    print(f"| Gaussians | {stamps[0][3]:,} | 246K |")
    print(f"| initial prediction | {init:.2f} s | 0.311 s |")
    print(f"| per recurrent iteration (mean of {len(per_iter)}) | {mean_iter:.2f} s | 0.126 s |")
    print(f"| peak resident memory (process) | {r['peak_mb']:.0f} MB (model alone {r['model_mb']:.0f} MB) | - |")


if __name__ == "__main__":
    main()
