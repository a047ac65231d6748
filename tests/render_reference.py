"""Brute-force float64 reference renderer for the rasteriser tests (written independently of
resplat.render: no tiles, all Gaussians at every pixel, one global depth sort per view).

Semantics are gsplat 1.5.3's (gsplat/cuda/csrc/ProjectionEWA3DGSPacked.cu, RasterizeToPixels3DGSFwd.cu,
SphericalHarmonicsCUDA.cu, rendering.py) written out as directly as possible. Differentiable by
plain autograd, so its gradients are the reference for the backends' gradients.
"""

from __future__ import annotations

import torch


def _rotation(q):
    q = q / torch.sqrt((q * q).sum(-1, keepdim=True))
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    rows = [
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def _sh_basis(d, v):
    """Real SH basis of degree <= d (3DGS / gsplat sign convention) written as polynomials."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    b = [torch.full_like(x, 0.5 / (torch.pi ** 0.5))]
    if d >= 1:
        c1 = (3 / (4 * torch.pi)) ** 0.5
        b += [-c1 * y, c1 * z, -c1 * x]
    if d >= 2:
        b += [
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.31539156525252005 * (3 * z * z - 1),
            -1.0925484305920792 * x * z,
            0.5462742152960396 * (x * x - y * y),
        ]
    if d >= 3:
        b += [
            -0.5900435899266435 * y * (3 * x * x - y * y),
            2.890611442640554 * x * y * z,
            -0.4570457994644658 * y * (5 * z * z - 1),
            0.3731763325901154 * z * (5 * z * z - 3),
            -0.4570457994644658 * x * (5 * z * z - 1),
            1.445305721320277 * z * (x * x - y * y),
            -0.5900435899266435 * x * (x * x - 3 * y * y),
        ]
    return torch.stack(b, -1)


def reference_render(means, quats, log_scales, logit_opacities, sh, w2c, K, width, height, *, sh_degree,
                     background, near=0.01, far=1e10, eps2d=0.3, antialiased=True):
    """rgb [V,3,H,W], alpha [V,1,H,W], depth [V,1,H,W] (float64 in, float64 out)."""
    rgbs, alphas, depths = [], [], []
    Rg = _rotation(quats)
    M = Rg * torch.exp(log_scales)[:, None, :]
    cov3 = M @ M.transpose(1, 2)
    opac = torch.sigmoid(logit_opacities)
    jj, ii = torch.meshgrid(torch.arange(width, dtype=means.dtype), torch.arange(height, dtype=means.dtype), indexing="xy")
    px, py = (jj + 0.5).reshape(-1), (ii + 0.5).reshape(-1)
    for v in range(w2c.shape[0]):
        R, t = w2c[v, :3, :3], w2c[v, :3, 3]
        pc = means @ R.T + t
        fx, fy, cx, cy = K[v, 0, 0], K[v, 1, 1], K[v, 0, 2], K[v, 1, 2]
        C = torch.zeros(px.shape[0], 3, dtype=means.dtype)
        Dacc = torch.zeros(px.shape[0], dtype=means.dtype)
        T = torch.ones(px.shape[0], dtype=means.dtype)
        done = torch.zeros(px.shape[0], dtype=torch.bool)
        cam_center = -R.T @ t
        for n in torch.argsort(pc[:, 2].detach()).tolist():
            x, y, z = pc[n]
            if not (near <= float(z.detach()) <= far):
                continue
            u = torch.clamp(x / z, -(cx / fx + 0.3 * 0.5 * width / fx), (width - cx) / fx + 0.3 * 0.5 * width / fx)
            w_ = torch.clamp(y / z, -(cy / fy + 0.3 * 0.5 * height / fy), (height - cy) / fy + 0.3 * 0.5 * height / fy)
            J = torch.stack([torch.stack([fx / z, 0 * z, -fx * u / z]), torch.stack([0 * z, fy / z, -fy * w_ / z])])
            S = J @ (R @ cov3[n] @ R.T) @ J.T
            det0 = S[0, 0] * S[1, 1] - S[0, 1] * S[1, 0]
            Sb = S + eps2d * torch.eye(2, dtype=S.dtype)
            det = Sb[0, 0] * Sb[1, 1] - Sb[0, 1] * Sb[1, 0]
            if float(det.detach()) <= 0:
                continue
            o = opac[n]
            if antialiased:
                o = o * torch.sqrt(torch.clamp(det0 / det, min=0))
            inv = torch.linalg.inv(Sb)
            mx, my = fx * x / z + cx, fy * y / z + cy
            dx, dy = mx - px, my - py
            sig = 0.5 * (inv[0, 0] * dx * dx + inv[1, 1] * dy * dy) + inv[0, 1] * dx * dy
            a = torch.clamp(o * torch.exp(-sig), max=0.999)
            use = (sig >= 0) & (a >= 1 / 255) & ~done
            stop = use & (T * (1 - a) <= 1e-4)
            done = done | stop
            use = use & ~stop
            if not bool(use.any()):
                continue
            d = means[n] - cam_center
            col = torch.clamp(_sh_basis(sh_degree, (d / d.norm())[None])[0] @ sh[n, : (sh_degree + 1) ** 2] + 0.5, min=0)
            wgt = torch.where(use, a * T, torch.zeros_like(a))
            C = C + wgt[:, None] * col[None]
            Dacc = Dacc + wgt * z
            T = torch.where(use, T * (1 - a), T)
        alpha = 1 - T
        rgbs.append((C + T[:, None] * background[v]).T.reshape(3, height, width))
        alphas.append(alpha.reshape(1, height, width))
        depths.append((Dacc / torch.clamp(alpha, min=1e-10)).reshape(1, height, width))
    return torch.stack(rgbs), torch.stack(alphas), torch.stack(depths)
