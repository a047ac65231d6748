"""Blender extension, headless: zip build/validate/install, import/export operators on the real
fixture, transform baking, selection export and bad-input reports (no scene or file change)."""

from __future__ import annotations

import numpy as np
import pytest

from addon_env import addon_env, clear_scene, zip_names
from resplat.formats import read_splat_arrays, write_splat_arrays

FIELDS = ("means", "quats", "log_scales", "logit_opacities", "sh")


@pytest.fixture()
def env():
    bpy, addon, zip_path = addon_env()
    clear_scene(bpy)
    yield bpy, addon, zip_path
    clear_scene(bpy)


def _import(bpy, path):
    n = len(bpy.data.objects)
    assert bpy.ops.import_scene.resplat_splat(filepath=str(path)) == {"FINISHED"}
    assert len(bpy.data.objects) == n + 1
    return bpy.context.active_object


def _attr(ob, name, width):
    a = ob.data.attributes[name]
    out = np.empty(len(ob.data.points) * width, np.float32)
    a.data.foreach_get({"FLOAT": "value", "QUATERNION": "value", "FLOAT_COLOR": "color"}.get(a.data_type, "vector"), out)
    return out.reshape(-1, width)


def _assert_same(a, b):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


def test_zip_holds_addon_runtime_and_wheels(env):
    names = zip_names(env[2])
    for must in ("__init__.py", "blender_manifest.toml", "resplat_addon/operators/export_splat.py",
                 "runtime/resplat/formats/ply.py", "wheels/plyfile-1.1.3-py3-none-any.whl"):
        assert must in names
    assert sum(n.startswith("wheels/zstandard-") and "cp311" in n for n in names) == 4
    assert sum(n.startswith("wheels/zstandard-") and "cp313" in n for n in names) == 4
    assert not [n for n in names if n.startswith(("tests/", ".venv/", ".git/")) or "__pycache__" in n]
    # the add-on imports the bundled runtime copy, not the venv's editable one, and no torch
    assert env[1].runtime_formats.formats.__name__.startswith("bl_ext.user_default.resplat.runtime")
    menus = [f.__module__ for f in env[0].types.TOPBAR_MT_file_import._dyn_ui_initialize()]
    assert any(m.endswith("import_splat") for m in menus)
    assert env[0].types.IO_FH_resplat_splat.bl_import_operator == "import_scene.resplat_splat"


def test_import_matches_file_and_ply_export_is_exact(env, train_ply, tmp_path):
    bpy, _, _ = env
    src = read_splat_arrays(train_ply)
    ob = _import(bpy, train_ply)
    assert ob.type == "POINTCLOUD" and len(ob.data.points) == 1000 and ob["resplat_sh_degree"] == 3
    np.testing.assert_array_equal(_attr(ob, "position", 3), src.means)
    np.testing.assert_array_equal(_attr(ob, "resplat_log_scale", 3), src.log_scales)
    np.testing.assert_array_equal(_attr(ob, "resplat_rotation", 4), src.quats)  # not normalised
    np.testing.assert_array_equal(_attr(ob, "resplat_opacity_logit", 1)[:, 0], src.logit_opacities)
    np.testing.assert_array_equal(_attr(ob, "resplat_sh_dc", 3), src.sh[:, 0])
    for k in range(15):
        np.testing.assert_array_equal(_attr(ob, f"resplat_sh_rest_{k}", 3), src.sh[:, k + 1])
    np.testing.assert_allclose(_attr(ob, "radius", 1)[:, 0], np.exp(src.log_scales.max(1)), rtol=1e-6)
    out = tmp_path / "back.ply"
    assert bpy.ops.export_scene.resplat_splat(filepath=str(out)) == {"FINISHED"}
    _assert_same(read_splat_arrays(out), src)


