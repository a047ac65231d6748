"""Front-to-back alpha compositing of binned 2D Gaussians with an analytic backward.

Semantics (gsplat 1.5.3 ``rasterize_to_pixels_fwd`` / ``_bwd``,
gsplat/cuda/csrc/RasterizeToPixels3DGS{Fwd,Bwd}.cu; 3DGS, Kerbl et al. 2023, eq. 3): at the pixel
centre p, for each Gaussian of the pixel's tile in depth order,
sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with d = mean2d - p; skip if sigma < 0;
alpha = min(0.999, opacity exp(-sigma)); skip if alpha < 1/255; stop (excluding this Gaussian)
once T (1 - alpha) <= 1e-4; otherwise w = alpha T is added to colour and depth and T *= 1 - alpha.
(The conic is positive definite after the eps2d blur, so sigma >= 0 and gsplat's sigma < 0 test
never fires here; alpha is computed as exp(log(opacity) - sigma).)

The work is vectorised over [tiles, pixels, chunk of the depth-sorted list]: tiles are processed
longest list first, ``chunk`` Gaussians at a time, carrying T and a "done" flag per pixel, and a
tile leaves the batch once every pixel is done (the early stop of the CUDA kernels). The
backward replays the forward's batches in the same order and uses
dL/da_i = T_i v_i - (S - sum_{j<=i} w_j v_j) / (1 - a_i), v_i = dL/dC . c_i + dL/dD z_i,
S = dL/dC . C + dL/dD D + dL/dT T_final; the per-batch alphas, transmittances and weights it
needs are kept from the forward up to ``SAVE_BYTES`` and recomputed beyond (then nothing of
size [pixels x list] is stored), so memory stays bounded while a training view at 256x256
skips the recomputation (measured against recomputing everything: benchmarks/optim_step.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import ALPHA_MAX, ALPHA_MIN, T_MIN
from .tiles import TileBins

#: Gaussians of each tile's list evaluated per round: smaller wastes less work past a tile's early
#: stop, larger means fewer rounds (32 measured best on 2 CPU cores).
CHUNK = 32
#: Tiles x pixels x chunk elements per batch: 1 MiB float32 temporaries stay in malloc's heap and
#: in cache (bigger ones are mmapped afresh each time and page-fault; measured 3x slower on CPU).
MAX_ELEMS = 1 << 18
#: Bytes of per-batch forward intermediates (3 tensors of a batch's size) that
#: :class:`CompositeTiles` keeps for its backward instead of recomputing them there; beyond this
#: the backward recomputes. 256 MiB covers a 256x256 view of 32k Gaussians whole (about 110 MiB).
SAVE_BYTES = 256 << 20


class _Plan:
    """Tile geometry shared by forward and backward: non-empty tiles sorted by list length, and
    the pixel monomials (1, x, y, x^2, xy, y^2) of tile-local pixel centres (tile centre = 0)."""

    def __init__(self, bins: TileBins, dtype, device):
        s = bins.tile_size
        lengths = bins.tile_offsets[1:] - bins.tile_offsets[:-1]
        nonempty = torch.nonzero(lengths > 0).squeeze(1)
        self.tiles = nonempty[torch.argsort(lengths[nonempty], descending=True, stable=True)]
        self.starts = bins.tile_offsets[:-1][self.tiles]
        self.lengths = lengths[self.tiles]
        local = self.tiles % (bins.tiles_x * bins.tiles_y)
        self.centres = torch.stack([local % bins.tiles_x, local // bins.tiles_x], 1).to(dtype) * s + 0.5 * s
        ar = torch.arange(s, device=device, dtype=dtype) + 0.5 - 0.5 * s
        y, x = torch.meshgrid(ar, ar, indexing="ij")  # row-major pixels of a tile
        x, y = x.reshape(-1), y.reshape(-1)
        self.monomials = torch.stack([torch.ones_like(x), x, y, x * x, x * y, y * y], 1)  # [s*s, 6]
        self.n_pix = s * s
        # F.threshold(t, th, 0) keeps t where t > th: with th the next value of the dtype below
        # ALPHA_MIN (as a comparison with the Python float rounds it) it keeps t >= ALPHA_MIN
        self.alpha_min_below = _next_float(ALPHA_MIN, dtype, -1)
        self.neg_alpha_max_below = -_next_float(ALPHA_MAX, dtype, +1)  # -t kept where t <= ALPHA_MAX

    def rounds(self, Tc: Tensor):
        """Yield (k, act) per batch of each chunk round; act indexes the tiles still drawing
        (``Tc``, the carried transmittance [tiles, pixels], is 0 where a pixel has stopped)."""
        k = 0
        max_len = int(self.lengths[0]) if len(self.lengths) else 0
        step = max(1, MAX_ELEMS // (self.n_pix * CHUNK))
        while k * CHUNK < max_len:
            n = int((self.lengths > k * CHUNK).sum())
            act = torch.nonzero((Tc[:n] > 0).any(1)).squeeze(1)
            if len(act) == 0:
                break
            for i in range(0, len(act), step):
                yield k, act[i:i + step]
            k += 1


def _next_float(x: float, dtype, direction: int) -> float:
    """The neighbour of ``x`` (rounded to ``dtype``) in ``dtype`` towards -inf (direction -1) or
    +inf (+1), as a Python float (exact in ``dtype``)."""
    t = torch.tensor(x, dtype=dtype)
    return float(torch.nextafter(t, torch.tensor(direction * float("inf"), dtype=dtype)))


def _gather(plan: _Plan, feat: Tensor, flat: Tensor, k: int, act: Tensor):
    """Features [A, L, 10] of the k-th chunk of each active tile's list (padding: the dummy row),
    with the means made tile-local."""
    idx = plan.starts[act, None] + k * CHUNK + torch.arange(CHUNK, device=act.device)
    in_list = idx < (plan.starts[act] + plan.lengths[act])[:, None]
    gid = torch.where(in_list, flat[idx.clamp_max(len(flat) - 1)], feat.shape[0] - 1)
    f = feat[gid]
    m = f[..., 0:2] - plan.centres[act][:, None, :]
    return gid, f, m


def _alphas(plan: _Plan, f: Tensor, m: Tensor):
    """raw = opacity exp(-sigma) [A, P, L] as exp(monomials @ coefficients): sigma is a quadratic
    polynomial in the tile-local pixel position, so one matmul evaluates it for the whole tile."""
    a, b, c, op = f[..., 2], f[..., 3], f[..., 4], f[..., 5]
    mx, my = m[..., 0], m[..., 1]
    coef = torch.stack([
        torch.log(op.clamp_min(1e-30)) - (0.5 * a * mx * mx + 0.5 * c * my * my + b * mx * my),
        a * mx + b * my, c * my + b * mx, -0.5 * a, -b, -0.5 * c,
    ], 1)  # [A, 6, L]: log(opacity) - sigma
    raw = torch.exp(torch.matmul(plan.monomials, coef))
    # raw where raw >= ALPHA_MIN else 0, and alpha = its clamp. Masks here are float 0/1 and cuts
    # are F.threshold: on the CPU (torch 2.13, AVX512) torch.where with a bool mask costs ~15x an
    # F.threshold over the same elements, a bool comparison ~3x (benchmarks/optim_step.md)
    raw = F.threshold(raw, plan.alpha_min_below, 0.0)
    return raw, raw.clamp_max(ALPHA_MAX)


def _log_raw_factors(plan: _Plan, raw: Tensor, drawn: Tensor, T_before: Tensor, om: Tensor):
    """-T_i a'_i and -a'_i / (1 - a_i) [A, P, L], with a'_i = d alpha_i / d log(raw_i) = raw_i
    where ALPHA_MIN <= raw_i <= ALPHA_MAX on drawn Gaussians, else 0 (cut or clamped); ``raw``
    is already 0 below ALPHA_MIN (:func:`_alphas`). Then dL/dlog(raw_i) = (S - incl_i)
    (-a'_i / (1 - a_i)) - v_i (-T_i a'_i). (Negated: F.threshold of -raw gives -a' directly.)"""
    neg = F.threshold(-raw, plan.neg_alpha_max_below, 0.0) * drawn  # -a'
    return T_before * neg, neg / om


def _transmittance(alpha: Tensor, T0: Tensor):
    """(1 - alpha), T after and before each Gaussian [A, P, L], weights, and the drawn mask
    (float 1 where T after the Gaussian stays above T_MIN, else 0). T0 is 0 for finished
    pixels, so nothing more is drawn there."""
    om = 1 - alpha
    next_T = T0[:, :, None] * torch.cumprod(om, -1)
    T_before = torch.cat([T0[:, :, None], next_T[:, :, :-1]], -1)
    drawn = torch.sign(F.threshold(next_T, T_MIN, 0.0))  # next_T >= 0: 1 where next_T > T_MIN
    w = alpha * T_before * drawn
    return om, next_T, T_before, drawn, w


def _advance(next_T, drawn, T0):
    """Carried T after the chunk: T after the last drawn Gaussian, 0 once the pixel stopped
    (pixels already stopped stay 0). ``drawn`` is a prefix of each pixel's chunk (T only falls)."""
    n = drawn.sum(-1, keepdim=True).long()
    T_last = torch.where(n[..., 0] > 0, next_T.gather(-1, (n - 1).clamp_min(0))[..., 0], T0)
    return torch.where(next_T[:, :, -1] <= T_MIN, 0, T_last), T_last


class CompositeTiles(torch.autograd.Function):
    """Composite packed Gaussians into tiles. Inputs (P packed Gaussians, any float dtype):
    means2d [P, 2] px, conics [P, 3] px^-2, opacities [P] (compensation included), colors [P, 3],
    depths [P] metres; ``bins`` from :func:`.tiles.bin_gaussians`. Outputs, one row per tile of
    the grid ([n_tiles, tile_size^2], pixels row-major in the tile): accumulated colour
    sum w_i c_i [.., 3], accumulated depth sum w_i z_i, final transmittance T. Differentiable in
    the five float inputs; when a gradient is needed the forward keeps up to ``SAVE_BYTES`` of
    its per-batch intermediates for the backward (the rest is recomputed there), otherwise memory
    beyond the inputs and outputs is bounded by ``MAX_ELEMS``."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, depths, bins: TileBins):
        dtype, device = means2d.dtype, means2d.device
        feat = torch.cat([means2d, conics, opacities[:, None], depths[:, None], colors], 1)
        feat = torch.cat([feat, feat.new_zeros(1, 10)], 0)  # dummy Gaussian (opacity 0) for padding
        plan = _Plan(bins, dtype, device)
        nt, npix = len(plan.tiles), plan.n_pix
        Tc = torch.ones(nt, npix, dtype=dtype, device=device)  # carried T, 0 once stopped
        T = torch.ones(nt, npix, dtype=dtype, device=device)
        CD = torch.zeros(nt, npix, 4, dtype=dtype, device=device)
        grad = any(ctx.needs_input_grad[:5])
        batches, kept_bytes = [], 0
        for k, act in plan.rounds(Tc):
            T0 = Tc[act]
            gid, f, m = _gather(plan, feat, bins.flatten_ids, k, act)
            raw, alpha = _alphas(plan, f, m)
            om, next_T, T_before, drawn, w = _transmittance(alpha, T0)
            CD[act] += torch.bmm(w, f[:, :, 6:10])
            Tc[act], T_last = _advance(next_T, drawn, T0)
            T[act] = torch.where(T0 > 0, T_last, T[act])  # the true T of stopped pixels is kept
            if grad:  # the backward replays these batches: their rounds and carried T, and
                # within SAVE_BYTES what it would otherwise recompute
                size = 3 * w.numel() * w.element_size()
                kept = None
                if kept_bytes + size <= SAVE_BYTES:
                    kept, kept_bytes = (gid, f, m, w, *_log_raw_factors(plan, raw, drawn, T_before, om)), kept_bytes + size
                batches.append((k, act, T0, kept))
        n_all = bins.tile_offsets.numel() - 1
        CD_all = CD.new_zeros(n_all, npix, 4)
        T_all = T.new_ones(n_all, npix)
        CD_all[plan.tiles], T_all[plan.tiles] = CD, T
        ctx.save_for_backward(feat, CD, T)
        ctx.plan, ctx.bins, ctx.batches = plan, bins, batches
        return CD_all[..., 1:4], CD_all[..., 0], T_all

    @staticmethod
    def backward(ctx, gC_all, gD_all, gT_all):
        feat, CD, T_final = ctx.saved_tensors
        plan, bins = ctx.plan, ctx.bins
        g_cd = torch.cat([gD_all[:, :, None], gC_all], -1)[plan.tiles]  # [nt, P, 4] (depth, rgb)
        S = (g_cd * CD).sum(-1) + gT_all[plan.tiles] * T_final
        prefix = torch.zeros_like(T_final)
        gfeat = torch.zeros_like(feat)
        for k, act, T0, kept in ctx.batches:  # (kept again for a second backward, e.g. gradcheck)
            if kept is None:
                gid, f, m = _gather(plan, feat, bins.flatten_ids, k, act)
                raw, alpha = _alphas(plan, f, m)
                om, next_T, T_before, drawn, w = _transmittance(alpha, T0)
                ntb_dd, ndd_om = _log_raw_factors(plan, raw, drawn, T_before, om)
            else:
                gid, f, m, w, ntb_dd, ndd_om = kept
            gcd = g_cd[act]
            v = torch.bmm(gcd, f[:, :, 6:10].transpose(1, 2))  # dL/dC . c_j + dL/dD z_j
            incl = prefix[act][:, :, None] + torch.cumsum(w * v, -1)
            prefix[act] = incl[:, :, -1]
            G = (S[act][:, :, None] - incl) * ndd_om - v * ntb_dd  # dL/dlog(raw)
            Q = torch.matmul(plan.monomials.T, G)  # [A, 6, L]: sums of G x^i y^j over the tile
            mx, my = m[..., 0], m[..., 1]
            sx, sy = mx * Q[:, 0] - Q[:, 1], my * Q[:, 0] - Q[:, 2]  # sum G dx, sum G dy
            sxx = mx * mx * Q[:, 0] - 2 * mx * Q[:, 1] + Q[:, 3]
            sxy = mx * my * Q[:, 0] - mx * Q[:, 2] - my * Q[:, 1] + Q[:, 4]
            syy = my * my * Q[:, 0] - 2 * my * Q[:, 2] + Q[:, 5]
            a, b, c = f[..., 2], f[..., 3], f[..., 4]
            g = torch.empty(*gid.shape, 10, dtype=feat.dtype, device=feat.device)
            g[..., 0] = -(a * sx + b * sy)  # d sigma / d mean2d = conic @ d
            g[..., 1] = -(c * sy + b * sx)
            g[..., 2], g[..., 3], g[..., 4] = -0.5 * sxx, -sxy, -0.5 * syy
            g[..., 5] = Q[:, 0] / f[..., 5].clamp_min(1e-30)
            g[..., 6:10] = torch.bmm(w.transpose(1, 2), gcd)
            gfeat.index_add_(0, gid.reshape(-1), g.reshape(-1, 10))
        gfeat = gfeat[:-1]
        return gfeat[:, 0:2], gfeat[:, 2:5], gfeat[:, 5], gfeat[:, 7:10], gfeat[:, 6], None
