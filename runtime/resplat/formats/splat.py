"""antimatter15 ``.splat`` reader and writer (github.com/antimatter15/splat, ``convert.py``).

No header; 32 bytes per splat, little-endian:
  position f32 x3 | scale f32 x3 (linear std-devs) | RGBA u8 x4 | rotation u8 x4 (w, x, y, z)
RGB = clip(0.5 + C0 * DC) * 255, A = sigmoid(opacity) * 255, rotation = q / |q| * 128 + 128
clipped to 0..255. Splats are sorted by -exp(sum of log scales) * sigmoid(opacity), i.e. by size
times opacity, largest first. No SH beyond the DC colour.

We round to nearest where antimatter15's converter truncates (``astype(np.uint8)``), halving the
quantisation error; any reader of the format reads both alike.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import SplatFileError
from .arrays import SH_C0, SplatArrays, logit, sigmoid
from .atomic import atomic_write
from .common import build_arrays, check_for_write, read_bytes

RECORD = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
assert RECORD.itemsize == 32


def splat_order(arrays: SplatArrays) -> np.ndarray:
    """Indices [N] int64 sorting splats as antimatter15: by -exp(sum log_scales) * sigmoid(opacity)
    ascending (largest size x opacity first), stable for ties."""
    key = -np.exp(arrays.log_scales.astype(np.float64).sum(axis=1)) * sigmoid(arrays.logit_opacities)
    return np.argsort(key, kind="stable")


def encode_splat(arrays: SplatArrays) -> np.ndarray:
    """Records [N] of :data:`RECORD` for ``arrays`` in file order (see :func:`splat_order`).

    Colour and alpha are rounded to the nearest u8 after clipping to [0, 1]; quaternions are
    normalised, then round(q * 128 + 128) clipped to 0..255 (w first). Only the DC colour is kept.
    """
    a = arrays.select(splat_order(arrays))
    rec = np.empty(len(a), RECORD)
    rec["pos"] = a.means
    rec["scale"] = np.exp(a.log_scales.astype(np.float64)).astype(np.float32)
    rgb = np.clip(0.5 + SH_C0 * a.sh[:, 0, :].astype(np.float64), 0.0, 1.0)
    alpha = sigmoid(a.logit_opacities)
    rec["rgba"][:, :3] = np.rint(rgb * 255.0).astype(np.uint8)
    rec["rgba"][:, 3] = np.rint(alpha * 255.0).astype(np.uint8)
    q = a.quats.astype(np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    rec["rot"] = np.clip(np.rint(q * 128.0 + 128.0), 0, 255).astype(np.uint8)
    return rec


def decode_splat(rec: np.ndarray, path: str | os.PathLike) -> SplatArrays:
    """SplatArrays (SH degree 0) from records [N] of :data:`RECORD`.

    DC = (u / 255 - 0.5) / C0; opacity logit of u / 255 clamped to [0.5/255, 254.5/255] (so that
    u = 0 or 255 stay finite, within half a step of the original); quaternion (u - 128) / 128.

    Raises:
        SplatFileError: a non-positive scale, a NaN/inf position or scale, or an all-128 rotation.
    """
    scale = rec["scale"].astype(np.float64)
    bad = ~(scale > 0).all(axis=1)
    if bad.any():
        raise SplatFileError(path, f"scale of splat {int(np.flatnonzero(bad)[0])} is not positive")
    alpha = np.clip(rec["rgba"][:, 3] / 255.0, 0.5 / 255.0, 254.5 / 255.0)
    dc = (rec["rgba"][:, :3] / 255.0 - 0.5) / SH_C0
    return build_arrays(
        path,
        means=rec["pos"],
        quats=(rec["rot"].astype(np.float32) - 128.0) / 128.0,
        log_scales=np.log(scale),
        logit_opacities=logit(alpha),
        sh=dc[:, None, :],
    )


def read_splat(path: str | os.PathLike) -> SplatArrays:
    """Read an antimatter15 ``.splat`` file (SH degree 0, RDF axes as stored).

    Raises:
        SplatFileError: missing or empty file, a size that is not a multiple of 32 bytes, or bad
            values (see :func:`decode_splat`).
    """
    data = read_bytes(path)
    if len(data) % RECORD.itemsize:
        raise SplatFileError(path, f"size {len(data)} bytes is not a multiple of 32 (truncated or not a .splat file)")
    return decode_splat(np.frombuffer(data, RECORD), path)


def write_splat(arrays: SplatArrays, path: str | os.PathLike) -> None:
    """Write ``arrays`` as an antimatter15 ``.splat`` file (lossy: SH above degree 0 dropped),
    atomically.

    Raises:
        SplatFileError: NaN/inf or zero quaternions in ``arrays`` (checked before writing), or the
            file cannot be written.
    """
    check_for_write(arrays, path)
    with atomic_write(path) as fh:
        fh.write(encode_splat(arrays).tobytes())
