"""``--preview-dir DIR`` for ``resplat reconstruct`` and ``resplat optimize``: intermediate
splats written as ``DIR/preview_<stage>_<step>.ply`` (atomically, by the PLY writer's temporary
file + rename) and announced by a ``{"event": "preview", "stage", "step", "path"}`` JSON line,
so that a parent process (the Blender extension) can show the reconstruction as it improves."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ResplatError


def add_preview_options(p: argparse.ArgumentParser, every: bool = False) -> None:
    """--preview-dir (and, for iterative optimisation, --preview-every N steps)."""
    p.add_argument("--preview-dir", type=Path, default=None,
                   help="write preview_<stage>_<step>.ply here as the work proceeds (a 'preview' JSON line each)")
    if every:
        p.add_argument("--preview-every", type=int, default=100, metavar="N",
                       help="with --preview-dir: a preview every N optimisation steps (default 100)")


class PreviewWriter:
    """Writes previews into ``folder`` (created if missing); a no-op when ``folder`` is None.

    Raises:
        ResplatError: the folder cannot be created (before any work starts).
    """

    def __init__(self, folder: Path | None, progress):
        self.folder = folder
        self.progress = progress
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ResplatError(f"{folder}: cannot create the preview folder ({exc.strerror})") from None

    def __call__(self, stage: str, step: int, gaussians) -> None:
        """Write ``gaussians`` (:class:`~resplat.gaussians.Gaussians`, any device) as the preview
        of ``stage`` after ``step`` and emit the preview event."""
        if self.folder is None:
            return
        from ..formats import write_splats

        path = self.folder / f"preview_{stage}_{step}.ply"
        write_splats(gaussians.detach().to("cpu"), path)
        self.progress.preview(stage, step, str(path))
