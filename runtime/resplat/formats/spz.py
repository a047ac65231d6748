"""Niantic ``.spz`` container: read versions 2, 3 (gzip) and 4 (ZSTD streams), write 4 (or 2, 3).

Source: github.com/nianticlabs/spz ``src/cc/load-spz.cc`` (``saveSpz``, ``loadSpzPacked``,
``deserializePackedGaussians``, ``decompressNgspStreams``) and README "File Format".

Versions 1-3: one gzip stream holding a 16-byte header ``<u32 magic 0x5053474e ("NGSP"), u32
version, u32 numPoints, u8 shDegree, u8 fractionalBits, u8 flags, u8 reserved>`` then the packed
attributes back to back: positions, alphas, colors, scales, rotations, sh (extension records, if
flag 0x2, follow at the end).

Version 4: a plain 32-byte header ``<u32 magic, u32 version=4, u32 numPoints, u8 shDegree, u8
fractionalBits, u8 flags, u8 numStreams, u32 tocByteOffset, 12 reserved zero bytes>``, extension
records (flag 0x2) up to ``tocByteOffset``, a table of contents of numStreams
``<u64 compressedSize, u64 uncompressedSize>`` entries, then the ZSTD frames back to back to the
end of the file, one per non-empty attribute in the order above (5 streams at SH degree 0, else 6).

Axes: the file holds Niantic's RUB axes (x right, y up, z back); ours are the PLY's RDF, so by
default we write RDF -> RUB and read RUB -> RDF (y and z negated, rotations and SH turned with
them; :func:`resplat.formats.spz_quant.change_axes`). A file whose ``SPZ_ADOBE_coordinate_system``
extension record (type 0xADBE0003, u32 value of spz's ``CoordinateSystem``) names another axis
system of the standard family (LDB .. RUF) is read from that one; the rotated family (LFD .. RBU)
is refused. ``convert_axes=False`` takes the bytes as RDF unchanged on read and write.

Evidence (nianticlabs/spz at 21715c3, PlayCanvas splat-transform 3.7.0 from npm, its sources in
``dist/index.mjs.map``):

- Niantic's spec, README.md:11-20 "Coordinate System": "By default, SPZ stores data in an RUB
  coordinate system"; callers name their axes in ``PackOptions.from`` / ``UnpackOptions.to``;
  ``UNSPECIFIED`` saves and loads "without conversion, which may harm interoperability".
  extensions/cc/coordinate-system-adobe.h:40-46: without the extension packing writes and
  unpacking reads RUB ("both fall back to RUB").
- Niantic's library: src/cc/load-spz.cc:323 packs ``from -> RUB`` and :609 unpacks
  ``RUB -> to``; :1346 ``loadSplatFromPly`` converts ``RDF -> to``; the defaults are
  ``UNSPECIFIED`` (src/cc/load-spz.h:138, :147), which src/cc/splat-types.h:109-119 turns into
  no flip. Its Python README (src/python/README.md:47-59) converts a PLY with
  ``to_coord = RUB`` before ``save_spz``: PLY RDF is stored as RUB. Only the bare CLI tools
  (cli_tools/src/ply_to_spz.cpp:12-17, spz_to_ply.cpp) keep both defaults and copy the axes.
- Viewers that read spz as RUB: Babylon.js packages/dev/loaders/src/SPLAT/spz.ts (``ParseSpz``
  negates y and z of positions and rotations unless ``flipY``); PlayCanvas's engine, whose docs (developer-site docs/user-manual/gaussian-splatting/formats/
  spz.md, "Coordinate system") say spz is +Y up and, "unlike PLY files, no flip rotation is
  needed". Spark (sparkjsdev/spark src/spz.ts) copies the axes, so three.js (RUB) shows a RUB
  file upright as it is; Spark's own RDF assets are turned by hand (its README.md:76-78).
- splat-transform 3.7.0 disagrees: src/lib/readers/read-spz.ts:28-30 "Decode is RAW
  (CoordinateSystem UNSPECIFIED)", src/lib/spz-module.ts:238-249 writes ``from: UNSPECIFIED``
  after baking to PLY axes, and src/lib/utils/math.ts:173-177 labels SPZ with the PLY
  convention. So it reads our files with y and z negated and we read its files likewise
  (tests/test_formats_third_party.py asserts exactly that relation).

Quantisation and the axis changes are in :mod:`resplat.formats.spz_quant`. Not kept: the
antialiased flag (bit 0x1, read and dropped, written 0) and extension records (read for the
coordinate system only, none written). SH degree 4
files are read truncated to degree 3.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np
import zstandard

from ..errors import SplatFileError
from . import spz_quant as q
from .arrays import SplatArrays
from .atomic import atomic_write
from .common import build_arrays, check_for_write, read_bytes

MAGIC = 0x5053474E
LEGACY_HEADER = struct.Struct("<IIIBBBB")
V4_HEADER = struct.Struct("<IIIBBBBI12x")
TOC_ENTRY = struct.Struct("<QQ")
#: ZSTD level of our v4 writes: zstd's default. The reference writer uses 12, which is ~15x slower
#: here for files ~3% smaller (benchmarks/formats_bench.py).
ZSTD_LEVEL = 3
#: Largest uncompressed / compressed ratio accepted before decompressing (deflate cannot exceed
#: 1032:1; zstd can, but real spz streams stay far below): guards against decompression bombs.
MAX_RATIO = 1100
#: SH coefficients (excluding DC) per channel stored for SH degree 0..4.
SH_DIM = {0: 0, 1: 3, 2: 8, 3: 15, 4: 24}
DEFAULT_FRACTIONAL_BITS = 12
FLAG_EXTENSIONS = 0x2
#: ``SPZ_ADOBE_coordinate_system`` extension record type (extensions/cc/splat-extensions.h).
EXT_COORDINATE_SYSTEM = 0xADBE0003
#: spz's ``CoordinateSystem`` values 1..16 (src/cc/splat-types.h); 0 is UNSPECIFIED (= RUB).
COORDINATE_SYSTEMS = ("LDB", "RDB", "LUB", "RUB", "LDF", "RDF", "LUF", "RUF",
                      "LFD", "RFD", "LFU", "RFU", "LBD", "RBD", "LBU", "RBU")
#: Bytes of extension records read after the attributes of a gzip (v2/v3) stream.
MAX_LEGACY_EXTENSIONS = 1 << 16


def _layout(n: int, degree: int, version: int) -> list[tuple[str, int]]:
    """(attribute, byte size) in stream order for ``n`` splats."""
    return [("positions", 9 * n), ("alphas", n), ("colors", 3 * n), ("scales", 3 * n),
            ("rotations", (4 if version >= 3 else 3) * n), ("sh", SH_DIM[degree] * 3 * n)]


# -- decoding ------------------------------------------------------------------------------------
def _check_header(path, version: int, n: int, degree: int, frac: int, versions) -> None:
    if version not in versions:
        raise SplatFileError(path, f"unsupported spz version {version} (readable: 2, 3, 4)")
    if n == 0:
        raise SplatFileError(path, "spz header claims 0 splats")
    if degree not in SH_DIM:
        raise SplatFileError(path, f"unsupported SH degree {degree} in spz header")
    if frac > 24:
        raise SplatFileError(path, f"implausible fractionalBits {frac} in spz header")


def _check_size(path, need: int, available: int) -> None:
    if need > MAX_RATIO * available + (1 << 16):
        raise SplatFileError(path, f"spz header claims {need} bytes of attributes, implausible for a "
                                   f"{available}-byte file (corrupt header)")


def stored_axes(path, records: bytes) -> np.ndarray:
    """Axis change (+-1 per axis) from the axes an spz file stores to our RDF: RUB (1, -1, -1)
    unless an ``SPZ_ADOBE_coordinate_system`` record among the ILV ``records`` (u32 type, u32
    length, payload) names another system of the standard family. Unknown records and a value
    above 16 are skipped (as Niantic's reader does); a rotated-family system is refused."""
    value, offset = 0, 0
    while offset + 8 <= len(records):
        kind, length = struct.unpack_from("<II", records, offset)
        offset += 8
        if kind == EXT_COORDINATE_SYSTEM and length >= 4 and offset + 4 <= len(records):
            v = struct.unpack_from("<I", records, offset)[0]
            value = v if v <= 16 else value
        offset += length
    if value > 8:
        raise SplatFileError(path, f"spz stores the rotated axis system {COORDINATE_SYSTEMS[value - 1]} "
                                   "(SPZ_ADOBE_coordinate_system), which this reader does not convert")
    n = (value or 4) - 1  # bit 0: R (else L), bit 1: U (else D), bit 2: F (else B)
    return np.array([1.0 if n & 1 else -1.0, -1.0 if n & 2 else 1.0, 1.0 if n & 4 else -1.0])


def _unpack(path, packed: dict[str, np.ndarray], n: int, degree: int, frac: int, version: int,
            axes: np.ndarray | None) -> SplatArrays:
    means = q.unpack_positions(packed["positions"], frac)
    if version >= 3:
        quats = q.unpack_rotations_smallest_three(packed["rotations"])
    else:
        quats = q.unpack_rotations_first_three(packed["rotations"])
    dim = SH_DIM[degree]
    sh_rest = q.unpack_sh(packed["sh"], n, dim)[:, : SH_DIM[min(degree, 3)]]
    if axes is not None and (axes < 0).any():
        means, quats, sh_rest = q.change_axes(means, quats, sh_rest, axes)
    dc = q.unpack_colors(packed["colors"])
    return build_arrays(
        path,
        means=means,
        quats=quats,
        log_scales=q.unpack_scales(packed["scales"]),
        logit_opacities=q.unpack_alphas(packed["alphas"]),
        sh=np.concatenate([dc[:, None, :], sh_rest], axis=1),
    )


def _read_legacy(path, data: bytes, convert_axes: bool) -> SplatArrays:
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing; output bounded by need

    def take(chunk: bytes, size: int) -> bytes:
        try:
            return inflate.decompress(chunk, size) if size else b""
        except zlib.error as e:
            raise SplatFileError(path, f"corrupt or truncated gzip stream ({e})") from None

    raw = take(data, LEGACY_HEADER.size)
    if len(raw) < LEGACY_HEADER.size:
        raise SplatFileError(path, f"spz payload of {len(raw)} bytes is shorter than its 16-byte header")
    magic, version, n, degree, frac, flags, _ = LEGACY_HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise SplatFileError(path, f"wrong magic 0x{magic:08x} inside gzip stream (expected NGSP 0x{MAGIC:08x})")
    _check_header(path, version, n, degree, frac, (2, 3))
    layout = _layout(n, degree, version)
    need = sum(size for _, size in layout)
    _check_size(path, need, len(data))
    body = take(inflate.unconsumed_tail, need)
    if len(body) < need:
        raise SplatFileError(path, f"spz payload holds {LEGACY_HEADER.size + len(body)} bytes but its header "
                                   f"({n} splats, SH degree {degree}) needs {LEGACY_HEADER.size + need} "
                                   "(truncated)")
    packed, offset = {}, 0
    for name, size in layout:
        packed[name] = np.frombuffer(body, np.uint8, size, offset)
        offset += size
    axes = None
    if convert_axes:
        records = take(inflate.unconsumed_tail, MAX_LEGACY_EXTENSIONS) if flags & FLAG_EXTENSIONS else b""
        axes = stored_axes(path, records)
    return _unpack(path, packed, n, degree, frac, version, axes)


def _read_v4(path, data: bytes, convert_axes: bool) -> SplatArrays:
    if len(data) < V4_HEADER.size:
        raise SplatFileError(path, f"spz v4 file of {len(data)} bytes is shorter than its 32-byte header")
    magic, version, n, degree, frac, flags, n_streams, toc = V4_HEADER.unpack_from(data)
    _check_header(path, version, n, degree, frac, (4,))
    layout = [(name, size) for name, size in _layout(n, degree, version) if size]
    _check_size(path, sum(size for _, size in layout), len(data))
    if n_streams != len(layout):
        raise SplatFileError(path, f"spz v4 has {n_streams} streams, SH degree {degree} needs {len(layout)}")
    toc_end = toc + TOC_ENTRY.size * n_streams
    if toc < V4_HEADER.size or toc_end > len(data):
        raise SplatFileError(path, f"spz v4 table of contents at byte {toc} lies outside the {len(data)}-byte file")
    packed, offset = {}, toc_end
    dctx = zstandard.ZstdDecompressor()
    for i, (name, size) in enumerate(layout):
        csize, usize = TOC_ENTRY.unpack_from(data, toc + i * TOC_ENTRY.size)
        if usize != size:
            raise SplatFileError(path, f"spz v4 {name} stream holds {usize} bytes, header ({n} splats) needs {size}")
        if csize > len(data) - offset:
            raise SplatFileError(path, f"spz v4 {name} stream runs past the end of the file (truncated)")
        chunk = data[offset:offset + csize]
        try:
            # A frame that declares its content size is decompressed into a buffer of that size,
            # whatever max_output_size says: refuse a declared size other than the expected one
            # before decompressing (a 666-byte file declaring gigabytes allocated them).
            declared = zstandard.get_frame_parameters(chunk).content_size
            if declared not in (size, zstandard.CONTENTSIZE_UNKNOWN):
                raise SplatFileError(path, f"spz v4 {name} stream declares {declared} bytes, expected {size}")
            out = dctx.decompress(chunk, max_output_size=size)
        except zstandard.ZstdError as e:
            raise SplatFileError(path, f"spz v4 {name} stream is corrupt ({e})") from None
        if len(out) != size:
            raise SplatFileError(path, f"spz v4 {name} stream decompresses to {len(out)} bytes, expected {size}")
        packed[name] = np.frombuffer(out, np.uint8)
        offset += csize
    if offset != len(data):
        raise SplatFileError(path, f"spz v4 has {len(data) - offset} bytes after its last stream")
    packed.setdefault("sh", np.zeros(0, np.uint8))
    axes = None
    if convert_axes:
        axes = stored_axes(path, data[V4_HEADER.size:toc] if flags & FLAG_EXTENSIONS else b"")
    return _unpack(path, packed, n, degree, frac, version, axes)


def read_spz(path: str | os.PathLike, convert_axes: bool = True) -> SplatArrays:
    """Read a Niantic ``.spz`` file of version 2, 3 or 4.

    ``convert_axes`` (default): the file holds RUB axes (or those its SPZ_ADOBE_coordinate_system
    record names), converted to our RDF (y and z negated, rotations and SH turned with them);
    False takes the stored axes as RDF unchanged (files of splat-transform 3.7.0 and of Niantic's
    bare ``ply_to_spz``). See the module docstring.

    Returns float32 :class:`SplatArrays` (log scales, logit opacities, unit quaternions w, x, y, z,
    SH degree as stored, at most 3).

    Raises:
        SplatFileError: missing/empty file, neither NGSP nor gzip magic, wrong inner magic,
            unsupported version (1 or > 4), 0 splats, streams or payload shorter than the header
            claims, corrupt compression, a rotated-family SPZ_ADOBE_coordinate_system.
    """
    data = read_bytes(path)
    if len(data) >= 4 and struct.unpack_from("<I", data)[0] == MAGIC:
        return _read_v4(path, data, convert_axes)
    if data[:2] == b"\x1f\x8b":
        return _read_legacy(path, data, convert_axes)
    raise SplatFileError(path, "not an spz file (neither NGSP nor gzip magic)")


# -- encoding ------------------------------------------------------------------------------------
def choose_fractional_bits(means: np.ndarray) -> int:
    """12 (the reference's ~0.24 mm) unless the largest |coordinate| needs fewer bits to fit in
    24-bit fixed point; then the most bits that fit (0 at worst)."""
    extent = float(np.abs(means).max()) if means.size else 0.0
    bits = DEFAULT_FRACTIONAL_BITS
    while bits > 0 and extent > q.position_range(bits):
        bits -= 1
    return bits


def encode_spz(arrays: SplatArrays, path, version: int = 4, fractional_bits: int | None = None,
               sh1_bits: int = q.SH1_BITS, sh_rest_bits: int = q.SH_REST_BITS,
               zstd_level: int = ZSTD_LEVEL, convert_axes: bool = True) -> bytes:
    """The bytes of an spz file of ``version`` (2, 3 or 4) holding ``arrays`` (RDF -> RUB with
    ``convert_axes``, the default; else the axes as given).

    Raises:
        SplatFileError (naming ``path``): 0 splats, an unsupported version or bit count, or a
            coordinate outside the 24-bit fixed-point range of ``fractional_bits``.
    """
    if version not in (2, 3, 4):
        raise SplatFileError(path, f"cannot write spz version {version} (2, 3 or 4)")
    if not (1 <= sh1_bits <= 8 and 1 <= sh_rest_bits <= 8):
        raise SplatFileError(path, f"SH bits must be 1..8, got {sh1_bits} and {sh_rest_bits}")
    n, degree = len(arrays), arrays.sh_degree
    if n == 0:
        raise SplatFileError(path, "spz cannot hold 0 splats (readers reject numPoints = 0)")
    means, quats, sh_rest, signs = arrays.means, arrays.quats, arrays.sh[:, 1:], None
    if convert_axes:  # the SH signs of the turn go into pack_sh's scaling (one pass fewer)
        means, quats, _ = q.flip_axes(means, quats, None)
        signs = q.SH_FLIP_RDF_RUB[:sh_rest.shape[1]]
    frac = choose_fractional_bits(means) if fractional_bits is None else fractional_bits
    if not 0 <= frac <= 24 or np.abs(means).max() > q.position_range(frac):
        raise SplatFileError(path, f"coordinates up to {np.abs(means).max():.6g} m do not fit 24-bit fixed "
                                   f"point with {frac} fractional bits (max {q.position_range(frac):.6g} m)")
    rot = q.pack_rotations_smallest_three(quats) if version >= 3 else q.pack_rotations_first_three(quats)
    packed = [q.pack_positions(means, frac), q.pack_alphas(arrays.logit_opacities),
              q.pack_colors(arrays.sh[:, 0]), q.pack_scales(arrays.log_scales), rot,
              q.pack_sh(sh_rest, sh1_bits, sh_rest_bits, signs)]
    if version < 4:
        header = LEGACY_HEADER.pack(MAGIC, version, n, degree, frac, 0, 0)
        return gzip.compress(header + b"".join(p.tobytes() for p in packed), compresslevel=6, mtime=0)
    cctx = zstandard.ZstdCompressor(level=zstd_level, write_content_size=True, threads=-1)
    streams = [(cctx.compress(p.tobytes()), p.size) for p in packed if p.size]
    header = V4_HEADER.pack(MAGIC, 4, n, degree, frac, 0, len(streams), V4_HEADER.size)
    toc = b"".join(TOC_ENTRY.pack(len(c), u) for c, u in streams)
    return header + toc + b"".join(c for c, _ in streams)


def write_spz(arrays: SplatArrays, path: str | os.PathLike, version: int = 4,
              fractional_bits: int | None = None, zstd_level: int = ZSTD_LEVEL,
              convert_axes: bool = True) -> None:
    """Write ``arrays`` as a Niantic ``.spz`` (default version 4, ZSTD level 3), atomically.

    ``fractional_bits`` None picks 12 or fewer to fit the scene (:func:`choose_fractional_bits`).
    ``zstd_level`` 12 matches the reference writer (~3% smaller, many times slower).
    ``convert_axes`` (default) stores Niantic's RUB axes; False stores the RDF axes as given
    (what splat-transform 3.7.0 reads as the PLY's).

    Raises:
        SplatFileError: invalid ``arrays`` (NaN/inf, zero quaternion) or see :func:`encode_spz`;
            nothing is written then.
    """
    check_for_write(arrays, path)
    data = encode_spz(arrays, path, version=version, fractional_bits=fractional_bits, zstd_level=zstd_level,
                      convert_axes=convert_axes)
    with atomic_write(path) as fh:
        fh.write(data)
