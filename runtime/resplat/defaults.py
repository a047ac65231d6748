"""Defaults and limits of the reconstruct / optimise options, in one place (no torch, no numpy).

Read by the command line (:mod:`resplat.cli`), the library functions that have such a default
(:mod:`resplat.model.postprocess`, :mod:`resplat.model.checkpoint`) and the Blender extension,
which imports this module from its bundled copy of the runtime (``resplat_addon/runtime_formats.py``)
for its property defaults and bounds, so a default changed here changes everywhere.
"""

from __future__ import annotations

#: Recurrent update iterations ``resplat reconstruct`` runs with the embedded ``tiny`` model
#: when ``--iterations`` is not given (a checkpoint's own default is its preset's
#: ``ModelConfig.default_iterations``). 2: with Blender's depth (the extension's default) they
#: raise held-out content PSNR on the three third-party assets from 19.39 / 18.33 / 17.84 to
#: 20.43 / 20.50 / 20.04 dB, more iterations add nothing (4: 20.39 / 19.96 / 19.65); RGB only they
#: cost 0.2 / 0.2 / 0.7 dB (runtime/resplat/model/weights/tiny-eval.md), and ``KEEP_ITERATION``
#: hands back the initial prediction where they fit the input views worse.
EMBEDDED_ITERATIONS = 2
#: Which iteration ``resplat reconstruct`` hands back (``--keep``, :func:`resplat.model.reconstruct`):
#: "best", the one whose renders match the input views best, so that an update that raises the
#: input-view error is never returned (it lowered held-out content PSNR as well on every
#: third-party asset of runtime/resplat/model/weights/tiny-eval.md); "last" as the release.
KEEP_ITERATION = "best"
#: Most recurrent iterations selectable at inference (0 = the initial prediction only); the
#: paper evaluates up to 8 (arXiv 2510.08575, section 4.3).
MAX_ITERATIONS = 8

#: Opacity below which ``resplat reconstruct`` drops Gaussians after the last iteration: 3DGS's
#: pruning threshold (Kerbl et al. 2023, ``min_opacity`` 0.005), below which a Gaussian barely
#: changes any pixel.
PRUNE_OPACITY = 0.005
#: Highest prune threshold the extension offers (the CLI accepts [0, 1)).
MAX_PRUNE_OPACITY = 0.5

#: Optimisation steps of the reconstruct polish (``--optimize-steps``): none.
POLISH_STEPS = 0
#: Densification of the reconstruct polish (``--strategy``, :func:`resplat.model.polish`):
#: 3DGS's adaptive density control. Measured from the embedded model's depth-placed prediction on
#: the three third-party assets: on a 2-minute budget +1.9 dB held-out content PSNR over no
#: densification (spider, benchmarks/results/polish_curve_spider.md) and +1.2 dB over MCMC at
#: 150 s (polish_curve_150s.md); on a 30 s budget it does not refine yet and equals "none"
#: (polish_curve_30s.md), which is what so short a run should do.
POLISH_STRATEGY = "default"
#: Steps of ``resplat optimize`` when ``--steps`` is not given.
OPTIMIZE_STEPS = 1000
#: Steps the extension's "Optimisation Only" runs when its step count is 0 (a quick fit).
OPTIMIZE_ONLY_STEPS = 500
#: Most optimisation steps the extension offers.
MAX_STEPS = 100_000

#: Random (or depth-placed) initial Gaussians of ``resplat optimize --random / --depth-init``
#: as the extension starts them.
RANDOM_COUNT = 20_000
#: Most initial Gaussians the extension offers.
MAX_RANDOM_COUNT = 10_000_000

#: Wall-clock polish budgets the extension offers besides off and a custom value (seconds).
POLISH_SECONDS = (30.0, 120.0)
#: The extension's Polish choice by default (seconds, one of :data:`POLISH_SECONDS`; the command
#: line polishes only when asked): 30 s of polish with densification lift the embedded model's
#: depth-placed prediction on the third-party spider from 17.41 to 21.78 dB held-out content PSNR
#: (benchmarks/results/polish_curve_spider.md, 2 CPU threads), the largest gain an artist gets
#: for half a minute, where the prediction alone is still blurred.
EXTENSION_POLISH_SECONDS = 30.0

#: The order ``--device auto`` tries devices in (:func:`resplat.device.resolve_device`).
DEVICE_AUTO_ORDER = ("cuda", "mps", "cpu")
#: Devices a user can name (``cuda:N`` selects a CUDA device by index).
DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")
#: ``auto``'s rule in words, for help texts and the extension's device menu.
DEVICE_AUTO_TEXT = ", then ".join(d.upper() for d in DEVICE_AUTO_ORDER)
