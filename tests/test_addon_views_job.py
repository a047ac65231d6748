"""Views without the splats in them, rendered one per tick inside the modal job (progress, Esc
between views, the scene restored exactly), the options' defaults shared with the runtime, the
Polish setting's command lines and the Quality readout (headless bpy 5.0.1, Cycles CPU, 32x32).

Scene: an emissive checker cube seen by 3 cameras in a collection "Rig", and a splat object (an
opaque red ball of splats) in front of the cube that the views must not show."""

from __future__ import annotations

import glob
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from addon_env import (FakeOperator, addon_env, addon_module, camera_ring, clear_scene, emission_checker,
                       empty_cycles_scene, event, jobs_left, kept_job_folders, run_modal)
from resplat import defaults
from resplat.formats import SplatArrays

SIZE = 32


def _ball(n=400, seed=0):
    """Opaque red splats in a ball of about 0.3 m radius at (0, 0, 0.95), above the cube."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n, 3)) * 0.1 + [0, 0, 0.95]
    sh = np.zeros((n, 1, 3))
    sh[:, 0] = (np.array([1.0, 0.05, 0.05]) - 0.5) / 0.28209479177387814
    return SplatArrays(means.astype(np.float32), np.tile([1.0, 0, 0, 0], (n, 1)).astype(np.float32),
                       np.full((n, 3), math.log(0.06), np.float32), np.full(n, 6.0, np.float32), sh.astype(np.float32))


@pytest.fixture()
def env():
    bpy, addon, _ = addon_env()
    scene = empty_cycles_scene(bpy, 1)
    mat = emission_checker(bpy)
    bpy.ops.mesh.primitive_cube_add(size=1.2, location=(0, 0, 0))
    bpy.context.active_object.data.materials.append(mat)
    rig = camera_ring(bpy, scene, 3, 3.0, 1.0)
    splat = addon_module(addon, "splats.pointcloud").build_object(bpy.context, _ball(), "Splats")
    bpy.context.view_layer.update()
    s = scene.resplat
    s.cameras, s.collection, s.views, s.width, s.height = "COLLECTION", rig, "RENDER", SIZE, SIZE
    s.model, s.steps, s.random_count, s.device, s.quality, s.polish = "OPTIMIZE", 2, 200, "cpu", False, "OFF"
    s.depth_pass = False
    prefs = addon_module(addon, "preferences").get_prefs()
    prefs.python = sys.executable
    yield bpy, addon, rig, splat
    prefs.python = ""
    s.collection, s.quality = None, True
    clear_scene(bpy)
    for c in list(bpy.data.collections):
        bpy.data.collections.remove(c)


def _flags(ob):
    return (ob.hide_render, ob.hide_viewport, ob.hide_select, ob.hide_get(), ob.visible_camera, ob.visible_shadow)


def _pixels(folder):
    from PIL import Image

    return [np.asarray(Image.open(p), dtype=np.float64) for p in sorted(glob.glob(str(folder / "*.png")))]


def _scene_state(bpy):
    scene = bpy.context.scene
    r = scene.render
    return (sorted(o.name for o in bpy.data.objects), r.resolution_x, r.resolution_y, r.filepath, scene.camera,
            r.image_settings.file_format, scene.view_settings.view_transform, scene.compositing_node_group,
            r.use_compositing, bpy.context.view_layer.use_pass_z, sorted(g.name for g in bpy.data.node_groups),
            {o.name: _flags(o) for o in bpy.data.objects})


def test_views_never_show_splat_objects(env, tmp_path, monkeypatch):
    bpy, addon, rig, splat = env
    views = addon_module(addon, "views")
    cams = sorted(rig.objects, key=lambda o: o.name)
    hidden = addon_module(addon, "splats.pointcloud").build_object(bpy.context, _ball(seed=1), "Hidden")
    hidden.hide_render, splat.hide_select = True, True  # flags of every kind come back as they were
    before = _scene_state(bpy)
    views.write_views(bpy.context, cams, "RENDER", tmp_path / "with", SIZE, SIZE)
    assert _scene_state(bpy) == before and _flags(splat)[0] is False and _flags(hidden)[0] is True
    for ob in (splat, hidden):
        bpy.data.objects.remove(ob)
    views.write_views(bpy.context, cams, "RENDER", tmp_path / "without", SIZE, SIZE)
    with_splats, without = _pixels(tmp_path / "with"), _pixels(tmp_path / "without")
    assert len(with_splats) == 3 and all(np.array_equal(a, b) for a, b in zip(with_splats, without))
    # the check can fail: with the hiding switched off the splat ball is in every view
    ball = addon_module(addon, "splats.pointcloud").build_object(bpy.context, _ball(), "Ball")
    monkeypatch.setattr(views, "is_splat_object", lambda ob: False)
    views.write_views(bpy.context, cams, "RENDER", tmp_path / "leak", SIZE, SIZE)
    leak = _pixels(tmp_path / "leak")
    diffs = [np.abs(a - b).mean() for a, b in zip(leak, without)]
    assert min(diffs) > 2, diffs
    assert ball.hide_render is False


def test_render_error_restores_the_scene(env, tmp_path, monkeypatch):
    bpy, addon, rig, splat = env
    views = addon_module(addon, "views")
    cams = sorted(rig.objects, key=lambda o: o.name)
    calls = []

    def render(**kw):
        calls.append(kw)
        assert splat.hide_render and bpy.context.scene.render.resolution_x == SIZE  # hidden while rendering
        if len(calls) == 2:
            raise RuntimeError("Error: render failed (out of memory)")
        return real(**kw)

    real = bpy.ops.render.render
    monkeypatch.setattr(views, "bpy", SimpleNamespace(ops=SimpleNamespace(render=SimpleNamespace(render=render)),
                                                      data=bpy.data, path=bpy.path))
    bpy.context.scene.resplat.depth_pass = True
    before = _scene_state(bpy)
    with pytest.raises(RuntimeError, match="out of memory"):
        views.write_views(bpy.context, cams, "RENDER", tmp_path, SIZE, SIZE, depth=True)
    assert len(calls) == 2 and _scene_state(bpy) == before


@pytest.mark.parametrize("op_name", ["reconstruct", "refine"])
def test_views_render_one_per_tick_and_esc_restores_everything(env, op_name):
    bpy, addon, rig, splat = env
    jobs = addon_module(addon, "jobs")
    s = bpy.context.scene.resplat
    s.depth_pass = op_name == "reconstruct"  # the compositor is swapped too
    if op_name == "refine":
        for o in bpy.data.objects:
            o.select_set(o.type == "CAMERA" or o == splat)
        bpy.context.view_layer.objects.active = splat
    before, left = _scene_state(bpy), jobs_left()
    job = addon_module(addon, f"operators.{op_name}").make_job(bpy.context)
    # invoke() returns at once: nothing rendered, nothing changed, the runtime not started
    assert job.job is None and not glob.glob(str(job.tmp / "*.png")) and _scene_state(bpy) == before
    assert job.status == "rendering view 1/3 (Cam0)" and job.fraction == 0
    op, seen = FakeOperator(), []
    for i in (1, 2):
        assert jobs.modal_step(op, bpy.context, event("TIMER"), job) == {"RUNNING_MODAL"}
        seen.append((job.status, job.fraction, len(glob.glob(str(job.tmp / "*.png")))))
        # between views the scene is the render's: splats hidden, the views' size, depth compositor
        assert splat.hide_render and bpy.context.scene.render.resolution_x == SIZE
        assert (bpy.context.scene.compositing_node_group is not None) == s.depth_pass
        assert job.job is None
    assert seen == [("rendering view 2/3 (Cam1)", pytest.approx(1 / 3), 1),
                    ("rendering view 3/3 (Cam2)", pytest.approx(2 / 3), 2)]
    assert jobs.modal_step(op, bpy.context, event("ESC"), job) == {"CANCELLED"}
    assert op.reports == [("WARNING", "cancelled; nothing was changed")] and job.cancelled
    assert _scene_state(bpy) == before and jobs_left() == left


def test_modal_job_runs_views_then_runtime_with_quality(env):
    """Ticks until the end: the views, then the runtime, then ``resplat eval``, whose mean PSNR
    and SSIM at the input views equal ours computed from the job's own files."""
    bpy, addon, rig, splat = env
    sj = addon_module(addon, "splat_job")
    s = bpy.context.scene.resplat
    s.quality = True
    with kept_job_folders(addon) as kept:
        job = addon_module(addon, "operators.reconstruct").make_job(bpy.context)
        res, op, statuses = run_modal(addon, bpy.context, job)
        assert res == {"FINISHED"}, op.reports
        assert statuses[:3] == ["rendering view 2/3 (Cam1)", "rendering view 3/3 (Cam2)", "writing transforms.json"]
        assert statuses[3] == "starting the runtime" and "eval 3/3" in statuses
        assert any(t.startswith("preview: optimize") for t in statuses)
        ob = bpy.data.objects["Rig"]
        # the reference: the runtime's renderer and metrics on the job's files
        import torch

        from resplat.formats import read_splats
        from resplat.metrics import psnr, ssim
        from resplat.render import render
        from resplat.views import read_views

        g, views = read_splats(kept[0] / "optimized.ply"), read_views(kept[0] / "transforms.json")
        with torch.no_grad():
            pred = torch.cat([render(g, views.cameras[i], background=torch.zeros(3)).rgb.clamp(0, 1)
                              for i in range(len(views.cameras))])
        want_psnr, want_ssim = float(psnr(pred, views.images).mean()), float(ssim(pred, views.images).mean())
        assert ob["resplat_psnr"] == pytest.approx(want_psnr, abs=1e-4) and ob["resplat_quality_views"] == 3
        assert ob["resplat_ssim"] == pytest.approx(want_ssim, abs=1e-4)
        text = f"PSNR {want_psnr:.2f} dB, SSIM {want_ssim:.3f} at 3 input views"
        assert op.reports == [("INFO", f"Rig: 200 splats, {text}")] and sj.object_quality(ob) == text
        assert splat.hide_render is False  # the splat object in the scene renders again


