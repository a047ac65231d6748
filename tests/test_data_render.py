"""The synthetic-data ray caster against analytic answers: a sphere's depth and silhouette, a
plane's per-pixel depth, a fronto-parallel textured floor reproducing its photo, hard shadows,
and supersampling equal to rendering at s-times the resolution and box-filtering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch

from resplat.cameras import Cameras, intrinsics_matrix
from resplat.data import Scene, look_at, render_scene
from resplat.data.textures import TEXTURE_NAMES, linear_to_srgb, srgb_to_linear, texture_bank

F64 = torch.float64


def make_scene(kinds=(), centers=(), scales=(), room="dome", half=30.0, height=30.0, floor_tex="grass",
               lights=((0.3, -0.4, 0.866, 0.8),), ambient=0.25, shadows=True, floor_tile=1.0) -> Scene:
    o = len(kinds)
    tex = [TEXTURE_NAMES.index("coffee")] * o + [TEXTURE_NAMES.index(floor_tex), TEXTURE_NAMES.index("brick")]
    dirs = torch.tensor([l[:3] for l in lights], dtype=F64).reshape(-1, 3)
    dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return Scene(kinds=list(kinds), centers=torch.tensor(centers, dtype=F64).reshape(o, 3),
                 rotations=torch.eye(3, dtype=F64).expand(o, 3, 3).clone(), scales=torch.tensor(scales, dtype=F64).reshape(o, 3),
                 texture=torch.tensor(tex), tint=torch.ones(o + 2, 3, dtype=F64),
                 tile=torch.tensor([1.0] * o + [floor_tile, 2.0], dtype=F64), specular=torch.zeros(o + 2, dtype=F64),
                 shininess=torch.full((o + 2,), 20.0, dtype=F64), room=room, half=half, height=height,
                 light_dirs=dirs, light_colors=torch.tensor([[l[3]] * 3 for l in lights], dtype=F64).reshape(-1, 3),
                 ambient=torch.full((3,), ambient, dtype=F64), shadows=shadows)


def camera(eye, target, w, h, f, cx=None, cy=None) -> Cameras:
    K = intrinsics_matrix(f, f, w / 2 if cx is None else cx, h / 2 if cy is None else cy)
    c2w = torch.tensor(look_at(np.array(eye, float), np.array(target, float)), dtype=torch.float32)
    return Cameras.from_c2w(c2w[None], K, w, h)


def pixel_rays(cam: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """float64 world ray origin [3] and directions [H, W, 3] (camera z component 1) through
    pixel centres (half-integers), computed independently of the renderer."""
    K = cam.K[0].double().numpy()
    c2w = cam.c2w[0].double().numpy()
    u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    dc = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    return c2w[:3, 3], dc @ c2w[:3, :3].T


def test_sphere_centre_depth_silhouette_and_every_pixel_depth():
    r, dist, f, n = 1.0, 6.0, 60.0, 65
    z = 10.0  # high above the floor, so that nothing else is nearer than the sphere's far side
    scene = make_scene(["ellipsoid"], [[0, 0, z]], [[r, r, r]])
    cam = camera([0, -dist, z], [0, 0, z], n, n, f)
    out = render_scene(scene, cam, supersample=2)
    depth = out.depth[0, 0].double().numpy()
    assert out.images.shape == (1, 3, n, n) and out.images.dtype == torch.float32
    assert 0 <= out.images.min() and out.images.max() <= 1
    assert depth[n // 2, n // 2] == pytest.approx(dist - r, abs=1e-5)
    # float64 ray-sphere z-depth for every pixel centre
    o, d = pixel_rays(cam)
    oc = o - np.array([0, 0, z])
    a, b, c = (d * d).sum(-1), (d * oc).sum(-1), (oc * oc).sum() - r * r
    disc = b * b - a * c
    hit = disc >= 0
    t_ref = (-b - np.sqrt(np.clip(disc, 0, None))) / a
    assert ((depth < dist) == hit).all()
    np.testing.assert_allclose(depth[hit], t_ref[hit], atol=2e-5)
    # projected silhouette: a circle of radius f r / sqrt(D^2 - r^2) pixels
    radius = f * r / math.sqrt(dist ** 2 - r ** 2)
    assert math.sqrt(hit.sum() / math.pi) == pytest.approx(radius, abs=0.25)


def test_floor_depth_per_pixel_off_centre_principal_point():
    scene = make_scene(room="dome", half=30.0)
    cam = camera([0.3, -4.0, 1.5], [0.5, 0.0, 0.0], 48, 40, 40.0, cx=20.5, cy=17.0)
    depth = render_scene(scene, cam, supersample=1).depth[0, 0].double().numpy()
    o, d = pixel_rays(cam)
    t_floor = np.where(d[..., 2] < 0, -o[2] / np.minimum(d[..., 2], -1e-12), np.inf)
    floor = np.isfinite(t_floor) & (t_floor < 20)
    assert floor.sum() > 0.5 * floor.size
    np.testing.assert_allclose(depth[floor], t_floor[floor], rtol=1e-5)


def test_box_room_wall_has_constant_z_depth():
    # camera looking straight at the wall x = 5 from x = 1: every wall pixel has z-depth 4
    scene = make_scene(room="box", half=5.0, height=4.0)
    cam = camera([1.0, 0.5, 1.5], [2.0, 0.5, 1.5], 40, 32, 30.0)
    depth = render_scene(scene, cam, supersample=1).depth[0, 0].double().numpy()
    o, d = pixel_rays(cam)
    z_at_wall = o[2] + 4.0 * d[..., 2]
    wall = (z_at_wall > 0.01) & (z_at_wall < 3.99)
    assert wall.sum() > 0.5 * wall.size
    np.testing.assert_allclose(depth[wall], 4.0, atol=1e-5)
    assert (depth[~wall] < 4.0).all()  # floor and ceiling are nearer


def test_fronto_parallel_floor_reproduces_the_photo():
    size, tile, hgt, n = 256, 1.0, 2.0, 64
    pitch = tile / size  # metres per texel; f makes one pixel one texel
    a0, b0 = 37, 101  # texel offset of the image's top-left pixel
    scene = make_scene(floor_tex="astronaut", lights=(), ambient=1.0, shadows=False, floor_tile=tile)
    K = intrinsics_matrix(hgt / pitch, hgt / pitch, n / 2, n / 2)
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]).T  # x right, image down = -y, looking down
    c2w[:3, 3] = torch.tensor([pitch * (n / 2 + a0), -pitch * (n / 2 + b0), hgt])
    out = render_scene(scene, Cameras.from_c2w(c2w[None], K, n, n), supersample=1, texture_size=size)
    img = out.images[0].permute(1, 2, 0).numpy()
    bank = texture_bank(size)
    lin = bank.texels[bank.offsets[bank.index("astronaut"), 0]:][: size * size].reshape(size, size, 3)
    ref = linear_to_srgb(lin).numpy()[b0:b0 + n, a0:a0 + n]
    np.testing.assert_allclose(img, ref, atol=2e-5)
    np.testing.assert_allclose(out.depth[0, 0].numpy(), hgt, rtol=1e-6)
    # independent check of orientation: the photo itself, 2x2 block means (512 -> 256)
    photo = skimage.data.astronaut().astype(np.float64) / 255
    photo = photo.reshape(256, 2, 256, 2, 3).mean((1, 3))[b0:b0 + n, a0:a0 + n]
    corr = lambda x, y: np.corrcoef(x.ravel(), y.ravel())[0, 1]  # noqa: E731
    assert corr(img, photo) > 0.97
    assert corr(img, photo[:, ::-1]) < 0.9 and corr(img, photo[::-1]) < 0.9  # not mirrored


def test_hard_shadow_leaves_only_ambient():
    # a floating sphere, sun at 45 degrees from +x: its shadow's centre is the floor point (-2, 0, 0)
    s = math.sqrt(0.5)
    kw = dict(kinds=["ellipsoid"], centers=[[0, 0, 2.0]], scales=[[1.0, 1.0, 1.0]], lights=((s, 0, s, 0.9),), ambient=0.2)
    cam = camera([-2.0, -5.0, 4.0], [-2.0, 0.0, 0.0], 33, 33, 30.0)
    lit = srgb_to_linear(render_scene(make_scene(shadows=False, **kw), cam, supersample=1).images.double())
    shad = srgb_to_linear(render_scene(make_scene(shadows=True, **kw), cam, supersample=1).images.double())
    c = 16  # the camera looks at (-2, 0, 0) through the centre pixel
    ratio = shad[0, :, c, c] / lit[0, :, c, c]
    np.testing.assert_allclose(ratio.numpy(), 0.2 / (0.2 + 0.9 * s), rtol=2e-3)
    assert (shad <= lit + 1e-6).all()
    assert torch.allclose(shad[0, :, :, 0], lit[0, :, :, 0], atol=1e-6)  # far from the shadow: same


def test_supersampling_is_the_box_filtered_higher_resolution_render():
    scene = make_scene(["box", "ellipsoid", "cylinder"], [[0.5, 0, 0.5], [-1, 0.5, 0.6], [0.3, 1.2, 0.4]],
                       [[0.5, 0.4, 0.5], [0.6, 0.6, 0.6], [0.3, 0.3, 0.4]])
    cam = camera([1.0, -4.0, 2.0], [0, 0.3, 0.4], 24, 20, 22.0)
    ss = render_scene(scene, cam, supersample=2).images.double()
    hi = render_scene(scene, cam.resized(48, 40), supersample=1).images.double()
    box = srgb_to_linear(hi).reshape(1, 3, 20, 2, 24, 2).mean((3, 5))
    np.testing.assert_allclose(srgb_to_linear(ss).numpy(), box.numpy(), atol=2e-6)
    assert (srgb_to_linear(ss) - srgb_to_linear(hi[..., ::2, ::2])).abs().max() > 0.05  # edges really are averaged


@pytest.mark.parametrize("kind", ["box", "cylinder", "cone"])
def test_side_view_depth_of_box_cylinder_cone(kind):
    """Camera on -y looking +y at the object's centre: along the centre column the front surface
    is the plane y = -sy (box), the line y = -r (cylinder), or the cone's generator
    y = -r (1 - z_local) / 2, whose z-depth has a closed form per row."""
    dist, z, n, f = 6.0, 10.0, 41, 50.0
    sx, sy, sz = 0.8, 0.6, 1.0
    scene = make_scene([kind], [[0, 0, z]], [[sx, sy if kind == "box" else sx, sz]])
    depth = render_scene(scene, camera([0, -dist, z], [0, 0, z], n, n, f), supersample=1).depth[0, 0].double().numpy()
    eta = (np.arange(n) + 0.5 - n / 2) / f  # world dz per unit z-depth, downwards positive
    col = depth[:, n // 2]
    if kind == "cone":
        t = (dist - sx / 2) / (1 + sx * eta / (2 * sz))
    else:
        t = np.full(n, dist - (sy if kind == "box" else sx))
    inside = np.abs(t * eta) < sz - 1e-3
    assert inside.sum() >= 10
    np.testing.assert_allclose(col[inside], t[inside], atol=2e-5)
    if kind == "box":  # the whole front face is one plane
        x = (np.arange(n) + 0.5 - n / 2) / f * (dist - sy)
        face = (np.abs(x)[None, :] < sx - 1e-3) & (np.abs((dist - sy) * eta)[:, None] < sz - 1e-3)
        np.testing.assert_allclose(depth[face], dist - sy, atol=2e-5)


def test_render_refuses_cameras_outside_the_room_and_bad_supersampling():
    from resplat.errors import CameraError

    scene = make_scene(room="box", half=5.0, height=4.0)
    with pytest.raises(CameraError, match=r"camera #0: centre .* outside the scene's room"):
        render_scene(scene, camera([6.0, 0.0, 1.0], [0.0, 0.0, 1.0], 8, 8, 8.0))
    with pytest.raises(CameraError, match="supersample must be >= 1"):
        render_scene(scene, camera([1.0, 0.0, 1.0], [0.0, 0.0, 1.0], 8, 8, 8.0), supersample=0)
