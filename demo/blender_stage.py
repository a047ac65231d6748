"""The Blender half of the end-to-end demo (headless bpy): the spider scene, its renders, the
extension's Reconstruct operator on the context views, the saved .blend and the exported PLY.

Steps (``run``):

1. :func:`asset_scene.build_scene` (the spider in a textured room, an orbit of cameras) and
   :func:`asset_scene.render_views` into ``OUT/views`` (``images/cam_NN.png``,
   ``transforms.json``, ``split.json`` with the context / held-out names).
2. The extension of this checkout is enabled (:mod:`extension`) with the runtime interpreter set
   in its preferences (default: this interpreter, the project venv's python).
3. The context cameras are selected and 3D View > ReSplat > Reconstruct runs
   (``bpy.ops.resplat.reconstruct``; in background mode its ``execute`` drives the same job as the
   modal ``invoke``) with Model "Embedded", the given iterations, and views from the image folder
   ``OUT/views/images`` (files named after the cameras: nothing is rendered twice).
   While it runs, a tap on the job's event handler time-stamps every runtime event and copies
   each preview file (iteration 0, 1, ...) to ``OUT/iterations/`` before the job deletes its
   temporary folder.
4. ``OUT/scene.blend`` is saved with the resulting point cloud (the asset's textures packed
   into it), and the extension's exporter
   (``export_scene.resplat_splat``) writes ``OUT/scene.ply``.

Everything measured goes to ``OUT/blender.json`` (see :func:`run`); lines starting ``demo:``
say what happens. Run with the project venv (PyPI bpy)::

    .venv/bin/python demo/blender_stage.py --out demo-output [--size 256 --views 12 --context 8 ...]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if "BLENDER_USER_RESOURCES" not in os.environ:  # read once, when bpy is imported
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="resplat-demo-blender-")
    atexit.register(shutil.rmtree, os.environ["BLENDER_USER_RESOURCES"], True)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asset_scene  # noqa: E402  (imports bpy)
import bpy  # noqa: E402
from extension import enable_extension  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ASSET = REPO / "assets" / "spider" / "spider.obj"


def say(text: str) -> None:
    """One progress line for the person running the demo (the parent shows ``demo:`` lines)."""
    print(f"demo: {text}", flush=True)


@contextlib.contextmanager
def event_tap(addon, previews: Path, log: list):
    """While active, every runtime event of a splat job is appended to ``log`` as
    ``{"t": perf_counter, "kind", "stage", "step", "message"}`` (and ``{"t", "kind": "exit"}``
    when the job starts reading its result after the runtime exited), and each preview file is
    copied into ``previews`` (same name) before the job handles the event."""
    cls = importlib.import_module(f"{addon.__name__}.splat_job").SplatJob
    on_event, on_success = cls.on_event, cls.on_success

    def tapped_event(self, ev):
        entry = {"t": time.perf_counter(), "kind": ev.kind}
        entry.update({k: ev.data[k] for k in ("stage", "step", "message") if k in ev.data})
        if ev.kind == "preview":
            shutil.copyfile(ev.data["path"], previews / Path(ev.data["path"]).name)
            entry["file"] = Path(ev.data["path"]).name
        log.append(entry)
        return on_event(self, ev)

    def tapped_success(self):
        log.append({"t": time.perf_counter(), "kind": "exit"})
        return on_success(self)

    cls.on_event, cls.on_success = tapped_event, tapped_success
    try:
        yield
    finally:
        cls.on_event, cls.on_success = on_event, on_success


def stage_times(t0: float, t_end: float, events: list, iterations: int) -> dict:
    """Seconds per reconstruction stage from the event time stamps (arrival in Blender):
    ``start`` (views copied, runtime process started, torch imported, views read, model loaded:
    up to the runtime's "load" message), ``initial`` (initial prediction), ``iterations`` (one
    per recurrent update, preview file writes included), ``prune_write`` (pruning and writing the
    result), ``exit`` (until the runtime process has exited), ``import`` (reading the result into
    a Blender point cloud), ``total``."""
    def first(pred):
        return next((e["t"] for e in events if pred(e)), None)

    t_load = first(lambda e: e["kind"] == "message" and e.get("stage") == "load")
    t_init = first(lambda e: e["kind"] == "message" and str(e.get("message", "")).startswith("initial prediction"))
    t_steps = [first(lambda e, i=i: e["kind"] == "progress" and e.get("stage") == "reconstruct" and e.get("step") == i)
               for i in range(1, iterations + 1)]
    t_result = first(lambda e: e["kind"] == "result")
    t_exit = first(lambda e: e["kind"] == "exit")
    if None in (t_load, t_init, t_result, t_exit) or None in t_steps:
        raise RuntimeError("the runtime's events lack a load / initial / iteration / result event")
    marks = [t_init, *t_steps]
    return {"start": t_load - t0, "initial": t_init - t_load,
            "iterations": [b - a for a, b in zip(marks, marks[1:])],
            "prune_write": t_result - marks[-1], "exit": t_exit - t_result, "import": t_end - t_exit, "total": t_end - t0}


def reconstruct(addon, cameras: list, image_folder: Path, iterations: int, previews: Path) -> tuple:
    """Select ``cameras`` and run the Reconstruct operator (Embedded model, ``iterations``,
    views from ``image_folder``); returns (result object, events with times in seconds from the
    operator call, :func:`stage_times`)."""
    scene = bpy.context.scene
    for ob in bpy.context.view_layer.objects:
        ob.select_set(ob in cameras)
    bpy.context.view_layer.objects.active = cameras[0]
    s = scene.resplat
    s.cameras, s.views, s.image_folder = "SELECTED", "FOLDER", str(image_folder)
    s.model, s.model_iterations, s.iterations, s.steps, s.device = "EMBEDDED", False, iterations, 0, "cpu"
    s.quality, s.polish = False, "OFF"  # the demo measures its held-out views itself (demo/run_demo.py)
    s.property_unset("prune_opacity")  # the default, 0.005
    previews.mkdir(parents=True, exist_ok=True)
    events: list = []
    t0 = time.perf_counter()
    with event_tap(addon, previews, events):
        try:
            result = bpy.ops.resplat.reconstruct()
        except RuntimeError as exc:  # the operator's ERROR report
            raise RuntimeError(f"Reconstruct failed: {str(exc).strip()}") from None
    t_end = time.perf_counter()
    ob = bpy.context.active_object
    if result != {"FINISHED"} or ob is None or ob.type != "POINTCLOUD":
        raise RuntimeError(f"Reconstruct returned {result} without a point cloud")
    times = stage_times(t0, t_end, events, iterations)
    return ob, [dict(e, t=round(e["t"] - t0, 4)) for e in events], times


def export_ply(ob, path: Path) -> None:
    """Make ``ob`` the only selected, active object and export it with the extension's exporter."""
    for o in bpy.context.view_layer.objects:
        o.select_set(o == ob)
    bpy.context.view_layer.objects.active = ob
    if bpy.ops.export_scene.resplat_splat(filepath=str(path)) != {"FINISHED"}:
        raise RuntimeError(f"exporting {ob.name!r} to {path} failed")