def _psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of images in [0, 1] (peak 1): 10 log10(1 / MSE), over every pixel and channel."""
    return float(10 * np.log10(1.0 / np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2)))


def test_heldout_camera_is_measured_not_fitted(env):
    """Cam1 marked Held Out: the runtime fits Cam0 and Cam2 only, Cam1 is rendered last as
    ground truth, and its PSNR (ours: numpy on the result rendered at Cam1 against the saved
    ground-truth PNG) is reported apart from the input views', on the object and in the panel."""
    bpy, addon, rig, splat = env
    sj, panel = addon_module(addon, "splat_job"), addon_module(addon, "panel")
    s = bpy.context.scene.resplat
    s.quality = True
    bpy.data.objects["Cam1"].resplat_held_out = True
    with kept_job_folders(addon) as kept:
        job = addon_module(addon, "operators.reconstruct").make_job(bpy.context)
        assert [c.name for c in job.cameras] == ["Cam0", "Cam2"] and [c.name for c in job.heldout] == ["Cam1"]
        res, op, statuses = run_modal(addon, bpy.context, job)
        assert res == {"FINISHED"}, op.reports
        assert statuses[:2] == ["rendering view 2/3 (Cam2)", "rendering view 3/3 (Cam1, held out)"]
        tmp = kept[0]
        import torch

        from PIL import Image
        from resplat.formats import read_splats
        from resplat.render import render
        from resplat.views import read_views

        # the runtime's input views: transforms.json without Cam1; the readout's: all three
        fitted, measured = read_views(tmp / "transforms.json"), read_views(tmp / "quality.json")
        assert job.job.commands[0][4] == str(tmp / "transforms.json") and job.job.commands[1][5] == str(tmp / "quality.json")
        assert fitted.cameras.names == ["000_Cam0", "001_Cam2"]
        assert measured.cameras.names == ["000_Cam0", "001_Cam2", "002_Cam1"]
        g = read_splats(tmp / "optimized.ply")
        with torch.no_grad():
            preds = [render(g, measured.cameras[i], background=torch.zeros(3)).rgb.clamp(0, 1)[0].permute(1, 2, 0).numpy()
                     for i in range(3)]
        truth = [np.asarray(Image.open(p), dtype=np.float64) / 255 for p in measured.paths]
        want = [_psnr(p, t) for p, t in zip(preds, truth)]
        ob = bpy.data.objects["Rig"]
        assert ob["resplat_heldout_psnr"] == pytest.approx(want[2], abs=1e-3) and ob["resplat_heldout_views"] == 1
        assert list(ob["resplat_heldout_cameras"]["Cam1"])[0] == pytest.approx(want[2], abs=1e-3)
        assert ob["resplat_psnr"] == pytest.approx((want[0] + want[1]) / 2, abs=1e-3) and ob["resplat_quality_views"] == 2
        assert abs(want[2] - (want[0] + want[1]) / 2) > 0.01  # the two readouts really differ here
        inputs, held = sj.object_quality(ob), sj.object_heldout_quality(ob)
        assert inputs.endswith("at 2 input views") and held == [
            f"PSNR {ob['resplat_heldout_psnr']:.2f} dB, SSIM {ob['resplat_heldout_ssim']:.3f} at held-out Cam1"]
        assert op.reports == [("INFO", f"Rig: 200 splats, {inputs}; {held[0]}")]
        # the panel: the camera list with its flags, the readout of the active result
        bpy.context.view_layer.objects.active = ob
        layout = _Layout()
        panel.VIEW3D_PT_resplat.draw(SimpleNamespace(layout=layout), bpy.context)
        assert ("label", "2 input, 1 held out") in layout.calls and ("label", f"Held out: {held[0]}") in layout.calls
        assert ("label", f"Quality: {inputs}") in layout.calls
        assert ("template_list", "RESPLAT_UL_cameras", "objects", "camera_index") in layout.calls


