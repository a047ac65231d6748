"""Blender camera -> pinhole K and OpenGL c2w (resplat_addon/cameras.py), checked against Cycles:
a tiny emissive sphere must land at the pixel our K and c2w project it to, within ~1 px, for
every sensor fit, non-square resolutions, a pixel aspect and a lens shift. The transforms.json
it writes is read back by the runtime's own reader."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from addon_env import env  # noqa: F401 (fixture)


def _cams(addon):
    import importlib

    return importlib.import_module(addon.__name__ + ".cameras")


def test_intrinsics_closed_form(env):
    cams = _cams(env[1])
    # horizontal fit: fx = lens / sensor_width * width; principal point at the centre
    K = cams.intrinsics(50.0, 36.0, 24.0, "AUTO", 64, 48)
    np.testing.assert_allclose(K, [[50 / 36 * 64, 0, 32], [0, 50 / 36 * 64, 24], [0, 0, 1]], rtol=1e-12)
    # AUTO on a portrait image fits the *sensor width* to the larger (vertical) side
    K = cams.intrinsics(50.0, 36.0, 24.0, "AUTO", 48, 64)
    np.testing.assert_allclose(K[0, 0], 50 / 36 * 64, rtol=1e-12)
    # VERTICAL uses the sensor height over the image height; shift moves the centre the other way
    K = cams.intrinsics(35.0, 36.0, 24.0, "VERTICAL", 64, 40, shift_x=0.1, shift_y=-0.05)
    f = 35 / 24 * 40
    np.testing.assert_allclose(K, [[f, 0, 32 - 0.1 * 40], [0, f, 20 - 0.05 * 40], [0, 0, 1]], rtol=1e-12)
    with pytest.raises(env[1].runtime_formats.ResplatError, match="sensor fit"):
        cams.intrinsics(50.0, 36.0, 24.0, "DIAGONAL", 64, 48)


def _centroid(bpy, path):
    img = bpy.data.images.load(str(path), check_existing=False)
    w, h = img.size
    px = np.empty(w * h * 4, np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    lum = px.reshape(h, w, 4)[::-1, :, :3].sum(-1)  # Blender stores rows bottom-up
    lum = np.where(lum > 0.02 * lum.max(), lum, 0)
    v, u = np.mgrid[0:h, 0:w] + 0.5
    return np.array([(lum * u).sum(), (lum * v).sum()]) / lum.sum(), lum.max()


CASES = [  # (fit, width, height, pixel aspect x, y, shift x, y, lens)
    ("AUTO", 64, 48, 1, 1, 0.0, 0.0, 35),
    ("HORIZONTAL", 48, 64, 1, 1, 0.0, 0.0, 35),
    ("VERTICAL", 72, 40, 1, 1, 0.12, -0.08, 30),
    ("AUTO", 40, 64, 1, 1, -0.1, 0.1, 40),
    ("HORIZONTAL", 64, 48, 1, 1.25, 0.05, 0.05, 35),
]


def test_projection_matches_cycles(env, tmp_path):
    bpy, addon = env
    cams = _cams(addon)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 8
    scene.cycles.device = "CPU"
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.world = scene.world or bpy.data.worlds.new("w")
    scene.world.use_nodes = True
    scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.location = (0.3, -4.0, 1.1)
    cam.rotation_euler = (math.radians(80), 0.0, math.radians(5))
    cam.scale = (1.7, 1.7, 1.7)  # ignored by rendering, removed by c2w_without_scale
    mat = bpy.data.materials.new("glow")
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.remove(nodes["Principled BSDF"])
    em = nodes.new("ShaderNodeEmission")
    em.inputs["Strength"].default_value = 5.0
    mat.node_tree.links.new(em.outputs[0], nodes["Material Output"].inputs[0])
    points = np.array([[0.35, 0.2, 0.6], [-0.5, 0.4, 1.5]])
    for i, p in enumerate(points):
        bpy.ops.mesh.primitive_uv_sphere_add(radius=0.03, location=tuple(p), segments=16, ring_count=8)
        sphere = bpy.context.active_object
        sphere.data.materials.append(mat)
        sphere.hide_render = i == 1
    for k, (fit, w, h, ax, ay, sx, sy, lens) in enumerate(CASES):
        cam.data.sensor_fit, cam.data.lens, cam.data.shift_x, cam.data.shift_y = fit, lens, sx, sy
        scene.render.resolution_x, scene.render.resolution_y = w, h
        scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = ax, ay
        for i, sphere in enumerate(o for o in bpy.data.objects if o.type == "MESH"):
            sphere.hide_render = i != k % 2
        bpy.context.view_layer.update()
        scene.render.filepath = str(tmp_path / f"r{k}.png")
        bpy.ops.render.render(write_still=True)
        got, peak = _centroid(bpy, tmp_path / f"r{k}.png")
        assert peak > 0.1, f"case {k}: the sphere is not in the image"
        view = cams.camera_view(cam, w, h, ax, ay)
        want = cams.project(view, points[k % 2][None])[0]
        assert np.abs(got - want).max() < 1.0, (k, fit, got, want)
        # a wrong shift sign or fit would be off by several pixels
        assert 1 <= want[0] <= w - 1 and 1 <= want[1] <= h - 1


def test_refuses_ortho_and_panoramic_and_json_round_trip(env, tmp_path):
    import torch

    from resplat.views import read_views

    bpy, addon = env
    cams = _cams(addon)
    err = addon.runtime_formats.ResplatError
    for kind, word in (("ORTHO", "orthographic"), ("PANO", "panoramic")):
        ob = bpy.data.objects.new(f"C_{kind}", bpy.data.cameras.new(kind))
        ob.data.type = kind
        with pytest.raises(err, match=f"camera 'C_{kind}' is {word}"):
            cams.camera_view(ob, 32, 24)
    views, paths = [], []
    for i in range(2):
        ob = bpy.data.objects.new(f"P{i}", bpy.data.cameras.new(f"P{i}"))
        ob.location, ob.rotation_euler = (i, -3.0, 0.5), (1.3, 0.1 * i, 0.2)
        ob.data.shift_x = 0.05 * i
        bpy.context.view_layer.update()
        views.append(cams.camera_view(ob, 32, 24))
        img = bpy.data.images.new(f"im{i}", 32, 24)
        img.filepath_raw, img.file_format = str(tmp_path / f"P{i}.png"), "PNG"
        img.save()
        paths.append(tmp_path / f"P{i}.png")
    cams.write_transforms_json(tmp_path / "transforms.json", views, paths)
    back = read_views(tmp_path / "transforms.json")
    assert (back.cameras.width, back.cameras.height) == (32, 24)
    np.testing.assert_allclose(back.cameras.K.double().numpy(), np.stack([v.K for v in views]), rtol=1e-6)
    c2w_cv = np.stack([v.c2w @ np.diag([1.0, -1, -1, 1]) for v in views])
    np.testing.assert_allclose(torch.linalg.inv(back.cameras.w2c.double()).numpy(), c2w_cv, atol=1e-6)


def test_one_transforms_writer_for_runtime_and_extension(env, tmp_path):
    """The extension's file is the runtime writer's, byte for byte (same document, same writer),
    and an unwritable path is one error naming the file, with nothing left behind."""
    from resplat.cameras import Cameras
    from resplat.views.transforms_json import write_transforms_json as runtime_write

    bpy, addon = env
    cams = _cams(addon)
    views, paths = [], []
    for i in range(3):
        ob = bpy.data.objects.new(f"W{i}", bpy.data.cameras.new(f"W{i}"))
        ob.location, ob.rotation_euler = (i, -3.0, 0.5), (1.3, 0.1 * i, 0.2)
        bpy.context.view_layer.update()
        views.append(cams.camera_view(ob, 40, 30))
        paths.append(tmp_path / "img" / f"W{i}.png")
    cams.write_transforms_json(tmp_path / "a.json", views, paths)
    import torch

    w2c = torch.linalg.inv(torch.tensor(np.stack([v.c2w @ np.diag([1.0, -1, -1, 1]) for v in views])))
    K = torch.tensor(np.stack([v.K for v in views]))
    runtime_write(tmp_path / "b.json", Cameras(w2c=w2c, K=K, width=40, height=30), paths)
    a, b = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    # the extension keeps intrinsics per frame (share_intrinsics=False); everything else is equal
    shared = {k: b.pop(k) for k in ("fl_x", "fl_y", "cx", "cy")}
    for fa, fb in zip(a["frames"], b["frames"]):
        for k, v in shared.items():
            assert fa.pop(k) == pytest.approx(v, rel=1e-12)
        np.testing.assert_allclose(fa.pop("transform_matrix"), fb.pop("transform_matrix"), atol=1e-12)
        assert fa == fb
    assert {k: v for k, v in a.items() if k != "frames"} == {k: v for k, v in b.items() if k != "frames"}
    err = addon.runtime_formats.ResplatError
    with pytest.raises(err, match=r"missing.*transforms\.json"):
        cams.write_transforms_json(tmp_path / "missing" / "transforms.json", views, paths)
    assert not (tmp_path / "missing").exists()
