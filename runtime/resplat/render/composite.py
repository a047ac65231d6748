"""Front-to-back alpha compositing of binned 2D Gaussians with an analytic backward.

Semantics (gsplat 1.5.3 ``rasterize_to_pixels_fwd`` / ``_bwd``,
gsplat/cuda/csrc/RasterizeToPixels3DGS{Fwd,Bwd}.cu; 3DGS, Kerbl et al. 2023, eq. 3): at the pixel
centre p, for each Gaussian of the pixel's tile in depth order,
sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with d = mean2d - p; skip if sigma < 0;
alpha = min(0.999, opacity exp(-sigma)); skip if alpha < 1/255; stop (excluding this Gaussian)
once T (1 - alpha) <= 1e-4; otherwise w = alpha T is added to colour and depth and T *= 1 - alpha.

The work is vectorised over [tiles, pixels, chunk of the depth-sorted list]: tiles are processed
longest list first, ``chunk`` Gaussians at a time, carrying T and a "done" flag per pixel, and a
tile leaves the batch once every pixel is done (the early stop of the CUDA kernels). The
backward recomputes the alphas chunk by chunk in the same order and uses
dL/da_i = T_i v_i - (S - sum_{j<=i} w_j v_j) / (1 - a_i), v_i = dL/dC . c_i + dL/dD z_i,
S = dL/dC . C + dL/dD D + dL/dT T_final, so nothing of size [pixels x list] is stored.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import ALPHA_MAX, ALPHA_MIN, T_MIN
from .tiles import TileBins

#: Gaussians per tile evaluated at once; bounds memory to about tiles x pixels x CHUNK x 40 B.
CHUNK = 32
#: Upper bound on tiles x pixels x chunk elements per batch (memory bound, ~0.5 GB of temporaries).
MAX_ELEMS = 1 << 23


class _Plan:
    """Tile geometry shared by forward and backward: non-empty tiles sorted by list length."""

    def __init__(self, bins: TileBins, width: int, height: int, dtype, device):
        s = bins.tile_size
        lengths = bins.tile_offsets[1:] - bins.tile_offsets[:-1]
        nonempty = torch.nonzero(lengths > 0).squeeze(1)
        self.tiles = nonempty[torch.argsort(lengths[nonempty], descending=True, stable=True)]
        self.starts = bins.tile_offsets[:-1][self.tiles]
        self.lengths = lengths[self.tiles]
        per_view = bins.tiles_x * bins.tiles_y
        local = self.tiles % per_view
        tx, ty = local % bins.tiles_x, local // bins.tiles_x
        ar = torch.arange(s, device=device, dtype=dtype) + 0.5
        self.px = (tx[:, None, None] * s + ar[None, None, :]).to(dtype).expand(-1, s, s).reshape(-1, s * s)
        self.py = (ty[:, None, None] * s + ar[None, :, None]).to(dtype).expand(-1, s, s).reshape(-1, s * s)
        self.n_pix = s * s

    def rounds(self, done: Tensor):
        """Yield (k, act) for each chunk round: act are indices of tiles still drawing."""
        k = 0
        max_len = int(self.lengths[0]) if len(self.lengths) else 0
        while k * CHUNK < max_len:
            n = int((self.lengths > k * CHUNK).sum())
            act = torch.arange(n, device=self.lengths.device)
            act = act[~done[:n].all(1)]
            if len(act) == 0:
                break
            step = max(1, MAX_ELEMS // (self.n_pix * CHUNK))
            for i in range(0, len(act), step):
                yield k, act[i:i + step]
            k += 1


def _alphas(plan: _Plan, feat: Tensor, flat: Tensor, k: int, act: Tensor):
    """Recompute one chunk: gathered features [A, L, 10], dx, dy, sigma terms and alphas [A, P, L]."""
    idx = plan.starts[act, None] + k * CHUNK + torch.arange(CHUNK, device=act.device)
    in_list = idx < (plan.starts[act] + plan.lengths[act])[:, None]
    gid = torch.where(in_list, flat[idx.clamp_max(len(flat) - 1)], feat.shape[0] - 1)
    f = feat[gid]  # [A, L, 10]
    dx = f[:, None, :, 0] - plan.px[act][:, :, None]
    dy = f[:, None, :, 1] - plan.py[act][:, :, None]
    sigma = 0.5 * (f[:, None, :, 2] * dx * dx + f[:, None, :, 4] * dy * dy) + f[:, None, :, 3] * dx * dy
    raw = f[:, None, :, 5] * torch.exp(-sigma)
    keep = (sigma >= 0) & (raw >= ALPHA_MIN)
    alpha = torch.where(keep, raw.clamp_max(ALPHA_MAX), 0)
    return gid, f, dx, dy, raw, keep, alpha


def _transmittance(alpha: Tensor, T0: Tensor, done0: Tensor):
    """Transmittance before each Gaussian [A, P, L], after it, and the mask of drawn Gaussians."""
    om = 1 - alpha
    next_T = T0[:, :, None] * torch.cumprod(om, -1)
    T_before = torch.cat([T0[:, :, None], next_T[:, :, :-1]], -1)
    drawn = (next_T > T_MIN) & ~done0[:, :, None]
    return om, next_T, T_before, drawn


def _advance(next_T, drawn, T0, done0):
    n = drawn.sum(-1, keepdim=True)
    T1 = torch.where(n[..., 0] > 0, next_T.gather(-1, (n - 1).clamp_min(0))[..., 0], T0)
    return T1, done0 | (next_T[:, :, -1] <= T_MIN)


class CompositeTiles(torch.autograd.Function):
    """Composite packed Gaussians into tiles. Inputs (P packed Gaussians, any float dtype):
    means2d [P, 2] px, conics [P, 3] px^-2, opacities [P] (compensation included), colors [P, 3],
    depths [P] metres; ``bins`` from :func:`.tiles.bin_gaussians`. Outputs, one row per tile of
    the grid ([n_tiles, tile_size^2]): accumulated colour [.., 3], accumulated depth, final T."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, depths, bins: TileBins, width: int, height: int):
        dtype, device = means2d.dtype, means2d.device
        feat = torch.cat([means2d, conics, opacities[:, None], depths[:, None], colors], 1)
        feat = torch.cat([feat, feat.new_zeros(1, 10)], 0)  # dummy Gaussian (opacity 0) for padding
        plan = _Plan(bins, width, height, dtype, device)
        nt, npix = len(plan.tiles), plan.n_pix
        T = torch.ones(nt, npix, dtype=dtype, device=device)
        done = torch.zeros(nt, npix, dtype=torch.bool, device=device)
        C = torch.zeros(nt, npix, 3, dtype=dtype, device=device)
        D = torch.zeros(nt, npix, dtype=dtype, device=device)
        for k, act in plan.rounds(done):
            gid, f, dx, dy, raw, keep, alpha = _alphas(plan, feat, bins.flatten_ids, k, act)
            om, next_T, T_before, drawn = _transmittance(alpha, T[act], done[act])
            w = torch.where(drawn, alpha * T_before, 0)
            C[act] += torch.bmm(w, f[:, :, 7:10])
            D[act] += torch.bmm(w, f[:, :, 6:7])[..., 0]
            T[act], done[act] = _advance(next_T, drawn, T[act], done[act])
        n_all = bins.tile_offsets.numel() - 1
        C_all = C.new_zeros(n_all, npix, 3)
        D_all = D.new_zeros(n_all, npix)
        T_all = T.new_ones(n_all, npix)
        C_all[plan.tiles], D_all[plan.tiles], T_all[plan.tiles] = C, D, T
        ctx.save_for_backward(feat, C, D, T)
        ctx.plan, ctx.bins = plan, bins
        return C_all, D_all, T_all

    @staticmethod
    def backward(ctx, gC_all, gD_all, gT_all):
        feat, C, D, T_final = ctx.saved_tensors
        plan, bins = ctx.plan, ctx.bins
        gC, gD, gT = gC_all[plan.tiles], gD_all[plan.tiles], gT_all[plan.tiles]
        S = (gC * C).sum(-1) + gD * D + gT * T_final
        nt, npix = len(plan.tiles), plan.n_pix
        T = torch.ones_like(T_final)
        done = torch.zeros(nt, npix, dtype=torch.bool, device=T.device)
        prefix = torch.zeros_like(T_final)
        gfeat = torch.zeros_like(feat)
        for k, act in plan.rounds(done):
            gid, f, dx, dy, raw, keep, alpha = _alphas(plan, feat, bins.flatten_ids, k, act)
            om, next_T, T_before, drawn = _transmittance(alpha, T[act], done[act])
            w = torch.where(drawn, alpha * T_before, 0)
            gc, gd = gC[act], gD[act]
            v = torch.bmm(gc, f[:, :, 7:10].transpose(1, 2)) + gd[:, :, None] * f[:, None, :, 6]
            wv = w * v
            incl = prefix[act][:, :, None] + torch.cumsum(wv, -1)
            prefix[act] = incl[:, :, -1]
            g_alpha = torch.where(drawn & keep & (raw <= ALPHA_MAX), T_before * v - (S[act][:, :, None] - incl) / om, 0)
            g_raw = g_alpha * raw  # d alpha / d opacity = raw / opacity; d alpha / d sigma = -raw
            g = torch.empty(*gid.shape, 10, dtype=feat.dtype, device=feat.device)
            g[..., 5] = g_raw.sum(1) / f[..., 5].clamp_min(1e-30)
            g_sigma = -g_raw
            gsx = (g_sigma * dx).sum(1)
            gsy = (g_sigma * dy).sum(1)
            g[..., 0] = f[..., 2] * gsx + f[..., 3] * gsy
            g[..., 1] = f[..., 4] * gsy + f[..., 3] * gsx
            g[..., 2] = 0.5 * (g_sigma * dx * dx).sum(1)
            g[..., 3] = (g_sigma * dx * dy).sum(1)
            g[..., 4] = 0.5 * (g_sigma * dy * dy).sum(1)
            g[..., 6] = (w * gd[:, :, None]).sum(1)
            g[..., 7:10] = torch.bmm(w.transpose(1, 2), gc)
            gfeat.index_add_(0, gid.reshape(-1), g.reshape(-1, 10))
            T[act], done[act] = _advance(next_T, drawn, T[act], done[act])
        gfeat = gfeat[:-1]
        return gfeat[:, 0:2], gfeat[:, 2:5], gfeat[:, 5], gfeat[:, 7:10], gfeat[:, 6], None, None, None
