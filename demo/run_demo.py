"""End-to-end demo: a real third-party asset rendered in headless Blender, reconstructed by the
extension's Reconstruct operator with the embedded model, saved, exported and evaluated.

``make demo`` runs ``.venv/bin/python demo/run_demo.py --out demo-output``, which

1. runs :mod:`blender_stage` in a child process (bpy; its Blender log goes to
   ``OUT/blender.log``, its ``demo:`` lines to the console): the spider scene (12 cameras,
   256x256, Cycles), ``OUT/views``, the Reconstruct operator on the 8 context cameras (Embedded
   model, 4 iterations), ``OUT/scene.blend`` with the point cloud and ``OUT/scene.ply``;
2. runs :mod:`evaluate` here (torch; bpy and torch never share a process): PSNR / SSIM of each
   iteration at the input and held-out views, 3DGS optimisation for the same wall time as the
   recurrent iterations, ``OUT/heldout.png`` (held-out views: ground truth | iteration 0 |
   iteration 4 | optimisation at equal time);
3. prints the tables and writes them to ``OUT/results.md`` and ``OUT/results.json``.

Options shrink it (the test runs 64x64, 4 + 2 views, 1 iteration). Exit status 2 with one
``demo: error:`` line when a step fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class DemoError(RuntimeError):
    """A step of the demo failed (one line)."""


def run_blender_stage(out: Path, args: list[str]) -> dict:
    """Run ``blender_stage.py --out OUT ARGS`` with this interpreter; echo its ``demo:`` lines,
    keep everything it prints in ``OUT/blender.log``; returns ``OUT/blender.json``.

    Raises:
        DemoError: it failed (its error line, or the log's last line).
    """
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("blender.json", "heldout.png", "results.md", "results.json"):  # a failed run leaves none
        (out / stale).unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE / "blender_stage.py"), "--out", str(out), *args]
    last = ""
    with open(out / "blender.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            log.write(line)
            if line.startswith("demo: "):
                print(line, end="", flush=True)
            if line.strip():
                last = line.strip()
        code = proc.wait()
    if code != 0 or not (out / "blender.json").is_file():
        raise DemoError(f"the Blender stage failed (status {code}): {last.removeprefix('demo: error: ')} "
                        f"(log: {out / 'blender.log'})")
    return json.loads((out / "blender.json").read_text(encoding="utf-8"))


def embedded_weights() -> Path:
    """The runtime's embedded model file (``resplat/model/weights/tiny.safetensors`` of the
    installed runtime), found without importing it.

    Raises:
        DemoError: the runtime is not installed, or ships no weights (before any rendering).
    """
    spec = importlib.util.find_spec("resplat")
    if spec is None or not spec.submodule_search_locations:
        raise DemoError("the resplat runtime is not installed in this interpreter (make setup)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "weights" / "tiny.safetensors"
    if not path.is_file():
        raise DemoError(f"{path}: the embedded model's weights are missing")
    return path


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="run_demo.py")
    ap.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default demo-output)")
    ap.add_argument("--views", type=int, default=12, help="cameras on the orbit (default 12)")
    ap.add_argument("--context", type=int, default=8, help="input views; the others are held out (default 8)")
    ap.add_argument("--size", type=int, default=256, help="square render size in pixels (default 256)")
    ap.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel (default 32)")
    ap.add_argument("--iterations", type=int, default=4, help="recurrent iterations (default 4)")
    ap.add_argument("--seed", type=int, default=0, help="camera jitter seed")
    ap.add_argument("--threads", type=int, default=0, help="render and torch threads (0: all cores)")
    ap.add_argument("--enable", choices=("link", "zip"), default="link",
                    help="enable the extension from a link to the checkout (default) or its built zip")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    """Run the demo (module docstring); 0 on success, 2 with one error line on failure."""
    from resplat.errors import ResplatError

    a = parse_args(argv)
    t0 = time.perf_counter()
    stage_args = ["--views", str(a.views), "--context", str(a.context), "--size", str(a.size), "--samples",
                  str(a.samples), "--iterations", str(a.iterations), "--seed", str(a.seed), "--threads", str(a.threads),
                  "--enable", a.enable]
    try:
        embedded_weights()
        blender = run_blender_stage(a.out, stage_args)
        print("demo: evaluating the iterations and the equal-time optimisation", flush=True)
        import evaluate
        import report

        budget = sum(blender["seconds"]["reconstruct"]["iterations"])
        ev = evaluate.run(a.out, budget, threads=a.threads or os.cpu_count() or 1)
        text = report.write_results(a.out, blender, ev, time.perf_counter() - t0)
    except (DemoError, ResplatError, OSError, ValueError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print("\n" + text)
    print(f"demo: wrote {', '.join(str(a.out / n) for n in ('scene.blend', 'scene.ply', 'heldout.png', 'results.md', 'results.json'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
