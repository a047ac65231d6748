"""base-re10k against the release's own Gaussians (golden ``release_re10k_2v``: 2 views of
32x64, four Gaussians per 2x2 latent pixel, i.e. one per pixel, initial prediction and 2
recurrent updates), in float64. Goldens, comparison and tolerances: test_model_golden_e2e.py
(kept apart because building the float64 base model with its seeded weights alone takes ~10 s)."""

from __future__ import annotations

from test_model_golden_e2e import CASES, TOL64, check, compare, load_case, run_ours, seeded_model


def test_re10k_matches_release():
    gold = load_case("re10k_2v")
    model = seeded_model.__wrapped__("base-re10k")  # not cached: 1.8 GB in float64
    assert model.config.unet_norm_groups == 8 and model.config.gaussians_per_point == 4
    seen = run_ours(gold, model, CASES["re10k_2v"][1])
    for it, g in seen.items():
        errors = compare(g, gold, it)
        print("re10k_2v", it, {k: f"{e:.1e}" for k, e in errors.items()})
        check(errors, TOL64[0 if it == 0 else "update"], f"re10k_2v iteration {it} (float64)")
