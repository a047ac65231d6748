"""gsplat 1.5.3 CUDA backend: a thin mapping onto ``gsplat.rasterization``.

Source: gsplat 1.5.3 gsplat/rendering.py ``rasterization(means, quats, scales, opacities, colors,
viewmats, Ks, width, height, near_plane, far_plane, eps2d, sh_degree, packed, backgrounds,
render_mode, rasterize_mode)``, called as ReSplat does (packed=True, render_mode="RGB+ED").
"""

from __future__ import annotations

from torch import Tensor

from ..cameras import Cameras
from ..gaussians import Gaussians, sh_coeff_count
from . import RenderOutput


def gsplat_available() -> bool:
    """True when the ``gsplat`` package imports (it still needs a CUDA device to rasterise)."""
    try:
        import gsplat  # noqa: F401
    except Exception:  # ImportError, or a broken install failing at import time
        return False
    return True


def render_gsplat(
    gaussians: Gaussians,
    cameras: Cameras,
    *,
    sh_degree: int,
    background: Tensor,
    near: float,
    far: float,
    eps2d: float,
    antialiased: bool,
) -> RenderOutput:
    """Render with gsplat's CUDA kernels; same arguments and outputs as
    :func:`resplat.render.torch_backend.render_torch` (rgb [V,3,H,W], alpha and depth
    [V,1,H,W], packed ``means2d`` / ``view_ids`` / ``gaussian_ids`` / ``radii`` from gsplat's
    ``meta``, where gsplat retains the 2D means in the graph, so ``means2d.retain_grad()``
    gives the screen-space gradient as in gsplat's strategies). Gaussians and cameras must be
    on a CUDA device, float32."""
    from gsplat import rasterization

    colors, alphas, meta = rasterization(
        means=gaussians.means,
        quats=gaussians.quats,
        scales=gaussians.scales,
        opacities=gaussians.opacities,
        colors=gaussians.sh[:, : sh_coeff_count(sh_degree)],
        viewmats=cameras.w2c,
        Ks=cameras.K,
        width=cameras.width,
        height=cameras.height,
        near_plane=near,
        far_plane=far,
        eps2d=eps2d,
        sh_degree=sh_degree,
        packed=True,
        backgrounds=background,
        render_mode="RGB+ED",
        rasterize_mode="antialiased" if antialiased else "classic",
    )
    colors = colors.permute(0, 3, 1, 2)  # [V, 4, H, W]
    radii = meta.get("radii")
    if radii is not None and radii.dim() == 1:  # gsplat < 1.5 stores one radius per pair
        radii = radii[:, None].expand(-1, 2)
    return RenderOutput(rgb=colors[:, :3], alpha=alphas.permute(0, 3, 1, 2), depth=colors[:, 3:4],
                        means2d=meta.get("means2d"), view_ids=meta.get("camera_ids"),
                        gaussian_ids=meta.get("gaussian_ids"), radii=radii)
