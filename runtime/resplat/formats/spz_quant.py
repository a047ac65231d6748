"""Attribute quantisation of Niantic's ``.spz`` (github.com/nianticlabs/spz, ``src/cc/load-spz.cc``
``packGaussians`` / ``unpackGaussians``; ``splat-types.h`` ``coordinateConverter``).

Every function here is vectorised numpy and works on the *packed* byte arrays of one attribute:
  positions  [N*9]  u8: x, y, z each a 24-bit little-endian two's-complement fixed-point number
                        with ``fractional_bits`` fractional bits (default 12, ~0.24 mm steps)
  alphas     [N]    u8: round(sigmoid(logit) * 255)
  colors     [N*3]  u8: round(DC * 0.15 * 255 + 127.5)  (DC = SH DC coefficient, not RGB)
  scales     [N*3]  u8: round((log_scale + 10) * 16)
  rotations  [N*4]  u8 (v3+): "smallest three" of the unit quaternion in (x, y, z, w) order:
                        a u32 LE = index of the largest |component| << 30, then for each other
                        component in index order a sign bit (relative to the largest, made
                        positive) and a 9-bit magnitude round(|c| / sqrt(1/2) * 511)
             [N*3]  u8 (v2):  x, y, z of the unit quaternion with w >= 0, round(c * 127.5 + 127.5)
  sh         [N*D*3] u8: SH coefficients 1.. (D = 3, 8, 15 for degrees 1..3), coefficient-major
                        with the colour channel inner; round(c * 128) + 128 then snapped to
                        multiples of 2^(8 - bits): 5 bits for degree 1, 4 bits for degrees 2+.
All u8 values are clipped to 0..255 and rounded half away from zero (C++ ``std::round``).

SPZ stores RUB axes (x right, y up, z back); our arrays are RDF (OpenCV / PLY). Converting flips
y and z: positions (x, -y, -z), quaternion (w, x, -y, -z), and each SH basis function by the sign
it takes under (x, y, z) -> (x, -y, -z) (:data:`SH_FLIP_RDF_RUB`). The conversion is an
involution, so the same flips serve reading and writing.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .arrays import logit, sigmoid
from .axes import TURN_X, sh_signs

#: DC colour scale of spz (``colorScale`` in load-spz.cc).
COLOR_SCALE = 0.15
#: Default quantisation bits of degree-1 and degree-2+ SH coefficients (``PackOptions``).
SH1_BITS = 5
SH_REST_BITS = 4
#: Sign of each SH basis function 1..15 under y -> -y, z -> -z (:mod:`resplat.formats.axes`);
#: ``flipSh`` of spz's ``coordinateConverter`` with x = 1, y = z = -1.
SH_FLIP_RDF_RUB = sh_signs(TURN_X, 15)
_SQRT1_2 = np.sqrt(0.5)
_MASK9 = 511


def round_away(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (C's ``round``), in the float dtype of ``x`` (exact for
    |x| < 2^22 in float32)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return np.copysign(np.floor(np.abs(x) + x.dtype.type(0.5)), x)


def to_u8(x: np.ndarray) -> np.ndarray:
    """round_away(x) clipped to 0..255 as uint8 (spz ``toUint8``)."""
    return np.clip(round_away(x), 0, 255).astype(np.uint8)


# -- positions -------------------------------------------------------------------------------
def position_range(fractional_bits: int) -> float:
    """Largest |coordinate| (metres) representable with ``fractional_bits``: (2^23 - 1) / 2^bits."""
    return (2**23 - 1) / 2.0**fractional_bits


def pack_positions(means: np.ndarray, fractional_bits: int) -> np.ndarray:
    """[N, 3] float positions -> [N*9] u8 24-bit fixed point. Caller checks the range."""
    fixed = round_away(np.asarray(means, np.float64) * 2.0**fractional_bits).astype("<i4")
    return np.ascontiguousarray(fixed.reshape(-1, 1).view(np.uint8)[:, :3]).reshape(-1)


def unpack_positions(packed: np.ndarray, fractional_bits: int) -> np.ndarray:
    """[N*9] u8 -> [N, 3] float64 positions (sign-extended 24-bit fixed point / 2^bits)."""
    b = packed.reshape(-1, 3).astype(np.int32)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    v = v - ((v & 0x800000) << 1)
    return (v.astype(np.float64) / 2.0**fractional_bits).reshape(-1, 3)


# -- scalar attributes -------------------------------------------------------------------------
def pack_scales(log_scales: np.ndarray) -> np.ndarray:
    """[N, 3] log scales -> [N*3] u8, round((s + 10) * 16); representable range [-10, 5.9375]."""
    return to_u8((np.asarray(log_scales, np.float64) + 10.0) * 16.0).reshape(-1)


def unpack_scales(packed: np.ndarray) -> np.ndarray:
    """[N*3] u8 -> [N, 3] log scales u / 16 - 10."""
    return (packed.astype(np.float64) / 16.0 - 10.0).reshape(-1, 3)


def pack_alphas(logit_opacities: np.ndarray) -> np.ndarray:
    """[N] logits -> [N] u8, round(sigmoid(x) * 255)."""
    return to_u8(sigmoid(logit_opacities) * 255.0)


def unpack_alphas(packed: np.ndarray) -> np.ndarray:
    """[N] u8 -> [N] logits of u / 255 clamped to [1/255, 254/255] (as the reference loader)."""
    return logit(np.clip(packed / 255.0, 1.0 / 255.0, 254.0 / 255.0))


def pack_colors(dc: np.ndarray) -> np.ndarray:
    """[N, 3] SH DC coefficients -> [N*3] u8, round(dc * 0.15 * 255 + 127.5)."""
    return to_u8(np.asarray(dc, np.float64) * (COLOR_SCALE * 255.0) + 127.5).reshape(-1)


def unpack_colors(packed: np.ndarray) -> np.ndarray:
    """[N*3] u8 -> [N, 3] DC coefficients (u / 255 - 0.5) / 0.15."""
    return ((packed / 255.0 - 0.5) / COLOR_SCALE).reshape(-1, 3)


# -- rotations ---------------------------------------------------------------------------------
def _unit_xyzw(quats_wxyz: np.ndarray) -> np.ndarray:
    q = np.asarray(quats_wxyz, np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return q[:, [1, 2, 3, 0]]


def pack_rotations_smallest_three(quats_wxyz: np.ndarray) -> np.ndarray:
    """[N, 4] (w, x, y, z) quaternions -> [N*4] u8 smallest-three encoding (spz v3+)."""
    q = _unit_xyzw(quats_wxyz)
    n = q.shape[0]
    largest = np.argmax(np.abs(q), axis=1)
    negate = q[np.arange(n), largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        keep = largest != i
        neg = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        mag = np.minimum(np.floor(_MASK9 * (np.abs(q[:, i]) / _SQRT1_2) + 0.5), _MASK9).astype(np.uint32)
        comp = np.where(keep, (comp << np.uint32(10)) | (neg << np.uint32(9)) | mag, comp)
    return comp.astype("<u4").view(np.uint8).reshape(-1)


def unpack_rotations_smallest_three(packed: np.ndarray) -> np.ndarray:
    """[N*4] u8 -> [N, 4] unit quaternions (w, x, y, z)."""
    comp = packed.reshape(-1, 4).copy().view("<u4").reshape(-1).astype(np.uint32)
    largest = (comp >> np.uint32(30)).astype(np.int64)
    q = np.zeros((comp.shape[0], 4))
    for i in (3, 2, 1, 0):
        keep = largest != i
        mag = (comp & np.uint32(_MASK9)).astype(np.float64)
        neg = ((comp >> np.uint32(9)) & np.uint32(1)).astype(bool)
        val = _SQRT1_2 * mag / _MASK9
        q[:, i] = np.where(keep, np.where(neg, -val, val), 0.0)
        comp = np.where(keep, comp >> np.uint32(10), comp)
    rest = np.maximum(0.0, 1.0 - (q * q).sum(axis=1))
    q[np.arange(q.shape[0]), largest] = np.sqrt(rest)
    return q[:, [3, 0, 1, 2]]


def pack_rotations_first_three(quats_wxyz: np.ndarray) -> np.ndarray:
    """[N, 4] (w, x, y, z) -> [N*3] u8: x, y, z of the unit quaternion with w >= 0 (spz v2)."""
    q = _unit_xyzw(quats_wxyz)
    q = np.where(q[:, 3:] < 0, -q, q)
    return to_u8(q[:, :3] * 127.5 + 127.5).reshape(-1)


def unpack_rotations_first_three(packed: np.ndarray) -> np.ndarray:
    """[N*3] u8 -> [N, 4] (w, x, y, z) with w = sqrt(max(0, 1 - |xyz|^2))."""
    xyz = packed.reshape(-1, 3) / 127.5 - 1.0
    w = np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(axis=1)))
    return np.concatenate([w[:, None], xyz], axis=1)


# -- spherical harmonics ---------------------------------------------------------------------------
def pack_sh(sh_rest: np.ndarray, sh1_bits: int = SH1_BITS, sh_rest_bits: int = SH_REST_BITS,
            signs: np.ndarray | None = None) -> np.ndarray:
    """[N, D, 3] SH coefficients 1..D -> [N*D*3] u8 (legacy [-1, 1] quantisation with buckets of
    2^(8 - sh1_bits) for degree 1 (coefficients 1..3) and 2^(8 - sh_rest_bits) above).

    ``quantizeSHLegacy``: q = round(c * 128) + 128 (half away from zero), then
    (q + b / 2) // b * b clipped to 0..255. Exact integer arithmetic: the float32 product
    c * 128 is split into its integer part and an exact fractional part. ``signs`` [D] (+-1)
    multiplies each coefficient first (an axis change, :func:`change_axes`; exact). Works in
    blocks of rows that stay in cache, on up to two threads (numpy releases the GIL): 3x faster
    than whole-array passes for 1M splats of SH degree 3.
    """
    n, d = sh_rest.shape[:2]
    scale = np.full((d, 1), 128.0, np.float32)
    if signs is not None:
        scale *= np.asarray(signs, np.float32)[:, None]
    src = np.asarray(sh_rest)
    out = np.empty((n, d, 3), np.uint8)
    blocks = [slice(i, i + _SH_BLOCK) for i in range(0, n, _SH_BLOCK)]
    if len(blocks) > 1:
        with ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda b: _pack_sh_block(src[b], out[b], scale, sh1_bits, sh_rest_bits), blocks))
    elif blocks:
        _pack_sh_block(src, out, scale, sh1_bits, sh_rest_bits)
    return out.reshape(-1)


_SH_BLOCK = 8192  # rows per block of pack_sh (8192 x 45 float32 = 1.5 MB)


def _pack_sh_block(src: np.ndarray, out: np.ndarray, scale: np.ndarray, sh1_bits: int, sh_rest_bits: int) -> None:
    d = src.shape[1]
    t = np.multiply(src, scale, dtype=np.float32)
    np.clip(t, -512.0, 512.0, out=t)  # beyond +-128 everything clips to 0 or 255 anyway
    whole = np.trunc(t)
    q = whole.astype(np.int16)
    t -= whole  # exact: the fractional part of t
    q += (t >= 0.5).view(np.int8)
    q -= (t <= -0.5).view(np.int8)
    for lo, hi, bits in ((0, min(d, 3), sh1_bits), (3, d, sh_rest_bits)):
        if hi > lo:
            b = 1 << (8 - bits)
            part = q[:, lo:hi]
            part += 128 + b // 2  # 128 is a multiple of b: the offset commutes with the flooring
            part &= ~(b - 1)  # floor to a multiple of the power-of-two bucket
    np.clip(q, 0, 255, out=q)
    out[...] = q


def unpack_sh(packed: np.ndarray, n: int, dim: int) -> np.ndarray:
    """[N*D*3] u8 -> [N, D, 3] float32 coefficients (u - 128) / 128 (exact in float32)."""
    return ((packed.astype(np.float32) - np.float32(128.0)) / np.float32(128.0)).reshape(n, dim, 3)


def change_axes(means: np.ndarray, quats_wxyz: np.ndarray, sh_rest: np.ndarray | None, diagonal):
    """(means, quats, sh_rest) after the axis change ``diagonal`` (+-1 per axis, an involution):
    positions x' = D x, rotation R' = D R D, i.e. (w, x, y, z) -> (w, x Dy Dz, y Dx Dz, z Dx Dy)
    (``flipQ`` of spz's ``coordinateConverter``), and each SH basis function by the sign it takes
    (:func:`resplat.formats.axes.sh_signs`). Means and quats float64, SH in its own dtype;
    ``sh_rest`` None (the caller applies the signs itself, as :func:`pack_sh` does) stays None."""
    d = np.asarray(diagonal, np.float64)
    means = np.asarray(means, np.float64) * d
    quats = np.asarray(quats_wxyz, np.float64) * np.array([1.0, d[1] * d[2], d[0] * d[2], d[0] * d[1]])
    if sh_rest is not None:
        signs = sh_signs(d, sh_rest.shape[1]) if sh_rest.shape[1] else np.zeros(0)
        sh_rest = sh_rest * signs[:, None].astype(sh_rest.dtype)  # exact
    return means, quats, sh_rest


def flip_axes(means: np.ndarray, quats_wxyz: np.ndarray, sh_rest: np.ndarray | None):
    """RDF <-> RUB (an involution, :data:`resplat.formats.axes.TURN_X`): returns (means, quats,
    sh_rest) with y and z flipped (``sh_rest`` None stays None)."""
    return change_axes(means, quats_wxyz, sh_rest, TURN_X)
