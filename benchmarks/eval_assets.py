"""The embedded model on third-party Blender scenes and held-out synthetic scenes, beside two floors.

For every scene (posed-view folders written by ``demo/asset_scene.py --world open --depth``, and
held-out synthetic scenes of ``resplat data generate``), for one weights file, in one run:

1. ``reconstruct(images, cameras, model, iterations=4)`` (RGB only) and
   ``reconstruct(..., depths=depths[context])`` (with the exact depth maps), the Gaussians of
   iterations 0..--iterations taken from the progress callback, each timed;
2. floor 1, the naive unprojection of the exact depth (:func:`unproject_blocks`): one isotropic
   Gaussian per 4x4 pixel block of each input view at the block's median valid depth, with the
   block's mean colour, a standard deviation of half the block's footprint and opacity 0.9;
3. floor 2, 3DGS optimisation (``resplat.optim.optimize``) from the same initial Gaussians
   (iteration 0, RGB only and with depth) for the wall time the --iterations updates took.

Scores on the held-out views: content PSNR (pixels whose ground-truth depth is finite and > 0),
covisible PSNR (the content pixels some input view sees unoccluded, :func:`covisible_mask`: what
the inputs can tell at all), whole-image PSNR and whole-image SSIM, rendered and scored as ``benchmarks/recurrence.py`` does
(``render(g, cameras, near, far of the model)``, black background, clamped to [0, 1],
``resplat.metrics``; mean over views, then over scenes). Whole-image PSNR counts the world
(grey in the asset scenes) against the black background; content PSNR does not.

Usage::

    .venv/bin/python benchmarks/eval_assets.py [--weights FILE] --views runs/eval/spider ... \\
        [--synthetic DIR --scenes 2] [--iterations 4] [--threads 2] [--json F] [--md F] [--png F]

Not a test: nothing asserts (tests/test_eval_assets.py checks its pieces).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recurrence import (  # noqa: E402
    BenchmarkInputError, EvalScene, _f, _mean, _size, embedded_weights, load_model, read_fitted_views, split_scene, synthetic_scenes)
from resplat.errors import ResplatError  # noqa: E402

BLOCK = 4  # pixels per side of one unprojected block
UNPROJECT_OPACITY = 0.9
UNPROJECT_SIGMA = 0.5  # standard deviation in block footprints


@dataclass
class DepthScene(EvalScene):
    """An :class:`EvalScene` with ground-truth depth: ``depths`` [V, H, W] float32 z-depth
    (metres), 0 / inf / nan where nothing was hit. ``covisible`` holds :func:`covisible_mask`
    once it has been computed (the scene's own data, so it lives and dies with it)."""

    depths: object = None
    covisible: object = field(default=None, repr=False, compare=False)


def views_depth_scene(folder: Path, multiple: int) -> DepthScene:
    """:func:`recurrence.views_scene` plus the folder's depth maps (``depth_file_path``).

    Raises:
        BenchmarkInputError: the folder has no depth maps (render it with ``--depth``).
    """
    views = read_fitted_views(folder, multiple)
    if views.depths is None:
        raise BenchmarkInputError(f"{folder}: no depth maps (depth_file_path); render it with "
                                  f"demo/asset_scene.py --depth")
    base = split_scene(folder, views)
    return DepthScene(base.name, base.images, base.cameras, base.context, base.heldout, views.depths[:, 0])


def synthetic_depth_scenes(root: Path, count: int, seed: int, train_seed: int, size) -> list[DepthScene]:
    """Held-out synthetic scenes with their depth; generated first (12 views, 8 inputs, half of
    them open scenes) when ``root`` has no index.json."""
    from resplat.data import GeneratorConfig, SyntheticDataset, generate_dataset

    if not (root / "index.json").is_file():
        if seed == train_seed:
            raise BenchmarkInputError(f"--seed {seed} is the training seed: held-out scenes need another one")
        generate_dataset(root, count, seed, GeneratorConfig(width=size[0], height=size[1], open_fraction=0.5))
    base = synthetic_scenes(root, count, seed, train_seed, size)
    data = SyntheticDataset(root)
    return [DepthScene(b.name, b.images, b.cameras, b.context, b.heldout, data[i].depths[:, 0]) for i, b in enumerate(base)]


# --------------------------------------------------------------------------------------------
# floors
# --------------------------------------------------------------------------------------------

def unproject_blocks(images, depths, cameras, block: int = BLOCK, opacity: float = UNPROJECT_OPACITY,
                     sigma: float = UNPROJECT_SIGMA):
    """The naive unprojection of exact depth: one isotropic Gaussian per ``block`` x ``block``
    pixel block with at least one valid depth (finite, > 0), at the block centre's ray and the
    median of the block's valid depths, coloured by the mean of its valid pixels (SH degree 0),
    standard deviation ``sigma * block * depth / f`` (f the mean focal length in pixels: a
    fraction of the block's footprint on the surface), peak opacity ``opacity``.

    Args:
        images: [V, 3, H, W] float in [0, 1]; depths: [V, H, W] z-depth (camera units);
        cameras: the V :class:`resplat.cameras.Cameras` (OpenCV, pixels). H, W multiples of block.

    Returns:
        float32 :class:`resplat.gaussians.Gaussians` in the cameras' world frame.

    Raises:
        ResplatError: no valid depth at all, or sizes that are not multiples of ``block``.
    """
    import torch

    from resplat.gaussians import Gaussians, rgb_to_sh0

    v, _, h, w = images.shape
    if h % block or w % block:
        raise ResplatError(f"unprojection: image size {w}x{h} is not a multiple of the {block}-pixel block")
    d = depths.to(torch.float64)
    valid = torch.isfinite(d) & (d > 0)
    bh, bw = h // block, w // block
    db = torch.where(valid, d, torch.nan).reshape(v, bh, block, bw, block).permute(0, 1, 3, 2, 4).reshape(v, bh, bw, -1)
    med = db.nanmedian(-1).values  # [V, bh, bw], nan where the block has no valid pixel
    vb = valid.reshape(v, bh, block, bw, block).permute(0, 1, 3, 2, 4).reshape(v, bh, bw, -1).to(torch.float64)
    rgb = images.to(torch.float64).reshape(v, 3, bh, block, bw, block).permute(0, 2, 4, 1, 3, 5).reshape(v, bh, bw, 3, -1)
    colour = (rgb * vb[:, :, :, None]).sum(-1) / vb.sum(-1, keepdim=True).clamp_min(1)
    keep = torch.isfinite(med)
    if not keep.any():
        raise ResplatError("unprojection: no pixel of the depth maps has a depth (> 0)")
    vi, yi, xi = keep.nonzero(as_tuple=True)
    z = med[keep]
    cams = cameras.to(device="cpu", dtype=torch.float64)
    pix = torch.stack([(xi + 0.5) * block, (yi + 0.5) * block, torch.ones_like(z)], -1)
    rays = torch.einsum("pij,pj->pi", torch.linalg.inv(cams.K)[vi], pix)
    c2w = cams.c2w[vi]
    means = torch.einsum("pij,pj->pi", c2w[:, :3, :3], rays * z[:, None]) + c2w[:, :3, 3]
    f = 0.5 * (cams.K[vi, 0, 0] + cams.K[vi, 1, 1])
    std = sigma * block * z / f
    p = len(z)
    quats = torch.zeros(p, 4, dtype=torch.float64)
    quats[:, 0] = 1
    g = Gaussians(means, quats, std.log()[:, None].expand(p, 3).contiguous(),
                  torch.full((p,), math.log(opacity / (1 - opacity)), dtype=torch.float64),
                  rgb_to_sh0(colour[keep].clamp(0, 1))[:, None])
    return g.to(dtype=torch.float32)


def optimise_for(g0, scene: EvalScene, budget_s: float, lr) -> tuple[object, int, float]:
    """3DGS optimisation of ``g0`` against the input views until its wall time reaches
    ``budget_s`` (one untimed warm-up step first, as benchmarks/recurrence.py does). Returns
    (Gaussians, steps, seconds)."""
    from resplat.optim import optimize

    images, cams = scene.images[scene.context], scene.cameras[scene.context].to(dtype=g0.dtype)
    optimize(g0, images, cams, 1, lr=lr, eval_every=2)
    cap = 100000
    t0 = time.perf_counter()
    done = {"step": 0}

    def callback(p) -> bool:
        done["step"] = p.step
        return time.perf_counter() - t0 < budget_s

    res = optimize(g0, images, cams, cap, lr=lr, eval_every=cap + 1, callback=callback)
    return res.gaussians, done["step"], time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------------

#: Relative depth agreement under which an input view sees a held-out pixel's point.
COVISIBLE_TOLERANCE = 0.05


def covisible_mask(scene: DepthScene):
    """[K, H, W] bool: the held-out content pixels that at least one input view sees.

    A held-out pixel's point (its centre's ray at its ground-truth z-depth) is seen by an input
    view when it projects inside that view's image, in front of it, where the view's own depth
    map (nearest pixel) agrees within :data:`COVISIBLE_TOLERANCE` x its depth, i.e. nothing
    occludes it. The rest of the content (far ground outside every input frustum, ground hidden
    behind the asset from every input) cannot be reconstructed from the inputs by any method; a
    score over this mask is the usual covisibility-masked novel-view metric. Computed once per scene
    (``scene.covisible``)."""
    import torch

    if scene.covisible is not None:
        return scene.covisible
    ctx, held = scene.context, scene.heldout
    cams = scene.cameras.to(device="cpu", dtype=torch.float64)
    dh = scene.depths[held].to(torch.float64)
    dc = scene.depths[ctx].to(torch.float64)
    k, h, w = dh.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij")
    content = torch.isfinite(dh) & (dh > 0)
    seen = torch.zeros_like(content)
    for i, hv in enumerate(held):
        Kinv, c2w = torch.linalg.inv(cams.K[hv]), cams.c2w[hv]
        z = torch.where(content[i], dh[i], torch.zeros_like(dh[i]))
        rays = torch.stack([xs, ys, torch.ones_like(xs)], -1) @ Kinv.T
        world = (rays * z[..., None]) @ c2w[:3, :3].T + c2w[:3, 3]
        for j, cv in enumerate(ctx):
            pc = world @ cams.w2c[cv, :3, :3].T + cams.w2c[cv, :3, 3]
            zc = pc[..., 2]
            uv = pc @ cams.K[cv].T
            u, v = uv[..., 0] / zc.clamp_min(1e-12), uv[..., 1] / zc.clamp_min(1e-12)
            inside = (zc > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
            ui, vi = u.clamp(0, w - 1).long(), v.clamp(0, h - 1).long()
            there = dc[j][vi, ui]
            agree = torch.isfinite(there) & (there > 0) & ((zc - there).abs() <= COVISIBLE_TOLERANCE * zc)
            seen[i] |= content[i] & inside & agree
    scene.covisible = seen
    return seen


def score(g, scene: DepthScene, config) -> tuple[object, dict]:
    """``g`` rendered at the held-out views (black background, clamped): (renders [K, 3, H, W],
    {content_psnr, covisible_psnr, psnr, ssim, content_psnr_views}) with content = ground-truth
    depth finite and > 0 and covisible = the content some input view sees
    (:func:`covisible_mask`); means over the views (views without such pixels are left out)."""
    import torch

    from resplat.metrics import psnr, ssim
    from resplat.render import render

    idx = scene.heldout
    target = scene.images[idx]
    d = scene.depths[idx]
    mask = torch.isfinite(d) & (d > 0)
    with torch.no_grad():
        rgb = render(g, scene.cameras[idx].to(dtype=g.dtype), near=config.near, far=config.far).rgb.clamp(0, 1)
        cp = psnr(rgb, target, mask=mask)
        vp = psnr(rgb, target, mask=covisible_mask(scene))
        p, s = psnr(rgb, target), ssim(rgb, target)
    content = [float(x) for x in cp if torch.isfinite(x)]
    covisible = [float(x) for x in vp if torch.isfinite(x)]
    return rgb, {"content_psnr": _mean(content), "covisible_psnr": _mean(covisible), "psnr": float(p.mean()),
                 "ssim": float(s.mean()), "content_psnr_views": [round(float(x), 4) for x in cp]}


def benchmark_scene(scene: DepthScene, model, config, iterations: int, lr, keep_view: int = 0) -> tuple[dict, list]:
    """Every number of one scene; also the PNG row (ground truth | it 0 | it N | depth it N |
    unprojection) of held-out view ``keep_view``."""
    import torch

    from resplat.model import reconstruct_views

    images, cams = scene.images[scene.context], scene.cameras[scene.context]
    out = {"name": scene.name, "size": [int(images.shape[-1]), int(images.shape[-2])],
           "context": scene.context, "heldout": scene.heldout}
    row = [scene.images[scene.heldout[keep_view]]]
    for mode, depths in (("rgb", None), ("depth", scene.depths[scene.context])):
        snaps, times = [], []
        last = [time.perf_counter()]

        def callback(stage, it, total, g):
            times.append(time.perf_counter() - last[0])
            snaps.append(g)
            last[0] = time.perf_counter()

        with torch.no_grad():
            kept = reconstruct_views(images, cams, model, iterations=iterations, device="cpu", callback=callback,
                                     depths=depths).kept
        recs = []
        for i, g in enumerate(snaps):
            rgb, sc = score(g, scene, config)
            recs.append(dict(sc, iteration=i, seconds=times[i]))
            if (mode == "rgb" and i in (0, iterations)) or (mode == "depth" and i == iterations):
                row.append(rgb[keep_view])
        refine = sum(times[1:])
        g_opt, steps, secs = optimise_for(snaps[0], scene, refine, lr)
        out[mode] = recs
        out[f"kept_{mode}"] = kept  # the iteration reconstruct hands back (keep="best")
        out[f"optimisation_{mode}"] = dict(score(g_opt, scene, config)[1], steps=steps, seconds=secs,
                                           budget_s=refine, gaussians=len(g_opt))
        out["gaussians"] = len(snaps[-1])
    t0 = time.perf_counter()
    g_un = unproject_blocks(images, scene.depths[scene.context], cams)
    rgb, sc = score(g_un, scene, config)
    out["unprojection"] = dict(sc, seconds=time.perf_counter() - t0, gaussians=len(g_un))
    row.append(rgb[keep_view])
    return out, row


# --------------------------------------------------------------------------------------------
# tables, figure
# --------------------------------------------------------------------------------------------

def _row(r: dict) -> str:
    """content | covisible (absent in results written before it existed) | whole-image PSNR | SSIM."""
    return f"{_f(r['content_psnr'])} | {_f(r.get('covisible_psnr'))} | {_f(r['psnr'])} | {_f(r['ssim'], '.4f')}"


def _kept(s: dict, mode: str) -> str:
    """Content PSNR of the iteration reconstruct keeps, with its number ("-" in results written
    before it was recorded)."""
    k = s.get(f"kept_{mode}")
    return "-" if k is None else f"{_f(s[mode][k]['content_psnr'])} (it {k})"


def markdown(result: dict) -> str:
    """The summary table (content PSNR per scene) and per-scene tables."""
    n = result["iterations"]
    lines = [f"weights: `{result['weights']}` ({result['preset']}); CPU, {result['threads']} thread(s); "
             f"held-out views; content = ground-truth depth finite and > 0; black background, clamp [0, 1]; "
             f"kept = the iteration of 0..{n} that reconstruct returns (the best fit to the input views)",
             "", "Content PSNR (dB) on held-out views:", "",
             f"| scene | RGB it 0 | RGB it {n} | RGB kept | depth it 0 | depth it {n} | depth kept | unprojection | "
             f"opt. from RGB it 0 (= time) | opt. from depth it 0 (= time) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in result["scenes"]:
        lines.append(f"| {s['name']} | {_f(s['rgb'][0]['content_psnr'])} | {_f(s['rgb'][n]['content_psnr'])} | "
                     f"{_kept(s, 'rgb')} | {_f(s['depth'][0]['content_psnr'])} | {_f(s['depth'][n]['content_psnr'])} | "
                     f"{_kept(s, 'depth')} | "
                     f"{_f(s['unprojection']['content_psnr'])} | {_f(s['optimisation_rgb']['content_psnr'])} | "
                     f"{_f(s['optimisation_depth']['content_psnr'])} |")
    for s in result["scenes"]:
        lines += ["", f"#### {s['name']} ({s['size'][0]}x{s['size'][1]}, {len(s['context'])} input + "
                  f"{len(s['heldout'])} held-out views, {s['gaussians']:,} Gaussians)", "",
                  "| method | content PSNR | covisible PSNR | whole-image PSNR | SSIM | time (s) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for mode in ("rgb", "depth"):
            for r in s[mode]:
                lines.append(f"| {'RGB only' if mode == 'rgb' else 'with depth'} it {r['iteration']} | "
                             f"{_row(r)} | {_f(r['seconds'])} |")
        u = s["unprojection"]
        lines.append(f"| unprojection of exact depth | {_row(u)} | {_f(u['seconds'])} |")
        for mode in ("rgb", "depth"):
            o = s[f"optimisation_{mode}"]
            lines.append(f"| optimisation from {'RGB' if mode == 'rgb' else 'depth'} it 0, {o['steps']} steps | "
                         f"{_row(o)} | {_f(o['seconds'])} |")
    return "\n".join(lines) + "\n"


def write_png(path: Path, rows: list[list]) -> None:
    """Rows of [3, H, W] images side by side, one row per scene, as an 8-bit PNG (Pillow)."""
    import numpy as np
    import torch
    from PIL import Image

    grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)
    arr = (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(arr).save(tmp, format="PNG", optimize=True)
    tmp.replace(path)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json_md(args: argparse.Namespace, result: dict, md: str) -> None:
    """Write :func:`add_output_arguments`' ``--json`` (``result``) and ``--md`` (``md``), each
    through a temporary file so that a failed run leaves no half-written result."""
    if args.json is not None:
        _write_text(args.json, json.dumps(result, indent=1) + "\n")
    if args.md is not None:
        _write_text(args.md, md)


def add_scene_arguments(p: argparse.ArgumentParser) -> None:
    """The weights and scene options this benchmark shares with ``polish_curve.py``."""
    p.add_argument("--weights", type=Path, default=None, help="checkpoint (default: the embedded tiny weights)")
    p.add_argument("--views", type=Path, nargs="*", default=[], help="asset views folders (with depth, split.json)")
    p.add_argument("--synthetic", type=Path, default=None, help="held-out synthetic dataset (generated if absent)")
    p.add_argument("--scenes", type=int, default=2, help="synthetic scenes to use (default 2)")
    p.add_argument("--skip-scenes", type=int, default=0,
                   help="leave out the first N of those synthetic scenes (runs measured separately, merged later)")
    p.add_argument("--seed", type=int, default=1000, help="seed when generating --synthetic (default 1000)")
    p.add_argument("--train-seed", type=int, default=0, help="the training data's seed, refused (default 0)")
    p.add_argument("--size", type=_size, default=(256, 256), help="WxH when generating --synthetic")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """``--json`` / ``--md`` / ``--png`` output files."""
    for flag in ("--json", "--md", "--png"):
        p.add_argument(flag, type=Path, default=None)


def load_scenes(args: argparse.Namespace) -> tuple[Path, object, list[DepthScene]]:
    """(weights path, model, scenes) of :func:`add_scene_arguments`' options.

    Raises:
        BenchmarkInputError: neither --views nor --synthetic, or a missing weights file.
    """
    if args.synthetic is None and not args.views:
        raise BenchmarkInputError("nothing to evaluate: give --views DIR ... and/or --synthetic DIR")
    path = args.weights or embedded_weights()
    if not path.is_file():
        raise BenchmarkInputError(f"{path}: no such weights file")
    model = load_model({"weights": str(path.resolve())})
    scenes = [views_depth_scene(f, model.config.size_multiple) for f in args.views]
    if args.synthetic is not None:
        synthetic = synthetic_depth_scenes(args.synthetic, args.scenes, args.seed, args.train_seed, args.size)
        scenes += synthetic[args.skip_scenes:]
    return path, model, scenes


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scene_arguments(p)
    p.add_argument("--iterations", type=int, default=4, help="recurrent iterations (default 4)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    add_output_arguments(p)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Run the evaluation; print the markdown; return (and write) every number.

    Raises:
        ResplatError: unusable inputs, one line.
    """
    args = parse_args(argv)
    import torch

    from resplat.optim import OptimConfig

    torch.set_num_threads(args.threads)
    if args.iterations < 1 or args.scenes < 1:
        raise BenchmarkInputError("--iterations and --scenes must be >= 1")
    path, model, scenes = load_scenes(args)
    config = model.config
    lr = OptimConfig()
    t0 = time.perf_counter()
    result = {"benchmark": "eval_assets", "weights": str(path), "preset": config.name, "threads": args.threads,
              "iterations": args.iterations, "scenes": []}
    rows = []
    for s in scenes:
        t = time.perf_counter()
        r, row = benchmark_scene(s, model, config, args.iterations, lr)
        result["scenes"].append(r)
        rows.append(row)
        print(f"{s.name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    result["seconds"] = time.perf_counter() - t0
    md = markdown(result)
    print(md)
    print(f"(total {result['seconds']:.0f} s)")
    write_json_md(args, result, md)
    if args.png is not None:
        write_png(args.png, rows)
    return result


if __name__ == "__main__":
    try:
        main()
    except ResplatError as exc:
        print(f"eval_assets: error: {exc}", file=sys.stderr)
        sys.exit(2)