class _Layout:
    """Records what a panel's ``draw`` puts in its layout: ("label", text), ("prop", name),
    ("template_list", list class, collection, active index) and ("operator", idname)."""

    def __init__(self, calls=None):
        self.calls = [] if calls is None else calls
        self.enabled = True

    def column(self, **kw):
        return _Layout(self.calls)

    row = box = column

    def label(self, text="", **kw):
        self.calls.append(("label", text))

    def prop(self, data, name, **kw):
        self.calls.append(("prop", name))

    def operator(self, idname, **kw):
        self.calls.append(("operator", idname))

    def template_list(self, cls, list_id, data, propname, active_data, active_prop, **kw):
        self.calls.append(("template_list", cls, propname, active_prop))


def test_camera_list_and_held_out_errors(env):
    """The panel's list holds exactly the job's cameras (and follows its name filter); a job with
    every camera held out is refused naming where the cameras are, and changes nothing; with the
    Quality Readout off a held-out camera is neither fitted nor rendered."""
    bpy, addon, rig, splat = env
    panel = addon_module(addon, "panel")
    s = bpy.context.scene.resplat
    bpy.data.objects.new("Elsewhere", bpy.data.cameras.new("Elsewhere"))  # a camera outside the rig
    ul = SimpleNamespace(filter_name="", bitflag_filter_item=1 << 30)
    objects = bpy.data.objects
    flags, order = panel.RESPLAT_UL_cameras.filter_items(ul, bpy.context, bpy.data, "objects")
    assert sorted(o.name for o, f in zip(objects, flags) if f) == ["Cam0", "Cam1", "Cam2"] and len(order) == len(objects)
    ul.filter_name = "*2"
    flags, _ = panel.RESPLAT_UL_cameras.filter_items(ul, bpy.context, bpy.data, "objects")
    assert [o.name for o, f in zip(objects, flags) if f] == ["Cam2"]
    for c in rig.objects:
        c.resplat_held_out = True
    before, left = _scene_state(bpy), jobs_left()
    for op_name, where in (("reconstruct", "collection 'Rig'"), ("refine", "collection 'Rig'")):
        if op_name == "refine":
            for o in bpy.data.objects:
                o.select_set(o.type == "CAMERA" and o.name != "Elsewhere" or o == splat)
            bpy.context.view_layer.objects.active = splat
        with pytest.raises(RuntimeError, match=f"every camera in {where} is held out \\(3\\): clear Held Out"):
            getattr(bpy.ops.resplat, op_name)()
        assert _scene_state(bpy) == before and jobs_left() == left
    # Quality Readout off: Cam1 stays out of the fit and is not rendered either
    s.quality = False
    for c in rig.objects:
        c.resplat_held_out = c.name == "Cam1"
    job = addon_module(addon, "operators.reconstruct").make_job(bpy.context)
    try:
        assert job.views.renderer.cameras == [bpy.data.objects["Cam0"], bpy.data.objects["Cam2"]]
        assert job.views.heldout_names == {}
    finally:
        job.cancel()
    layout = _Layout()
    panel.VIEW3D_PT_resplat.draw(SimpleNamespace(layout=layout), bpy.context)
    assert ("label", "Held-out cameras are left out, not measured (Quality Readout is off)") in layout.calls