def test_native_schema_round_trip_within_activation_bounds(env, train_ply, tmp_path):
    bpy, addon, _ = env
    from bl_ext.user_default.resplat.resplat_addon.splats import pointcloud, schema

    src = read_splat_arrays(train_ply)
    ob = pointcloud.build_object(bpy.context, src, "native", schema=schema.NATIVE)
    assert pointcloud.splat_schema(ob) == schema.NATIVE
    base = _attr(ob, "radiance:base", 4)
    np.testing.assert_array_equal(base[:, :3], src.sh[:, 0])
    np.testing.assert_allclose(base[:, 3], 1 / (1 + np.exp(-src.logit_opacities.astype(np.float64))), rtol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(_attr(ob, "rotation", 4), axis=1), 1, atol=1e-6)
    out = tmp_path / "native.ply"
    assert bpy.ops.export_scene.resplat_splat(filepath=str(out)) == {"FINISHED"}
    back = read_splat_arrays(out)
    np.testing.assert_array_equal(back.means, src.means)
    np.testing.assert_array_equal(back.sh, src.sh)
    q = src.quats / np.linalg.norm(src.quats.astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(back.quats, q, atol=2e-7)
    # exp then log in float32: one rounding of exp (relative 2^-24) and one of log
    np.testing.assert_allclose(back.log_scales, src.log_scales, rtol=2 ** -23, atol=2 ** -23)
    # sigmoid stored in float32 (relative 2^-24 on alpha) -> logit error <= 2^-24 / (1 - alpha)
    alpha = 1 / (1 + np.exp(-src.logit_opacities.astype(np.float64)))
    bound = 2 ** -24 / (1 - alpha) + 2 ** -23 * np.abs(src.logit_opacities) + 1e-7
    err = np.abs(back.logit_opacities.astype(np.float64) - src.logit_opacities)
    assert (err <= bound).all() and err.max() > 0, err.max()


@pytest.mark.parametrize("ext", [".splat", ".spz", ".glb", ".sog"])
def test_lossy_formats_equal_the_runtime_writer(env, train_ply, tmp_path, ext):
    bpy, _, _ = env
    src = read_splat_arrays(train_ply)
    _import(bpy, train_ply)
    out, ref = tmp_path / f"out{ext}", tmp_path / f"ref{ext}"
    assert bpy.ops.export_scene.resplat_splat(filepath=str(out)) == {"FINISHED"}
    write_splat_arrays(src, ref)
    got = read_splat_arrays(out)
    _assert_same(got, read_splat_arrays(ref))
    if ext != ".splat":  # .splat reorders splats; the others keep the order
        np.testing.assert_allclose(got.means, src.means, atol=0.01 * np.abs(src.means).max())


def _euler_xyz(rx, ry, rz):
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx  # Blender's XYZ Euler order


def _quat_to_rotmat(q):
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(-1, 3, 3)


def test_transformed_object_exports_baked_values(env, train_ply, tmp_path):
    import torch

    from resplat.model.poses import rotate_sh

    bpy, _, _ = env
    src = read_splat_arrays(train_ply)
    ob = _import(bpy, train_ply)
    angles, t, s = (0.3, -1.1, 2.0), np.array([1.0, -2.0, 0.5]), 2.5
    ob.location, ob.rotation_euler, ob.scale = t, angles, (s, s, s)
    bpy.context.view_layer.update()
    out = tmp_path / "moved.ply"
    assert bpy.ops.export_scene.resplat_splat(filepath=str(out)) == {"FINISHED"}
    got = read_splat_arrays(out)
    R = _euler_xyz(*angles)
    np.testing.assert_allclose(got.means, s * src.means.astype(np.float64) @ R.T + t, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.log_scales, src.log_scales + np.log(s), atol=1e-6)
    np.testing.assert_array_equal(got.logit_opacities, src.logit_opacities)
    np.testing.assert_allclose(_quat_to_rotmat(got.quats.astype(np.float64)),
                               R @ _quat_to_rotmat(src.quats.astype(np.float64)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got.quats, axis=1), np.linalg.norm(src.quats, axis=1), rtol=1e-5)
    ref = rotate_sh(torch.from_numpy(src.sh.astype(np.float64)), torch.from_numpy(R)).numpy()
    np.testing.assert_allclose(got.sh, ref, atol=1e-5)
    np.testing.assert_array_equal(got.sh[:, 0], src.sh[:, 0])
    assert np.abs(got.sh[:, 1:] - src.sh[:, 1:]).max() > 0.01  # the SH did rotate


def test_export_selected_points_only(env, train_ply, tmp_path):
    bpy, _, _ = env
    src = read_splat_arrays(train_ply)
    ob = _import(bpy, train_ply)
    mask = np.zeros(1000, bool)
    mask[::7] = True
    sel = ob.data.attributes.new(".selection", "BOOLEAN", "POINT")
    sel.data.foreach_set("value", mask)
    out = tmp_path / "sel.ply"
    assert bpy.ops.export_scene.resplat_splat(filepath=str(out), selected_only=True) == {"FINISHED"}
    _assert_same(read_splat_arrays(out), src.select(mask))
    sel.data.foreach_set("value", np.zeros(1000, bool))
    with pytest.raises(RuntimeError, match="nothing to export"):
        bpy.ops.export_scene.resplat_splat(filepath=str(out), selected_only=True)
    _assert_same(read_splat_arrays(out), src.select(mask))  # untouched


def test_bad_inputs_report_and_change_nothing(env, train_ply, tmp_path):
    bpy, _, _ = env
    bad = tmp_path / "broken.ply"
    bad.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    with pytest.raises(RuntimeError, match="broken.ply"):
        bpy.ops.import_scene.resplat_splat(filepath=str(bad))
    assert len(bpy.data.objects) == 0 and len(bpy.data.pointclouds) == 0

    dest = tmp_path / "keep.ply"
    dest.write_bytes(b"precious")
    mesh = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    bpy.context.collection.objects.link(mesh)
    bpy.context.view_layer.objects.active = mesh
    with pytest.raises(RuntimeError, match="'Cube' is not a point cloud with splat attributes"):
        bpy.ops.export_scene.resplat_splat(filepath=str(dest))

    ob = _import(bpy, train_ply)
    ob.scale = (1.0, 2.0, 1.0)
    bpy.context.view_layer.update()
    with pytest.raises(RuntimeError, match="non-uniform scale"):
        bpy.ops.export_scene.resplat_splat(filepath=str(dest))
    ob.scale = (-1.0, -1.0, -1.0)
    bpy.context.view_layer.update()
    with pytest.raises(RuntimeError, match="mirrors"):
        bpy.ops.export_scene.resplat_splat(filepath=str(dest))
    assert dest.read_bytes() == b"precious" and len(bpy.data.objects) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ply", "keep.ply"]
