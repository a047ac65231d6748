"""nerfstudio / Blender-NeRF transforms.json: writer -> reader round trips, conventions
(OpenGL c2w, camera_angle_x, extensionless paths, distortion) and every error path."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from resplat.cameras import Cameras
from resplat.errors import ViewsError
from resplat.views import read_transforms_json, read_views, undistort_images, write_transforms_json


def _random_w2c(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.linalg.det(q).sign()[:, None, None]
    w2c = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    w2c[:, :3, :3], w2c[:, :3, 3] = q, torch.randn(n, 3, generator=g, dtype=torch.float64)
    return w2c


def _images(folder, n, w=48, h=32, mode="RGB", suffix=".png", seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
        arr = arr[..., 0] if mode == "L" else arr
        paths.append(folder / f"r_{i}{suffix}")
        Image.fromarray(arr, mode).save(paths[-1])
    return paths


def test_round_trip_shared_and_per_frame_intrinsics(tmp_path):
    paths = _images(tmp_path / "images", 3)
    K = torch.tensor([[50.0, 0, 24.5], [0, 51.0, 15.25], [0, 0, 1]], dtype=torch.float64)
    cams = Cameras(_random_w2c(3, 0), K, 48, 32)
    write_transforms_json(tmp_path / "transforms.json", cams, paths)
    data = json.loads((tmp_path / "transforms.json").read_text())
    assert data["fl_x"] == 50.0 and data["frames"][0]["file_path"] == "images/r_0.png" and "fl_x" not in data["frames"][0]
    views = read_transforms_json(tmp_path / "transforms.json")
    assert torch.allclose(views.cameras.w2c, cams.w2c, atol=1e-12) and torch.equal(views.cameras.K, cams.K)
    assert torch.equal(views.images[1], torch.from_numpy(np.array(Image.open(paths[1]))).permute(2, 0, 1).float() / 255)
    assert views.cameras.names == ["r_0", "r_1", "r_2"] and views.paths == [str(p) for p in paths]
    # per-view intrinsics are written inside each frame and read back per view
    K3 = K.repeat(3, 1, 1)
    K3[1, 0, 0], K3[2, 1, 2] = 60.0, 14.0
    (tmp_path / "sub").mkdir()
    write_transforms_json(tmp_path / "sub" / "t.json", Cameras(cams.w2c, K3, 48, 32), paths)
    data = json.loads((tmp_path / "sub" / "t.json").read_text())
    assert "fl_x" not in data and data["frames"][1]["fl_x"] == 60.0 and data["frames"][0]["file_path"] == "../images/r_0.png"
    assert torch.equal(read_views(tmp_path / "sub" / "t.json").cameras.K, K3)
    assert torch.equal(read_views(tmp_path).cameras.K, K.expand(3, 3, 3))  # folder holding transforms.json


def test_opengl_convention_point_in_front(tmp_path):
    """An identity OpenGL c2w looks down world -z: the world point (0.1, 0.2, -2) is 2 m in front,
    right of and above the centre, i.e. at u > cx and v < cy in OpenCV pixels."""
    _images(tmp_path, 1, w=40, h=30)
    doc = {"fl_x": 20.0, "fl_y": 20.0, "cx": 20.0, "cy": 15.0, "w": 40, "h": 30,
           "frames": [{"file_path": "r_0.png", "transform_matrix": np.eye(4).tolist()}]}
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    cams = read_transforms_json(tmp_path / "transforms.json").cameras
    X = cams.w2c[0] @ torch.tensor([0.1, 0.2, -2.0, 1.0], dtype=torch.float64)
    assert X[:3].tolist() == pytest.approx([0.1, -0.2, 2.0])
    uv = cams.K[0] @ X[:3] / X[2]
    assert uv[:2].tolist() == pytest.approx([21.0, 13.0])


def test_blender_nerf_synthetic_style(tmp_path):
    """camera_angle_x only, no w/h/cx/cy, file paths without extension, RGBA over white."""
    (tmp_path / "train").mkdir()
    rgba = np.zeros((16, 20, 4), np.uint8)
    rgba[..., 0], rgba[4:8, 5:9, 3] = 255, 255  # red square, transparent elsewhere
    Image.fromarray(rgba, "RGBA").save(tmp_path / "train" / "r_0.png")
    c2w = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4.0], [0, 0, 0, 1]]
    doc = {"camera_angle_x": 0.6911112070083618, "frames": [{"file_path": "./train/r_0", "rotation": 0.0, "transform_matrix": c2w}]}
    (tmp_path / "transforms_train.json").write_text(json.dumps(doc))
    views = read_transforms_json(tmp_path / "transforms_train.json", background=(1, 1, 1))
    f = 0.5 * 20 / math.tan(0.5 * 0.6911112070083618)
    assert torch.allclose(views.cameras.K[0], torch.tensor([[f, 0, 10], [0, f, 8], [0, 0, 1]], dtype=torch.float64))
    assert views.images[0, :, 0, 0].tolist() == [1, 1, 1] and views.images[0, :, 5, 6].tolist() == [1, 0, 0]
    assert views.cameras.centers[0].tolist() == pytest.approx([0, 0, 4.0])


def test_distortion_keys_undistort_images(tmp_path):
    paths = _images(tmp_path, 2, w=40, h=30, mode="L")
    dist = {"k1": -0.2, "k2": 0.05, "p1": 0.001, "p2": -0.002}
    doc = {"fl_x": 30.0, "fl_y": 31.0, "cx": 20.5, "cy": 14.5, "w": 40, "h": 30, **dist,
           "frames": [{"file_path": p.name, "transform_matrix": np.eye(4).tolist()} for p in paths]}
    doc["frames"][1].update(k1=0.0, k2=0.0, p1=0.0, p2=0.0)  # frame keys override shared ones
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    views = read_transforms_json(tmp_path / "transforms.json")
    raw = torch.stack([torch.from_numpy(np.array(Image.open(p))).float().div(255).expand(3, 30, 40) for p in paths])
    expect = undistort_images(raw[:1], views.cameras.K[0], [-0.2, 0.05, 0.001, -0.002])
    assert torch.equal(views.images[0], expect[0]) and not torch.allclose(views.images[0], raw[0], atol=0.05)
    assert torch.equal(views.images[1], raw[1])


def _write(tmp_path, doc, name="transforms.json"):
    (tmp_path / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return tmp_path / name


def test_errors_name_file_and_problem(tmp_path):
    paths = _images(tmp_path, 2, w=40, h=30)
    frame = lambda i, **kw: {"file_path": paths[i].name, "transform_matrix": np.eye(4).tolist(), **kw}  # noqa: E731
    base = {"fl_x": 30.0, "w": 40, "h": 30}
    cases = [
        (None, r"missing\.json: file not found"),
        ('{"frames": [', r"not valid JSON"),
        ({"fl_x": 3}, r"missing key 'frames'"),
        ({**base, "frames": [{"file_path": paths[0].name}]}, r"frame 0: missing key 'transform_matrix'"),
        ({**base, "frames": [{"transform_matrix": np.eye(4).tolist()}]}, r"frame 0: missing key 'file_path'"),
        ({"w": 40, "h": 30, "frames": [frame(0)]}, r"frame 0: missing key 'fl_x' \(or 'camera_angle_x'\)"),
        ({**base, "frames": [frame(0), {"file_path": "gone", "transform_matrix": np.eye(4).tolist()}]}, r"frame 1: image 'gone' not found"),
        ({**base, "camera_model": "OPENCV_FISHEYE", "frames": [frame(0)]}, r"unsupported camera_model 'OPENCV_FISHEYE'"),
        ({"fl_x": 30.0, "frames": [frame(0, w=40, h=30), frame(1, w=20, h=30)]}, r"frame 1: size 20x30 differs from frame 0's 40x30"),
        ({"fl_x": 30.0, "w": 64, "h": 30, "frames": [frame(0)]}, r"frame 0: size 64x30 \(w, h\) differs from its image"),
        ({**base, "frames": [frame(0, transform_matrix=[[1, 0], [0, 1]])]}, r"4x4 list of numbers"),
        ({**base, "frames": [frame(0, transform_matrix=np.full((4, 4), np.nan).tolist())]}, r"not finite"),
        ({**base, "fl_y": "wide", "frames": [frame(0)]}, r"'fl_y' must be a number"),
    ]
    for doc, pattern in cases:
        path = tmp_path / "missing.json" if doc is None else _write(tmp_path, doc)
        with pytest.raises(ViewsError, match=pattern) as info:
            read_transforms_json(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ViewsError, match="no such file or folder"):
        read_views(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ViewsError, match="neither a transforms.json nor a COLMAP model"):
        read_views(tmp_path / "empty")
