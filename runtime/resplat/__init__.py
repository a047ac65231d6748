"""resplat: the runtime of ReSplat for Blender.

A bpy-free package: splat scenes (:mod:`resplat.gaussians`), cameras and their conventions
(:mod:`resplat.cameras`), posed-view readers (:mod:`resplat.views`), a differentiable rasteriser
with CPU and CUDA backends (:mod:`resplat.render`), splat file formats (:mod:`resplat.formats`,
numpy only, importable without torch), 3DGS optimisation (:mod:`resplat.optim`), image metrics
(:mod:`resplat.metrics`) and the ``resplat`` command line (:mod:`resplat.cli`).

The public API is reachable from the top level: ``resplat.read_splats``, ``resplat.write_splats``,
``resplat.Gaussians``, ``resplat.Cameras``, ``resplat.render``, ``resplat.optimize`` and
``resplat.reconstruct``. They are loaded lazily on first access (PEP 562 ``__getattr__``), so
this module imports nothing heavy and ``import resplat.formats`` works where torch is absent
(inside Blender).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> (module, attribute), imported on first access.
_LAZY = {
    "read_splats": ("resplat.formats", "read_splats"),
    "write_splats": ("resplat.formats", "write_splats"),
    "Gaussians": ("resplat.gaussians", "Gaussians"),
    "Cameras": ("resplat.cameras", "Cameras"),
    "render": ("resplat.render", "render"),
    "optimize": ("resplat.optim.loop", "optimize"),
    "reconstruct": ("resplat.model.reconstruct", "reconstruct"),
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'resplat' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
