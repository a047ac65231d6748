"""End-to-end golden of the whole ReSplat model against the release code path.

``tests/data/golden/reconstruct_{small_dl3dv,base_re10k}.safetensors`` hold the release's
Gaussians for one scene (small-dl3dv: 3 views at 64x128, one Gaussian per 4x4 pixels; base-re10k:
2 views at 32x64, four Gaussians per 2x2 latent pixel, i.e. one per pixel) after the initial
prediction (iteration 0) and after 2 recurrent updates, produced in float64 with the seeded
weights of :func:`model_weights.seeded_state_dict` (every ``encoder.*`` manifest key, one
generator in manifest order, normal * 0.02, norm scales 1 + ...; BatchNorm ``running_var``
shifted by +1 so it is positive).

How the golden was produced (scratch folder ``/tmp/release_e2e`` outside the repository, never
committed; ``python make_golden.py small-dl3dv`` and ``python make_golden.py base-re10k``):

1. ``release_pipeline.py`` assembles the release's forward (mohammed1916/resplat cc4594a) from
   the scratch copies the three model engineers compared their parts with:
   - depth network: the release ``MultiViewUniMatch`` (``unimatch/*``, with DepthSplat's
     ``backbone.py``/``utils.py``), called as ``encoder_resplat.forward`` does
     (``attn_splits_list=[2]``, ``min_depth=1/far``, ``max_depth=1/near``, no ``nn_matrix`` for
     V <= 3, near/far 0.01/200);
   - the rest of ``encoder_resplat.forward`` for both layouts (DL3DV ``fixed_latent_size``
     latent 1/4; RE10K latent 1/2 with ``init_gaussian_multiple`` 4, (c x y) sub-pixel split,
     full-resolution depth and SH image) (feature concat with pixel shuffles, regressor,
     ``proj``, point cloud from ``sample_image_grid``/``get_world_rays``, the release point
     transformer ``point_transformer/layer.py`` with a brute-force ``pointops.knn_query`` stand-in,
     ``gaussian_head``, activations, ``build_covariance`` with xyzw quaternions rotated by the
     view's c2w, ``RGB2SH`` of the area-downsampled image) transcribed from the release file;
   - ``forward_update`` (``/tmp/release_update/release_ref.py``), 2 iterations, with stand-ins
     for what does not run here: gsplat -> our torch rasteriser on the release's covariances
     (eigendecomposed; eps2d 0.1, black background), torchvision's ResNet-18 -> our
     ``ResNetFeatures`` (same layout and taps), pointops -> ``resplat.model.knn``;
   - the dataset's pose normalisation ``camera_normalization``: ``inverse(c2w[V // 2]) @ c2w``.
2. ``make_golden.py`` draws the scene (seed 11: uint8 images; three cameras rotated about tilted
   axes by 0.05-0.15 rad and shifted in x, y and z by up to 0.3 m, the rig then placed in the
   world by a 0.9 rad rotation and a (1.5, -2, 0.7) m shift; distinct principal points), runs the
   pipeline in float64 and stores, for iterations 0 and 2, in the release's *model frame*
   (poses relative to the middle view): means, opacities and SH DC of every Gaussian (RE10K:
   every 3rd, ``index``), and for every 8th Gaussian (RE10K: every 31st, odd so that all 2x2
   sub-pixels occur; ``sub_index``) the covariance upper triangle and all 16 SH coefficients
   (channel-major [3, 16]); plus the inputs and the normalised poses ``model_c2w``. base-re10k
   uses the first 2 cameras of the same rig with K halved and its own uint8 images (seed 12).

The test runs our ``reconstruct`` (float64, 2 iterations, initial and final Gaussians taken from
its callback, in the input world) and ``ReSplatModel.forward_initial`` (model frame), maps the
golden to the world with the middle camera's c2w (means R m + t, covariances R C R^T, SH
compared as colours: ours at world direction d against the golden's at R^T d) and compares.
Measured agreement (float64): see ``TOL`` (about 100x the largest error seen). The goldens were
generated twice from fresh processes: byte-identical files. Mutations of our code this catches
(checked in scratch): head quaternions read as wxyz (covariances off by 1.8e-4 at iteration 0),
SH not rotated back to the world (colours off by 0.49), the model frame taken at view 0 instead
of V // 2 (world SH colours differ by 0.10; depth, means and features are frame-invariant).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from resplat.cameras import Cameras
from resplat.model import ReSplatModel, reconstruct
from resplat.render.sh import sh_basis

from model_weights import seeded_state_dict

GOLDEN = Path(__file__).parent / "data" / "golden"
PRESETS = ["small-dl3dv", "base-re10k"]
from dataclasses import replace  # noqa: E402

from resplat.model.config import PRESETS as PRESETS_BY_NAME  # noqa: E402
#: Absolute tolerances per iteration, about 100x the largest error measured over both presets
#: (float64; |means| up to 36 m, |C| up to 1e-3 m^2 at iteration 0, |SH| up to 2.9):
#: iteration 0: means 3.5e-12, covariances 3.4e-11, opacities 7.6e-15, SH 4.6e-14;
#: iteration 2: means 5.9e-10, covariances 5.8e-10, opacities 9.9e-11, SH DC 6.4e-10,
#: SH colours 7.4e-10. The covariance part and all of iteration 2's comes from the release's
#: pixelSplat ``quaternion_to_matrix`` (two_s = 2 / (|q|^2 + 1e-8), so its rotations are off by ~1e-8
#: relative; the covariances feed the renders, hence the updates): with that eps set to 0 in the
#: scratch pipeline every quantity agrees to <= 3.5e-12 (means) and <= 4.6e-14 (the rest).
TOL = {0: {"means": 4e-10, "covariances": 4e-9, "opacities": 1e-12, "sh_dc": 5e-12, "sh_colour": 5e-12},
       2: {"means": 6e-8, "covariances": 6e-8, "opacities": 1e-8, "sh_dc": 6e-8, "sh_colour": 6e-8}}


def golden_file(preset: str) -> Path:
    return GOLDEN / f"reconstruct_{preset.replace('-', '_')}.safetensors"


def seeded_model(preset: str) -> ReSplatModel:
    """float64 model with the seeded weights of the golden (BatchNorm ``running_var`` + 1)."""
    # these goldens were made by an earlier stand-in of the release's U-Net with 32-group
    # GroupNorm (the release's ldm_unet/util.py normalization() uses 8; goldens from the release
    # itself come from tests/data/golden/make_goldens.py); so they pin everything else of the port
    m = ReSplatModel(replace(PRESETS_BY_NAME[preset], unet_norm_groups=32), amp=False).double().eval()
    sd = {k: (1 + v if k.endswith("running_var") else v) for k, v in seeded_state_dict(preset, "encoder.").items()}
    m.encoder.load_state_dict(sd, strict=True)
    return m


@pytest.fixture(scope="module", params=PRESETS)
def case(request):
    """(golden tensors, float64 model) of one preset; the model is built once per preset."""
    from safetensors.torch import load_file

    yield load_file(str(golden_file(request.param))), seeded_model(request.param)


def _inputs(gold):
    images = gold["images_u8"].double() / 255
    v, _, h, w = images.shape
    return images, Cameras.from_c2w(gold["c2w"], gold["K"], w, h)


def _directions(n: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    d = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return d / d.norm(dim=-1, keepdim=True)


def _compare_world(ours, gold, it: int, errors: dict) -> None:
    """Our world Gaussians against the golden (model frame) of iteration ``it`` mapped to the world."""
    T = gold["c2w"][gold["c2w"].shape[0] // 2]
    R, t = T[:3, :3], T[:3, 3]
    p = f"iter{it}."
    sub = gold["sub_index"]
    idx = gold.get("index", torch.arange(len(ours)))  # Gaussians stored for means, opacities, SH DC
    iu = torch.triu_indices(3, 3)
    ref_means = gold[p + "means"] @ R.T + t
    cov_model = torch.zeros(len(sub), 3, 3, dtype=torch.float64)
    cov_model[:, iu[0], iu[1]] = gold[p + "sub.covariances"]
    cov_model = cov_model + cov_model.transpose(1, 2) - torch.diag_embed(cov_model.diagonal(dim1=1, dim2=2))
    ref_cov = R @ cov_model @ R.T
    dirs = _directions()
    # colour seen along world direction d = the model-frame colour along R^T d
    ours_col = torch.einsum("dk,nkc->ndc", sh_basis(3, dirs), ours.sh[sub])
    ref_col = torch.einsum("dk,nck->ndc", sh_basis(3, dirs @ R), gold[p + "sub.sh"])
    pairs = {
        "means": (ours.means[idx], ref_means),
        "covariances": (ours.covariances()[sub], ref_cov),  # from our world wxyz quaternions + scales
        "opacities": (ours.opacities[idx], gold[p + "opacities"]),
        "sh_dc": (ours.sh[idx, 0], gold[p + "sh_dc"]),
        "sh_colour": (ours_col, ref_col),
    }
    for name, (a, b) in pairs.items():
        assert a.shape == b.shape, (name, a.shape, b.shape)
        err = float((a - b).abs().max())
        errors[f"iter{it}.{name}"] = err
        assert err < TOL[it][name], f"iteration {it} {name}: max abs error {err:.3e} >= {TOL[it][name]:.0e}"


def test_reconstruct_matches_release_end_to_end(case):
    golden, model = case
    images, cams = _inputs(golden)
    seen = {}

    def callback(stage, it, total, gaussians):
        seen[it] = gaussians

    with torch.no_grad():
        final = reconstruct(images, cams, model, iterations=2, device="cpu", callback=callback, backend="torch")
    assert sorted(seen) == [0, 1, 2] and final.means.dtype == torch.float64
    errors = {}
    _compare_world(seen[0], golden, 0, errors)
    _compare_world(final, golden, 2, errors)
    print({k: f"{v:.1e}" for k, v in errors.items()})
    # the golden is not trivial: the updates moved the Gaussians and the rig is not one frame
    assert (golden["iter2.means"] - golden["iter0.means"]).abs().max() > 1e-2
    assert (golden["iter2.sub.sh"] - golden["iter0.sub.sh"]).abs().max() > 1e-2
    assert (golden["model_c2w"][:, :3, :3] - torch.eye(3, dtype=torch.float64)).abs().amax(dim=(1, 2))[0] > 0.05


def test_forward_initial_model_frame_matches_release(case):
    golden, model = case
    images, cams = _inputs(golden)
    with torch.no_grad():
        pred = model.forward_initial(images[None], cams)
    # the middle-view normalisation (release camera_normalization) is the model frame of the golden
    torch.testing.assert_close(torch.linalg.inv(pred.frame.reference[0]) @ golden["c2w"], golden["model_c2w"],
                               rtol=0, atol=1e-12)
    sub = golden["sub_index"]
    idx = golden.get("index", torch.arange(pred.means.shape[1]))
    tol = TOL[0]
    torch.testing.assert_close(pred.means[0, idx], golden["iter0.means"], rtol=0, atol=tol["means"])
    torch.testing.assert_close(pred.opacities[0, idx], golden["iter0.opacities"], rtol=0, atol=tol["opacities"])
    torch.testing.assert_close(pred.sh[0, sub], golden["iter0.sub.sh"], rtol=0, atol=tol["sh_dc"])  # all 16
    iu = torch.triu_indices(3, 3)
    cov = pred.gaussians[0].covariances()[sub][:, iu[0], iu[1]]  # model-frame wxyz quaternions + scales
    torch.testing.assert_close(cov, golden["iter0.sub.covariances"], rtol=0, atol=tol["covariances"])
