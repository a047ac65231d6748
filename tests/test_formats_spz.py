"""Niantic .spz: hand-built v2/v3/v4 files decode to known values (read as Niantic's RUB and
converted to our RDF by default, or as stored on request; an SPZ_ADOBE_coordinate_system record
names other stored axes), our v4 files have the documented layout in RUB, and the fixture
round-trips within the spec's quantisation. Relation to PlayCanvas splat-transform:
test_formats_third_party.py."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import zstandard

from resplat.errors import SplatFileError
from resplat.formats import read_spz, read_splat_arrays, write_spz, write_splat_arrays
from resplat.formats.arrays import SplatArrays, logit, sigmoid
from resplat.formats.spz_quant import change_axes, flip_axes

MAGIC = 0x5053474E
R = np.sqrt(0.5)


# -- hand-built files ----------------------------------------------------------------------------
def _i24(v: int) -> bytes:
    return (v & 0xFFFFFF).to_bytes(3, "little")


def _streams(version: int) -> list[bytes]:
    """Packed attribute sections of 2 splats, SH degree 1, 12 fractional bits (RUB axes)."""
    positions = b"".join(_i24(v) for v in (4096, -8192, 2048, -1, 8388607, -8388608))
    alphas = bytes([204, 0])
    colors = bytes([165, 128, 0, 255, 127, 30])
    scales = bytes([144, 0, 255, 160, 160, 160])
    if version >= 3:
        c0 = (3 << 30) | (434 << 10)  # largest w; x = 0, y = +434, z = 0
        c1 = (((1 << 9) | 260) << 20) | (0 << 10) | 347  # largest x; y = -260, z = 0, w = +347
        rotations = struct.pack("<II", c0, c1)
    else:
        rotations = bytes([128, 218, 128, 0, 128, 200])
    sh = bytes([192, 128, 64, 128, 128, 128, 255, 0, 136] + [128] * 9)
    return [positions, alphas, colors, scales, rotations, sh]


def _expected(version: int) -> dict[str, np.ndarray]:
    """What the streams mean read as RUB and converted to RDF (y and z flipped, SH per basis
    sign); read without conversion they mean :func:`flip_axes` of this (an involution)."""
    means = [[1.0, 2.0, -0.5], [-1 / 4096, -8388607 / 4096, 2048.0]]
    if version >= 3:
        y0 = R * 434 / 511
        y1, w1 = -R * 260 / 511, R * 347 / 511
        x1 = np.sqrt(1 - y1 * y1 - w1 * w1)
        quats = [[np.sqrt(1 - y0 * y0), 0, -y0, 0], [w1, x1, -y1, 0]]
    else:
        quats = []
        for b in ([128, 218, 128], [0, 128, 200]):
            xyz = np.array(b) / 127.5 - 1
            w = np.sqrt(max(0.0, 1 - xyz @ xyz))
            quats.append([w, xyz[0], -xyz[1], -xyz[2]])
    dc = (np.array([[165, 128, 0], [255, 127, 30]]) / 255 - 0.5) / 0.15
    sh = np.zeros((2, 4, 3))
    sh[:, 0] = dc
    sh[0, 1] = [-0.5, 0, 0.5]  # coefficient 1 (y) flips
    sh[0, 3] = [127 / 128, -1, 8 / 128]  # coefficient 3 (x) keeps its sign
    return {
        "means": np.array(means),
        "quats": np.array(quats),
        "log_scales": np.array([[-1, -10, 5.9375], [0, 0, 0]]),
        "logit_opacities": logit(np.array([204 / 255, 1 / 255])),
        "sh": sh,
    }


def _legacy_file(version: int) -> bytes:
    header = struct.pack("<IIIBBBB", MAGIC, version, 2, 1, 12, 0, 0)
    return gzip.compress(header + b"".join(_streams(version)))


def _v4_file(streams: list[bytes], n: int = 2, degree: int = 1, extensions: bytes = b"") -> bytes:
    frames = [zstandard.ZstdCompressor(level=3).compress(s) for s in streams if s]
    flags = 0x2 if extensions else 0  # extension records sit between header and TOC
    header = struct.pack("<IIIBBBBI12x", MAGIC, 4, n, degree, 12, flags, len(frames), 32 + len(extensions))
    toc = b"".join(struct.pack("<QQ", len(f), len(s)) for f, s in zip(frames, [s for s in streams if s]))
    return header + extensions + toc + b"".join(frames)


@pytest.mark.parametrize("version", [2, 3, 4, "4+ext"])
def test_hand_built_files_decode_to_known_values(tmp_path, version):
    if version == "4+ext":  # an unknown ILV record (u32 type, u32 length, payload) is skipped
        data, version = _v4_file(_streams(3), extensions=struct.pack("<II4s", 0xABCD, 4, b"abcd")), 4
    else:
        data = _v4_file(_streams(3)) if version == 4 else _legacy_file(version)
    path = tmp_path / f"v{version}.SPZ"
    path.write_bytes(data)
    converted = _expected(min(version, 3))
    means, quats, rest = flip_axes(converted["means"], converted["quats"], converted["sh"][:, 1:])
    as_stored = dict(converted, means=means, quats=quats, sh=np.concatenate([converted["sh"][:, :1], rest], 1))
    for a, expected in ((read_splat_arrays(path), converted), (read_spz(path, convert_axes=False), as_stored)):
        assert len(a) == 2 and a.sh_degree == 1
        for name, want in expected.items():
            np.testing.assert_allclose(getattr(a, name), want, rtol=1e-6, atol=1e-6, err_msg=name)


def _coordinate_record(value: int) -> bytes:
    return struct.pack("<III", 0xADBE0003, 4, value)  # SPZ_ADOBE_coordinate_system


@pytest.mark.parametrize("container", ["v4", "v3"])
@pytest.mark.parametrize("name, value, diagonal", [
    ("UNSPECIFIED", 0, [1, -1, -1]), ("RUB", 4, [1, -1, -1]), ("RDF", 6, [1, 1, 1]), ("LUF", 7, [-1, -1, 1]),
    ("LDB", 1, [-1, 1, -1]),
])
def test_coordinate_system_record_names_the_stored_axes(tmp_path, container, name, value, diagonal):
    other = struct.pack("<II4s", 0xABCD0001, 4, b"abcd")  # an unknown record before it is skipped
    records = other + _coordinate_record(value)
    if container == "v4":
        data = _v4_file(_streams(3), extensions=records)
    else:  # gzip: the records follow the attributes, flag 0x2
        header = struct.pack("<IIIBBBB", MAGIC, 3, 2, 1, 12, 0x2, 0)
        data = gzip.compress(header + b"".join(_streams(3)) + records)
    path = tmp_path / f"{name}.spz"
    path.write_bytes(data)
    raw = read_spz(path, convert_axes=False)
    got = read_spz(path)
    means, quats, rest = change_axes(raw.means, raw.quats, raw.sh[:, 1:], diagonal)
    np.testing.assert_allclose(got.means, means, atol=1e-6)
    np.testing.assert_allclose(got.quats, quats, atol=1e-6)
    np.testing.assert_allclose(got.sh[:, 1:], rest, atol=1e-6)


def test_rotated_coordinate_system_is_refused(tmp_path):
    path = tmp_path / "rfu.spz"
    path.write_bytes(_v4_file(_streams(3), extensions=_coordinate_record(12)))
    with pytest.raises(SplatFileError, match="rotated axis system RFU") as e:
        read_spz(path)
    assert str(path) in str(e.value)
    assert len(read_spz(path, convert_axes=False)) == 2


# -- layout of what we write -----------------------------------------------------------------------
def _parse_v4(data: bytes) -> tuple[tuple, list[bytes]]:
    header = struct.unpack_from("<4sIIBBBBI12s", data)
    assert header[0] == b"NGSP" and header[-1] == bytes(12)
    n_streams, toc = header[6], header[7]
    offset, streams = toc + 16 * n_streams, []
    for i in range(n_streams):
        csize, usize = struct.unpack_from("<QQ", data, toc + 16 * i)
        streams.append(zstandard.ZstdDecompressor().decompress(data[offset:offset + csize]))
        assert len(streams[-1]) == usize
        offset += csize
    assert offset == len(data)
    return header, streams


def _fixed_positions(stream: bytes) -> np.ndarray:
    b = np.frombuffer(stream, np.uint8).reshape(-1, 3).astype(np.int64)
    fixed = b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16
    return np.where(fixed >= 1 << 23, fixed - (1 << 24), fixed).reshape(-1, 3) / 4096


def test_written_v4_layout_and_axes(train_ply, tmp_path):
    a = read_splat_arrays(train_ply)
    out = tmp_path / "t.spz"
    write_splat_arrays(a, out)
    header, streams = _parse_v4(out.read_bytes())
    assert header[1:8] == (4, 1000, 3, 12, 0, 6, 32)
    assert [len(s) for s in streams] == [9000, 1000, 3000, 3000, 4000, 45000]
    # default: Niantic's RUB, y and z negated
    rub = a.means.astype(np.float64) * [1, -1, -1]
    assert np.abs(_fixed_positions(streams[0]) - rub).max() <= 2.0**-13
    back = read_splat_arrays(out)
    assert np.abs(back.means - a.means).max() <= 2.0**-13 + 1e-6
    write_spz(a, out, convert_axes=False)  # the PLY's axes as they are
    assert np.abs(_fixed_positions(_parse_v4(out.read_bytes())[1][0]) - a.means).max() <= 2.0**-13
    assert np.abs(read_spz(out, convert_axes=False).means - a.means).max() <= 2.0**-13 + 1e-6
    # degree 0: no SH stream
    low = SplatArrays(a.means, a.quats, a.log_scales, a.logit_opacities, a.sh[:, :1])
    write_splat_arrays(low, out)
    header, streams = _parse_v4(out.read_bytes())
    assert header[6] == 5 and [len(s) for s in streams] == [9000, 1000, 3000, 3000, 4000]


def test_v4_stream_declaring_a_huge_size_is_refused_before_allocating(train_ply, tmp_path):
    """A zstd frame that declares its content size gets a buffer of that size from
    python-zstandard whatever ``max_output_size`` says; a 1 GiB claim in a few-byte frame must be
    refused, not allocated (fuzzing found a 666-byte file that peaked at 1.1 GB)."""
    import tracemalloc

    out = tmp_path / "t.spz"
    write_splat_arrays(read_splat_arrays(train_ply), out)
    data = out.read_bytes()
    header = struct.unpack_from("<4sIIBBBBI12s", data)
    n_streams, toc = header[6], header[7]
    entries = [struct.unpack_from("<QQ", data, toc + 16 * i) for i in range(n_streams)]
    start = toc + 16 * n_streams
    # magic; FHD 0xE0 = 8-byte content size, single segment; content size 2**30; one raw last
    # block of 1 byte (block header 0x000009)
    bomb = b"\x28\xb5\x2f\xfd\xe0" + struct.pack("<Q", 2**30) + b"\x09\x00\x00\x00"
    entries[0] = (len(bomb), entries[0][1])
    forged = bytearray(data[:toc])
    for csize, usize in entries:
        forged += struct.pack("<QQ", csize, usize)
    forged += bomb + data[start + struct.unpack_from("<QQ", data, toc)[0]:]
    out.write_bytes(bytes(forged))
    tracemalloc.start()
    try:
        with pytest.raises(SplatFileError, match="positions stream declares 1073741824 bytes, expected 9000"):
            read_spz(out)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 2**24


# -- round trip ----------------------------------------------------------------------------------
def _check_round_trip(a: SplatArrays, b: SplatArrays, version: int, frac: int = 12) -> None:
    assert len(b) == len(a) and b.sh_degree == a.sh_degree
    assert np.abs(b.means - a.means).max() <= 2.0 ** -(frac + 1)
    assert np.abs(b.log_scales - a.log_scales).max() <= 1 / 32 + 1e-6
    alpha_a, alpha_b = sigmoid(a.logit_opacities), sigmoid(b.logit_opacities)
    clamped = (alpha_a < 0.5 / 255) | (alpha_a > 254.5 / 255)
    assert np.abs(alpha_b - alpha_a)[~clamped].max() <= 0.5 / 255 + 1e-6
    assert np.abs(alpha_b - alpha_a).max() <= 1 / 255 + 1e-6
    assert np.abs(b.sh[:, 0] - a.sh[:, 0]).max() <= 0.5 / (255 * 0.15) + 1e-5
    err = np.abs(b.sh[:, 1:] - a.sh[:, 1:])
    assert err[:, :3].max() <= 4.5 / 128 + 1e-6  # 5 bits: bucket 8, plus rounding to 1/128
    if a.sh_degree > 1:
        assert err[:, 3:].max() <= 8.5 / 128 + 1e-6  # 4 bits: bucket 16
    ua = a.quats / np.linalg.norm(a.quats, axis=1, keepdims=True)
    ub = b.quats.astype(np.float64)
    if version >= 3:
        # each small component within half a 9-bit step of sqrt(1/2): d = sqrt(1/2)/511/2; the
        # largest (>= 1/2) is derived, so the unit vector moves by at most 2 * sqrt(3) * d
        d = R / 511 / 2
        dist = np.minimum(np.linalg.norm(ub - ua, axis=1), np.linalg.norm(ub + ua, axis=1))
        assert dist.max() <= 2 * np.sqrt(3) * d + 1e-6
    else:
        # x, y, z of the w >= 0 representative within half a step of 1/127.5
        canon = np.where(ua[:, :1] < 0, -ua, ua)
        assert np.abs(ub[:, 1:] - canon[:, 1:]).max() <= 0.5 / 127.5 + 1e-6


@pytest.mark.parametrize("version", [4, 3, 2])
def test_fixture_round_trip_within_quantisation(train_ply, tmp_path, version):
    a = read_splat_arrays(train_ply)
    out = tmp_path / f"v{version}.spz"
    write_spz(a, out, version=version)
    assert out.read_bytes()[:4] == (b"NGSP" if version == 4 else b"\x1f\x8b\x08\x00")
    _check_round_trip(a, read_splat_arrays(out), version)


def test_fractional_bits_shrink_for_large_scenes(train_ply, tmp_path):
    a = read_splat_arrays(train_ply).select(np.arange(50))
    big = SplatArrays(a.means * 1000 + [3000, 0, 0], a.quats, a.log_scales, a.logit_opacities, a.sh)
    assert np.abs(big.means).max() > 2048
    out = tmp_path / "big.spz"
    write_splat_arrays(big, out)
    frac = out.read_bytes()[13]
    assert frac == 11 if np.abs(big.means).max() < 4096 else frac < 11
    b = read_splat_arrays(out)
    assert np.abs(b.means.astype(np.float64) - big.means).max() <= 2.0 ** -(frac + 1) + 1e-4
    with pytest.raises(SplatFileError, match="fractional bits"):
        write_spz(big, tmp_path / "no.spz", fractional_bits=12)


def test_colour_and_scale_clipping(tmp_path):
    one = lambda x: np.asarray([x], np.float32)  # noqa: E731
    a = SplatArrays(one([0, 0, 0]), one([1, 0, 0, 0]), one([-12.0, 0.0, 7.0]), np.float32([30.0]),
                    one([[5.0, -5.0, 0.0]]))
    write_splat_arrays(a, tmp_path / "c.spz")
    b = read_splat_arrays(tmp_path / "c.spz")
    # DC 0 -> 127.5 rounds away from zero to 128, which decodes to half a step above 0
    np.testing.assert_allclose(b.sh[0, 0], np.array([127.5, -127.5, 0.5]) / (255 * 0.15), atol=1e-5)
    np.testing.assert_allclose(b.log_scales[0], [-10, 0, 255 / 16 - 10], atol=1e-6)
    np.testing.assert_allclose(sigmoid(b.logit_opacities), 254 / 255, atol=1e-6)


# -- SH sign flips against a float64 SH evaluation -----------------------------------------------------
def _eval_sh(sh: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Real SH colour (3DGS ``eval_sh`` constants), sh [N, 16, 3], unit directions d [N, 3]."""
    x, y, z = (d[:, i:i + 1] for i in range(3))
    xx, yy, zz = x * x, y * y, z * z
    basis = [
        0.28209479177387814 + 0 * x,
        -0.4886025119029199 * y, 0.4886025119029199 * z, -0.4886025119029199 * x,
        1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.31539156525252005 * (2 * zz - xx - yy),
        -1.0925484305920792 * x * z, 0.5462742152960396 * (xx - yy),
        -0.5900435899266435 * y * (3 * xx - yy), 2.890611442640554 * x * y * z,
        -0.4570457994644658 * y * (4 * zz - xx - yy), 0.3731763325901154 * z * (2 * zz - 3 * xx - 3 * yy),
        -0.4570457994644658 * x * (4 * zz - xx - yy), 1.445305721320277 * z * (xx - yy),
        -0.5900435899266435 * x * (xx - 3 * yy),
    ]
    return sum(b * sh[:, k] for k, b in enumerate(basis))


