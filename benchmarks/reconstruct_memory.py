"""Peak memory and time of resplat.model.reconstruct on CPU, against the estimate that
reconstruct checks before any work (resplat.model.memory.estimate_peak_bytes).

Each case runs in a fresh child process (peak resident memory, ``ru_maxrss``, is per process):
build the preset with random weights, then reconstruct V random views of H x W with 2
iterations on one thread. "peak" is the resident-memory peak above the built model, "estimate"
the formula's activation part (estimate minus the weights), both in MB; the estimate must not
be below the peak. These runs calibrated the constants of resplat/model/memory.py.

A case is ``preset:views:HxW``; ``preset/mN`` (e.g. ``tiny/m4``) builds the preset with N
Gaussians per latent point (the layout ``python -m resplat.model.regrid`` makes).

Usage: python benchmarks/reconstruct_memory.py [--cases small-dl3dv:2:64x64,tiny/m4:4:256x256,...]
[--threads 1] [--iterations 2]
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

DEFAULT_CASES = ("small-dl3dv:2:64x64,small-dl3dv:2:128x256,small-dl3dv:2:256x256,"
                 "base-dl3dv:2:128x256,base-re10k:2:64x64,tiny:4:256x256,tiny/m4:4:256x256")

CHILD = r"""
import json, math, resource, sys, time
import dataclasses
import torch
from resplat.cameras import Cameras, K_from_fov
from resplat.model.encoder import ReSplatModel
from resplat.model.memory import estimate_peak_bytes
from resplat.model.config import get_config
from resplat.model.reconstruct import reconstruct
preset, v, h, w, threads, its = sys.argv[1], *(int(a) for a in sys.argv[2:7])
torch.set_num_threads(threads)
torch.manual_seed(0)
name, _, m = preset.partition("/m")
config = get_config(name) if not m else dataclasses.replace(get_config(name), gaussians_per_point=int(m))
model = ReSplatModel(config).eval()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
c2w = torch.eye(4).repeat(v, 1, 1)
c2w[:, 0, 3] = torch.linspace(-0.2, 0.2, v)
cams = Cameras.from_c2w(c2w, K_from_fov(math.radians(60), w, h), w, h)
t = time.perf_counter()
g = reconstruct(torch.rand(v, 3, h, w), cams, model, iterations=its, device="cpu")
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
params = sum(p.numel() for p in model.parameters())
est = estimate_peak_bytes(model.config, v, h, w, params, "cpu") - 4 * params
print(json.dumps({"seconds": seconds, "peak": peak, "estimate": est, "gaussians": len(g)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated preset:views:HxW")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=2, help="updater iterations (default 2)")
    args = ap.parse_args()
    print("| preset | views x HxW | Gaussians | seconds | peak MB | estimate MB | estimate / peak |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for case in args.cases.split(","):
        preset, v, size = case.split(":")
        h, w = (int(x) for x in size.split("x"))
        out = subprocess.run([sys.executable, "-c", CHILD, preset, v, str(h), str(w), str(args.threads),
                              str(args.iterations)],
                             capture_output=True, text=True)
        if out.returncode:
            print(f"| {preset} | {v} x {h}x{w} | failed: {(out.stderr.strip().splitlines() or ['?'])[-1]} |||||")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        mb = 2**20
        print(f"| {preset} | {v} x {h}x{w} | {r['gaussians']} | {r['seconds']:.1f} | {r['peak'] / mb:.0f} | "
              f"{r['estimate'] / mb:.0f} | {r['estimate'] / max(r['peak'], 1):.2f} |")


if __name__ == "__main__":
    main()
