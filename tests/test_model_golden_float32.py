"""The small-dl3dv goldens of the release (test_model_golden_e2e.py) reproduced by a float32
run of our model, as inference runs: float32 weights and inputs, the release's float64 goldens.

Tolerances (relative L2 error, per tensor; the float32 errors measured were <= 6.3e-6 on
means, 9.6e-6 on opacities, 7.9e-5 on SH and 1.5e-4 on covariances): 1e-3 on means, opacities
and SH -- float32 round-off through ~40 layers; 3e-2 on covariances -- the point transformer's
kNN (k = 16) may pick a different 16th neighbour among near-ties in float32 than in float64
(2 of 1536 points of small_3v and 4 of 4096 of small_4v have a different 16-NN set of their
initial means), which changes the attention of those points and shows first in their scales
and rotations: small here, about 1e-2 relative on the covariances has been seen in runs of 4+
views. The 32-group U-Net of the old stand-in is off by 3e-2 on the means, which 1e-3 catches.
"""

from __future__ import annotations

import pytest
import torch

from test_model_golden_e2e import CASES, check, compare, load_case, run_ours, seeded_model

TOL32 = {"means": 1e-3, "covariances": 3e-2, "opacities": 1e-3, "sh_dc": 1e-3, "sh_colour": 1e-3}


@pytest.mark.parametrize("name", ["small_3v", "small_4v", "small_8v"])
def test_float32_matches_release(name):
    gold = load_case(name)
    preset, updates = CASES[name]
    seen = run_ours(gold, seeded_model(preset, torch.float32), updates, torch.float32)
    for it, g in seen.items():
        assert g.means.dtype == torch.float32
        errors = compare(g, gold, it)
        print(name, it, {k: f"{e:.1e}" for k, e in errors.items()})
        check(errors, TOL32, f"{name} iteration {it} (float32)")
