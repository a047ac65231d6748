"""The synthetic generator's scene kinds beyond closed rooms: open scenes (ground disc under a
world colour: depth 0 and the world's colour where nothing is hit), soft lights (shadow rays
spread uniformly over the light's disc), plain materials, and the world-scale spread (cameras
and depth scaled, images unchanged); with all fractions 0 it makes the first version's scenes
bit for bit."""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import replace

import torch

from resplat.data.generate import GeneratorConfig, make_scene
from resplat.data.raycast import SceneTensors
from resplat.data.render import sky_colour, soft_directions
from resplat.data.scene import Scene
from resplat.data.textures import linear_to_srgb


def test_default_options_reproduce_the_first_generator_version():
    """tests/data/generator_v1_scenes.npz holds scenes 0-2 of seed 0 (32x32, 4 views) made by
    the generator before open scenes existed (commit 6040cd0: ``make_scene(GeneratorConfig(width=32,
    height=32, views=4, context=2), 0, i)``). Compared within float32 rounding, not by hash: the
    last bits of numpy's and torch's vectorised maths differ between CPU instruction sets
    (AVX2 / AVX-512), so a hash made on one machine fails on another."""
    import numpy as np

    ref = np.load(Path(__file__).parent / "data" / "generator_v1_scenes.npz")
    cfg = GeneratorConfig(width=32, height=32, views=4, context=2)
    for i in range(3):
        images, depth, _, meta = make_scene(cfg, 0, i)
        torch.testing.assert_close(images, torch.from_numpy(ref[f"images{i}"]), atol=2e-5, rtol=0)
        torch.testing.assert_close(depth, torch.from_numpy(ref[f"depth{i}"]), atol=0, rtol=1e-5)
        assert meta["scene"]["room"] != "open" and "world_scale" not in meta


def test_open_scene_world_pixels_have_no_depth_and_the_world_colour():
    cfg = GeneratorConfig(width=48, height=48, views=3, context=2, open_fraction=1.0, supersample=1)
    images, depth, cameras, meta = make_scene(cfg, 11, 0)
    scene = Scene.from_dict(meta["scene"])
    assert scene.room == "open" and scene.sky_top is not None
    world = depth[:, 0] == 0
    assert world.any() and (~world).any() and torch.isfinite(depth).all()
    # recompute the world colour along each world pixel's ray
    from resplat.data.render import camera_rays
    st = SceneTensors.of(scene)
    for v in range(len(cameras)):
        _, d = camera_rays(cameras, v, 1)
        sky = linear_to_srgb(sky_colour(st, d)).reshape(48, 48, 3).permute(2, 0, 1)
        m = world[v]
        torch.testing.assert_close(images[v][:, m], sky[:, m], atol=2e-6, rtol=0)


def test_soft_light_directions_cover_the_light_disc_uniformly():
    ldir = torch.tensor([0.3, -0.2, 0.9])
    ldir = ldir / ldir.norm()
    radius = math.radians(10)
    d = soft_directions(ldir, radius, torch.arange(20000), 0)
    ang = torch.acos((d @ ldir).clamp(-1, 1))
    assert float(ang.max()) <= radius * 1.001
    # uniform over the disc (tangent plane): mean radial distance 2/3 of the radius
    assert abs(float(torch.tan(ang).mean()) / math.tan(radius) - 2 / 3) < 0.01
    assert torch.equal(d, soft_directions(ldir, radius, torch.arange(20000), 0))  # reproducible


def test_world_scale_spread_scales_cameras_and_depth_not_images():
    base = GeneratorConfig(width=32, height=32, views=4, context=2, open_fraction=0.5, soft_fraction=0.5,
                           smooth_fraction=0.5)
    img0, d0, cams0, _ = make_scene(base, 4, 2)
    img1, d1, cams1, meta = make_scene(replace(base, scale_decades=2.0), 4, 2)
    k = meta["world_scale"]
    assert 0.1 <= k <= 10 and abs(math.log10(k)) > 1e-3
    assert torch.equal(img0, img1)
    torch.testing.assert_close(d1, d0 * k)
    torch.testing.assert_close(cams1.centers, cams0.centers * k, rtol=1e-5, atol=1e-6)


def test_procedural_patterns_tile_exactly_and_reach_the_floor():
    """Patterns are exactly periodic (4 checker squares per tile at two levels), the floor of a
    pattern_fraction 1 scene draws one of them, a rendered checker floor shows its two levels
    where the floor is lit alike, and the option leaves the other draws of a scene unchanged."""
    import numpy as np

    from resplat.data.scene import random_scene
    from resplat.data.textures import ALL_TEXTURES, PATTERN_NAMES, TEXTURE_NAMES, pattern

    chk = pattern("checker", 64)[0]
    assert torch.equal(chk[:16, :16], torch.full((16, 16), chk[0, 0].item()))
    assert torch.equal(chk[:, :32], chk[:, 32:]) and torch.equal(chk[:16], chk[32:48])
    assert sorted({round(v, 4) for v in chk.unique().tolist()}) == [0.06, 0.8]
    assert chk[0, 0] != chk[0, 16] and chk[0, 0] == chk[16, 16]
    plain = random_scene(np.random.default_rng([3, 1]), open_fraction=1.0)
    patterned = random_scene(np.random.default_rng([3, 1]), open_fraction=1.0, pattern_fraction=1.0)
    o = len(plain.kinds)
    assert patterned.kinds == plain.kinds and torch.equal(patterned.centers, plain.centers)
    assert ALL_TEXTURES[int(patterned.texture[o])] in PATTERN_NAMES
    assert int(plain.texture[o]) < len(TEXTURE_NAMES)
    # the renderer draws it: same geometry (depth) as without patterns, other floor colours
    base = GeneratorConfig(width=48, height=48, views=2, context=1, open_fraction=1.0, rig="orbit", supersample=1)
    images0, depth0, _, meta0 = make_scene(base, 21, 0)
    images1, depth1, _, meta1 = make_scene(replace(base, pattern_fraction=1.0), 21, 0)
    torch.testing.assert_close(depth1, depth0, atol=0, rtol=0)
    floor = ALL_TEXTURES[meta1["scene"]["texture"][len(meta1["scene"]["kinds"])]]
    assert floor in PATTERN_NAMES and meta0["scene"]["texture"] != meta1["scene"]["texture"]
    assert float((images1 - images0).abs().amax(1).gt(0.05).float().mean()) > 0.2
