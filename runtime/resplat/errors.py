"""Error types of the resplat runtime.

Every error that bad *input* can cause (a malformed file, an unusable camera, an impossible
option) is a :class:`ResplatError`. Its message is one line that names the file, camera or value
at fault; the CLI prints exactly that line and exits non-zero, and the Blender extension shows it
as a report. Anything else escaping the runtime is a bug.
"""

from __future__ import annotations

import os


class ResplatError(Exception):
    """Base class of every user-facing runtime error (one-line message, no traceback needed)."""


class SplatFileError(ResplatError):
    """A splat file (PLY, .splat, .spz) cannot be read or written.

    Attributes:
        path: the file at fault.
        problem: what is wrong with it, in words.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ViewsError(ResplatError):
    """Posed views (transforms.json, COLMAP model, images) cannot be read or are inconsistent."""


class CameraError(ResplatError):
    """A camera cannot be used (non-finite or non-rigid pose, bad intrinsics, bad size)."""


class BackendError(ResplatError):
    """The requested rasteriser backend cannot run here (e.g. gsplat without CUDA)."""


class CancelledError(ResplatError):
    """Work was cancelled by a progress callback returning ``False``."""
