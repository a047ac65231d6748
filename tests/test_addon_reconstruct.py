"""Reconstruct and Refine from Blender (headless bpy 5.0.1, CPU, 64x64 views, a few steps).

The operators' ``execute`` runs the same :class:`SplatJob` controllers as the modal ``invoke``
(the modal body only forwards timer events to ``tick()`` and Esc to ``cancel()``; background
mode has no window for a modal handler), so the job path tested here is the real one; cancel and
a killed runtime are driven through the operators' shared modal body (``jobs.modal_step``) with
fake TIMER / ESC events, as Blender's event loop would.
Scene: a checker-textured emissive sphere and cube seen by 4 cameras in a collection "Rig"."""

from __future__ import annotations

import os
import stat
import sys
import time

import numpy as np
import pytest

from addon_env import (FakeOperator, addon_env, addon_module, camera_ring, clear_scene, emission_checker,
                       empty_cycles_scene, event, jobs_left, kept_job_folders)
from resplat.formats import read_splat_arrays

FIELDS = ("means", "quats", "log_scales", "logit_opacities", "sh")


@pytest.fixture()
def env():
    bpy, addon, _ = addon_env()
    scene = empty_cycles_scene(bpy, 4)
    mat = emission_checker(bpy, Scale=6.0, Color1=(0.9, 0.2, 0.1, 1), Color2=(0.1, 0.3, 0.9, 1))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6, location=(0, 0, 0), segments=16, ring_count=8)
    bpy.context.active_object.data.materials.append(mat)
    bpy.ops.mesh.primitive_cube_add(size=0.5, location=(0.5, 0.4, 0.3))
    bpy.context.active_object.data.materials.append(mat)
    rig = camera_ring(bpy, scene, 4, 3.0, 1.2)
    bpy.context.view_layer.update()
    s = scene.resplat
    s.cameras, s.collection, s.views, s.width, s.height = "COLLECTION", rig, "RENDER", 64, 64
    s.checkpoint, s.steps, s.random_count, s.iterations, s.device = "", 4, 300, 1, "cpu"
    s.model = "OPTIMIZE"  # runs without model weights (the embedded choice: test_addon_embedded.py)
    s.model_iterations, s.quality, s.polish = False, False, "OFF"  # quality: test_addon_views_job.py
    prefs = addon_module(addon, "preferences").get_prefs()
    prefs.python, prefs.checkpoint = sys.executable, ""
    yield bpy, addon
    prefs.python = ""
    clear_scene(bpy)


def _arrays(addon, ob):
    return addon_module(addon, "splats.pointcloud").read_arrays(ob)


def _assert_same(a, b):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


@pytest.fixture()
def keep_tmp(env):
    """Keep the job folders (the runtime's own output files) instead of removing them."""
    with kept_job_folders(env[1]) as kept:
        yield kept


def _snapshot(bpy):
    scene = bpy.context.scene
    r = scene.render
    return (sorted(o.name for o in bpy.data.objects), r.resolution_x, r.resolution_y, r.filepath,
            scene.view_settings.view_transform, scene.camera, r.image_settings.file_format)


def test_reconstruct_optimisation_only_matches_runtime_file(env, keep_tmp):
    bpy, addon = env
    before = _snapshot(bpy)
    assert bpy.ops.resplat.reconstruct() == {"FINISHED"}
    ob = bpy.data.objects["Rig"]
    assert ob.type == "POINTCLOUD" and len(ob.data.points) == 300 and bpy.context.active_object == ob
    assert not [o for o in bpy.data.objects if o.name.endswith("(preview)")]
    assert _snapshot(bpy)[1:] == before[1:]  # render settings and scene camera restored
    tmp = keep_tmp[0]
    assert sorted(p.name for p in (tmp / "previews").iterdir())[0] == "preview_initial_0.ply"
    _assert_same(_arrays(addon, ob), read_splat_arrays(tmp / "optimized.ply"))
    # the rendered views show the checker object: not blank, both colours present
    from resplat.views import read_views

    views = read_views(tmp / "transforms.json")
    img = views.images.numpy()
    assert views.images.shape == (4, 3, 64, 64) and img.std() > 0.05 and img[:, 0].max() > 0.5 and img[:, 2].max() > 0.5


