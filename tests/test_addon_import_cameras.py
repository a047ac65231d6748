"""File > Import > ReSplat Cameras (resplat_addon/operators/import_cameras.py) in headless bpy:
transforms.json and COLMAP (text and binary) models become Blender cameras whose poses,
intrinsics and projections match the runtime's own readers; the add-on's camera export gives the
file's numbers back; the imported cameras feed Reconstruct's "background images" views; every
bad input is refused with a one-line report naming the file and leaves the scene unchanged.

Inputs are written here with the runtime's writers (``resplat.views.write_transforms_json``,
``write_colmap_model``); references come from ``resplat.views.read_views`` (torch, in this
process only: the add-on parses with the torch-free ``resplat.viewfiles``)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from addon_env import addon_env, addon_module, clear_scene
from resplat.cameras import Cameras
from resplat.views import ColmapCamera, ColmapImage, load_image, read_views, write_colmap_model, write_transforms_json
from resplat.views.colmap import rotmat_to_qvec

W, H = 40, 30


def _clear(bpy):
    clear_scene(bpy)
    for coll in (bpy.data.collections, bpy.data.cameras, bpy.data.images):
        for d in list(coll):
            if d.name != "Render Result":
                coll.remove(d)
    bpy.context.scene.camera = None


@pytest.fixture()
def env():
    bpy, addon, _ = addon_env()
    _clear(bpy)
    r = bpy.context.scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = 1920, 1080, 100
    yield bpy, addon
    _clear(bpy)


def _look_at_w2c(n: int, seed: int) -> np.ndarray:
    """[n, 4, 4] OpenCV w2c of cameras on a ring (radius ~4) looking near the origin."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        pos = np.array([4 * np.cos(a), 4 * np.sin(a), 1.0 + 0.5 * rng.normal()])
        z = -pos + 0.2 * rng.normal(size=3)
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = np.stack([x, np.cross(z, x), z], 1), pos
        out.append(np.linalg.inv(c2w))
    return np.stack(out)


