"""COLMAP sparse models: text and binary layouts (as COLMAP's read_write_model.py), quaternion
conventions against scipy, camera models, undistortion and every error path."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from resplat.errors import ViewsError
from resplat.views import ColmapCamera, ColmapImage, read_colmap, read_colmap_model, read_views, undistort_images, write_colmap_model
from resplat.views.colmap import qvec_to_rotmat, rotmat_to_qvec

W, H = 40, 30


def _scene(root, cams, n=3, seed=0):
    """Images named c_*.png (written in reverse name order) with random poses on camera 1."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rots = Rotation.random(n, random_state=seed)
    images = []
    for i in reversed(range(n)):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "images" / f"c_{i}.png")
        xyzw = rots[i].as_quat()
        images.append(ColmapImage(10 + i, tuple(np.roll(xyzw, 1)), tuple(rng.normal(size=3)), 1, f"c_{i}.png"))
    return cams, images, rots


def test_quaternion_convention_matches_scipy():
    for q in Rotation.random(20, random_state=1):
        wxyz = np.roll(q.as_quat(), 1)
        assert np.allclose(qvec_to_rotmat(wxyz), q.as_matrix(), atol=1e-14)
        assert np.allclose(qvec_to_rotmat(2.5 * wxyz), q.as_matrix(), atol=1e-14)  # normalised first
        back = rotmat_to_qvec(q.as_matrix())
        assert back[0] >= 0 and np.allclose(back, wxyz * np.sign(wxyz[0]), atol=1e-12)
    for R in (np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])):  # w = 0 branches
        assert np.allclose(qvec_to_rotmat(rotmat_to_qvec(R)), R, atol=1e-14)


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_text_and_binary(tmp_path, binary):
    cams = [ColmapCamera(1, "PINHOLE", W, H, (35.5, 36.25, 20.125, 14.75))]
    cams, images, rots = _scene(tmp_path, cams)
    write_colmap_model(tmp_path / "sparse" / "0", cams, images, binary=binary)
    ext = ".bin" if binary else ".txt"
    assert sorted(p.name for p in (tmp_path / "sparse" / "0").iterdir()) == [f"cameras{ext}", f"images{ext}", f"points3D{ext}"]
    if binary:  # layout: uint64 count + (int32, int32, uint64, uint64, 4 float64) per camera
        assert (tmp_path / "sparse" / "0" / "cameras.bin").stat().st_size == 8 + 24 + 4 * 8
    views = read_views(tmp_path)
    assert views.cameras.names == ["c_0.png", "c_1.png", "c_2.png"]  # sorted by name
    for i in range(3):
        assert np.allclose(views.cameras.w2c[i, :3, :3].numpy(), rots[i].as_matrix(), atol=1e-14)
        im = next(m for m in images if m.name == f"c_{i}.png")
        assert views.cameras.w2c[i, :3, 3].tolist() == list(im.tvec)
        ref = torch.from_numpy(np.array(Image.open(tmp_path / "images" / im.name))).permute(2, 0, 1).float() / 255
        assert torch.equal(views.images[i], ref)
    assert views.cameras.K[0].tolist() == [[35.5, 0, 20.125], [0, 36.25, 14.75], [0, 0, 1]]