def _rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], 1)


@pytest.mark.parametrize("diagonal", [[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, -1]])
def test_axis_change_moves_colour_and_rotation_with_the_axes(diagonal):
    rng = np.random.default_rng(1)
    sh = rng.normal(size=(64, 16, 3))
    quats = rng.normal(size=(64, 4))
    d = rng.normal(size=(64, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    if diagonal == [1, -1, -1]:
        _, q2, rest = flip_axes(np.zeros((64, 3)), quats, sh[:, 1:])
    else:
        _, q2, rest = change_axes(np.zeros((64, 3)), quats, sh[:, 1:], diagonal)
    changed = np.concatenate([sh[:, :1], rest], axis=1)
    # the same colour seen along d in the old axes and along D d in the new ones
    np.testing.assert_allclose(_eval_sh(changed, d * diagonal), _eval_sh(sh, d), atol=1e-12)
    assert not np.allclose(_eval_sh(sh, d * diagonal), _eval_sh(sh, d))
    # the same covariance: R' = D R D
    dm = np.diag(np.asarray(diagonal, float))
    np.testing.assert_allclose(_rotation(q2), dm @ _rotation(quats) @ dm, atol=1e-12)


def test_pack_sh_matches_the_reference_quantisation_across_blocks():
    """pack_sh (row blocks on two threads, the axis signs folded into its scaling) against a
    float64 transcription of spz's quantizeSHLegacy: q = round(c * 128) + 128 half away from
    zero, then (q + b / 2) // b * b clipped to 0..255; including exact halves, values just
    beside them, huge values, and more rows than one block."""
    from resplat.formats import spz_quant as q

    rng = np.random.default_rng(4)
    n = 3 * q._SH_BLOCK + 17
    sh = (rng.normal(size=(n, 15, 3)) * 0.6).astype(np.float32)
    halves = (np.arange(-300, 300) + 0.5) / 128
    special = np.concatenate([halves, np.nextafter(halves.astype(np.float32), np.float32(0)),
                              np.nextafter(halves.astype(np.float32), np.float32(9)), [1e30, -1e30, 0.0, -0.0]])
    sh.reshape(-1)[:special.size] = special.astype(np.float32)
    signs = q.SH_FLIP_RDF_RUB
    ref = np.empty((n, 15, 3), np.int64)
    c = sh.astype(np.float64) * signs[:, None] * 128
    r = np.where(c >= 0, np.floor(c + 0.5), -np.floor(-c + 0.5)).clip(-1000, 1000).astype(np.int64) + 128
    for lo, hi, bits in ((0, 3, 5), (3, 15, 4)):
        b = 1 << (8 - bits)
        ref[:, lo:hi] = (r[:, lo:hi] + b // 2) // b * b
    ref = ref.clip(0, 255).astype(np.uint8).reshape(-1)
    assert np.array_equal(q.pack_sh(sh, 5, 4, signs), ref)
    assert np.array_equal(q.pack_sh(sh * signs[:, None].astype(np.float32), 5, 4), ref)  # signs applied first
