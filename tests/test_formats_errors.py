"""Malformed files raise SplatFileError naming the file and the problem (one line); failed writes
leave no file and never touch an existing destination."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import plyfile
import pytest

from resplat.errors import ResplatError, SplatFileError
from resplat.formats import read_splat_arrays, write_splat_arrays
from resplat.formats.arrays import SplatArrays
from resplat.formats.ply import ply_property_names


@pytest.fixture(scope="module")
def small(train_ply) -> SplatArrays:
    return read_splat_arrays(train_ply).select(np.arange(20))


def _fails(path, match: str) -> SplatFileError:
    with pytest.raises(SplatFileError, match=match) as info:
        read_splat_arrays(path)
    e = info.value
    assert e.path == os.fspath(path) and str(e).startswith(os.fspath(path)) and "\n" not in str(e)
    return e


def _ply_without(small, tmp_path, drop: str):
    names = [n for n in ply_property_names(3) if n != drop]
    full = tmp_path / "full.ply"
    write_splat_arrays(small, full)
    src = plyfile.PlyData.read(str(full))["vertex"].data
    v = np.zeros(len(src), [(n, "<f4") for n in names])
    for n in names:
        v[n] = src[n]
    out = tmp_path / f"no_{drop}.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(v, "vertex")]).write(str(out))
    return out


# -- PLY -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("drop", ["opacity", "rot_3", "f_dc_2", "f_rest_44"])
def test_ply_missing_property(small, tmp_path, drop):
    out = _ply_without(small, tmp_path, drop)
    _fails(out, "f_rest properties" if drop == "f_rest_44" else f"lacks property {drop}")


def test_ply_truncated_body_and_overclaiming_header(small, tmp_path):
    good = tmp_path / "good.ply"
    write_splat_arrays(small, good)
    data = good.read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[:-100])
    _fails(tmp_path / "cut.ply", "truncated PLY: the header claims 20 vertex rows but the data ends in row 19")
    (tmp_path / "more.ply").write_bytes(data.replace(b"element vertex 20\n", b"element vertex 21\n"))
    _fails(tmp_path / "more.ply", "truncated PLY: the header claims 21 vertex rows but the data ends in row 20")


def test_ply_bad_magic_and_header(small, tmp_path):
    good = tmp_path / "good.ply"
    write_splat_arrays(small, good)
    data = good.read_bytes()
    (tmp_path / "magic.ply").write_bytes(b"plx" + data[3:])
    _fails(tmp_path / "magic.ply", "no 'ply' magic")
    (tmp_path / "hdr.ply").write_bytes(data.replace(b"format binary_little_endian", b"format binary_middle_endian"))
    _fails(tmp_path / "hdr.ply", "malformed PLY")


def test_ply_non_finite_values(small, tmp_path):
    for bad, field in [(np.nan, "logit_opacities"), (np.inf, "means")]:
        good = tmp_path / "good.ply"
        write_splat_arrays(small, good)
        ply = plyfile.PlyData.read(str(good))
        ply["vertex"].data["opacity" if field == "logit_opacities" else "y"][7] = bad
        out = tmp_path / f"{field}.ply"
        ply.write(str(out))
        _fails(out, f"{field} of splat 7 is not finite")


def test_ply_wrong_sh_count(small, tmp_path):
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(6)] + [
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    v = np.ones(3, [(n, "<f4") for n in names])
    plyfile.PlyData([plyfile.PlyElement.describe(v, "vertex")]).write(str(tmp_path / "sh6.ply"))
    _fails(tmp_path / "sh6.ply", "6 f_rest properties")


# -- .splat ----------------------------------------------------------------------------------------
def test_splat_size_not_multiple_of_32_and_bad_values(small, tmp_path):
    good = tmp_path / "good.splat"
    write_splat_arrays(small, good)
    data = good.read_bytes()
    (tmp_path / "cut.splat").write_bytes(data[:-5])
    _fails(tmp_path / "cut.splat", "not a multiple of 32")
    rec = bytearray(data)
    rec[32 * 3 + 4:32 * 3 + 8] = struct.pack("<f", np.nan)
    (tmp_path / "nan.splat").write_bytes(bytes(rec))
    _fails(tmp_path / "nan.splat", "means of splat 3 is not finite")
    rec = bytearray(data)
    rec[32 * 2 + 12:32 * 2 + 16] = struct.pack("<f", -1.0)
    (tmp_path / "neg.splat").write_bytes(bytes(rec))
    _fails(tmp_path / "neg.splat", "scale of splat 2 is not positive")


# -- .spz ------------------------------------------------------------------------------------------
def _legacy(tmp_path, name, header: tuple, body: bytes) -> os.PathLike:
    p = tmp_path / name
    p.write_bytes(gzip.compress(struct.pack("<IIIBBBB", *header) + body))
    return p


def test_spz_magic_version_and_counts(small, tmp_path):
    (tmp_path / "junk.spz").write_bytes(b"PK\x03\x04" + bytes(40))
    _fails(tmp_path / "junk.spz", "neither NGSP nor gzip magic")
    body = bytes(20 * (9 + 1 + 3 + 3 + 4))
    _fails(_legacy(tmp_path, "m.spz", (0x12345678, 3, 20, 0, 12, 0, 0), body), "wrong magic 0x12345678")
    _fails(_legacy(tmp_path, "v1.spz", (0x5053474E, 1, 20, 0, 12, 0, 0), body), "unsupported spz version 1")
    _fails(_legacy(tmp_path, "v9.spz", (0x5053474E, 9, 20, 0, 12, 0, 0), body), "unsupported spz version 9")
    _fails(_legacy(tmp_path, "more.spz", (0x5053474E, 3, 21, 0, 12, 0, 0), body), "header .21 splats.* needs")
    _fails(_legacy(tmp_path, "zero.spz", (0x5053474E, 3, 0, 0, 12, 0, 0), body), "claims 0 splats")
    _fails(_legacy(tmp_path, "deg.spz", (0x5053474E, 3, 20, 7, 12, 0, 0), body), "unsupported SH degree 7")
    # v4: wrong version, more splats than the streams hold, truncated streams, bad TOC
    good = tmp_path / "good.spz"
    write_splat_arrays(small, good)
    data = good.read_bytes()
    (tmp_path / "v5.spz").write_bytes(data[:4] + struct.pack("<I", 5) + data[8:])
    _fails(tmp_path / "v5.spz", "unsupported spz version 5")
    (tmp_path / "more4.spz").write_bytes(data[:8] + struct.pack("<I", 21) + data[12:])
    _fails(tmp_path / "more4.spz", "positions stream holds 180 bytes, header .21 splats. needs 189")
    (tmp_path / "cut4.spz").write_bytes(data[:-10])
    _fails(tmp_path / "cut4.spz", "runs past the end of the file")
    (tmp_path / "hdr4.spz").write_bytes(data[:20])
    _fails(tmp_path / "hdr4.spz", "shorter than its 32-byte header")
    (tmp_path / "toc4.spz").write_bytes(data[:16] + struct.pack("<I", 10**6) + data[20:])
    _fails(tmp_path / "toc4.spz", "table of contents")
    corrupt = bytearray(data)
    corrupt[32 + 16 * 6 + 8] ^= 0xFF  # inside the first ZSTD frame
    (tmp_path / "bad4.spz").write_bytes(bytes(corrupt))
    _fails(tmp_path / "bad4.spz", "positions stream")


def test_spz_truncated_gzip(small, tmp_path):
    good = tmp_path / "g.spz"
    from resplat.formats import write_spz

    write_spz(small, good, version=3)
    (tmp_path / "cut.spz").write_bytes(good.read_bytes()[:-12])
    _fails(tmp_path / "cut.spz", "gzip")


# -- every format --------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".ply", ".splat", ".spz"])
def test_empty_and_missing_files(tmp_path, ext):
    (tmp_path / f"empty{ext}").write_bytes(b"")
    _fails(tmp_path / f"empty{ext}", "empty")
    _fails(tmp_path / f"missing{ext}", "no such file")


def test_unsupported_extension(small, tmp_path):
    _fails(tmp_path / "scene.obj", "unsupported extension '.obj'")
    with pytest.raises(SplatFileError, match="unsupported extension ''"):
        write_splat_arrays(small, tmp_path / "noext")
    assert not (tmp_path / "noext").exists()


@pytest.mark.parametrize("ext", [".ply", ".splat", ".spz"])
def test_failed_write_leaves_destination_untouched(small, tmp_path, ext):
    dest = tmp_path / f"scene{ext}"
    dest.write_bytes(b"previous content")
    bad = SplatArrays(**{k: v.copy() for k, v in small.arrays().items()})
    bad.sh[4, 0, 1] = np.nan  # changed in place after validation
    with pytest.raises(SplatFileError, match="refusing to write: sh of splat 4 is not finite") as info:
        write_splat_arrays(bad, dest)
    assert info.value.path == os.fspath(dest)
    assert dest.read_bytes() == b"previous content"
    fresh = tmp_path / f"fresh{ext}"
    with pytest.raises(SplatFileError):
        write_splat_arrays(bad, fresh)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"scene{ext}"]  # no file, no temporary
    with pytest.raises(SplatFileError, match="cannot write"):
        write_splat_arrays(small, tmp_path / "no_such_dir" / f"x{ext}")


def test_spz_write_error_leaves_no_file(small, tmp_path):
    far = SplatArrays(small.means + [0, 0, 1e7], small.quats, small.log_scales, small.logit_opacities, small.sh)
    with pytest.raises(SplatFileError, match="do not fit 24-bit fixed point"):
        write_splat_arrays(far, tmp_path / "far.spz")
    empty = SplatArrays.empty(0)
    with pytest.raises(SplatFileError, match="0 splats"):
        write_splat_arrays(empty, tmp_path / "empty.spz")
    assert list(tmp_path.iterdir()) == []


def test_splat_arrays_validation():
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    ones = lambda *s: np.ones(s, np.float32)  # noqa: E731
    with pytest.raises(ResplatError, match=r"quats must have shape \[2, 4\], got \[2, 3\]"):
        SplatArrays(z(2, 3), z(2, 3), z(2, 3), z(2), z(2, 1, 3))
    with pytest.raises(ResplatError, match="K in 1, 4, 9, 16"):
        SplatArrays(z(2, 3), ones(2, 4), z(2, 3), z(2), z(2, 5, 3))
    with pytest.raises(ResplatError, match="quats of splat 1 is the zero quaternion"):
        SplatArrays(z(2, 3), np.float32([[1, 0, 0, 0], [0, 0, 0, 0]]), z(2, 3), z(2), z(2, 1, 3))
    with pytest.raises(ResplatError, match="log_scales of splat 0 is not finite"):
        SplatArrays(z(2, 3), ones(2, 4), np.float32([[np.inf, 0, 0], [0, 0, 0]]), z(2), z(2, 1, 3))
    a = SplatArrays(z(2, 3).astype(np.float64), ones(2, 4), z(2, 3), z(2), z(2, 4, 3))
    assert a.means.dtype == np.float32 and a.sh_degree == 1
    with pytest.raises(ResplatError, match=r"boolean mask must have shape \[2\]"):
        a.select(np.array([True]))