def test_reconstruct_with_tiny_checkpoint(env, keep_tmp, tmp_path):
    import torch

    from resplat.model.checkpoint import build_model
    from resplat.train.checkpointing import export_safetensors

    bpy, addon = env
    torch.manual_seed(0)
    export_safetensors(build_model("tiny").eval(), tmp_path / "tiny.safetensors")
    s = bpy.context.scene.resplat
    s.model, s.checkpoint, s.steps = "CHECKPOINT", str(tmp_path / "tiny.safetensors"), 0
    s.model_iterations = True  # "Model Default": the checkpoint preset's own default_iterations
    job = addon_module(addon, "operators.reconstruct").make_job(bpy.context)
    job.run_to_end()
    assert job.error == "" and "--iterations" not in job.job.commands[0]
    from resplat.model.config import get_config

    assert job.result_metrics["iterations"] == get_config("tiny").default_iterations
    got = _arrays(addon, bpy.data.objects["Rig"])
    want = read_splat_arrays(keep_tmp[0] / "reconstructed.ply")
    assert len(want) > 1000
    _assert_same(got, want)


def test_cancel_mid_run_leaves_nothing(env):
    """Drives the operators' modal body (jobs.modal_step) with timer events, then Esc."""
    bpy, addon = env
    jobs_mod = addon_module(addon, "jobs")
    bpy.context.scene.resplat.steps = 100000
    before, jobs = _snapshot(bpy), jobs_left()
    job, op = addon_module(addon, "operators.reconstruct").make_job(bpy.context), FakeOperator()
    end = time.monotonic() + 60
    while job.preview is None and time.monotonic() < end:
        assert jobs_mod.modal_step(op, bpy.context, event("TIMER"), job) == {"RUNNING_MODAL"}
        time.sleep(0.05)
    assert jobs_mod.modal_step(op, bpy.context, event("MOUSEMOVE"), job) == {"PASS_THROUGH"}
    assert job.preview is not None and job.job.running  # the initial preview is shown, the runtime works
    assert bpy.data.objects["Rig (preview)"].type == "POINTCLOUD"
    proc = job.job._proc
    assert jobs_mod.modal_step(op, bpy.context, event("ESC"), job) == {"CANCELLED"}
    assert proc.poll() is not None and job.cancelled and op.reports == [("WARNING", "cancelled; nothing was changed")]
    assert _snapshot(bpy) == before and jobs_left() == jobs


def _script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _refused(bpy, match, op="reconstruct"):
    before, jobs = _snapshot(bpy), jobs_left()
    with pytest.raises(RuntimeError, match=match):
        getattr(bpy.ops.resplat, op)()
    assert _snapshot(bpy) == before and jobs_left() == jobs


