"""Benchmark of the torch rasteriser backend against a naive dense per-pixel rasteriser.

Prints a markdown table: forward and forward+backward wall time and peak resident memory
(ru_maxrss of a fresh subprocess per configuration; torch times are the median of 3 runs after a
warm-up) for 10k and 100k Gaussians at 256x256 and
512x512, torch backend beside the naive implementation (all pixels x all Gaussians, chunked over
pixels, plain autograd), with the ratio. The naive version runs under a time cap and is reported
as ">cap" when it does not finish.

Usage: python benchmarks/rasterizer.py [--cap SECONDS] [--threads N]

On a 2-core machine shared with other busy processes, use --threads 1: with 2 threads every
parallel op waits for a descheduled thread (measured 10x slower, 100k Gaussians at 512x512).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import torch

from resplat.cameras import Cameras, K_from_fov
from resplat.gaussians import Gaussians
from resplat.render import ALPHA_MAX, ALPHA_MIN, T_MIN, render
from resplat.render.projection import project_gaussians
from resplat.render.sh import sh_to_colors


class Timeout(Exception):
    pass


def make_scene(n: int, size: int, seed: int = 0) -> tuple[Gaussians, Cameras]:
    """n Gaussians spread through the frustum of one camera (depth 2..10 m), projected standard
    deviations ~ sqrt(area / n) px with random anisotropy, so the image is covered several times
    over like a trained scene; SH degree 3."""
    g = torch.Generator().manual_seed(seed)
    fov = 1.0
    K = K_from_fov(fov, size, size)
    z = 2 + 8 * torch.rand(n, generator=g)
    half = math.tan(fov / 2) * 1.1
    xy = (torch.rand(n, 2, generator=g) * 2 - 1) * half * z[:, None]
    means = torch.cat([xy, z[:, None]], 1)
    sigma_px = math.sqrt(size * size / n) * torch.exp(0.5 * torch.randn(n, 3, generator=g))
    log_scales = torch.log(sigma_px * z[:, None] / float(K[0, 0]))
    quats = torch.randn(n, 4, generator=g)
    logit_opacities = torch.randn(n, generator=g) * 2
    sh = torch.randn(n, 16, 3, generator=g) * 0.3
    return Gaussians(means, quats, log_scales, logit_opacities, sh), Cameras(torch.eye(4), K, size, size)


def render_naive(gs: Gaussians, cams: Cameras, deadline: float, backward: bool, chunk: int = 64):
    """Dense rasteriser: every pixel against every depth-sorted Gaussian, plain autograd, pixels
    in chunks of ``chunk``. With ``backward`` the benchmark loss (see :func:`loss`) of each chunk
    is back-propagated at once into the projected quantities (so memory stays bounded), then
    through projection and SH. Returns rgb [V,3,H,W], alpha, depth (detached)."""
    W, H = cams.width, cams.height
    proj = project_gaussians(gs.means, gs.covariances(), gs.opacities.detach(), cams.w2c, cams.K, W, H,
                             near=0.01, far=1e10, eps2d=0.3, antialiased=True)
    rgbs, alphas, depths = [], [], []
    for v in range(len(cams)):
        ids = torch.nonzero(proj.valid[v]).squeeze(1)
        ids = ids[torch.argsort(proj.depths[v, ids].detach())]
        center = -(cams.w2c[v, :3, :3].T @ cams.w2c[v, :3, 3])
        projected = [proj.means2d[v, ids], proj.conics[v, ids], proj.depths[v, ids],
                     gs.opacities[ids] * proj.compensations[v, ids], sh_to_colors(3, gs.means[ids] - center, gs.sh[ids])]
        leaves = [t.detach().requires_grad_(backward) for t in projected]
        m, c, z, o, col = leaves
        jj, ii = torch.meshgrid(torch.arange(W) + 0.5, torch.arange(H) + 0.5, indexing="xy")
        pix = torch.stack([jj.reshape(-1), ii.reshape(-1)], 1).to(m)
        out_c, out_t, out_d = [], [], []
        for s in range(0, len(pix), chunk):
            if time.perf_counter() > deadline:
                raise Timeout
            with torch.set_grad_enabled(backward):
                d = m[None] - pix[s:s + chunk, None]
                sig = 0.5 * (c[:, 0] * d[..., 0] ** 2 + c[:, 2] * d[..., 1] ** 2) + c[:, 1] * d[..., 0] * d[..., 1]
                a = torch.clamp(o * torch.exp(-sig), max=ALPHA_MAX)
                a = torch.where((sig >= 0) & (a >= ALPHA_MIN), a, 0)
                nxt = torch.cumprod(1 - a, 1)
                Tb = torch.cat([torch.ones_like(nxt[:, :1]), nxt[:, :-1]], 1)
                w = torch.where(nxt > T_MIN, a * Tb, 0)
                rgb, acc, dep = w @ col, w.sum(1), w @ z
                if backward:
                    loss(rgb.T, acc, dep / acc.clamp_min(1e-10)).backward()
            out_c.append(rgb.detach())
            out_d.append(dep.detach())
            out_t.append(1 - acc.detach())
        if backward:
            torch.autograd.backward(projected, [t.grad for t in leaves])
        T = torch.cat(out_t).reshape(1, H, W)
        rgbs.append(torch.cat(out_c).T.reshape(3, H, W))
        alphas.append(1 - T)
        depths.append(torch.cat(out_d).reshape(1, H, W) / (1 - T).clamp_min(1e-10))
    return torch.stack(rgbs), torch.stack(alphas), torch.stack(depths)


def loss(rgb, alpha, depth):
    """The benchmark's scalar loss: sum(rgb^2) + sum(alpha) + 0.01 sum(depth) (per-pixel separable)."""
    return rgb.square().sum() + alpha.sum() + 0.01 * depth.sum()


