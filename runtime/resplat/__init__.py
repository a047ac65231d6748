"""resplat: the runtime of ReSplat for Blender.

A bpy-free package: splat scenes (:mod:`resplat.gaussians`), cameras and their conventions
(:mod:`resplat.cameras`), posed-view readers (:mod:`resplat.views`), a differentiable rasteriser
with CPU and CUDA backends (:mod:`resplat.render`), splat file formats (:mod:`resplat.formats`,
numpy only, importable without torch), 3DGS optimisation (:mod:`resplat.optim`), image metrics
(:mod:`resplat.metrics`) and the ``resplat`` command line (:mod:`resplat.cli`).

This module imports nothing heavy, so ``import resplat.formats`` works where torch is absent
(inside Blender).
"""

__version__ = "0.1.0"