def test_reads_points2d_written_by_colmap(tmp_path):
    """Real models carry 2D points after each image; text has them on the second line, binary as
    (float64, float64, int64) triples. The reader must skip them."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "cameras.txt").write_text("# comment\n1 SIMPLE_PINHOLE 40 30 33.0 20.0 15.0\n")
    (model / "images.txt").write_text(
        "# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
        "2 1 0 0 0 0.5 0 1 1 b.png\n1.0 2.0 -1 3.5 4.5 7\n"
        "1 0 1 0 0 0 0 2 1 a.png\n\n")
    cams, images = read_colmap_model(model)
    assert cams[1].params == (33.0, 20.0, 15.0) and [(i.id, i.name, i.tvec) for i in images] == [(2, "b.png", (0.5, 0, 1)), (1, "a.png", (0, 0, 2))]
    blob = struct.pack("<Q", 1) + struct.pack("<idddddddi", 5, 1, 0, 0, 0, 1, 2, 3, 1) + b"x.jpg\0"
    blob += struct.pack("<Q", 2) + struct.pack("<ddqddq", 1.5, 2.5, -1, 3.0, 4.0, 12)
    (model / "images.bin").write_bytes(blob)  # .bin is preferred over .txt
    _, images = read_colmap_model(model)
    assert [(i.id, i.name, i.qvec, i.tvec, i.camera_id) for i in images] == [(5, "x.jpg", (1, 0, 0, 0), (1, 2, 3), 1)]
    (model / "images.bin").write_bytes(blob[:-10])
    with pytest.raises(ViewsError, match=r"images\.bin: truncated binary file"):
        read_colmap_model(model)


@pytest.mark.parametrize("model,params,dist", [
    ("SIMPLE_PINHOLE", (33.0, 20.0, 15.0), None),
    ("SIMPLE_RADIAL", (33.0, 20.0, 15.0, -0.2), (-0.2, 0, 0, 0, 0)),
    ("RADIAL", (33.0, 20.0, 15.0, -0.2, 0.05), (-0.2, 0.05, 0, 0, 0)),
    ("OPENCV", (33.0, 34.0, 20.0, 15.0, -0.2, 0.05, 0.001, -0.002), (-0.2, 0.05, 0.001, -0.002, 0)),
])
def test_camera_models(tmp_path, model, params, dist):
    cams, images, _ = _scene(tmp_path, [ColmapCamera(1, model, W, H, params)], n=2)
    write_colmap_model(tmp_path / "sparse", cams, images, binary=True)
    views = read_colmap(tmp_path / "sparse", tmp_path / "images")
    fx, fy, cx, cy = (params[0], params[0], params[1], params[2]) if model != "OPENCV" else params[:4]
    assert views.cameras.K[0].tolist() == [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    raw = torch.stack([torch.from_numpy(np.array(Image.open(tmp_path / "images" / f"c_{i}.png"))).permute(2, 0, 1).float() / 255 for i in range(2)])
    expect = raw if dist is None else undistort_images(raw, views.cameras.K, dist)
    assert torch.equal(views.images, expect)
    assert (dist is None) or not torch.allclose(views.images, raw, atol=0.05)


def test_errors(tmp_path):
    good = ColmapCamera(1, "PINHOLE", W, H, (35.0, 35.0, 20.0, 15.0))
    cams, images, _ = _scene(tmp_path, [good], n=2)
    model = tmp_path / "sparse"

    def expect(cams_, images_, pattern, binary=False):
        for f in model.glob("*.*"):
            f.unlink()
        write_colmap_model(model, cams_, images_, binary=binary)
        with pytest.raises(ViewsError, match=pattern) as info:
            read_colmap(model, tmp_path / "images")
        assert "\n" not in str(info.value)

    expect([ColmapCamera(3, "OPENCV_FISHEYE", W, H, (1.0,) * 8)], [ColmapImage(1, (1, 0, 0, 0), (0, 0, 0), 3, "c_0.png")],
           r"cameras\.txt: camera 3 uses the unsupported COLMAP model OPENCV_FISHEYE")
    expect([ColmapCamera(7, "FULL_OPENCV", W, H, (1.0,) * 12)], [ColmapImage(1, (1, 0, 0, 0), (0, 0, 0), 7, "c_0.png")],
           r"camera 7 uses the unsupported COLMAP model FULL_OPENCV", binary=True)
    other = ColmapCamera(2, "PINHOLE", W // 2, H, (35.0, 35.0, 10.0, 15.0))
    expect([good, other], [images[0], ColmapImage(4, (1, 0, 0, 0), (0, 0, 0), 2, "c_1.png")], r"camera 2 is 20x30 but camera 1 is 40x30")
    expect([good], [ColmapImage(4, (1, 0, 0, 0), (0, 0, 0), 9, "c_1.png")], r"refers to camera 9, which is not in the model")
    expect([good], [ColmapImage(4, (1, 0, 0, 0), (0, 0, 0), 1, "gone.png")], r"gone\.png: image file not found")
    expect([ColmapCamera(1, "PINHOLE", 64, 48, (35.0, 35.0, 32.0, 24.0))], images, r"image is 40x30 but its COLMAP camera is 64x48")
    expect([good], [], r"the COLMAP model has no images", binary=True)
    for f in model.glob("*.bin"):
        f.unlink()
    write_colmap_model(model, [good], images)
    (model / "cameras.txt").write_text("1 PINHOLE forty 30 1 1 1 1\n")
    with pytest.raises(ViewsError, match=r"cameras\.txt: line 1: expected"):
        read_colmap(model, tmp_path / "images")
    (model / "cameras.txt").unlink()
    with pytest.raises(ViewsError, match=r"no COLMAP cameras\.bin or cameras\.txt"):
        read_colmap(model, tmp_path / "images")
    blob = struct.pack("<Q", 1) + struct.pack("<iiQQ", 1, 42, W, H)
    (model / "cameras.bin").write_bytes(blob)
    with pytest.raises(ViewsError, match=r"camera 1: unknown COLMAP camera model id 42"):
        read_colmap(model, tmp_path / "images")
