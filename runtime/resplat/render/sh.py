"""View-dependent colour from real spherical harmonics, degree 0..3, as gsplat 1.5.3 evaluates it.

Source: gsplat 1.5.3 ``sh_coeffs_to_color_fast`` (gsplat/cuda/csrc/SphericalHarmonicsCUDA.cu) and
its pure-torch twin ``_eval_sh_bases_fast`` (gsplat/cuda/_torch_impl.py), which follow Sloan,
"Efficient Spherical Harmonic Evaluation" (JCGT 2013). The basis is the real SH basis with the
sign convention of the INRIA 3DGS code (degree 1 is C1 * (-y, z, -x)), so PLY files trained by
3DGS, gsplat or ReSplat render with their intended colours.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..gaussians import sh_coeff_count
from ..npmath import SH_C0, SH_C1


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """Real SH basis functions evaluated at unit directions.

    Args:
        degree: SH degree d in 0..3.
        dirs: [..., 3] unit view directions (x, y, z) in world space, any float dtype.

    Returns:
        [..., (d + 1)^2] basis values, same dtype as ``dirs``, in gsplat's coefficient order.

    Raises:
        ValueError: degree outside 0..3.
    """
    k = sh_coeff_count(degree)
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        z2 = z * z
        t0b = -1.092548430592079 * z
        c1 = x * x - y * y
        s1 = 2.0 * x * y
        out += [0.5462742152960395 * s1, t0b * y, 0.9461746957575601 * z2 - 0.3153915652525201, t0b * x,
                0.5462742152960395 * c1]
    if degree >= 3:
        t0c = -2.285228997322329 * z2 + 0.4570457994644658
        t1b = 1.445305721320277 * z
        c2 = x * c1 - y * s1
        s2 = x * s1 + y * c1
        out += [-0.5900435899266435 * s2, t1b * s1, t0c * y, z * (1.865881662950577 * z2 - 1.119528997770346),
                t0c * x, t1b * c1, -0.5900435899266435 * c2]
    assert len(out) == k
    return torch.stack(out, -1)


def sh_to_colors(degree: int, dirs: Tensor, sh: Tensor) -> Tensor:
    """Linear RGB of SH-coloured splats seen along ``dirs``: sum_k basis_k(dir) sh_k + 0.5, >= 0.

    Args:
        degree: SH degree d to evaluate (coefficients beyond (d + 1)^2 are ignored).
        dirs: [M, 3] view directions (camera centre to mean); need not be unit length.
        sh: [M, K, 3] SH coefficients with K >= (d + 1)^2.

    Returns:
        [M, 3] colours, linear, clamped at 0 (not above 1), as gsplat's ``rasterization``.
    """
    k = sh_coeff_count(degree)
    if degree > 0:
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    basis = sh_basis(degree, dirs)  # [M, k]
    colors = (basis[:, :, None] * sh[:, :k]).sum(1)  # (einsum here is a bmm of M 1xk @ kx3: slower on the CPU)
    return (colors + 0.5).clamp_min(0.0)
