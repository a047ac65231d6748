"""Lens distortion and undistortion (resplat.views.undistort) against float64 formulas and an
analytic image: distorted blobs must come back to their pinhole projections."""

from __future__ import annotations

import math

import pytest
import torch

from resplat.errors import ViewsError
from resplat.views import distort_normalized, opencv_coefficients, undistort_images

# The real calibration of OpenCV's left*.jpg (left_intrinsics.yml): strong barrel distortion.
OPENCV_DIST = (-0.26637260909660682, -0.038588898922304653, 0.0017831947042852964, -0.00028122100441115472, 0.23839153080878486)


def _direct(x: float, y: float, k1, k2, p1, p2, k3) -> tuple[float, float]:
    """OpenCV's documented distortion, written out term by term in float64 Python."""
    r2 = x * x + y * y
    r4, r6 = r2 * r2, r2 * r2 * r2
    radial = 1 + k1 * r2 + k2 * r4 + k3 * r6
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


def test_distortion_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    x, y = (torch.rand(2, 200, generator=g, dtype=torch.float64) - 0.5) * 1.4
    coeffs = torch.tensor(OPENCV_DIST, dtype=torch.float64)
    xd, yd = distort_normalized(x, y, coeffs)
    for i in range(200):
        ex, ey = _direct(float(x[i]), float(y[i]), *OPENCV_DIST)
        assert xd[i].item() == pytest.approx(ex, abs=1e-14) and yd[i].item() == pytest.approx(ey, abs=1e-14)
    # per-view coefficients broadcast over [V, N]
    per_view = torch.stack([coeffs, coeffs * torch.tensor([0.5, 2.0, -1.0, 3.0, 0.0], dtype=torch.float64)])
    xd2, yd2 = distort_normalized(x.expand(2, -1), y.expand(2, -1), per_view[:, None, :])
    assert torch.equal(xd2[0], xd)
    ex, ey = _direct(float(x[7]), float(y[7]), *per_view[1].tolist())
    assert xd2[1, 7].item() == pytest.approx(ex, abs=1e-14) and yd2[1, 7].item() == pytest.approx(ey, abs=1e-14)


def test_model_coefficients_mapping_and_errors():
    assert opencv_coefficients([0.1], "SIMPLE_RADIAL").tolist() == [0.1, 0, 0, 0, 0]
    assert opencv_coefficients([0.1, 0.2], "RADIAL").tolist() == [0.1, 0.2, 0, 0, 0]
    assert opencv_coefficients([0.1, 0.2, 0.3, 0.4], "OPENCV").tolist() == [0.1, 0.2, 0.3, 0.4, 0]
    assert opencv_coefficients([[1, 2, 3, 4, 5]] * 3).shape == (3, 5)
    with pytest.raises(ViewsError, match="FULL_OPENCV"):
        opencv_coefficients([0.0] * 8, "FULL_OPENCV")
    with pytest.raises(ViewsError, match="RADIAL takes 2"):
        opencv_coefficients([0.1, 0.2, 0.3], "RADIAL")


def _blobs(h, w, centres, sigma=1.3):
    """[1, 3, h, w] image of Gaussian blobs at continuous pixel positions (corner at 0, centres
    at half-integers)."""
    vv, uu = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij")
    img = torch.zeros(h, w, dtype=torch.float64)
    for u, v in centres:
        img += torch.exp(-((uu - u) ** 2 + (vv - v) ** 2) / (2 * sigma**2))
    return img.clamp(max=1).expand(1, 3, h, w).float()


def _centroid(img: torch.Tensor, u: float, v: float, r: int = 4) -> tuple[float, float]:
    c0, r0 = int(u), int(v)
    win = img[r0 - r : r0 + r + 1, c0 - r : c0 + r + 1].double()
    vv, uu = torch.meshgrid(torch.arange(r0 - r, r0 + r + 1, dtype=torch.float64) + 0.5, torch.arange(c0 - r, c0 + r + 1, dtype=torch.float64) + 0.5, indexing="ij")
    return float((win * uu).sum() / win.sum()), float((win * vv).sum() / win.sum())


def test_undistorted_blobs_land_on_pinhole_projections():
    """Points distorted with the forward model and drawn into a photo come back, after
    undistortion, to the ideal pinhole projection u = fx x + cx (to a small fraction of a pixel);
    a half-pixel grid error or an inverted model would be off by 0.5 px or several pixels."""
    w, h = 320, 240
    K = torch.tensor([[268.0, 0, 171.1], [0, 265.0, 117.8], [0, 0, 1]], dtype=torch.float64)
    coeffs = torch.tensor(OPENCV_DIST, dtype=torch.float64)
    xs = torch.linspace(-0.45, 0.45, 7, dtype=torch.float64)
    ys = torch.linspace(-0.32, 0.32, 5, dtype=torch.float64)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    xd, yd = distort_normalized(x.reshape(-1), y.reshape(-1), coeffs)
    photo = _blobs(h, w, list(zip((K[0, 0] * xd + K[0, 2]).tolist(), (K[1, 1] * yd + K[1, 2]).tolist())))
    out = undistort_images(photo, K, OPENCV_DIST, "OPENCV")[0, 1]
    pin_u, pin_v = (K[0, 0] * x + K[0, 2]).reshape(-1), (K[1, 1] * y + K[1, 2]).reshape(-1)
    errs = [math.hypot(*(a - b for a, b in zip(_centroid(out, u, v), (u, v)))) for u, v in zip(pin_u.tolist(), pin_v.tolist())]
    assert max(errs) < 0.1, errs
    # the distortion is strong: the uncorrected photo puts the corner blob several pixels away
    raw = _centroid(photo[0, 1], pin_u[0].item(), pin_v[0].item(), r=6)
    assert math.hypot(raw[0] - pin_u[0].item(), raw[1] - pin_v[0].item()) > 3


def test_zero_distortion_is_identity_and_per_view_inputs():
    g = torch.Generator().manual_seed(1)
    imgs = torch.rand(2, 3, 24, 40, generator=g)
    K = torch.tensor([[30.0, 0, 20], [0, 30, 12], [0, 0, 1]])
    assert torch.allclose(undistort_images(imgs, K, [0.0] * 4), imgs, atol=1e-5)
    mixed = undistort_images(imgs, K.expand(2, 3, 3), [[0.0] * 5, list(OPENCV_DIST)])
    assert torch.allclose(mixed[0], imgs[0], atol=1e-5) and not torch.allclose(mixed[1], imgs[1], atol=1e-2)
    with pytest.raises(ViewsError, match="2 images"):
        undistort_images(imgs, K.expand(3, 3, 3), [0.0] * 4)
