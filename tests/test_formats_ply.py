"""INRIA PLY reader/writer on the real fixture: bit-exact round trip, read by name, any order,
double and ASCII properties, SH degrees 0..3."""

from __future__ import annotations

import re

import numpy as np
import plyfile
import pytest

from resplat.formats import read_splat_arrays, write_splat_arrays
from resplat.formats.arrays import SplatArrays
from resplat.formats.ply import ply_property_names


def _raw_fixture(path):
    """Independent parse of the fixture: header by regex, body by np.frombuffer."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii")
    assert "format binary_little_endian 1.0" in header
    n = int(re.search(r"element vertex (\d+)", header).group(1))
    names = re.findall(r"property float (\S+)", header)
    body = np.frombuffer(data, "<f4", n * len(names), end).reshape(n, len(names))
    return {name: body[:, i] for i, name in enumerate(names)}


def test_read_matches_independent_parse(train_ply):
    a = read_splat_arrays(train_ply)
    raw = _raw_fixture(train_ply)
    assert len(a) == 1000 and a.sh_degree == 3
    np.testing.assert_array_equal(a.means[:, 1], raw["y"])
    np.testing.assert_array_equal(a.quats[:, 0], raw["rot_0"])
    np.testing.assert_array_equal(a.quats[:, 3], raw["rot_3"])
    np.testing.assert_array_equal(a.log_scales[:, 2], raw["scale_2"])
    np.testing.assert_array_equal(a.logit_opacities, raw["opacity"])
    np.testing.assert_array_equal(a.sh[:, 0, 1], raw["f_dc_1"])
    # f_rest is channel-major: f_rest_{c * 15 + k} is coefficient k + 1 of channel c.
    for c, k in [(0, 0), (0, 14), (1, 0), (1, 7), (2, 14)]:
        np.testing.assert_array_equal(a.sh[:, k + 1, c], raw[f"f_rest_{c * 15 + k}"])


def test_round_trip_is_bit_exact(train_ply, tmp_path):
    a = read_splat_arrays(train_ply)
    out = tmp_path / "out.ply"
    write_splat_arrays(a, out)
    assert out.read_bytes() == train_ply.read_bytes()
    b = read_splat_arrays(out)
    for k, v in a.arrays().items():
        assert getattr(b, k).tobytes() == v.tobytes(), k


@pytest.mark.parametrize("degree", [0, 1, 2])
def test_lower_sh_degrees(train_ply, tmp_path, degree):
    a = read_splat_arrays(train_ply)
    k = (degree + 1) ** 2
    low = SplatArrays(a.means, a.quats, a.log_scales, a.logit_opacities, a.sh[:, :k])
    out = tmp_path / f"d{degree}.PLY"  # extension matched case-insensitively
    write_splat_arrays(low, out)
    ply = plyfile.PlyData.read(str(out))
    names = [p.name for p in ply["vertex"].properties]
    assert names == ply_property_names(degree)
    assert sum(n.startswith("f_rest_") for n in names) == 3 * (k - 1)
    np.testing.assert_array_equal(ply["vertex"]["nx"], 0)
    b = read_splat_arrays(out)
    assert b.sh_degree == degree
    np.testing.assert_array_equal(b.sh, a.sh[:, :k])
    if degree == 1:  # channel-major f_rest: f_rest_3 is green coefficient 1
        np.testing.assert_array_equal(ply["vertex"]["f_rest_3"], a.sh[:, 1, 1])


def test_shuffled_double_and_ascii_properties(train_ply, tmp_path):
    a = read_splat_arrays(train_ply).select(np.arange(0, 1000, 25))
    names = ply_property_names(3)
    rng = np.random.default_rng(0)
    order = [names[i] for i in rng.permutation(len(names))]
    src = plyfile.PlyData.read(str(train_ply))["vertex"].data[np.arange(0, 1000, 25)]
    for text in (False, True):
        dtype = [(name, "f8") for name in order] + [("extra", "u1")]
        v = np.zeros(len(src), dtype)
        for name in order:
            v[name] = src[name]
        v["extra"] = 7
        out = tmp_path / f"shuffled_{text}.ply"
        plyfile.PlyData([plyfile.PlyElement.describe(v, "vertex")], text=text).write(str(out))
        b = read_splat_arrays(out)
        for k, arr in a.arrays().items():
            # doubles hold float32 values exactly; ASCII writes repr-exact digits
            np.testing.assert_array_equal(getattr(b, k), arr, err_msg=f"{k} text={text}")


def test_select_and_len(train_ply):
    a = read_splat_arrays(train_ply)
    mask = a.logit_opacities > 0
    s = a.select(mask)
    assert len(s) == int(mask.sum()) and 0 < len(s) < 1000
    np.testing.assert_array_equal(s.sh, a.sh[mask])
    idx = a.select([5, 3])
    np.testing.assert_array_equal(idx.means, a.means[[5, 3]])
    assert SplatArrays.empty(2).sh.shape == (0, 9, 3)
