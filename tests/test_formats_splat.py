"""antimatter15 .splat: byte layout, sort order, and the round trip on the real fixture within
the u8 quantisation bounds of the format."""

from __future__ import annotations

import struct

import numpy as np

from resplat.formats import SH_C0, read_splat_arrays, write_splat_arrays
from resplat.formats.arrays import SplatArrays, sigmoid


def _one(means, log_scales, logit, dc, quat):
    f = lambda x: np.asarray([x], np.float32)  # noqa: E731
    return SplatArrays(f(means), f(quat), f(log_scales), np.asarray([logit], np.float32), f(dc)[:, None, :])


def test_record_bytes(tmp_path):
    # rgb 0.2 / 0.6 / 1.0 -> 51, 153, 255; opacity 0.8 -> 204; identity -> (255, 128, 128, 128)
    dc = [(v - 0.5) / SH_C0 for v in (0.2, 0.6, 1.0)]
    a = _one([1.5, -2.0, 3.25], [0.0, np.log(2.0), np.log(0.25)], np.log(0.8 / 0.2), dc, [2.0, 0, 0, 0])
    out = tmp_path / "one.splat"
    write_splat_arrays(a, out)
    data = out.read_bytes()
    assert len(data) == 32
    assert struct.unpack("<6f", data[:24]) == (1.5, -2.0, 3.25, 1.0, 2.0, 0.25)
    assert tuple(data[24:]) == (51, 153, 255, 204, 255, 128, 128, 128)


def test_rotation_bytes_and_decoding(tmp_path):
    # 90 degrees about y: (w, x, y, z) = (c, 0, c, 0), c = sqrt(1/2): c * 128 + 128 = 218.51 -> 219
    c = np.sqrt(0.5)
    a = _one([0, 0, 0], [0, 0, 0], 0.0, [0, 0, 0], [c, 0, c, 0])
    out = tmp_path / "rot.splat"
    write_splat_arrays(a, out)
    assert tuple(out.read_bytes()[28:]) == (219, 128, 219, 128)
    b = read_splat_arrays(out)
    np.testing.assert_allclose(b.quats[0], [91 / 128, 0, 91 / 128, 0], atol=1e-7)
    assert b.sh_degree == 0


def test_written_in_size_times_opacity_order(train_ply, tmp_path):
    a = read_splat_arrays(train_ply)
    out = tmp_path / "t.splat"
    write_splat_arrays(a, out)
    rec = np.frombuffer(out.read_bytes(), "<f4").reshape(-1, 8)
    exact = np.exp(a.log_scales.astype(np.float64).sum(1)) * sigmoid(a.logit_opacities)
    order = np.argsort(-exact, kind="stable")
    np.testing.assert_array_equal(rec[:, :3], a.means[order])
    # linear scales stored exactly as float32(exp(log_scale))
    np.testing.assert_array_equal(rec[:, 3:6], np.exp(a.log_scales[order].astype(np.float64)).astype(np.float32))


def test_round_trip_within_quantisation(train_ply, tmp_path):
    a = read_splat_arrays(train_ply)
    out = tmp_path / "t.splat"
    write_splat_arrays(a, out)
    b = read_splat_arrays(out)
    assert len(b) == len(a) and b.sh_degree == 0
    # match splats through their means, which are stored exactly
    lookup = {m.tobytes(): i for i, m in enumerate(a.means)}
    assert len(lookup) == len(a)
    src = np.array([lookup[m.tobytes()] for m in b.means])
    assert sorted(src) == list(range(len(a)))
    a = a.select(src)
    np.testing.assert_array_equal(b.means, a.means)
    # linear scales are stored exactly as float32(exp(log_scale)); log of that is within float32 rounding
    scale_a, scale_b = (np.exp(x.log_scales.astype(np.float64)) for x in (a, b))
    np.testing.assert_allclose(scale_b, scale_a, rtol=3e-7)
    # colour: round to nearest u8 -> DC error <= 0.5/255/C0 where 0.5 + C0*DC lies in [0, 1]
    rgb = 0.5 + SH_C0 * a.sh[:, 0].astype(np.float64)
    inside = (rgb >= 0) & (rgb <= 1)
    assert inside.mean() > 0.5 and (~inside).any()
    err = np.abs(b.sh[:, 0] - a.sh[:, 0])[inside]
    assert err.max() <= 0.5 / 255 / SH_C0 + 1e-5
    # clipped colours come back as exactly 0 or 1
    rgb_b = 0.5 + SH_C0 * b.sh[:, 0].astype(np.float64)
    np.testing.assert_allclose(rgb_b[rgb > 1], 1.0, atol=1e-6)
    np.testing.assert_allclose(rgb_b[rgb < 0], 0.0, atol=1e-6)
    # opacity within half a step in the sigmoid domain
    assert np.abs(sigmoid(b.logit_opacities) - sigmoid(a.logit_opacities)).max() <= 0.5 / 255 + 1e-6
    # quaternion direction within the u8 step (component-wise half step of 1/128), up to sign
    ua = a.quats / np.linalg.norm(a.quats, axis=1, keepdims=True)
    ub = b.quats.astype(np.float64)
    err = np.minimum(np.abs(ub - ua).max(1), np.abs(ub + ua).max(1))
    big = (np.abs(ua) >= 127.5 / 128).any(1)  # +1 clips to 255: error up to 1/128
    assert err[~big].max() <= 0.5 / 128 + 1e-6
    assert err.max() <= 1 / 128 + 1e-6
    cos = np.abs((ub / np.linalg.norm(ub, axis=1, keepdims=True) * ua).sum(1))
    assert cos.min() > np.cos(2 * np.sqrt(4) * 0.5 / 128)


def test_sh_above_degree_zero_is_dropped(train_ply, tmp_path):
    a = read_splat_arrays(train_ply).select(np.arange(10))
    assert a.sh_degree == 3
    write_splat_arrays(a, tmp_path / "d.splat")
    assert read_splat_arrays(tmp_path / "d.splat").sh.shape == (10, 1, 3)
