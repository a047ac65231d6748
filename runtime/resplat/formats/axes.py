"""Axis changes between splat conventions: a 180-degree turn about one coordinate axis.

Our arrays use the PLY / OpenCV axes (x right, y down, z forward: "RDF"). A turn by 180 degrees
about axis ``a`` negates the two other coordinates (a diagonal matrix D with det +1). Under it:

- positions: x' = D x;
- rotations: the Gaussian's local-to-world rotation R becomes D R, i.e. the quaternion q becomes
  r * q (Hamilton product) with r the unit quaternion of the turn (w = 0, vector part along
  ``a``); applying the turn twice gives -q, the same rotation;
- real SH coefficients: each basis function is a polynomial in the view direction (x, y, z), so
  coefficient k takes the sign D_x^px D_y^py D_z^pz, with (px, py, pz) the parities of its
  exponents (:data:`SH_PARITY`; basis as in Kerbl et al. 2023 ``sh_utils.py``, the ordering of
  glTF KHR_gaussian_splatting's ``SH_DEGREE_l_COEF_n`` and of spz).
"""

from __future__ import annotations

import numpy as np

#: Parities (px, py, pz) of the basis functions 1..15 (degree 1: y, z, x; degree 2: xy, yz,
#: 3z^2 - 1, xz, x^2 - y^2; degree 3: y(3x^2 - y^2), xyz, y(5z^2 - 1), z(5z^2 - 3), x(5z^2 - 1),
#: z(x^2 - y^2), x(x^2 - 3y^2)).
SH_PARITY = np.array([
    (0, 1, 0), (0, 0, 1), (1, 0, 0),
    (1, 1, 0), (0, 1, 1), (0, 0, 0), (1, 0, 1), (0, 0, 0),
    (0, 1, 0), (1, 1, 1), (0, 1, 0), (0, 0, 1), (1, 0, 0), (0, 0, 1), (1, 0, 0),
])

#: The turns used by our formats, by the axis turned about: the diagonal of D.
TURN_X = np.array([1.0, -1.0, -1.0])  # RDF <-> RUB (Niantic's spz convention)
TURN_Z = np.array([-1.0, -1.0, 1.0])  # RDF <-> LUF (glTF: +Y up, right-handed)


def sh_signs(diagonal: np.ndarray, count: int) -> np.ndarray:
    """Signs [count] float64 of SH coefficients 1..count under the diagonal turn ``diagonal``."""
    neg = (np.asarray(diagonal) < 0).astype(int)
    return np.where((SH_PARITY[:count] @ neg) % 2 == 1, -1.0, 1.0)


def turn_quats(quats_wxyz: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
    """[N, 4] (w, x, y, z) -> r * q for the 180-degree turn ``diagonal`` (float64)."""
    axis = int(np.flatnonzero(np.asarray(diagonal) > 0)[0])
    q = np.asarray(quats_wxyz, np.float64)
    w, v = q[:, 0], q[:, 1:]
    # r = (0, e_a): r * q = (-v_a, w e_a + e_a x v)
    out = np.empty_like(q)
    out[:, 0] = -v[:, axis]
    e = np.zeros(3)
    e[axis] = 1.0
    out[:, 1:] = w[:, None] * e + np.cross(e, v)
    return out


def turn(means: np.ndarray, quats_wxyz: np.ndarray, sh_rest: np.ndarray, diagonal: np.ndarray):
    """(means [N, 3], quats [N, 4], sh_rest [N, K-1, 3]) after the 180-degree turn ``diagonal``;
    means and quats in float64, SH in its own dtype (sign changes are exact)."""
    means = np.asarray(means, np.float64) * diagonal
    signs = sh_signs(diagonal, sh_rest.shape[1]).astype(sh_rest.dtype)
    return means, turn_quats(quats_wxyz, diagonal), sh_rest * signs[None, :, None]