def measure(impl: str, n: int, size: int, cap: float) -> dict:
    """Time forward and forward+backward once after a warm-up; report peak RSS in MiB."""
    gs, cams = make_scene(n, size)
    gs = gs.requires_grad_()

    def run(deadline, backward):
        if impl == "torch":
            with torch.set_grad_enabled(backward):
                o = render(gs, cams, backend="torch")
            if backward:
                loss(o.rgb, o.alpha, o.depth).backward()
            return o.alpha
        return render_naive(gs, cams, deadline, backward)[1]

    res = {"impl": impl, "n": n, "size": size}
    repeats = 3 if impl == "torch" else 1  # median of 3: other processes share this machine
    try:
        if impl == "torch":
            run(math.inf, True)  # warm-up
        for key, backward in (("fwd", False), ("fwdbwd", True)):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                alpha = run(t0 + cap, backward)
                times.append(time.perf_counter() - t0)
            res[key] = sorted(times)[len(times) // 2]
        res["coverage"] = float(alpha.detach().mean())
    except Timeout:
        pass
    res["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def measure_in_child(impl: str, n: int, size: int, cap: float, threads: int = 0) -> dict:
    """:func:`measure` in a fresh child process (its own peak RSS, no warm caches of the caller)."""
    cmd = [sys.executable, __file__, "--one", impl, str(n), str(size), "--cap", str(cap), "--threads", str(threads)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def fmt(res: dict, key: str, cap: float) -> str:
    return f"{res[key]:.2f}" if key in res else f">{cap:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cap", type=float, default=60.0, help="time cap of the naive renderer per run (s)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--one", nargs=3, metavar=("IMPL", "N", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--configs", default="10000x256,100000x256,10000x512,100000x512")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        impl, n, size = args.one
        print(json.dumps(measure(impl, int(n), int(size), args.cap)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, naive cap {args.cap:.0f} s\n")
    print("| Gaussians | size | torch fwd s | torch fwd+bwd s | torch peak MiB | naive fwd s | naive fwd+bwd s "
          "| naive peak MiB | speed-up fwd+bwd | coverage |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cfg in args.configs.split(","):
        n, size = (int(x) for x in cfg.split("x"))
        rows = {}
        for impl in ("torch", "naive"):
            rows[impl] = measure_in_child(impl, n, size, args.cap, args.threads)
        t, nv = rows["torch"], rows["naive"]
        ratio = (f"{nv['fwdbwd'] / t['fwdbwd']:.0f}x" if "fwdbwd" in nv else f">{args.cap / t['fwdbwd']:.0f}x")
        print(f"| {n:,} | {size}x{size} | {fmt(t, 'fwd', 0)} | {fmt(t, 'fwdbwd', 0)} | {t['rss_mib']:.0f} | "
              f"{fmt(nv, 'fwd', args.cap)} | {fmt(nv, 'fwdbwd', args.cap)} | {nv['rss_mib']:.0f} | {ratio} | "
              f"{t.get('coverage', float('nan')):.3f} |", flush=True)


if __name__ == "__main__":
    main()
