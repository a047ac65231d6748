"""Progress reporting for the CLI: a terminal bar for people, JSON lines for programs.

``--progress jsonl`` prints one JSON object per line on stdout, flushed immediately, so that a
parent process (the Blender extension) can follow long work::

    {"event": "progress", "stage": "optimize", "step": 10, "total": 500, "metrics": {"loss": 0.08}}
    {"event": "preview", "stage": "optimize", "step": 100, "path": "prev/preview_optimize_100.ply"}
    {"event": "result", "stage": "optimize", "path": "scene.ply", "metrics": {...}}
    {"event": "error", "message": "views.json: missing key 'frames'"}

``stage`` names the phase (load, optimize, render, eval, convert, ...), ``step`` counts from 1 to
``total``. ``--progress bar`` (the default on a terminal) draws a one-line bar on stderr;
``--progress none`` prints nothing but results.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO


def _clean(value: Any) -> Any:
    """JSON-safe version of a metric value (floats rounded, non-finite floats as None)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


class Progress:
    """Reports stages, steps and results in one of the modes "bar", "jsonl" or "none".

    Args:
        mode: "bar" (human, stderr), "jsonl" (machine, stdout) or "none".
        stream: where jsonl lines go (default stdout); the bar always goes to stderr.
    """

    MODES = ("bar", "jsonl", "none")

    def __init__(self, mode: str = "bar", stream: TextIO | None = None):
        if mode not in self.MODES:
            raise ValueError(f"progress mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.stream = stream or sys.stdout
        self._last_draw = 0.0
        self._bar_open = False

    def _emit(self, obj: dict) -> None:
        self.stream.write(json.dumps(_clean(obj)) + "\n")
        self.stream.flush()

    def step(self, stage: str, step: int, total: int | None, **metrics: Any) -> None:
        """Report that ``step`` of ``total`` in ``stage`` is done, with optional metrics.
        ``total`` None: unknown (a run limited by a time budget alone; JSON ``null``, no bar fill)."""
        if self.mode == "jsonl":
            self._emit({"event": "progress", "stage": stage, "step": step, "total": total, "metrics": metrics})
        elif self.mode == "bar":
            now = time.monotonic()
            more = total is None or step < total
            if more and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            width = 30
            filled = 0 if total is None else int(width * step / max(total, 1))
            extra = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
            count = f"{step}" if total is None else f"{step}/{total}"
            line = f"\r{stage:<10} [{'#' * filled}{'.' * (width - filled)}] {count}  {extra}"
            sys.stderr.write(line[:160].ljust(80))
            self._bar_open = more
            if not more:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def message(self, stage: str, text: str) -> None:
        """A one-off status line (e.g. 'loaded 13 views')."""
        if self.mode == "jsonl":
            self._emit({"event": "message", "stage": stage, "message": text})
        elif self.mode == "bar":
            if self._bar_open:
                sys.stderr.write("\n")
                self._bar_open = False
            sys.stderr.write(f"{stage}: {text}\n")
            sys.stderr.flush()

    def result(self, stage: str, **fields: Any) -> None:
        """The outcome of a command (paths written, final metrics)."""
        if self.mode == "jsonl":
            self._emit({"event": "result", "stage": stage, **fields})

    def preview(self, stage: str, step: int, path: str) -> None:
        """An intermediate splat file was written (``--preview-dir``): a ``preview`` JSON line."""
        if self.mode == "jsonl":
            self._emit({"event": "preview", "stage": stage, "step": step, "path": path})
        elif self.mode == "bar":
            self.message(stage, f"preview {path}")

    def error(self, message: str) -> None:
        """A fatal error; in jsonl mode also as a JSON line so that parents need not parse stderr."""
        if self.mode == "jsonl":
            self._emit({"event": "error", "message": message})
