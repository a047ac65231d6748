"""Splat display (headless bpy 5.0.1): the "ReSplat Display" modifier after import, evaluated
instances/points against float64 references for both attribute schemas, one known splat's
world-space ellipsoid bounds, and the random fraction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from addon_env import env  # noqa: F401 (fixture)
from resplat.formats import read_splat_arrays

C0 = 0.28209479177387814


def _mods():
    from bl_ext.user_default.resplat.resplat_addon import display
    from bl_ext.user_default.resplat.resplat_addon.splats import pointcloud, schema
    return display, pointcloud, schema


def _geometry(bpy, ob):
    return ob.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()


def _read(attrs, name, width, key):
    a = attrs[name]
    out = np.empty(len(a.data) * width, np.float32)
    a.data.foreach_get(key, out)
    return out.reshape(-1, width)


def _instances(bpy, ob):
    """(instance_transform [M, 4, 4] row-major, resplat_color [M, 4], reference geometries,
    the GeometrySet, which must outlive the references)."""
    gs = _geometry(bpy, ob)
    ip = gs.instances_pointcloud()
    assert ip is not None, "no instances evaluated"
    mats = _read(ip.attributes, "instance_transform", 16, "value").reshape(-1, 4, 4).transpose(0, 2, 1)
    return mats.astype(np.float64), _read(ip.attributes, "resplat_color", 4, "color"), gs.instance_references(), gs


def _expected(src):
    """float64 colour RGBA, linear scales, rotation matrices and means of SplatArrays ``src``."""
    rgba = np.concatenate([np.clip(0.5 + C0 * src.sh[:, 0].astype(np.float64), 0, 1),
                           1 / (1 + np.exp(-src.logit_opacities.astype(np.float64)))[:, None]], 1)
    R = Rotation.from_quat(src.quats.astype(np.float64)[:, [1, 2, 3, 0]]).as_matrix()
    return rgba, np.exp(src.log_scales.astype(np.float64)), R, src.means.astype(np.float64)


@pytest.mark.parametrize("which", ["resplat", "native"])
def test_display_modifier_evaluates_both_modes(env, train_ply, which):
    bpy, _ = env
    display, pointcloud, schema = _mods()
    src = read_splat_arrays(train_ply)
    if which == "resplat":
        assert bpy.ops.import_scene.resplat_splat(filepath=str(train_ply)) == {"FINISHED"}
        ob = bpy.context.active_object
    else:
        ob = pointcloud.build_object(bpy.context, src, "native", schema=schema.NATIVE)
    assert pointcloud.splat_schema(ob) == which
    mod = ob.modifiers[display.MODIFIER_NAME]
    assert mod.type == "NODES" and mod.node_group.name == display.GROUP_NAME
    rgba, scales, R, means = _expected(src)
    assert (rgba[:, :3] == 0).any() or (rgba[:, :3] == 1).any() or rgba[:, :3].std() > 0.05

    # 1,000 splats: ellipsoids by default; instance transform = [R diag(sigma) | mean] on a
    # sphere of radius Sigma = 2
    mats, color, refs, _gs = _instances(bpy, ob)
    assert len(mats) == len(src)
    np.testing.assert_allclose(color, rgba, atol=2e-6)
    np.testing.assert_allclose(mats[:, :3, :3], R * scales[:, None, :], rtol=1e-5, atol=1e-5 * scales.max())
    np.testing.assert_allclose(mats[:, :3, 3], means, atol=1e-6 * np.abs(means).max())
    assert "ReSplat Splat" in [m.name for m in refs[0].mesh.materials if m]
    assert abs(np.linalg.norm(np.array([v.co for v in refs[0].mesh.vertices]), axis=1).max() - 2) < 1e-5

    # points: one per splat, radius Sigma x largest sigma, same colour attribute
    display.set_inputs(mod, Ellipsoids=False, Sigma=1.5)
    gs = _geometry(bpy, ob)
    pc = gs.pointcloud
    assert pc is not None and len(pc.points) == len(src)
    np.testing.assert_allclose(_read(pc.attributes, "radius", 1, "value")[:, 0], 1.5 * scales.max(1), rtol=1e-5)
    np.testing.assert_allclose(_read(pc.attributes, "resplat_color", 4, "color"), rgba, atol=2e-6)
    np.testing.assert_array_equal(_read(pc.attributes, "position", 3, "vector"), src.means)
    assert "ReSplat Points" in [m.name for m in pc.materials if m]


@pytest.mark.parametrize("which", ["resplat", "native"])
def test_single_splat_world_bounding_box(env, which):
    bpy, _ = env
    display, pointcloud, schema = _mods()
    from bl_ext.user_default.resplat.resplat_addon.runtime_formats import SplatArrays

    q = np.array([[0.9, 0.3, -0.5, 0.2]])  # not unit: the resplat schema keeps it as is
    log_s = np.log([[0.5, 0.1, 0.02]])
    one = SplatArrays(np.array([[0.3, -1.0, 2.0]]), q, log_s, np.array([0.7]), np.array([[[0.4, -0.2, 1.9]]]))
    ob = pointcloud.build_object(bpy.context, one, "one",
                                 schema={"resplat": schema.LEGACY, "native": schema.NATIVE}[which])
    ob.location, ob.rotation_euler = (1.0, 2.0, -0.5), (0.0, 0.0, np.pi / 2)
    display.set_inputs(ob.modifiers[display.MODIFIER_NAME], Ellipsoids=True, Sigma=3.0, Detail=4)
    bpy.context.view_layer.update()
    mats, color, refs, _gs = _instances(bpy, ob)
    assert len(mats) == 1
    verts = np.array([v.co for v in refs[0].mesh.vertices], np.float64)
    world = np.array(ob.matrix_world, np.float64) @ mats[0]
    pts = verts @ world[:3, :3].T + world[:3, 3]
    # analytic box of the 3-sigma ellipsoid {Rw diag(s) u : |u| = 3}: half extent_j = 3 |row j of Rw diag(s)|
    Rw = np.array(ob.matrix_world, np.float64)[:3, :3] @ Rotation.from_quat(q[0, [1, 2, 3, 0]]).as_matrix()
    half = 3 * np.sqrt(((Rw * np.exp(log_s[0])) ** 2).sum(1))
    centre = np.array(ob.matrix_world, np.float64) @ np.array([0.3, -1.0, 2.0, 1.0])
    lo, hi = pts.min(0), pts.max(0)
    np.testing.assert_allclose((lo + hi) / 2, centre[:3], atol=0.01 * half.max())
    # the ico-sphere (642 vertices) is inscribed: its box is at most, and nearly, the analytic one
    assert ((hi - lo) / 2 <= half * (1 + 1e-5)).all() and ((hi - lo) / 2 >= half * 0.985).all(), ((hi - lo) / 2, half)
    np.testing.assert_allclose(color[0], [0.5 + C0 * 0.4, 0.5 - C0 * 0.2, 1.0, 1 / (1 + np.exp(-0.7))], atol=2e-6)


def test_random_fraction(env, train_ply):
    bpy, _ = env
    display, _, _ = _mods()
    src = read_splat_arrays(train_ply)
    assert bpy.ops.import_scene.resplat_splat(filepath=str(train_ply)) == {"FINISHED"}
    ob = bpy.context.active_object
    mod = ob.modifiers[display.MODIFIER_NAME]
    keys = {tuple(m) for m in src.means}
    kept = {}
    for ellipsoids, seed in ((True, 0), (False, 0), (False, 7)):
        display.set_inputs(mod, Ellipsoids=ellipsoids, Fraction=0.2, Seed=seed)
        if ellipsoids:
            pos = _instances(bpy, ob)[0][:, :3, 3].astype(np.float32)
        else:
            gs = _geometry(bpy, ob)
            pos = _read(gs.pointcloud.attributes, "position", 3, "vector")
        assert abs(len(pos) - 200) < 5 * np.sqrt(1000 * 0.2 * 0.8), len(pos)  # binomial, 5 sigma
        kept[ellipsoids, seed] = {tuple(p) for p in pos}
        assert kept[ellipsoids, seed] <= keys
    assert kept[True, 0] == kept[False, 0]  # same subset in both modes
    assert kept[False, 7] != kept[False, 0]  # the seed picks another one


def test_splat_material_renders_gaussian_footprint(env, tmp_path):
    """Cycles, orthographic camera down -z onto one isotropic splat: the rendered alpha follows
    opacity * exp(-r^2 / 2 sigma^2) and the premultiplied colour is alpha * linear(0.5 + C0 DC)."""
    bpy, _ = env
    display, pointcloud, schema = _mods()
    from bl_ext.user_default.resplat.resplat_addon.runtime_formats import SplatArrays

    sigma, dc = 0.2, np.array([0.6, -0.4, 0.1])
    one = SplatArrays(np.zeros((1, 3)), np.array([[1.0, 0, 0, 0]]), np.full((1, 3), np.log(sigma)),
                      np.array([4.0]), dc[None, None, :])
    ob = pointcloud.build_object(bpy.context, one, "one", schema=schema.LEGACY)
    display.set_inputs(ob.modifiers[display.MODIFIER_NAME], Ellipsoids=True, Sigma=3.5, Detail=3)
    # A fresh scene with default render settings: other test modules share this Blender session
    # and change the context scene's (e.g. a non-square pixel aspect).
    scene = bpy.data.scenes.new("resplat-footprint")
    scene.collection.objects.link(ob)
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    cam.location = (0, 0, 5)
    cam.data.type, cam.data.ortho_scale = "ORTHO", 2.0
    scene.camera = cam
    scene.render.engine = "CYCLES"
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 64, False
    scene.cycles.filter_width = 0.01
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x = scene.render.resolution_y = 41
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.filepath = str(tmp_path / "one.exr")
    bpy.ops.render.render(write_still=True, scene=scene.name)
    img = bpy.data.images.load(str(tmp_path / "one.exr"))
    px = np.empty(41 * 41 * 4, np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    bpy.data.objects.remove(cam)
    bpy.data.scenes.remove(scene)
    px = px.reshape(41, 41, 4).astype(np.float64)
    c = (np.arange(41) + 0.5) / 41 * 2 - 1  # pixel centres in metres
    r2 = c[None, :] ** 2 + c[:, None] ** 2
    alpha = 1 / (1 + np.exp(-4.0)) * np.exp(-0.5 * r2 / sigma ** 2) * (r2 < (3.4 * sigma) ** 2)
    np.testing.assert_allclose(px[..., 3], alpha, atol=0.04)
    lin = ((np.clip(0.5 + C0 * dc, 0, 1) + 0.055) / 1.055) ** 2.4
    np.testing.assert_allclose(px[..., :3], alpha[..., None] * lin, atol=0.04)
    assert px[20, 20, 3] > 0.9 and px[20, 28, 3] < 0.5  # a footprint, not a flat disc