def test_refine_uses_the_panels_cameras(env):
    """Refine fits the cameras the panel lists, as Reconstruct: the collection's (whatever is
    selected), or with Cameras = Selected only the selected ones."""
    bpy, addon, rig, splat = env
    refine = addon_module(addon, "operators.refine")
    s = bpy.context.scene.resplat
    other = bpy.data.objects.new("Elsewhere", bpy.data.cameras.new("Elsewhere"))
    bpy.context.scene.collection.objects.link(other)
    for o in bpy.data.objects:
        o.select_set(o in (other, splat))
    bpy.context.view_layer.objects.active = splat
    for source, want in (("COLLECTION", ["Cam0", "Cam1", "Cam2"]), ("SELECTED", ["Elsewhere"])):
        s.cameras = source
        job = refine.make_job(bpy.context)
        try:
            assert [c.name for c in job.cameras] == want and job.heldout == []
        finally:
            job.cancel()


def test_defaults_come_from_the_runtime(env):
    bpy, addon, *_ = env
    props = bpy.context.scene.resplat.bl_rna.properties
    it, prune, steps, rnd = props["iterations"], props["prune_opacity"], props["steps"], props["random_count"]
    assert (it.default, it.hard_min, it.hard_max) == (defaults.EMBEDDED_ITERATIONS, 0, defaults.MAX_ITERATIONS)
    assert prune.default == pytest.approx(defaults.PRUNE_OPACITY) and prune.hard_max == pytest.approx(defaults.MAX_PRUNE_OPACITY)
    assert (steps.default, steps.hard_max) == (defaults.POLISH_STEPS, defaults.MAX_STEPS)
    assert (rnd.default, rnd.hard_max) == (defaults.RANDOM_COUNT, defaults.MAX_RANDOM_COUNT)
    assert props["model_iterations"].default is True
    assert [i.identifier for i in props["polish"].enum_items] == ["OFF", "30", "120", "CUSTOM"]
    assert props["polish"].default == "30" and defaults.EXTENSION_POLISH_SECONDS in defaults.POLISH_SECONDS
    assert addon_module(addon, "settings").FALLBACK_STEPS == defaults.OPTIMIZE_ONLY_STEPS
    from resplat.cli.main import build_parser

    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command" or getattr(a, "choices", None))
    rec = sub.choices["reconstruct"].parse_args(["v", "--out", "o.ply"])
    opt = sub.choices["optimize"].parse_args(["v", "--out", "o.ply", "--random", "5"])
    assert (rec.prune_opacity, rec.optimize_steps, rec.iterations) == (defaults.PRUNE_OPACITY, defaults.POLISH_STEPS, None)
    assert opt.steps == defaults.OPTIMIZE_STEPS