def _images(folder, names, w=W, h=H, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return [folder / n for n in names]


def _colmap_project(root, cameras, n=4, binary=False, seed=0, cam_of=lambda i: 1):
    """A COLMAP project (sparse/0 + images/) with ring poses; returns the w2c by image name."""
    w2c = _look_at_w2c(n, seed)
    sizes = {c.id: (c.width, c.height) for c in cameras}
    images = []
    for i in range(n):
        name = f"img_{i}.png"
        _images(root / "images", [name], *sizes[cam_of(i)], seed=i)
        images.append(ColmapImage(i + 1, tuple(rotmat_to_qvec(w2c[i, :3, :3])), tuple(w2c[i, :3, 3]), cam_of(i), name))
    write_colmap_model(root / "sparse" / "0", cameras, images[::-1], binary=binary)
    return root


def _import(bpy, addon, path):
    """Import through the operator's function (returns the warnings the operator reports)."""
    coll, warnings = addon_module(addon, "operators.import_cameras").import_cameras(bpy.context, str(path))
    return sorted(coll.objects, key=lambda o: o.name), warnings


def _snapshot(bpy):
    s, r = bpy.context.scene, bpy.context.scene.render
    return ([o.name for o in bpy.data.objects], [c.name for c in bpy.data.collections], [c.name for c in bpy.data.cameras],
            sorted(i.name for i in bpy.data.images), r.resolution_x, r.resolution_y, s.resplat.views, s.resplat.collection)


def _blender_views(addon, objects):
    cams = addon_module(addon, "cameras")
    return [cams.camera_view(o, o["resplat_width"], o["resplat_height"]) for o in objects]


def _assert_matches_runtime(addon, objects, ref):
    """Blender cameras == the runtime's views: c2w (1e-5), K (1e-4 px), names = image stems."""
    views = _blender_views(addon, objects)
    assert [v.name for v in views] == [n.rsplit(".", 1)[0] for n in ref.cameras.names]
    c2w_cv = torch.linalg.inv(ref.cameras.w2c.double()).numpy()
    np.testing.assert_allclose(np.stack([v.c2w @ np.diag([1.0, -1, -1, 1]) for v in views]), c2w_cv, atol=1e-5)
    np.testing.assert_allclose(np.stack([v.K for v in views]), ref.cameras.K.double().numpy(), atol=1e-4)


def _project_runtime(ref, i, points):
    w2c, K = ref.cameras.w2c[i].double().numpy(), ref.cameras.K[i].double().numpy()
    p = (points @ w2c[:3, :3].T + w2c[:3, 3]) @ K.T
    return p[:, :2] / p[:, 2:]


def _project_blender(bpy, ob, points):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    out = []
    for p in points:
        x, y, z = world_to_camera_view(scene, ob, Vector(p.tolist()))
        assert z > 0
        out.append((x * scene.render.resolution_x, (1 - y) * scene.render.resolution_y))
    return np.array(out)


def test_transforms_json_round_trip_and_export(env, tmp_path):
    bpy, addon = env
    w, h = 30, 40  # portrait: the HORIZONTAL sensor fit must still map fx exactly
    paths = _images(tmp_path / "lego" / "images", [f"r_{i}.png" for i in range(3)], w, h)
    K = torch.tensor([[41.5, 0, 14.25], [0, 41.5, 21.75], [0, 0, 1]], dtype=torch.float64).repeat(3, 1, 1)
    K[2, 0, 0] = K[2, 1, 1] = 37.0  # one view with its own intrinsics (written per frame)
    K[1, 0, 2] = 16.5
    write_transforms_json(tmp_path / "lego" / "transforms.json", Cameras(torch.from_numpy(_look_at_w2c(3, 1)), K, w, h), paths)
    before = _snapshot(bpy)
    assert bpy.ops.import_scene.resplat_cameras(filepath=str(tmp_path / "lego")) == {"FINISHED"}  # the folder
    coll = bpy.data.collections["lego"]
    objects = sorted(coll.objects, key=lambda o: o.name)
    assert [o.name for o in objects] == ["r_0", "r_1", "r_2"] and all(o.type == "CAMERA" for o in objects)
    r = bpy.context.scene.render
    assert (r.resolution_x, r.resolution_y, r.resolution_percentage) == (w, h, 100) and before[4:6] == (1920, 1080)
    for o, p in zip(objects, paths):
        bg = o.data.background_images[0]
        assert o.data.show_background_images and bpy.path.abspath(bg.image.filepath) == str(p)
        assert (o["resplat_width"], o["resplat_height"]) == (w, h) and "resplat_distortion" not in o
        assert tuple(o.matrix_world.to_scale()) == pytest.approx((1, 1, 1), abs=1e-6)
    ref = read_views(tmp_path / "lego")
    _assert_matches_runtime(addon, objects, ref)
    pts = np.random.default_rng(2).uniform(-0.5, 0.5, (10, 3))
    for i, ob in enumerate(objects):  # Blender's own projection (render resolution = the views' size)
        np.testing.assert_allclose(_project_blender(bpy, ob, pts), _project_runtime(ref, i, pts), atol=2e-3)
    # the add-on's own export writes the file's numbers back
    cams = addon_module(addon, "cameras")
    out = tmp_path / "export" / "transforms.json"
    out.parent.mkdir()
    cams.write_transforms_json(out, _blender_views(addon, objects), paths)
    src, back = json.loads((tmp_path / "lego" / "transforms.json").read_text()), json.loads(out.read_text())
    for i, (f, g) in enumerate(zip(src["frames"], back["frames"])):
        np.testing.assert_allclose(g["transform_matrix"], f["transform_matrix"], atol=1e-5)
        want = [f.get(k, src.get(k)) for k in ("fl_x", "fl_y", "cx", "cy")]
        np.testing.assert_allclose([g[k] for k in ("fl_x", "fl_y", "cx", "cy")], want, atol=1e-4)
    assert (back["w"], back["h"]) == (w, h)


def test_blender_nerf_style_json_takes_the_image_size(env, tmp_path):
    """camera_angle_x only, no w/h, extensionless file paths: K from the loaded image's size."""
    bpy, addon = env
    _images(tmp_path / "train", ["r_0.png"], 20, 16)
    doc = {"camera_angle_x": 0.69, "frames": [{"file_path": "./train/r_0", "transform_matrix": np.eye(4).tolist()}]}
    (tmp_path / "transforms_train.json").write_text(json.dumps(doc))
    objects, warnings = _import(bpy, addon, tmp_path / "transforms_train.json")
    assert warnings == [] and [o.name for o in objects] == ["r_0"] and objects[0]["resplat_width"] == 20
    _assert_matches_runtime(addon, objects, read_views(tmp_path / "transforms_train.json"))


@pytest.mark.parametrize("binary", [False, True])
def test_colmap_matches_runtime_poses_and_projections(env, tmp_path, binary):
    bpy, addon = env
    cam = ColmapCamera(1, "PINHOLE", W, H, (33.0, 33.0, 21.3, 13.7))
    root = _colmap_project(tmp_path / "garden", [cam], binary=binary)
    ref = read_views(root)
    for pick in (root, root / "sparse" / "0", root / "sparse" / "0" / ("cameras.bin" if binary else "images.txt")):
        _clear(bpy)
        objects, warnings = _import(bpy, addon, pick)
        assert warnings == [] and objects[0].users_collection[0].name == "garden"
        _assert_matches_runtime(addon, objects, ref)
    pts = np.random.default_rng(3).uniform(-0.6, 0.6, (20, 3))
    for i, ob in enumerate(objects):
        got, want = _project_blender(bpy, ob, pts), _project_runtime(ref, i, pts)
        assert np.abs(got - want).max() < 2e-3, (ob.name, np.abs(got - want).max())
        assert (want > 0).all() and (want[:, 0] < W).all() and (want[:, 1] < H).all()  # the points are in view


def test_imported_cameras_feed_reconstruct_views(env, tmp_path):
    """The sidebar now points at the new collection with background-image views; the add-on's
    view writer (what Reconstruct runs) gives back the model's cameras and the photos."""
    bpy, addon = env
    root = _colmap_project(tmp_path / "garden", [ColmapCamera(1, "SIMPLE_PINHOLE", W, H, (33.0, 20.5, 14.5))], binary=True)
    assert bpy.ops.import_scene.resplat_cameras(filepath=str(root)) == {"FINISHED"}
    s = bpy.context.scene.resplat
    assert (s.cameras, s.collection.name, s.views) == ("COLLECTION", "garden", "BACKGROUND")
    views = addon_module(addon, "views")
    cams = views.cameras_from(bpy.context, s.cameras, s.collection)
    (tmp_path / "job").mkdir()
    got = read_views(views.write_views(bpy.context, cams, s.views, tmp_path / "job"))
    ref = read_views(root)
    np.testing.assert_allclose(got.cameras.w2c.numpy(), ref.cameras.w2c.numpy(), atol=1e-5)
    np.testing.assert_allclose(got.cameras.K.numpy(), ref.cameras.K.numpy(), atol=1e-4)
    assert torch.equal(got.images, ref.images)


@pytest.mark.parametrize("model, params", [("OPENCV", (33.0, 34.5, 20.5, 14.0, -0.12, 0.02, 0.002, -0.001)),
                                           ("SIMPLE_RADIAL", (33.0, 19.0, 15.5, 0.08))])
def test_distorted_photos_reach_the_runtime_undistorted_with_exact_intrinsics(env, tmp_path, model, params):
    """Blender shows a square-pixel pinhole camera, but Reconstruct from the background images
    gives the runtime the model's exact fx, fy, cx, cy and distortion: the views it reads are
    the ones it reads from the COLMAP model itself (undistorted photos, same K). A camera
    changed after the import falls back to what Blender shows."""
    bpy, addon = env
    root = _colmap_project(tmp_path / "lens", [ColmapCamera(1, model, W, H, params)], n=3)
    assert bpy.ops.import_scene.resplat_cameras(filepath=str(root)) == {"FINISHED"}
    s = bpy.context.scene.resplat
    views = addon_module(addon, "views")
    cams = views.cameras_from(bpy.context, s.cameras, s.collection)
    (tmp_path / "job").mkdir()
    js = views.write_views(bpy.context, cams, s.views, tmp_path / "job")
    frame = json.loads(js.read_text())["frames"][0]
    assert frame["k1"] == params[4 if model == "OPENCV" else 3]
    got, ref = read_views(js), read_views(root)
    np.testing.assert_allclose(got.cameras.K.numpy(), ref.cameras.K.numpy(), atol=1e-9)
    np.testing.assert_allclose(got.cameras.w2c.numpy(), ref.cameras.w2c.numpy(), atol=1e-5)
    np.testing.assert_allclose(got.images.numpy(), ref.images.numpy(), atol=1e-6)
    raw = torch.stack([load_image(p) for p in sorted((root / "images").iterdir())])
    assert (got.images - raw).abs().max() > 0.1  # the undistortion did move pixels
    cams[0].data.lens *= 1.1  # edited after the import: Blender's camera wins, no distortion
    (tmp_path / "job2").mkdir()
    frame = json.loads(views.write_views(bpy.context, cams, s.views, tmp_path / "job2").read_text())["frames"][0]
    assert "k1" not in frame and frame["fl_x"] == pytest.approx(params[0] * 1.1, rel=1e-5)


def test_sizes_distortion_and_aspect_are_reported(env, tmp_path):
    bpy, addon = env
    cams = [ColmapCamera(1, "OPENCV", W, H, (33.0, 34.0, 20.0, 15.0, -0.1, 0.01, 0.001, 0.0)),
            ColmapCamera(2, "SIMPLE_RADIAL", 2 * W, 2 * H, (66.0, 40.0, 30.0, 0.05))]
    root = _colmap_project(tmp_path / "mixed", cams, n=3, cam_of=lambda i: 1 + i % 2)
    objects, warnings = _import(bpy, addon, root)
    text = " | ".join(warnings)
    assert "2 image sizes (40x30, 80x60)" in text and "render resolution is unchanged" in text
    assert "3 of 3 cameras have lens distortion (OPENCV, SIMPLE_RADIAL)" in text
    assert "fy differs from fx by up to 3.03%" in text and "'img_0'" in text
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (1920, 1080)
    assert [(o["resplat_width"], o["resplat_height"]) for o in objects] == [(40, 30), (80, 60), (40, 30)]
    assert objects[0]["resplat_distortion_model"] == "OPENCV" and list(objects[0]["resplat_distortion"]) == pytest.approx([-0.1, 0.01, 0.001, 0.0])
    assert list(objects[1]["resplat_intrinsics"]) == [66.0, 66.0, 40.0, 30.0] and objects[1]["resplat_distortion_model"] == "SIMPLE_RADIAL"
    K = np.stack([v.K for v in _blender_views(addon, objects)])  # the pinhole part, fx for both focal lengths
    np.testing.assert_allclose(K[[0, 2]], [[[33.0, 0, 20.0], [0, 33.0, 15.0], [0, 0, 1]]] * 2, atol=1e-4)
    np.testing.assert_allclose(K[1], [[66.0, 0, 40.0], [0, 66.0, 30.0], [0, 0, 1]], atol=1e-4)


def _refused(bpy, path, pattern):
    before = _snapshot(bpy)
    with pytest.raises(RuntimeError, match=pattern) as info:
        bpy.ops.import_scene.resplat_cameras(filepath=str(path))
    assert "\n" not in str(info.value).strip() and _snapshot(bpy) == before


def test_bad_inputs_report_and_change_nothing(env, tmp_path):
    bpy, addon = env
    _refused(bpy, tmp_path / "nowhere", r"nowhere: no such file or folder")
    (tmp_path / "empty").mkdir()
    _refused(bpy, tmp_path / "empty", r"neither a transforms.json nor a COLMAP model")
    # transforms.json
    js = tmp_path / "js"
    _images(js, ["a.png", "b.png"])
    frame = lambda name, **kw: {"file_path": name, "transform_matrix": np.eye(4).tolist(), **kw}  # noqa: E731
    for doc, pattern in [
        ('{"frames": [', r"transforms\.json: not valid JSON"),
        ({"fl_x": 30.0, "frames": [frame("a.png"), frame("gone.png")]}, r"transforms\.json: frame 1: image 'gone\.png' not found"),
        ({"fl_x": 30.0, "camera_model": "OPENCV_FISHEYE", "frames": [frame("a.png")]}, r"unsupported camera_model 'OPENCV_FISHEYE'"),
        ({"frames": [frame("a.png")]}, r"frame 0: missing key 'fl_x'"),
        ({"fl_x": 30.0, "frames": [frame("a.png"), frame("b.png", transform_matrix=np.zeros((4, 4)).tolist())]},
         r"frame 1: camera matrix has a zero or negative scale"),
    ]:
        (js / "transforms.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
        _refused(bpy, js / "transforms.json", pattern)
    # an image that exists but cannot be read: the images loaded before it are removed again
    (js / "c.png").write_bytes(b"not a png")
    (js / "transforms.json").write_text(json.dumps({"fl_x": 30.0, "frames": [frame("a.png"), frame("c.png")]}))
    _refused(bpy, js, r"c\.png: cannot read the image")
    # COLMAP
    good = ColmapCamera(1, "PINHOLE", W, H, (33.0, 33.0, 20.0, 15.0))
    root = _colmap_project(tmp_path / "cm", [good], n=2, binary=True)
    model = root / "sparse" / "0"
    blob = (model / "images.bin").read_bytes()
    (model / "images.bin").write_bytes(blob[:-10])
    _refused(bpy, root, r"images\.bin: truncated binary file")
    (model / "images.bin").write_bytes(blob)
    (model / "cameras.bin").write_bytes(struct.pack("<Q", 1) + struct.pack("<iiQQ", 1, 42, W, H))
    _refused(bpy, root, r"cameras\.bin: camera 1: unknown COLMAP camera model id 42")
    for f in model.iterdir():
        f.unlink()
    write_colmap_model(model, [good],
                       [ColmapImage(1, (1, 0, 0, 0), (0, 0, 4), 1, "img_0.png"), ColmapImage(2, (1, 0, 0, 0), (0, 0, 4), 1, "gone.png")])
    _refused(bpy, root, r"images\.txt: image 'gone\.png': image file .*gone\.png not found")
    (model / "cameras.txt").write_text("1 FOO 40 30 1 2 3\n")
    _refused(bpy, root, r"cameras\.txt: camera 1 uses the unsupported COLMAP model FOO")
    (model / "cameras.txt").write_text("1 PINHOLE forty 30 1 1 1 1\n")
    _refused(bpy, root, r"cameras\.txt: line 1: expected")
    (model / "cameras.txt").write_text("")
    _refused(bpy, root, r"image 'gone\.png' refers to camera 1, which is not in the model")


def test_menu_entry(env):
    bpy, _ = env
    menus = [f.__module__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()]
    assert any(m.endswith("operators.import_cameras") for m in menus)
    assert bpy.ops.import_scene.resplat_cameras.get_rna_type().name == "Import ReSplat Cameras"
