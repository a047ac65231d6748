"""The model frame (resplat.model.frame): the same views with the world scaled by 0.05 and by 20
reconstruct to the same Gaussians scaled accordingly; the depth range comes from the cameras or
the depth maps and its candidates are dense where the content is; exact depth maps place the
initial Gaussians on them; the released presets keep the release's metric frame.
Tiny preset with random weights, 3 views of 64x64."""

from __future__ import annotations

import math

import torch

from resplat.cameras import Cameras, K_from_fov, rigid_inverse
from resplat.data.rigs import look_at
from resplat.model.config import PRESETS
from resplat.model.depth.cost_volume import log_depth_candidates
from resplat.model.encoder import ReSplatModel
from resplat.model.frame import make_model_frame
from resplat.model.initial import BACKGROUND_DEPTH_FACTOR, behind_known, block_depth
from resplat.model.reconstruct import reconstruct

import numpy as np

TINY = PRESETS["tiny"]


def _orbit(v=3, radius=3.0, w=64, h=64, k=1.0):
    c2w = []
    for i in range(v):
        a = math.radians(-25 + 25 * i)
        eye = np.array([radius * math.sin(a), -radius * math.cos(a), 1.2])
        c2w.append(look_at(eye, np.array([0.0, 0.0, 0.3])))
    c2w = torch.tensor(np.stack(c2w), dtype=torch.float64)
    c2w[:, :3, 3] *= k
    return Cameras.from_c2w(c2w.float(), K_from_fov(math.radians(55), w, h), w, h)


def _model(seed=0):
    torch.manual_seed(seed)
    m = ReSplatModel(TINY).eval()
    with torch.no_grad():  # non-zero head outputs, so scales, offsets and SH are exercised
        m.encoder.gaussian_head[-1].weight.normal_(0, 0.02)
    return m


def test_scaled_world_gives_scaled_gaussians():
    torch.manual_seed(1)
    images = torch.rand(3, 3, 64, 64)
    model = _model()
    ref = reconstruct(images, _orbit(), model, iterations=1, device="cpu")
    for k in (0.05, 20.0):
        out = reconstruct(images, _orbit(k=k), model, iterations=1, device="cpu")
        rel = lambda a, b: float((a - b).norm() / b.norm())
        assert rel(out.means, ref.means * k) < 1e-4
        assert rel(out.scales, ref.scales * k) < 1e-4
        assert rel(out.opacities, ref.opacities) < 1e-4
        assert rel(out.sh, ref.sh) < 1e-4


def test_depth_range_from_cameras_and_from_depth_maps():
    cams = _orbit()
    frame = make_model_frame(cams.c2w[None], TINY)
    assert frame.source == ["lookat"]
    # the cameras look at (0, 0, 0.3) from ~3.1 m: the frame puts that at frame_distance
    w2c = rigid_inverse(cams.c2w.double())
    z = (w2c[:, :3, :3] @ torch.tensor([0.0, 0.0, 0.3], dtype=torch.float64) + w2c[:, :3, 3])[:, 2]
    assert abs(float(frame.scale[0]) - float(z.mean()) / TINY.frame_distance) < 1e-3
    lo, hi = TINY.lookat_range
    assert float(frame.near[0]) == TINY.frame_distance * lo and float(frame.far[0]) == TINY.frame_distance * hi
    # content spanning 1-3 m (and world pixels without depth): candidates <= 5 % apart
    gen = torch.Generator().manual_seed(0)
    depth = 1 + 2 * torch.rand(1, 3, 64, 64, generator=gen)
    depth[..., :8, :] = 0
    frame = make_model_frame(cams.c2w[None], TINY, depth)
    assert frame.source == ["depth"]
    cand = log_depth_candidates(frame.near, frame.far, TINY.num_depth_candidates)
    step = float((cand[0, 1:] - cand[0, :-1]).exp().max()) - 1
    assert step <= 0.05, step
    s = float(frame.scale[0])
    assert frame.near[0] * s <= 1.0 and frame.far[0] * s >= 3.0 and frame.far[0] * s < 3.5
    # the release's constants: 32 candidates over 0.01-200 m are 38 % apart
    assert math.exp(math.log(200 / 0.01) / 31) - 1 > 0.37


