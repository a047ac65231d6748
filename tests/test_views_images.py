"""Image loading (modes, alpha, sizes, errors) and PosedViews size changes (crop / resize with
exact K updates)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from resplat.cameras import Cameras
from resplat.errors import ViewsError
from resplat.views import PosedViews, fit_to_multiple, load_images, resize, save_image


def _png(path, arr, mode=None):
    Image.fromarray(arr, mode).save(path)
    return path


def test_load_modes_alpha_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (6, 5), dtype=np.uint16)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (6, 5, 1), dtype=np.uint8)], -1)
    paths = [_png(tmp_path / "rgb.png", rgb), _png(tmp_path / "grey.png", grey), _png(tmp_path / "g16.png", grey16), _png(tmp_path / "rgba.png", rgba)]
    imgs = load_images(paths)
    assert imgs.shape == (4, 3, 6, 5) and imgs.dtype == torch.float32
    assert torch.equal(imgs[0], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    assert torch.equal(imgs[1], torch.from_numpy(grey).float().div(255).expand(3, 6, 5))
    assert torch.allclose(imgs[2, 0].double(), torch.from_numpy(grey16.astype(np.float64)) / 65535, atol=1e-7)
    assert torch.equal(imgs[3], imgs[0])  # alpha ignored without a background
    over_white = load_images([paths[3]], background=(1.0, 1.0, 1.0))[0]
    a = torch.from_numpy(rgba[..., 3]).float() / 255
    assert torch.allclose(over_white, imgs[0] * a + (1 - a), atol=1e-6)
    save_image(tmp_path / "out.png", imgs[0])
    assert torch.equal(load_images([tmp_path / "out.png"])[0], imgs[0])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_load_errors_name_the_file(tmp_path):
    a = _png(tmp_path / "a.png", np.zeros((4, 6, 3), np.uint8))
    b = _png(tmp_path / "b.png", np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(ViewsError, match=r"b\.png: image is 6x5 but .*a\.png is 6x4"):
        load_images([a, b])
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ViewsError, match=r"bad\.jpg: cannot read image"):
        load_images([tmp_path / "bad.jpg"])
    with pytest.raises(ViewsError, match=r"nope\.png: image file not found"):
        load_images([tmp_path / "nope.png"])
    with pytest.raises(ViewsError, match="unknown image file suffix"):
        save_image(tmp_path / "x.unknown", torch.zeros(3, 2, 2))
    with pytest.raises(ViewsError, match=r"no-dir.out\.png: cannot write"):
        save_image(tmp_path / "no-dir" / "out.png", torch.zeros(3, 2, 2))


def _views(w=200, h=150, v=2) -> PosedViews:
    g = torch.Generator().manual_seed(2)
    K = torch.tensor([[180.0, 0, 97.3], [0, 175.0, 77.9], [0, 0, 1]], dtype=torch.float64)
    w2c = torch.eye(4, dtype=torch.float64).repeat(v, 1, 1)
    w2c[:, :3, 3] = torch.tensor([0.1, -0.2, 2.0], dtype=torch.float64)
    return PosedViews(torch.rand(v, 3, h, w, generator=g), Cameras(w2c, K, w, h), [f"v{i}.png" for i in range(v)])


def _project(cams: Cameras, X: torch.Tensor) -> torch.Tensor:
    x = (cams.w2c[0, :3, :3] @ X + cams.w2c[0, :3, 3]) @ cams.K[0].T
    return x[:2] / x[2]


def test_fit_crop_is_exact_window():
    views = _views()
    out = fit_to_multiple(views, 64, "crop")
    assert (out.width, out.height) == (192, 128) and out.images.shape == (2, 3, 128, 192)
    assert torch.equal(out.images, views.images[:, :, 11:139, 4:196])
    X = torch.tensor([0.3, 0.1, 1.0], dtype=torch.float64)
    assert torch.allclose(_project(out.cameras, X), _project(views.cameras, X) - torch.tensor([4.0, 11.0], dtype=torch.float64))
    with pytest.raises(ViewsError, match="smaller than 256"):
        fit_to_multiple(views, 256, "crop")
    with pytest.raises(ViewsError, match="unknown fit mode"):
        fit_to_multiple(views, 64, "pad")


def test_fit_resize_scales_content_and_K():
    """A sharp dot at a known 3D point must stay at that point's projection after resizing."""
    views = _views(w=256, h=160, v=1)
    X = torch.tensor([0.25, 0.15, 1.0], dtype=torch.float64)
    u, v = _project(views.cameras, X).tolist()
    vv, uu = torch.meshgrid(torch.arange(160) + 0.5, torch.arange(256) + 0.5, indexing="ij")
    views.images[:] = torch.exp(-((uu - u) ** 2 + (vv - v) ** 2) / (2 * 3.0**2))
    out = fit_to_multiple(views, 64, "resize")
    assert (out.width, out.height) == (256, 192)
    assert torch.allclose(out.cameras.K[0, 1], views.cameras.K[0, 1] * 192 / 160) and torch.equal(out.cameras.K[0, 0], views.cameras.K[0, 0])  # 160 / 64 = 2.5 rounds up to 3
    small = resize(views, 128, 80)
    img = small.images[0, 0].double()
    yy, xx = torch.meshgrid(torch.arange(80) + 0.5, torch.arange(128) + 0.5, indexing="ij")
    centroid = torch.stack([(img * xx).sum(), (img * yy).sum()]) / img.sum()
    assert torch.allclose(centroid, _project(small.cameras, X), atol=0.05)
    assert torch.allclose(_project(small.cameras, X), torch.tensor([u / 2, v / 2], dtype=torch.float64))


def test_posed_views_validation_and_indexing():
    views = _views()
    sub = views[[1]]
    assert len(sub) == 1 and sub.paths == ["v1.png"] and torch.equal(sub.images[0], views.images[1])
    with pytest.raises(ViewsError, match="images are 200x150 but cameras are 100x150"):
        PosedViews(views.images, Cameras(views.cameras.w2c, views.cameras.K, 100, 150), views.paths)
    with pytest.raises(ViewsError, match="counts must match"):
        PosedViews(views.images, views.cameras, ["only-one.png"])
