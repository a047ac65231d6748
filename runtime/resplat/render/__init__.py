"""Differentiable Gaussian splat rasterisation: one entry point, several backends.

:func:`render` projects 3D Gaussians into each camera with the EWA splatting approximation
(Zwicker et al. 2001) as in 3D Gaussian Splatting (Kerbl et al. 2023) and gsplat 1.5 in its
"antialiased" mode (Yu et al. 2024, Mip-Splatting's 2D filter): a 0.3 px^2 low-pass is added to
each projected covariance and the opacity is multiplied by sqrt(det(S) / det(S + 0.3 I)).
Gaussians whose camera-space depth is below ``near`` or beyond ``far`` are culled. Colours are
evaluated from SH of degree 0..3 in the direction from the camera centre to the mean, offset by
0.5 and clamped at 0. Compositing is front to back in depth order: a Gaussian contributes at a
pixel only if its alpha = min(0.999, opacity * exp(-0.5 d^T S^-1 d)) reaches 1/255 (0.999 is gsplat's
clamp, RasterizeToPixels3DGSFwd.cu; the INRIA 3DGS code uses 0.99), and a pixel stops before
the Gaussian that would bring its transmittance to 1e-4 or below. The expected depth ("ED") is
sum(w_i z_i) / max(alpha, 1e-10) (gsplat rendering.py).

Backends (all behind :func:`render`, same semantics, tested against one another):
- ``"torch"``: pure PyTorch, tile-based; runs on CPU, CUDA and MPS. :mod:`.torch_backend`.
- ``"gsplat"``: gsplat 1.5.3 CUDA kernels. :mod:`.gsplat_backend`.
- ``"auto"``: gsplat when the Gaussians are on CUDA and gsplat imports, else torch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from torch import Tensor

from ..cameras import Cameras
from ..errors import BackendError
from ..gaussians import Gaussians

#: Defaults shared by every backend (gsplat 1.5.3's values; ReSplat's release passes eps2d=0.1).
NEAR = 0.01
FAR = 1e10
EPS2D = 0.3
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4


@dataclass
class RenderOutput:
    """Rasterised views.

    Attributes:
        rgb: [V, 3, H, W] linear composite of the splat colours over ``background``.
        alpha: [V, 1, H, W] accumulated opacity, 1 - final transmittance.
        depth: [V, 1, H, W] expected depth: sum(w_i z_i) / alpha where alpha > 0, else 0,
            with z_i the camera-space depth (metres, along +z) of each Gaussian's mean.
        means2d: [P, 2] projected centres (pixels) of the P drawn (view, Gaussian) pairs, in the
            autograd graph of ``rgb``: call ``means2d.retain_grad()`` before ``backward()`` to
            read dL/d(mean2d) in px^-1, the screen-space gradient of 3DGS's densification
            (gsplat's packed ``meta["means2d"]``). None where the backend does not expose it.
        view_ids: [P] int64 view of each drawn pair (gsplat's ``camera_ids``).
        gaussian_ids: [P] int64 Gaussian of each drawn pair.
        radii: [P, 2] int32 screen-space extents (x, y) of each drawn pair, pixels.
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    means2d: Tensor | None = None
    view_ids: Tensor | None = None
    gaussian_ids: Tensor | None = None
    radii: Tensor | None = None


def render(
    gaussians: Gaussians,
    cameras: Cameras,
    *,
    sh_degree: int | None = None,
    background: Tensor | None = None,
    backend: str = "auto",
    near: float = NEAR,
    far: float = FAR,
    eps2d: float = EPS2D,
    antialiased: bool = True,
) -> RenderOutput:
    """Render ``gaussians`` from every camera; differentiable in every Gaussian parameter.

    Args:
        gaussians: N Gaussians (float32 or float64; the torch backend keeps the dtype).
        cameras: V cameras of one image size; moved to the Gaussians' device.
        sh_degree: SH degree to evaluate (default: the Gaussians' own; lower degrees ignore the
            higher coefficients).
        background: [3] or [V, 3] colour composited behind the splats (default black).
        backend: "auto", "torch" or "gsplat".
        near, far: depth clipping range in metres.
        eps2d: low-pass variance in px^2 added to each projected covariance.
        antialiased: multiply opacities by the low-pass compensation factor (gsplat's
            ``rasterize_mode="antialiased"``); False gives classic 3DGS.

    Returns:
        :class:`RenderOutput` with rgb [V,3,H,W], alpha [V,1,H,W], depth [V,1,H,W].

    Raises:
        BackendError: unknown backend, or gsplat requested where it cannot run.
        ValueError: ``sh_degree`` above the Gaussians' degree.
    """
    if sh_degree is None:
        sh_degree = gaussians.sh_degree
    if sh_degree > gaussians.sh_degree or sh_degree < 0:
        raise ValueError(f"sh_degree {sh_degree} is not available: the Gaussians have degree {gaussians.sh_degree}")
    cameras = cameras.to(device=gaussians.device, dtype=gaussians.dtype)
    if background is None:
        background = gaussians.means.new_zeros(3)
    background = background.to(gaussians.means).expand(len(cameras), 3)
    impl = _resolve_backend(backend, gaussians)
    return impl(
        gaussians,
        cameras,
        sh_degree=sh_degree,
        background=background,
        near=near,
        far=far,
        eps2d=eps2d,
        antialiased=antialiased,
    )


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine."""
    names = ["torch"]
    try:
        from .gsplat_backend import gsplat_available

        if gsplat_available():
            names.append("gsplat")
    except ImportError:
        pass
    return names


def _resolve_backend(name: str, gaussians: Gaussians):
    if name == "auto":
        name = "gsplat" if gaussians.device.type == "cuda" and "gsplat" in available_backends() else "torch"
    if name == "torch":
        from .torch_backend import render_torch

        return render_torch
    if name == "gsplat":
        from .gsplat_backend import gsplat_available, render_gsplat

        if gaussians.device.type != "cuda":
            raise BackendError("the gsplat backend needs the Gaussians on a CUDA device")
        if not gsplat_available():
            raise BackendError("the gsplat backend needs the gsplat package (pip install gsplat==1.5.3 packaging)")
        return render_gsplat
    raise BackendError(f"unknown rasteriser backend {name!r}: choose 'auto', 'torch' or 'gsplat'")


class _CallableModule(type(sys.modules[__name__])):
    """``resplat.render`` names both this package and :func:`render`: once the package is
    imported, Python binds the package to ``resplat.render``, so calling it calls :func:`render`."""

    def __call__(self, *args, **kwargs):
        return render(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