def run(out: Path, *, asset: Path = DEFAULT_ASSET, views: int = 12, context: int = 8, size: int = 256,
        samples: int = 32, seed: int = 0, threads: int = 0, iterations: int = 4, python: str = sys.executable,
        enable: str = "link") -> dict:
    """The Blender half of the demo (module docstring) into ``out``; returns and writes
    ``out/blender.json``: the settings, camera names of the split, point count, the runtime
    events with their times (seconds from the operator call) and ``seconds`` per step
    (``scene``, ``render``, ``enable``, ``reconstruct`` per stage, ``save``, ``export``)."""
    out.mkdir(parents=True, exist_ok=True)
    secs: dict = {}
    t = time.perf_counter()
    asset_scene.split_indices(views, context)
    cams = asset_scene.build_scene(asset, views=views, seed=seed, size=size, samples=samples, threads=threads)
    secs["scene"] = time.perf_counter() - t
    say(f"rendering {views} views at {size}x{size} ({samples} Cycles samples) into {out / 'views'}")
    t = time.perf_counter()
    asset_scene.render_views(out / "views", cams, context=context)
    secs["render"] = time.perf_counter() - t
    split = json.loads((out / "views" / "split.json").read_text())
    t = time.perf_counter()
    addon = enable_extension(python, enable)
    secs["enable"] = time.perf_counter() - t
    context_cams = [bpy.data.objects[n] for n in split["context"]]
    say(f"Reconstruct (Embedded model, {iterations} iteration{'s' * (iterations != 1)}) from {len(context_cams)} context cameras")
    shutil.rmtree(out / "iterations", ignore_errors=True)
    ob, events, rec = reconstruct(addon, context_cams, out / "views" / "images", iterations, out / "iterations")
    secs["reconstruct"] = rec
    say(f"{ob.name!r}: {len(ob.data.points)} splats in {rec['total']:.1f} s "
        f"(initial {rec['initial']:.1f} s, iterations {', '.join(f'{x:.1f}' for x in rec['iterations'])} s)")
    t = time.perf_counter()
    bpy.context.preferences.filepaths.save_version = 0  # no scene.blend1 backup when re-run
    bpy.ops.file.pack_all()  # the asset's textures go into the .blend: it opens anywhere
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "scene.blend"), check_existing=False, compress=True)
    secs["save"] = time.perf_counter() - t
    t = time.perf_counter()
    export_ply(ob, out / "scene.ply")
    secs["export"] = time.perf_counter() - t
    say(f"saved {out / 'scene.blend'} and exported {out / 'scene.ply'}")
    info = {"asset": str(asset), "size": size, "views": views, "samples": samples, "seed": seed, "iterations": iterations,
            "enable": enable, "context": split["context"], "heldout": split["heldout"], "object": ob.name,
            "splats": len(ob.data.points), "events": events,
            "previews": sorted(p.name for p in (out / "iterations").iterdir()), "seconds": secs}
    tmp = out / "blender.json.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, out / "blender.json")
    return info


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="blender_stage.py")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--asset", type=Path, default=DEFAULT_ASSET)
    ap.add_argument("--views", type=int, default=12)
    ap.add_argument("--context", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="render threads (0: all cores)")
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--python", default=sys.executable, help="the runtime interpreter (default: this one)")
    ap.add_argument("--enable", choices=("link", "zip"), default="link", help="how the extension is enabled")
    a = ap.parse_args(argv)
    try:
        run(a.out, asset=a.asset, views=a.views, context=a.context, size=a.size, samples=a.samples, seed=a.seed,
            threads=a.threads, iterations=a.iterations, python=a.python, enable=a.enable)
    except (asset_scene.ResplatError, RuntimeError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
