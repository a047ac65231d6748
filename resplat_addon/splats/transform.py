"""Bake an object transform into splats: means, rotations, scales and SH (numpy, no bpy).

A similarity ``x -> s R x + t`` (uniform scale s > 0, rotation R) maps a Gaussian with mean m,
rotation q and standard deviations sigma to mean ``s R m + t``, rotation ``q(R) * q`` (Hamilton
product, wxyz) and standard deviations ``s sigma`` (log scale + log s). View-dependent colour is
rotated with the scene: the SH of each band l >= 1 are multiplied by the real Wigner-D matrix of
R for the 3DGS real SH basis, the runtime's torch-free
:func:`resplat.npmath.sh_rotation_matrix` (the one copy of that maths, also behind
``resplat.model.poses.rotate_sh``); the DC term is invariant.

Non-uniform scale, shear or a mirror cannot be expressed by Gaussians' (rotation, axis scales)
parametrisation and raise :class:`~resplat.errors.ResplatError`.
"""

from __future__ import annotations

import numpy as np

from ..runtime_formats import ResplatError, SplatArrays, npmath

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
    quats = npmath.quat_multiply(npmath.rotmat_to_quat(R), a.quats)
    log_scales = a.log_scales.astype(np.float64) + np.log(s)
    sh = a.sh
    if a.sh_degree > 0:
        D = npmath.sh_rotation_matrix(a.sh_degree, R)
        sh = np.einsum("ij,njc->nic", D, a.sh.astype(np.float64))
        sh[:, 0] = a.sh[:, 0]  # the DC term is invariant; keep it bit-exact
    return SplatArrays(means, quats, log_scales, a.logit_opacities, sh)
