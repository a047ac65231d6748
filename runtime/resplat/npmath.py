"""Rotation and spherical-harmonic maths in numpy float64 (no torch): the one copy used by the
splat file formats, the COLMAP reader and the Blender extension, and the reference the torch
versions (:mod:`resplat.gaussians`, :mod:`resplat.render.sh`, :mod:`resplat.model.poses`) are
tested against.

Conventions: quaternions (w, x, y, z), Hamilton product; the real SH basis of the INRIA 3DGS code
and gsplat 1.5.3 (``_eval_sh_bases_fast``; degree 1 is C1 * (-y, z, -x)), coefficients in the
order of the INRIA PLY ``f_rest`` layout; constants from Sloan, "Efficient Spherical Harmonic
Evaluation" (JCGT 2013), as written in the 3DGS code's ``sh_utils.py``.
"""

from __future__ import annotations

import numpy as np

#: Zeroth-order real SH basis constant 1 / (2 sqrt(pi)).
SH_C0 = 0.28209479177387814
#: First-order constant sqrt(3 / (4 pi)).
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)
#: Directions the SH rotation is solved at (:func:`sh_rotation_matrix`): more than the 16
#: coefficients of degree 3, spread evenly on the sphere.
SH_FIT_DIRECTIONS = 64


def sh_coeff_count(degree: int) -> int:
    """Number of SH coefficients per colour channel for ``degree`` in 0..3: (degree + 1)^2."""
    if degree not in (0, 1, 2, 3):
        raise ValueError(f"SH degree must be 0, 1, 2 or 3, got {degree}")
    return (degree + 1) ** 2


def sh_degree_from_count(count: int) -> int:
    """Inverse of :func:`sh_coeff_count`; raises ``ValueError`` for a count that is not 1, 4, 9 or 16."""
    for d in range(4):
        if (d + 1) ** 2 == count:
            return d
    raise ValueError(f"{count} SH coefficients per channel is not (d+1)^2 for a degree d in 0..3")


def sh_basis(degree: int, dirs: np.ndarray) -> np.ndarray:
    """Real SH basis of the 3DGS renderer at unit directions.

    Args:
        degree: 0..3.
        dirs: [M, 3] unit vectors (x, y, z).

    Returns:
        [M, (degree + 1)^2] float64.

    Raises:
        ValueError: degree outside 0..3.
    """
    if degree not in (0, 1, 2, 3):
        raise ValueError(f"SH degree must be 0, 1, 2 or 3, got {degree}")
    d = np.asarray(dirs, np.float64)
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    out = [np.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [SH_C2[0] * xy, SH_C2[1] * yz, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * xz, SH_C2[4] * (xx - yy)]
    if degree >= 3:
        out += [SH_C3[0] * y * (3 * xx - yy), SH_C3[1] * xy * z, SH_C3[2] * y * (4 * zz - xx - yy),
                SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), SH_C3[4] * x * (4 * zz - xx - yy),
                SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3 * yy)]
    return np.stack(out, -1)


def fibonacci_sphere(n: int) -> np.ndarray:
    """[n, 3] float64 unit vectors on the spherical Fibonacci lattice (evenly spread)."""
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)


def sh_rotation_matrix(degree: int, R: np.ndarray) -> np.ndarray:
    """[K, K] float64 matrix D, K = (degree + 1)^2, with ``Y(R^T s) = Y(s) D`` for unit s, so
    that ``sh' = D sh`` seen along ``R d`` equals ``sh`` seen along d: the real Wigner-D matrix of
    the rotation R [3, 3], solved exactly (least squares on a full-rank system) from the basis at
    :data:`SH_FIT_DIRECTIONS` directions; block diagonal by band, 1 on the DC term."""
    dirs = fibonacci_sphere(SH_FIT_DIRECTIONS)
    Y = sh_basis(degree, dirs)
    return np.linalg.lstsq(Y, sh_basis(degree, dirs @ np.asarray(R, np.float64)), rcond=None)[0]


def quat_to_rotmat(q) -> np.ndarray:
    """[3, 3] float64 rotation of a (w, x, y, z) quaternion (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y],
        [2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x],
        [2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y],
    ])


def rotmat_to_quat(R) -> np.ndarray:
    """[4] float64 unit quaternion (w, x, y, z), w >= 0, of a rotation [3, 3] (Shepperd's method:
    the branch of the largest of trace, R00, R11, R22 keeps the square root well conditioned)."""
    R = np.asarray(R, dtype=np.float64)
    tr = np.trace(R)
    i = int(np.argmax([tr, R[0, 0], R[1, 1], R[2, 2]]))
    if i == 0:
        s = 2 * np.sqrt(1 + tr)
        q = [s / 4, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    else:
        a, b, c = (i - 1, i % 3, (i + 1) % 3)
        s = 2 * np.sqrt(1 + R[a, a] - R[b, b] - R[c, c])
        q = [0.0] * 4
        q[0] = (R[c, b] - R[b, c]) / s
        q[1 + a], q[1 + b], q[1 + c] = s / 4, (R[b, a] + R[a, b]) / s, (R[c, a] + R[a, c]) / s
    q = np.array(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product a * b of (w, x, y, z) quaternions (rotation b first, then a), [..., 4]
    broadcast, float64."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)