def test_bad_inputs_change_nothing(env, tmp_path):
    bpy, addon = env
    s = bpy.context.scene.resplat
    prefs = addon_module(addon, "preferences").get_prefs()
    # no cameras
    s.cameras = "SELECTED"
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    _refused(bpy, "no cameras in the selection")
    s.cameras = "COLLECTION"
    # a camera without a view, unreadable image, different sizes
    s.views = "BACKGROUND"
    _refused(bpy, "camera 'Cam0' has no background image")
    s.views, s.image_folder = "FOLDER", str(tmp_path)
    for i in range(4):
        img = bpy.data.images.new(f"v{i}", 32, 24 if i != 2 else 20)
        img.filepath_raw, img.file_format = str(tmp_path / f"Cam{i}.png"), "PNG"
        img.save()
        bpy.data.images.remove(img)
    _refused(bpy, r"images have different sizes: .*Cam0.png is 32x24, .*Cam2.png \(camera 'Cam2'\) is 32x20")
    (tmp_path / "Cam3.png").write_bytes(b"not a png at all")
    _refused(bpy, "camera 'Cam2'|Cam3.png cannot be read")
    os.remove(tmp_path / "Cam3.png")
    _refused(bpy, "camera 'Cam3' has no image named Cam3.png/.jpg")
    s.views = "RENDER"
    # an orthographic camera
    bpy.data.objects["Cam1"].data.type = "ORTHO"
    _refused(bpy, "camera 'Cam1' is orthographic")
    bpy.data.objects["Cam1"].data.type = "PERSP"
    # interpreters: missing, without torch, an error event, killed
    prefs.python = str(tmp_path / "nope" / "python")
    _refused(bpy, "runtime interpreter .*nope/python not found")
    prefs.python = _script(tmp_path / "notorch", "echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 1\n")
    _refused(bpy, "runtime exited with status 1: ModuleNotFoundError: No module named 'torch'")
    prefs.python = _script(tmp_path / "err", 'echo \'{"event": "error", "message": "views: boom"}\'; exit 2\n')
    _refused(bpy, "views: boom")
    # refine: active object without splat attributes
    prefs.python = sys.executable
    bpy.context.view_layer.objects.active = bpy.data.objects["Sphere"]
    _refused(bpy, "'Sphere' is not a point cloud with splat attributes", op="refine")


def test_runtime_killed_mid_job(env):
    bpy, addon = env
    bpy.context.scene.resplat.steps = 100000
    before, jobs = _snapshot(bpy), jobs_left()
    job = addon_module(addon, "operators.reconstruct").make_job(bpy.context)
    end = time.monotonic() + 60
    while job.preview is None and time.monotonic() < end:
        job.tick()
        time.sleep(0.05)
    job.job._proc.kill()
    op, end = FakeOperator(), time.monotonic() + 30
    while (res := addon_module(addon, "jobs").modal_step(op, bpy.context, event("TIMER"), job)) == {"RUNNING_MODAL"}:
        assert time.monotonic() < end
        time.sleep(0.05)
    assert res == {"CANCELLED"} and op.reports == [("ERROR", job.error)]
    assert job.error.startswith("runtime was killed (signal 9)") and not job.cancelled
    assert _snapshot(bpy) == before and jobs_left() == jobs


def test_refine_updates_object_in_place(env, keep_tmp, train_ply):
    bpy, addon = env
    assert bpy.ops.import_scene.resplat_splat(filepath=str(train_ply)) == {"FINISHED"}
    ob = bpy.context.active_object
    ob.location = (0.2, -0.1, 0.0)
    bpy.context.view_layer.update()
    data_before = ob.data
    baked = addon_module(addon, "splats.transform").bake_transform(_arrays(addon, ob), np.array(ob.matrix_world, dtype=np.float64))
    for o in bpy.data.objects:
        o.select_set(o.type == "CAMERA" or o == ob)
    bpy.context.scene.resplat.steps = 2
    names = sorted(o.name for o in bpy.data.objects)
    original = _arrays(addon, ob)
    bpy.ops.ed.undo_push(message="before refine")
    assert bpy.ops.resplat.refine("EXEC_DEFAULT", True) == {"FINISHED"}  # True: push an undo step as the UI does
    assert sorted(o.name for o in bpy.data.objects) == names and bpy.context.active_object == ob
    assert ob.data != data_before and np.allclose(np.array(ob.matrix_world), np.eye(4))
    got = _arrays(addon, ob)
    _assert_same(read_splat_arrays(keep_tmp[0] / "init.ply"), baked)
    _assert_same(got, read_splat_arrays(keep_tmp[0] / "refined.ply"))
    assert len(got) == 1000 and got.sh_degree == 3 and not np.array_equal(got.means, baked.means)
    # one undo brings the object back as it was (bpy 5.0.1 undoes in background mode)
    name = ob.name
    bpy.ops.ed.undo()
    ob = bpy.data.objects[name]
    _assert_same(_arrays(addon, ob), original)
    np.testing.assert_allclose(np.array(ob.matrix_world)[:3, 3], [0.2, -0.1, 0.0], atol=1e-7)
    assert sorted(o.name for o in bpy.data.objects) == names