def test_forward_rig_and_metric_presets():
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([-0.1, 0.0, 0.1])
    frame = make_model_frame(c2w[None], TINY)
    assert frame.source == ["baseline"]
    baseline = float(c2w[:, :3, 3].norm(dim=-1).mean())
    assert abs(float(frame.scale[0]) - TINY.baseline_depth_ratio * baseline / TINY.frame_distance) < 1e-6
    lo, hi = TINY.baseline_range
    assert float(frame.near[0]) == TINY.frame_distance * lo and float(frame.far[0]) == TINY.frame_distance * hi
    for name in ("small-dl3dv", "base-dl3dv", "base-re10k"):
        f = make_model_frame(c2w[None], PRESETS[name])
        assert f.source == ["metric"] and float(f.scale[0]) == 1.0
        assert float(f.near[0]) == PRESETS[name].near and float(f.far[0]) == PRESETS[name].far


def test_exact_depth_places_initial_gaussians():
    torch.manual_seed(2)
    images = torch.rand(3, 3, 64, 64)
    cams = _orbit()
    depth = 2.5 + torch.rand(1, 3, 64, 64)
    depth[:, :, 40:, :] = float("inf")  # the world background: no depth there
    model = _model()
    with torch.no_grad():
        pred = model.encoder.forward_initial(images[None], cams, depth)
    g = pred.world_gaussians(0)
    known = pred.depth_known[0]
    v, gh, gw = pred.grid
    assert known.reshape(v, gh, gw)[:, :10].all() and not known.reshape(v, gh, gw)[:, 10:].any()
    expect = block_depth(depth.double(), 64 // gh).reshape(-1)
    view = pred.view_index
    w2c = rigid_inverse(cams.c2w.double())[view]
    z = (w2c[:, :3, :3] @ g.means.double()[:, :, None])[:, 2, 0] + w2c[:, 2, 3]
    torch.testing.assert_close(z[known], expect[known], rtol=1e-5, atol=0)
    # the background blocks (nothing hit) stay behind the farthest known depth
    assert float(z[~known].min()) >= BACKGROUND_DEPTH_FACTOR * float(expect[known].max()) * (1 - 1e-5)
    # the same scene without depth: the network's own depth (elsewhere)
    with torch.no_grad():
        free = model.encoder.forward_initial(images[None], cams).world_gaussians(0)
    assert float((free.means[known] - g.means[known]).norm(dim=-1).max()) > 0.1


def test_behind_known_raises_only_what_is_nearer_than_the_far_bound():
    nan = float("nan")
    known = torch.tensor([[[[1.0, 2.0], [nan, nan]]], [[[nan, nan], [nan, nan]]]], dtype=torch.float64)
    net = torch.tensor([[[[9.0, 9.0], [1.5, 3.0]]], [[[0.5, 7.0], [1.0, 2.0]]]], dtype=torch.float64)
    out = behind_known(net, known, factor=1.2)
    # scene 0: far bound 1.2 x 2 = 2.4 raises 1.5 and keeps 3; scene 1 has no known block
    torch.testing.assert_close(out[0, 0, 1], torch.tensor([2.4, 3.0], dtype=torch.float64))
    torch.testing.assert_close(out[1], net[1])


def test_block_depth_takes_the_median_of_valid_pixels():
    d = torch.tensor([[1.0, 2.0, 0.0, 0.0], [3.0, float("nan"), 0.0, float("inf")]])[None, None]
    out = block_depth(d, 2)
    assert float(out[0, 0, 0, 0]) == 2.0 and math.isnan(float(out[0, 0, 0, 1]))


def test_forward_rigs_of_the_generator_fall_inside_the_depth_range():
    """Forward-facing rigs (no look-at point, no depth): the baseline prior must put the
    generator's scenes inside the plane sweep's range; 8 baselines and 0.1-5 x the frame
    distance (the first prior) left the median depth of most of them beyond far."""
    import numpy as np

    from resplat.data.rigs import sample_rig
    from resplat.data.scene import random_scene

    inside, medians = 0, []
    for i in range(12):
        rng = np.random.default_rng([5, i])
        scene = random_scene(rng, 3, 6)
        cams, params = sample_rig(rng, scene, 8, "forward", 32, 32)
        frame = make_model_frame(cams.c2w[None], TINY)
        assert frame.source == ["baseline"]
        # depth of the scene's object centres, a stand-in for the rendered depth
        w2c = rigid_inverse(cams.c2w.double())
        z = (w2c[:, None, :3, :3] @ scene.centers.double()[None, :, :, None])[..., 0][..., 2] + w2c[:, None, :3, 3][..., 2]
        med = float(z[z > 0].median()) / float(frame.scale[0])
        medians.append(med)
        inside += float(frame.near[0]) < med < float(frame.far[0])
    assert inside >= 11, medians
