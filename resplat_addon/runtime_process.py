"""The runtime as a subprocess (pure Python, no bpy, no torch): command lines, a JSON-lines
reader thread feeding a queue, cancellation, the "check runtime" probe and the venv installer's
commands.

Blender never imports torch (its bundled Python has no torch wheel, and torch would block the UI): everything heavy runs in the interpreter named in
the add-on preferences, as ``python -m resplat <command> ... --progress jsonl``, whose stdout
carries one JSON object per line (resplat/cli/progress.py): ``progress``, ``message``,
``preview``, ``result`` and ``error`` events. Blender data is touched only by the caller, from
the main thread, when it drains :meth:`RuntimeJob.poll` (Blender's bpy.app.timers documentation: Blender data only from the main thread).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .runtime_formats import ResplatError
from .runtime_formats import defaults as D

#: torch wheel index per variant (the PyTorch "get started" matrix); MPS uses PyPI's macOS wheels.
TORCH_INDEX = {"CPU": "https://download.pytorch.org/whl/cpu", "CUDA": "https://download.pytorch.org/whl/cu128", "MPS": None}

#: ``python -c`` probe (argument: the device setting) printing one JSON line: runtime version,
#: torch version, the device the setting resolves to by the runtime's own rule
#: (``resplat.device.resolve_device``; or why it is unavailable, ``device_error``) and whether the
#: runtime has the embedded model's weights file (``embedded``, bool).
CHECK_CODE = (
    "import json, sys, torch, resplat\n"
    "from resplat.device import resolve_device\n"
    "from resplat.errors import ResplatError\n"
    "from resplat.model.checkpoint import embedded_weights_path\n"
    "info = {'resplat': resplat.__version__, 'torch': torch.__version__, 'embedded': embedded_weights_path().is_file()}\n"
    "try:\n"
    "    info['device'] = str(resolve_device(sys.argv[1]))\n"
    "except ResplatError as e:\n"
    "    info['device'], info['device_error'] = '', str(e)\n"
    "print(json.dumps(info))\n"
)


def venv_python(venv: str | os.PathLike) -> Path:
    """The interpreter of a virtual environment folder (``bin/python``, ``Scripts\\python.exe``)."""
    venv = Path(venv)
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def check_interpreter(python: str) -> str:
    """``python`` as an existing file path; raises ResplatError naming it when it is missing."""
    if not python:
        raise ResplatError("no runtime interpreter set (Preferences > Add-ons > ReSplat: Install or set one)")
    if not Path(python).is_file():
        raise ResplatError(f"runtime interpreter {python} not found (Preferences > Add-ons > ReSplat)")
    return python


def check_runtime(python: str, device: str = "auto", timeout: float = 120.0) -> dict:
    """Run :data:`CHECK_CODE` in ``python`` for the device setting ``device``; returns
    {"resplat", "torch", "device", "embedded"} and "device_error" when ``device`` is unavailable.

    Raises:
        ResplatError: interpreter missing, or it cannot import torch/resplat (last stderr line).
    """
    check_interpreter(python)
    try:
        r = subprocess.run([python, "-c", CHECK_CODE, device], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ResplatError(f"runtime interpreter {python} could not run ({exc})") from None
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise ResplatError(f"runtime interpreter {python} has no working runtime: {last}")
    return json.loads(lines[-1])


#: the runtime's dependencies apart from torch (runtime/pyproject.toml).
RUNTIME_DEPS = ("numpy>=1.25", "plyfile>=1.0", "zstandard>=0.21", "safetensors>=0.4", "pillow>=9")
_PTH_CODE = ("import site, sys, pathlib; "
             "pathlib.Path(site.getsitepackages()[0], 'resplat_runtime.pth').write_text(sys.argv[1] + '\\n')")


def install_commands(base_python: str, venv: str | os.PathLike, runtime_parent: str | os.PathLike, variant: str) -> list[list[str]]:
    """The commands that create ``venv``, pip-install torch (``variant`` CPU/CUDA/MPS) and the
    runtime's other dependencies, and make the bundled runtime importable in it through a
    ``resplat_runtime.pth`` file naming ``runtime_parent`` (the extension's ``runtime`` folder,
    which holds the ``resplat`` package; the zip ships no pyproject.toml, so it is not pip-built).
    Run in order by :class:`RuntimeJob`.

    Raises:
        ResplatError: unknown variant.
    """
    if variant not in TORCH_INDEX:
        raise ResplatError(f"unknown torch variant {variant!r}, expected one of {tuple(TORCH_INDEX)}")
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", "--progress-bar", "off"]
    torch_cmd = pip + ["torch"] + (["--index-url", TORCH_INDEX[variant]] if TORCH_INDEX[variant] else [])
    return [[base_python, "-m", "venv", str(venv)], torch_cmd, pip + list(RUNTIME_DEPS),
            [py, "-c", _PTH_CODE, str(runtime_parent)]]


def runtime_command(python: str, command: str, views: str, out: str, *, checkpoint: str = "",
                    iterations: int | None = None, steps: int = D.POLISH_STEPS, prune_opacity: float = D.PRUNE_OPACITY,
                    seconds: float = 0.0, init: str = "", random_count: int = D.RANDOM_COUNT, depth_init: bool = False,
                    device: str = "auto", preview_dir: str = "", extra: tuple[str, ...] = ()) -> list[str]:
    """The ``python -m resplat`` command line of one job (defaults: :mod:`resplat.defaults`).

    Args:
        command: "reconstruct" (``checkpoint`` file, "" for the runtime's embedded model;
            ``iterations`` (``None``: the model's own default), ``prune_opacity``, ``steps``
            optimisation steps of the polish and ``seconds`` of time-budgeted polish,
            ``--polish-seconds``) or "optimize" (``steps``, ``seconds`` as ``--seconds``;
            ``init`` file, else ``--depth-init random_count`` when ``depth_init`` (the views
            carry depth maps), else ``--random random_count``). ``seconds`` 0: no time budget.
            An ``init`` (Refine: an existing splat object) is polished as Reconstruct's polish
            is, with ``--strategy`` :data:`resplat.defaults.POLISH_STRATEGY` (densification);
            random and depth starts keep their count.
        views: transforms.json path; out: output .ply path; preview_dir: "" for none.
    """
    cmd = [python, "-m", "resplat", command, views, "--out", out, "--device", device, "--progress", "jsonl"]
    if command == "reconstruct":
        cmd += (["--checkpoint", checkpoint] if checkpoint else []) + (
            [] if iterations is None else ["--iterations", str(iterations)]) + [
            "--prune-opacity", f"{prune_opacity:g}", "--optimize-steps", str(steps)]
        cmd += ["--polish-seconds", f"{seconds:g}"] if seconds > 0 else []
    else:
        start = (["--init", init, "--strategy", D.POLISH_STRATEGY] if init
                 else ["--depth-init" if depth_init else "--random", str(random_count)])
        cmd += ["--steps", str(steps)] + (["--seconds", f"{seconds:g}"] if seconds > 0 else []) + start
    if preview_dir:
        cmd += ["--preview-dir", preview_dir]
    return cmd + list(extra)


@dataclass
class Event:
    """One line from the runtime: ``kind`` is the JSON ``event`` (or "log" for a non-JSON line,
    "exit" when the process ended, with ``data["code"]``)."""

    kind: str
    data: dict = field(default_factory=dict)


class RuntimeJob:
    """Runs a list of commands one after another; a reader thread turns their stdout lines into
    :class:`Event` objects on a queue (never touching Blender data).

    Args:
        commands: argv lists; the next starts only when the previous exits with status 0.
        env: extra environment variables.
    """

    def __init__(self, commands: list[list[str]], env: dict | None = None):
        self.commands = commands
        self.events: queue.Queue[Event] = queue.Queue()
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._proc: subprocess.Popen | None = None
        self._cancelled = False
        self._lock = threading.Lock()
        self.stderr_tail: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "RuntimeJob":
        """Start the first command (raises ResplatError when it cannot be started)."""
        self._spawn(self.commands[0])
        self._thread.start()
        return self

    def _spawn(self, argv: list[str]) -> None:
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                    env=self._env)
        except OSError as exc:
            raise ResplatError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        with self._lock:
            self._proc = proc

    def _run(self) -> None:
        for i, argv in enumerate(self.commands):
            if i:
                try:
                    self._spawn(argv)
                except ResplatError as exc:
                    self.events.put(Event("error", {"message": str(exc)}))
                    self.events.put(Event("exit", {"code": -1}))
                    return
            proc = self._proc
            err = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True)
            err.start()
            for line in proc.stdout:
                self.events.put(parse_line(line))
            code = proc.wait()
            err.join()
            if code != 0 or self._cancelled or i == len(self.commands) - 1:
                self.events.put(Event("exit", {"code": code}))
                return

    def _read_stderr(self, proc) -> None:
        for line in proc.stderr:
            self.stderr_tail = (self.stderr_tail + [line.rstrip()])[-20:]

    def poll(self) -> list[Event]:
        """Every event queued so far (non-blocking; call from the main thread)."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def cancel(self, timeout: float = 10.0) -> None:
        """Kill the running process and wait for the reader thread to finish."""
        self._cancelled = True
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while a command of the job is still running (or about to start)."""
        return self._thread.is_alive()

    def failure(self, code: int) -> str:
        """One line saying why the job ended with status ``code``."""
        last = next((ln for ln in reversed(self.stderr_tail) if ln.strip()), "")
        if code < 0:
            return f"runtime was killed (signal {-code}){': ' + last if last else ''}"
        return f"runtime exited with status {code}{': ' + last if last else ''}"


def parse_line(line: str) -> Event:
    """An :class:`Event` for one stdout line (non-JSON lines become "log" events)."""
    line = line.strip()
    try:
        obj = json.loads(line) if line.startswith("{") else None
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict) or "event" not in obj:
        return Event("log", {"message": line})
    return Event(str(obj.pop("event")), obj)


def remove_tree(path: str | os.PathLike | None) -> None:
    """Remove a folder the add-on made (temp dir, half-made venv); missing is fine."""
    if path and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def default_python() -> str:
    """The interpreter that can create a venv: Blender's own (``sys.executable``)."""
    return sys.executable
