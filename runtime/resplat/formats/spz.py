"""Niantic ``.spz`` container: read versions 2, 3 (gzip) and 4 (ZSTD streams), write 4 (or 2, 3).

Source: github.com/nianticlabs/spz ``src/cc/load-spz.cc`` (``saveSpz``, ``loadSpzPacked``,
``deserializePackedGaussians``, ``decompressNgspStreams``) and README "File Format".

Versions 1-3: one gzip stream holding a 16-byte header ``<u32 magic 0x5053474e ("NGSP"), u32
version, u32 numPoints, u8 shDegree, u8 fractionalBits, u8 flags, u8 reserved>`` then the packed
attributes back to back: positions, alphas, colors, scales, rotations, sh (extension records, if
flag 0x2, follow at the end and are ignored here).

Version 4: a plain 32-byte header ``<u32 magic, u32 version=4, u32 numPoints, u8 shDegree, u8
fractionalBits, u8 flags, u8 numStreams, u32 tocByteOffset, 12 reserved zero bytes>``, extension
records (flag 0x2) up to ``tocByteOffset`` (skipped here), a table of contents of numStreams
``<u64 compressedSize, u64 uncompressedSize>`` entries, then the ZSTD frames back to back to the
end of the file, one per non-empty attribute in the order above (5 streams at SH degree 0, else 6).

Axes: Niantic's README ("Coordinate System") says spz holds RUB data and leaves the conversion to
the caller (``PackOptions.from`` / ``UnpackOptions.to``, default ``UNSPECIFIED``: no conversion).
Niantic's own ``ply_to_spz`` / ``spz_to_ply`` tools and PlayCanvas splat-transform 3.7.0 keep that
default and store the PLY's RDF axes unchanged, so that is our default too: a file we write is read
the right way up by those tools and the viewers built on them, and theirs by us.
``convert_axes=True`` applies the README's RDF <-> RUB conversion instead (for pipelines whose
loader converts from RUB, ``UnpackOptions.to = RDF``).

Quantisation and the RDF <-> RUB axis flip are in :mod:`resplat.formats.spz_quant`. Not kept:
the antialiased flag (bit 0x1, read and dropped, written 0) and extension records. SH degree 4
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


def _unpack(path, packed: dict[str, np.ndarray], n: int, degree: int, frac: int, version: int,
            convert_axes: bool) -> SplatArrays:
    means = q.unpack_positions(packed["positions"], frac)
    if version >= 3:
        quats = q.unpack_rotations_smallest_three(packed["rotations"])
    else:
        quats = q.unpack_rotations_first_three(packed["rotations"])
    dim = SH_DIM[degree]
    sh_rest = q.unpack_sh(packed["sh"], n, dim)[:, : SH_DIM[min(degree, 3)]]
    if convert_axes:
        means, quats, sh_rest = q.flip_axes(means, quats, sh_rest)
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
    magic, version, n, degree, frac, _flags, _ = LEGACY_HEADER.unpack_from(raw)
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
    return _unpack(path, packed, n, degree, frac, version, convert_axes)


def _read_v4(path, data: bytes, convert_axes: bool) -> SplatArrays:
    if len(data) < V4_HEADER.size:
        raise SplatFileError(path, f"spz v4 file of {len(data)} bytes is shorter than its 32-byte header")
    magic, version, n, degree, frac, _flags, n_streams, toc = V4_HEADER.unpack_from(data)
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
        try:
            out = dctx.decompress(data[offset:offset + csize], max_output_size=size)
        except zstandard.ZstdError as e:
            raise SplatFileError(path, f"spz v4 {name} stream is corrupt ({e})") from None
        if len(out) != size:
            raise SplatFileError(path, f"spz v4 {name} stream decompresses to {len(out)} bytes, expected {size}")
        packed[name] = np.frombuffer(out, np.uint8)
        offset += csize
    if offset != len(data):
        raise SplatFileError(path, f"spz v4 has {len(data) - offset} bytes after its last stream")
    packed.setdefault("sh", np.zeros(0, np.uint8))
    return _unpack(path, packed, n, degree, frac, version, convert_axes)


def read_spz(path: str | os.PathLike, convert_axes: bool = False) -> SplatArrays:
    """Read a Niantic ``.spz`` file of version 2, 3 or 4.

    Axes as stored (see the module docstring); ``convert_axes=True`` reads the file as RUB and
    converts to our RDF axes (y and z negated, rotations and SH turned with them).

    Returns float32 :class:`SplatArrays` (log scales, logit opacities, unit quaternions w, x, y, z,
    SH degree as stored, at most 3).

    Raises:
        SplatFileError: missing/empty file, neither NGSP nor gzip magic, wrong inner magic,
            unsupported version (1 or > 4), 0 splats, streams or payload shorter than the header
            claims, corrupt compression.
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
               zstd_level: int = ZSTD_LEVEL, convert_axes: bool = False) -> bytes:
    """The bytes of an spz file of ``version`` (2, 3 or 4) holding ``arrays`` (axes as given, or
    RDF -> RUB with ``convert_axes``).

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
    means, quats, sh_rest = arrays.means, arrays.quats, arrays.sh[:, 1:]
    if convert_axes:
        means, quats, sh_rest = q.flip_axes(means, quats, sh_rest)
    frac = choose_fractional_bits(means) if fractional_bits is None else fractional_bits
    if not 0 <= frac <= 24 or np.abs(means).max() > q.position_range(frac):
        raise SplatFileError(path, f"coordinates up to {np.abs(means).max():.6g} m do not fit 24-bit fixed "
                                   f"point with {frac} fractional bits (max {q.position_range(frac):.6g} m)")
    rot = q.pack_rotations_smallest_three(quats) if version >= 3 else q.pack_rotations_first_three(quats)
    packed = [q.pack_positions(means, frac), q.pack_alphas(arrays.logit_opacities),
              q.pack_colors(arrays.sh[:, 0]), q.pack_scales(arrays.log_scales), rot,
              q.pack_sh(sh_rest, sh1_bits, sh_rest_bits)]
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
              convert_axes: bool = False) -> None:
    """Write ``arrays`` as a Niantic ``.spz`` (default version 4, ZSTD level 3), atomically.

    ``fractional_bits`` None picks 12 or fewer to fit the scene (:func:`choose_fractional_bits`).
    ``zstd_level`` 12 matches the reference writer (~3% smaller, many times slower).
    ``convert_axes`` stores RUB axes (Niantic's README) instead of the PLY axes as given.

    Raises:
        SplatFileError: invalid ``arrays`` (NaN/inf, zero quaternion) or see :func:`encode_spz`;
            nothing is written then.
    """
    check_for_write(arrays, path)
    data = encode_spz(arrays, path, version=version, fractional_bits=fractional_bits, zstd_level=zstd_level,
                      convert_axes=convert_axes)
    with atomic_write(path) as fh:
        fh.write(data)
