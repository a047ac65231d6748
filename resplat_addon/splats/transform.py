"""Bake an object transform into splats: means, rotations, scales and SH (numpy, no bpy).

A similarity ``x -> s R x + t`` (uniform scale s > 0, rotation R) maps a Gaussian with mean m,
rotation q and standard deviations sigma to mean ``s R m + t``, rotation ``q(R) * q`` (Hamilton
product, wxyz) and standard deviations ``s sigma`` (log scale + log s). View-dependent colour is
rotated with the scene: the SH of each band l >= 1 are multiplied by the real Wigner-D matrix of
R for the 3DGS real SH basis (:func:`sh_basis`, Kerbl et al. 2023 / gsplat ``spherical_harmonics``
constants), solved exactly from the basis at 64 spherical-Fibonacci directions as in
``resplat.model.poses.rotate_sh`` (which needs torch); the DC term is invariant.

Non-uniform scale, shear or a mirror cannot be expressed by Gaussians' (rotation, axis scales)
parametrisation and raise :class:`~resplat.errors.ResplatError`.
"""

from __future__ import annotations

import numpy as np

from ..runtime_formats import ResplatError, SplatArrays

_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
       -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def sh_basis(degree: int, dirs: np.ndarray) -> np.ndarray:
    """Real SH basis of the 3DGS renderer at unit directions.

    Args:
        degree: 0..3.
        dirs: [M, 3] float64 unit vectors.

    Returns:
        [M, (degree + 1)^2] float64, coefficient order of the INRIA PLY ``f_rest`` layout.
    """
    x, y, z = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    out = [np.full_like(x, _C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [_C2[0] * xy, _C2[1] * yz, _C2[2] * (2 * zz - xx - yy), _C2[3] * xz, _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [_C3[0] * y * (3 * xx - yy), _C3[1] * xy * z, _C3[2] * y * (4 * zz - xx - yy),
                _C3[3] * z * (2 * zz - 3 * xx - 3 * yy), _C3[4] * x * (4 * zz - xx - yy),
                _C3[5] * z * (xx - yy), _C3[6] * x * (xx - 3 * yy)]
    return np.stack(out, -1)


def sh_rotation_matrix(degree: int, R: np.ndarray) -> np.ndarray:
    """[K, K] float64 matrix D with ``Y(R^T s) = Y(s) D`` (so ``sh' = D sh`` is seen along
    ``R d`` as ``sh`` along d); block diagonal by band, identity on the DC term."""
    n = 64
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z * z)
    dirs = np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)
    Y = sh_basis(degree, dirs)
    return np.linalg.lstsq(Y, sh_basis(degree, dirs @ np.asarray(R, np.float64)), rcond=None)[0]


def rotmat_to_quat(R: np.ndarray) -> np.ndarray:
    """[4] float64 unit quaternion (w, x, y, z), w >= 0, of a 3x3 rotation (Shepperd's method)."""
    R = np.asarray(R, np.float64)
    t = np.trace(R)
    if t > 0:
        s = 2 * np.sqrt(1 + t)
        q = [s / 4, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * np.sqrt(1 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0] * 4
        q[0] = (R[k, j] - R[j, k]) / s
        q[1 + i] = s / 4
        q[1 + j] = (R[j, i] + R[i, j]) / s
        q[1 + k] = (R[k, i] + R[i, k]) / s
    q = np.array(q)
    return q / np.linalg.norm(q) * (1 if q[0] >= 0 else -1)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of (w, x, y, z) quaternions, [..., 4] broadcast, float64."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def split_similarity(matrix: np.ndarray, tol: float = 1e-5) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R [3, 3], t [3]) of a 4x4 affine world matrix ``[s R | t]``, float64.

    Raises:
        ResplatError: the 3x3 block has non-uniform scale or shear (relative tolerance ``tol``),
            is singular, or mirrors (negative determinant).
    """
    M = np.asarray(matrix, np.float64)
    A, t = M[:3, :3], M[:3, 3]
    det = np.linalg.det(A)
    if not np.isfinite(det) or abs(det) < 1e-30:
        raise ResplatError("the object transform is singular (zero scale); apply a non-zero scale first")
    if det < 0:
        raise ResplatError("the object transform mirrors (negative scale); splats cannot be mirrored on export")
    s = det ** (1 / 3)
    if not np.allclose(A.T @ A, s * s * np.eye(3), rtol=0, atol=tol * s * s):
        cols = np.linalg.norm(A, axis=0)
        raise ResplatError(f"the object transform has non-uniform scale or shear (axis scales "
                           f"{cols[0]:.4g}, {cols[1]:.4g}, {cols[2]:.4g}); only uniform scale can be baked")
    return float(s), A / s, t


def bake_transform(a: SplatArrays, matrix: np.ndarray) -> SplatArrays:
    """Splats ``a`` seen through the 4x4 object-to-world ``matrix`` (a similarity), as new
    float32 SplatArrays computed in float64 (see the module docstring for the formulas).

    Raises:
        ResplatError: ``matrix`` is not a similarity with positive uniform scale.
    """
    s, R, t = split_similarity(matrix)
    if np.allclose(R, np.eye(3), rtol=0, atol=0) and s == 1 and not t.any():
        return a
    means = (s * a.means.astype(np.float64)) @ R.T + t
    quats = quat_multiply(rotmat_to_quat(R), a.quats)
    log_scales = a.log_scales.astype(np.float64) + np.log(s)
    sh = a.sh
    if a.sh_degree > 0:
        D = sh_rotation_matrix(a.sh_degree, R)
        sh = np.einsum("ij,njc->nic", D, a.sh.astype(np.float64))
        sh[:, 0] = a.sh[:, 0]  # the DC term is invariant; keep it bit-exact
    return SplatArrays(means, quats, log_scales, a.logit_opacities, sh)
