"""The Depth Pass option of the add-on's rendered views (headless bpy 5.0.1, Cycles CPU, 48x48).

Checked against Blender's own geometry: the depth written per pixel equals the z-depth of a
``scene.ray_cast`` through the pixel centre (and 0 where the ray hits nothing), the scene's
compositor, passes and render settings are as before, and Reconstruct with Optimisation Only
starts from splats that lie on the scene's surfaces (the whole chain: depth pass -> .npy ->
transforms.json -> ``resplat optimize --depth-init``).
Scene: a UV sphere (radius 0.6) resting on a 6 m plane, 4 cameras that also see the sky."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from addon_env import addon_env, addon_module, clear_scene, empty_cycles_scene

SIZE = 48


@pytest.fixture()
def env():
    bpy, addon, _ = addon_env()
    scene = empty_cycles_scene(bpy, 1)
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6, location=(0, 0, 0), segments=48, ring_count=24)
    bpy.ops.mesh.primitive_plane_add(size=6, location=(0, 0, -0.6))
    rig = bpy.data.collections.new("Rig")
    scene.collection.children.link(rig)
    from mathutils import Vector

    for i in range(4):
        a = 2 * math.pi * i / 4 + 0.4
        cam = bpy.data.objects.new(f"Cam{i}", bpy.data.cameras.new(f"Cam{i}"))
        cam.location = (2.6 * math.cos(a), 2.6 * math.sin(a), 0.5 + 0.1 * i)
        cam.rotation_euler = (Vector((0, 0, 0.3)) - cam.location).to_track_quat("-Z", "Y").to_euler()
        cam.data.lens = 30
        rig.objects.link(cam)
    bpy.context.view_layer.update()
    s = scene.resplat
    s.cameras, s.collection, s.views, s.width, s.height = "COLLECTION", rig, "RENDER", SIZE, SIZE
    s.model, s.steps, s.random_count, s.device, s.depth_pass = "OPTIMIZE", 2, 2000, "cpu", True
    s.quality, s.polish = False, "OFF"  # the 2 steps above, not the default 30 s budget
    prefs = addon_module(addon, "preferences").get_prefs()
    prefs.python = sys.executable
    yield bpy, addon, rig
    prefs.python = ""
    s.depth_pass, s.collection, s.quality = False, None, True
    s.property_unset("polish")
    clear_scene(bpy)
    for c in list(bpy.data.collections):  # later tests make their own "Rig"
        bpy.data.collections.remove(c)


def _state(bpy):
    scene = bpy.context.scene
    r = scene.render
    return (scene.compositing_node_group, r.use_compositing, bpy.context.view_layer.use_pass_z,
            sorted(g.name for g in bpy.data.node_groups), len(bpy.data.images), r.resolution_x, r.filepath,
            r.image_settings.file_format, scene.view_settings.view_transform, scene.camera)


def _ray_cast_depth(bpy, view) -> np.ndarray:
    """[H, W] z-depth of Blender ray casts through every pixel centre (0: no hit)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    from mathutils import Vector

    c2w = np.array(view.c2w)  # OpenGL axes: -z forward, +y up
    Kinv = np.linalg.inv(view.K)
    out = np.zeros((view.height, view.width))
    origin = Vector(c2w[:3, 3])
    for y in range(view.height):
        for x in range(view.width):
            cv = Kinv @ np.array([x + 0.5, y + 0.5, 1.0])  # OpenCV ray, z = 1
            d = c2w[:3, :3] @ (cv * np.array([1.0, -1.0, -1.0]))
            hit, loc, *_ = bpy.context.scene.ray_cast(depsgraph, origin, Vector(d / np.linalg.norm(d)))
            if hit:
                out[y, x] = float(np.dot(np.array(loc) - c2w[:3, 3], -c2w[:3, 2]))
    return out


def test_depth_pass_matches_ray_casts_and_restores_the_scene(env, tmp_path):
    bpy, addon, rig = env
    views_mod = addon_module(addon, "views")
    cams = sorted(rig.objects, key=lambda o: o.name)
    bpy.context.scene.compositing_node_group = None
    before = _state(bpy)
    js = views_mod.write_views(bpy.context, cams, "RENDER", tmp_path, SIZE, SIZE, depth=True)
    assert _state(bpy) == before  # compositor, Z pass switch, node groups, images, render settings
    meta = json.loads(js.read_text())
    assert meta["depth_unit_scale_factor"] == 1.0
    assert sorted(p.name for p in (tmp_path / "depth").iterdir()) == [f"00{i}_Cam{i}.npy" for i in range(4)]
    for i, cam in enumerate(cams):
        assert meta["frames"][i]["depth_file_path"] == f"depth/00{i}_Cam{i}.npy"
        got = np.load(tmp_path / "depth" / f"00{i}_Cam{i}.npy")
        assert got.shape == (SIZE, SIZE) and got.dtype == np.float32
        want = _ray_cast_depth(bpy, addon_module(addon, "cameras").camera_view(cam, SIZE, SIZE))
        both = (got > 0) & (want > 0)
        assert (want == 0).mean() > 0.05 and (want > 0).mean() > 0.3  # sky and surfaces in view
        # Cycles' one Z sample is jittered inside the pixel: at silhouettes it may see the other
        # side; everywhere else it equals the ray cast through the centre
        assert ((got > 0) == (want > 0)).mean() > 0.97
        rel = np.abs(got[both] - want[both]) / want[both]
        assert np.median(rel) < 2e-3 and (rel < 0.02).mean() > 0.93, (i, np.median(rel), (rel < 0.02).mean())


def test_optimisation_only_starts_on_the_rendered_surfaces(env, monkeypatch):
    bpy, addon, _ = env
    kept = []
    monkeypatch.setattr(addon_module(addon, "splat_job"), "remove_tree", lambda p: kept.append(p))
    try:
        assert bpy.ops.resplat.reconstruct() == {"FINISHED"}
        tmp = Path(kept[0])
        meta = json.loads((tmp / "transforms.json").read_text())
        assert all(f["depth_file_path"].startswith("depth/") for f in meta["frames"])
        from resplat.formats import read_splat_arrays

        init = read_splat_arrays(tmp / "previews" / "preview_initial_0.ply")
        assert len(init) == 2000
        p = init.means.astype(np.float64)
        off_sphere = np.abs(np.linalg.norm(p, axis=1) - 0.6)
        off_plane = np.abs(p[:, 2] + 0.6)
        assert np.quantile(np.minimum(off_sphere, off_plane), 0.95) < 0.02
        assert (off_sphere < 0.02).mean() > 0.1 and (off_plane < 0.01).mean() > 0.3  # both surfaces are seen
        assert len(bpy.data.objects["Rig"].data.points) == 2000
    finally:
        import shutil

        for p in kept:
            shutil.rmtree(p, ignore_errors=True)


def test_depth_pass_only_with_rendered_views(env):
    bpy, addon, _ = env
    op = addon_module(addon, "operators.reconstruct")
    s = bpy.context.scene.resplat
    cmd = op.reconstruct_commands("py", s, "v.json", Path("/t"), "", "cpu")[0]
    assert cmd[cmd.index("--depth-init") + 1] == "2000" and "--random" not in cmd
    s.views = "BACKGROUND"
    cmd = op.reconstruct_commands("py", s, "v.json", Path("/t"), "", "cpu")[0]
    assert "--random" in cmd and "--depth-init" not in cmd
