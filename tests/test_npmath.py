"""The torch-free rotation/SH maths (resplat.npmath) against independent float64 references, and
the torch versions of the same maths tested against it (one copy of each formula; the torch ones
exist for batching and autograd only)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from resplat import npmath
from resplat.gaussians import SH_C0 as TORCH_C0
from resplat.gaussians import quat_multiply, quat_to_rotmat, rotmat_to_quat
from resplat.model.poses import rotate_sh
from resplat.render.sh import sh_basis


def _unit(rng, n):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _legendre_sh(degree, dirs):
    """Real SH from the associated Legendre definition with the Condon-Shortley phase (-1)^m,
    columns m = -l..l per band (sin for m < 0, cos for m > 0)."""
    x, y, z = dirs.T
    theta, phi = np.arccos(np.clip(z, -1, 1)), np.arctan2(y, x)
    cols = []
    for l in range(degree + 1):
        for m in range(-l, l + 1):
            am = abs(m)
            p = np.polynomial.legendre.Legendre.basis(l).deriv(am)(np.cos(theta)) * np.sin(theta) ** am * (-1) ** am
            norm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - am) / math.factorial(l + am))
            if m == 0:
                cols.append(norm * p)
            else:
                trig = np.cos(am * phi) if m > 0 else np.sin(am * phi)
                cols.append(math.sqrt(2) * norm * p * trig)
    return np.stack(cols, -1)


def test_sh_basis_matches_legendre_definition_and_torch():
    rng = np.random.default_rng(0)
    dirs = _unit(rng, 200)
    ours = npmath.sh_basis(3, dirs)
    ref = _legendre_sh(3, dirs)
    # the 3DGS basis (degree 1 = C1 (-y, z, -x)) is the real SH with the Condon-Shortley phase
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    torch_vals = sh_basis(3, torch.from_numpy(dirs)).numpy()
    np.testing.assert_allclose(torch_vals, ours, rtol=0, atol=1e-14)
    assert npmath.SH_C0 == TORCH_C0 == 1 / (2 * math.sqrt(math.pi))
    with pytest.raises(ValueError, match="SH degree"):
        npmath.sh_basis(4, dirs)


def test_sh_rotation_keeps_colour_and_matches_torch_rotate_sh():
    rng = np.random.default_rng(1)
    R = npmath.quat_to_rotmat(rng.normal(size=4))
    sh = rng.normal(size=(5, 16, 3))
    D = npmath.sh_rotation_matrix(3, R)
    dirs = _unit(rng, 50)
    seen = np.einsum("dk,nkc->ndc", npmath.sh_basis(3, dirs), sh)
    seen_rot = np.einsum("dk,nkc->ndc", npmath.sh_basis(3, dirs @ R.T), np.einsum("ij,njc->nic", D, sh))
    np.testing.assert_allclose(seen_rot, seen, rtol=0, atol=1e-10)
    assert abs(D[0, 0] - 1) < 1e-12 and np.abs(D[0, 1:]).max() < 1e-12  # DC invariant, bands apart
    np.testing.assert_allclose(D[1:4, 4:], 0, atol=1e-12)
    got = rotate_sh(torch.from_numpy(sh), torch.from_numpy(R)).numpy()
    np.testing.assert_allclose(got, np.einsum("ij,njc->nic", D, sh), rtol=0, atol=1e-12)


def test_quaternions_against_axis_angle_and_torch():
    rng = np.random.default_rng(2)
    for _ in range(20):
        axis, angle = _unit(rng, 1)[0], rng.uniform(0, math.pi)
        q = np.r_[math.cos(angle / 2), math.sin(angle / 2) * axis]  # w >= 0 for angle <= pi
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        R = np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K  # Rodrigues
        np.testing.assert_allclose(npmath.quat_to_rotmat(q), R, atol=1e-12)
        np.testing.assert_allclose(npmath.rotmat_to_quat(R), q, atol=1e-12)
        np.testing.assert_allclose(rotmat_to_quat(torch.from_numpy(R)).numpy(), q, atol=1e-12)
        np.testing.assert_allclose(quat_to_rotmat(torch.from_numpy(q)).numpy(), R, atol=1e-12)
    a, b = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    ab = npmath.quat_multiply(a, b)
    np.testing.assert_allclose(quat_multiply(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ab, atol=1e-12)
    for i in range(7):  # the product composes rotations: R(a b) = R(a) R(b)
        np.testing.assert_allclose(npmath.quat_to_rotmat(ab[i]), npmath.quat_to_rotmat(a[i]) @ npmath.quat_to_rotmat(b[i]),
                                   atol=1e-12)
    # near-180-degree turns take the other branches of Shepperd's method
    for R in (np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])):
        np.testing.assert_allclose(npmath.quat_to_rotmat(npmath.rotmat_to_quat(R)), R, atol=1e-12)


def test_npmath_and_defaults_import_without_torch():
    code = ("import sys; import resplat.npmath, resplat.defaults, resplat.formats, resplat.viewfiles; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