def _settings(**kw):
    base = dict(model="EMBEDDED", model_iterations=True, iterations=3, steps=0, prune_opacity=0.005,
                random_count=5, polish="OFF", polish_seconds=45.0, quality=False, views="RENDER", depth_pass=False)
    return SimpleNamespace(**{**base, **kw})


def test_command_lines_of_iterations_polish_and_quality(env, tmp_path):
    _, addon, *_ = env
    rec = addon_module(addon, "operators.reconstruct")

    def cmd(**kw):
        return rec.reconstruct_commands("py", _settings(**kw), "v.json", tmp_path, "", "auto")

    def opt(c, flag):
        return c[c.index(flag) + 1] if flag in c else None

    first = cmd()[0]
    assert "--iterations" not in first and opt(first, "--prune-opacity") == "0.005"  # the model's default
    assert opt(cmd(model_iterations=False)[0], "--iterations") == "3"
    assert "--polish-seconds" not in first and "--seconds" not in first
    assert opt(cmd(polish="30")[0], "--polish-seconds") == "30"
    assert opt(cmd(polish="120")[0], "--polish-seconds") == "120"
    assert opt(cmd(polish="CUSTOM")[0], "--polish-seconds") == "45"
    only = cmd(model="OPTIMIZE", polish="CUSTOM")[0]
    assert opt(only, "--seconds") == "45" and "--polish-seconds" not in only and only[3] == "optimize"
    assert "--strategy" not in only  # random and depth starts keep their count
    both = cmd(quality=True)
    assert len(both) == 2 and both[1] == ["py", "-m", "resplat", "eval", str(tmp_path / "reconstructed.ply"), "v.json",
                                          "--device", "auto", "--progress", "jsonl"]
    ref = addon_module(addon, "operators.refine").RefineJob.commands
    job = SimpleNamespace(settings=_settings(polish="30", steps=7), python="py", device="cpu")
    refine = ref(job, tmp_path, tmp_path / "transforms.json", tmp_path / "quality.json")
    assert len(refine) == 1 and opt(refine[0], "--seconds") == "30" and opt(refine[0], "--steps") == "7"
    assert opt(refine[0], "--init") == str(tmp_path / "init.ply")
    assert opt(refine[0], "--strategy") == defaults.POLISH_STRATEGY == "default"  # polished as Reconstruct's polish
    # the readout measures at the quality views (input + held out), the runtime fits the others
    job.settings.quality = True
    refine = ref(job, tmp_path, tmp_path / "transforms.json", tmp_path / "quality.json")
    assert refine[0][4] == str(tmp_path / "transforms.json") and refine[1][5] == str(tmp_path / "quality.json")
    assert cmd(quality=True)[1][5] == "v.json"  # nothing held out: the same views
    held = rec.reconstruct_commands("py", _settings(quality=True), "v.json", tmp_path, "", "auto", "q.json")
    assert held[0][4] == "v.json" and held[1][5] == "q.json"
