"""ReSplat's initial Gaussian prediction: point cloud, regressor, point transformer, head.

Source: release ``encoder_resplat.py`` (``forward``) and ``geometry/projection.py``
(``sample_image_grid``, ``get_world_rays``); ReSplat paper Sec. 3.1-3.2;
docs/model-architecture.md sections 3.9-3.11. Frames: everything is in the *model frame* (poses
relative to the middle view, :mod:`resplat.model.poses`), OpenCV camera axes, metres; intrinsics
normalised (row 0 / W, row 1 / H).

1. ``gaussian_regressor(concat(image, depth, match_prob, features))`` (:mod:`.latent_features`),
   then ``proj(concat(regressor_out, image, features, match_prob))`` per latent point;
2. one point per latent pixel on its centre ray at the latent depth (:func:`pixel_rays`),
   view-major (v, y, x); ``out = proj + pt(proj)`` (the point transformer's blocks are residual
   themselves, so the input is counted twice, as in the release); ``condition_features`` is
   ``out`` as [B*V, C, h, w];
3. ``gaussian_head(out)`` -> 58 m raw values per point (m Gaussians per latent point laid out as
   its sqrt(m) x sqrt(m) sub-pixels, channels ordered (c, x, y) per parameter), activated by
   :func:`activate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..gaussians import SH_C0, Gaussians
from .amp import autocast
from .config import PARAMETER_BLOCKS, ModelConfig
from .depth.output import DepthOutput
from .latent_features import LatentFeatureError, latent_inputs
from .update_state import UpdateState

#: Shift of the scale activation: scale = softplus(raw - 4) (release ``exp_scale_bias``).
SCALE_BIAS = 4.0
#: Lower clamp of the scales, metres (release ``clamp_min_scale``).
SCALE_MIN = 1e-6
#: ``scale_mode="footprint"``: sizes are ``softplus(raw - 4) * FOOTPRINT_GAIN * footprint``. The
#: gain makes weights learnt in the "absolute" mode at 128 px in the look-at frame (a grid cell
#: covers about 0.125 model units at the frame distance there) start at the sizes they learnt.
FOOTPRINT_GAIN = 8.0
#: With exact depth, Gaussians of blocks where nothing was hit stay at least this many times the
#: scene's farthest known depth away (:func:`behind_known`). Held-out content PSNR, iteration 0,
#: version 2: +0.02 / 0 / 0 dB on the three third-party assets, +0.04 / +0.16 / 0 on the synthetic
#: scenes; a 2x2-pixel grid model: +6.5 dB on the synthetic open scene whose far ground it hid
#: (factors 1.2 and 2 within 0.1 dB of each other).
BACKGROUND_DEPTH_FACTOR = 1.2


def parameter_blocks(sh_channels: int) -> list[int]:
    """Values per parameter block of one Gaussian: :data:`PARAMETER_BLOCKS` then ``sh_channels``."""
    return [*PARAMETER_BLOCKS, sh_channels]


def cell_footprint(depth: Tensor, K_norm: Tensor) -> Tensor:
    """World size of one cell of a gh x gw Gaussian grid at z-depth ``depth``: the mean of
    ``z / (fx_n gw)`` and ``z / (fy_n gh)`` (fx_n, fy_n the normalised focal lengths, so
    ``1 / (fx_n gw)`` is the cell's width over the focal length, both in pixels).

    Args:
        depth: [B, V, gh, gw] z-depth (model units); K_norm: [B, V, 3, 3] normalised intrinsics.

    Returns:
        [B, V, gh * gw] in the units of ``depth``.
    """
    b, v, gh, gw = depth.shape
    per_z = 0.5 * (1 / (K_norm[..., 0, 0] * gw) + 1 / (K_norm[..., 1, 1] * gh))  # [B, V]
    return depth.reshape(b, v, -1) * per_z.to(depth.dtype)[..., None]


def pixel_centres(h: int, w: int, device=None, dtype=torch.float32) -> Tensor:
    """[h, w, 2] normalised (x, y) pixel centres ((j + 0.5) / w, (i + 0.5) / h) (release
    ``sample_image_grid``)."""
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)


def pixel_rays(xy: Tensor, c2w: Tensor, K_norm: Tensor) -> tuple[Tensor, Tensor]:
    """World rays through normalised image points, scaled to unit camera z (``get_world_rays``).

    Args:
        xy: [B, V, P, 2] normalised image coordinates (0..1 across the image).
        c2w: [B, V, 4, 4] camera-to-world (OpenCV axes).
        K_norm: [B, V, 3, 3] normalised intrinsics.

    Returns:
        (origins [B, V, P, 3], directions [B, V, P, 3]) with ``origin + z * direction`` the point
        at z-depth z (metres) in front of the camera.
    """
    hom = torch.cat([xy, torch.ones_like(xy[..., :1])], -1)
    d = torch.einsum("bvij,bvpj->bvpi", torch.linalg.inv(K_norm), hom)
    d = d / d[..., 2:]
    d = torch.einsum("bvij,bvpj->bvpi", c2w[..., :3, :3], d)
    return c2w[..., None, :3, 3].expand_as(d), d


@dataclass
class Activated:
    """Activated Gaussian parameters of :func:`activate`, release layout, [B, V, P, ...]."""

    means: Tensor  # [B, V, P, 3] model frame, metres
    scales: Tensor  # [B, V, P, 3] linear, metres
    quats_xyzw: Tensor  # [B, V, P, 4] unnormalised, camera frame of the view
    opacities: Tensor  # [B, V, P] in (0, 1)
    sh: Tensor  # [B, V, P, 3, K] channel-major, DC includes the image colour


def split_gaussian_grid(raw: Tensor, h: int, w: int, m: int, sh_channels: int) -> Tensor:
    """Rearrange the head output [B, V, h*w, 58 m] into one 58-vector per Gaussian
    [B, V, (h r)*(w r), 58] with r = sqrt(m): each parameter block of c*m channels is read as
    (c, x, y) and Gaussian (x, y) of latent pixel (i, j) goes to grid pixel (i r + x, j r + y)
    (release ``rearrange(.., "b v (h w) (c x y) -> b v (h x w y) c")``)."""
    if m == 1:
        return raw
    r = int(round(m ** 0.5))
    b, v = raw.shape[:2]
    parts = raw.split([c * m for c in parameter_blocks(sh_channels)], -1)
    out = []
    for p in parts:
        c = p.shape[-1] // m
        p = p.reshape(b, v, h, w, c, r, r).permute(0, 1, 2, 5, 3, 6, 4)
        out.append(p.reshape(b, v, h * r * w * r, c))
    return torch.cat(out, -1)


def activate(raw: Tensor, depth: Tensor, images: Tensor, c2w: Tensor, K_norm: Tensor, config: ModelConfig) -> Activated:
    """Turn raw per-Gaussian values into Gaussians (docs section 3.11).

    Args:
        raw: [B, V, gh*gw, 58] per Gaussian (after :func:`split_gaussian_grid`), split
            [rotation 4 | scale 3 | opacity 1 | offset 2 | SH 3K].
        depth: [B, V, gh, gw] z-depth of each Gaussian's pixel, metres.
        images: [B, V, 3, H, W] in [0, 1]; area-downsampled to gh x gw for the DC colour.
        c2w, K_norm: [B, V, 4, 4], [B, V, 3, 3] model-frame cameras.
        config: ``scale_max``, ``scale_mode``.

    Returns:
        :class:`Activated`: scales clamp(softplus(raw - 4), 1e-6, scale_max) ("absolute", the
        release), or clamp(softplus(raw - 4) * FOOTPRINT_GAIN * :func:`cell_footprint`, ...)
        ("footprint": the size follows the image resolution and depth); opacity
        sigmoid(raw); quaternion raw (xyzw, camera frame; normalised as q / (|q| + 1e-8) where
        used); means on the ray through the pixel centre moved by (sigmoid(offset) - 0.5) grid
        pixels, at the given z-depth; SH channel-major with DC += (rgb - 0.5) / C0.
    """
    b, v, gh, gw = depth.shape
    rot, scale, opacity, offset, sh = raw.split(parameter_blocks(raw.shape[-1] - sum(PARAMETER_BLOCKS)), -1)
    scales = F.softplus(scale - SCALE_BIAS)
    mode = getattr(config, "scale_mode", "absolute")
    if mode == "footprint":
        scales = scales * (FOOTPRINT_GAIN * cell_footprint(depth.to(raw.dtype), K_norm.to(raw.dtype)))[..., None]
    elif mode != "absolute":
        raise ValueError(f"unknown scale_mode {mode!r} (absolute or footprint)")
    scales = scales.clamp(min=SCALE_MIN, max=config.scale_max)
    pixel = 1 / torch.tensor((gw, gh), dtype=torch.float32, device=raw.device)  # as the release
    xy = pixel_centres(gh, gw, raw.device, raw.dtype).reshape(1, 1, -1, 2)
    xy = xy + (offset.sigmoid() - 0.5) * pixel.to(raw.dtype)
    origins, dirs = pixel_rays(xy, c2w.to(raw.dtype), K_norm.to(raw.dtype))
    means = origins + dirs * depth.reshape(b, v, -1, 1).to(raw.dtype)
    H, W = images.shape[-2:]
    rgb = images.flatten(0, 1).to(raw.dtype)
    if (H, W) != (gh, gw):
        rgb = F.interpolate(rgb, size=(gh, gw), mode="area")
    rgb = rgb.reshape(b, v, 3, gh * gw).transpose(-1, -2)  # [B, V, P, 3]
    sh = sh.reshape(b, v, gh * gw, 3, -1).clone()
    sh[..., 0] = sh[..., 0] + (rgb - 0.5) / SH_C0
    return Activated(means, scales, rot, opacity.sigmoid()[..., 0], sh)


@dataclass
class InitialPrediction:
    """Result of the initial model for a batch of B scenes of V views (model frame).

    N = V * gh * gw Gaussians per scene, laid out view-major on per-view Gaussian grids of
    gh x gw (H/4 x W/4 for DL3DV, H x W for RE10K).

    Attributes:
        gaussians: B :class:`Gaussians` (world = model frame; wxyz quaternions composed with each
            Gaussian's own view rotation; log-scales; opacity logits logit(o, eps=1e-6); SH [N, K, 3]).
        means, scales: [B, N, 3] float32 (metres; linear scales).
        quats_xyzw: [B, N, 4] unnormalised camera-frame quaternions (x, y, z, w), the rotation
            input of each Gaussian.
        opacities: [B, N] in (0, 1).
        sh: [B, N, 3, K] channel-major SH (release ``harmonics``).
        raw: [B, N, 58] raw head values per Gaussian, release layout
            [rotation 4 | scale 3 | opacity 1 | offset 2 | SH 48].
        view_index: int64 [N] source view of each Gaussian; pixel: int64 [N, 2] its (row, col)
            on the Gaussian grid.
        view_rotations: [B, V, 3, 3] camera-to-world rotations of the views (model frame).
        condition_features: [B*V, C, h, w] point-transformer output on the latent grid (the
            updater's state input).
        depth: [B, V, Hd, Wd] the depth network's z-depth (metres).
        grid: (V, gh, gw).
        frame: the :class:`~.frame.ModelFrame` (model frame -> the cameras' world), set by
            ``ReSplatEncoder.forward_initial``; None when the caller gave model-frame poses.
        depth_known: [B, N] bool, True for Gaussians placed at a given exact depth
            (``depth_prior``); None when no depth was given.
    """

    gaussians: list[Gaussians]
    means: Tensor
    scales: Tensor
    quats_xyzw: Tensor
    opacities: Tensor
    sh: Tensor
    raw: Tensor
    view_index: Tensor
    pixel: Tensor
    view_rotations: Tensor
    condition_features: Tensor
    depth: Tensor
    grid: tuple[int, int, int]
    frame: object | None = None
    depth_known: Tensor | None = None

    def world_gaussians(self, b: int = 0) -> Gaussians:
        """Scene ``b``'s Gaussians in the cameras' original world (:meth:`~.frame.ModelFrame.gaussians_to_world`
        with :attr:`frame`; the model frame itself when no frame is set)."""
        g = self.gaussians[b]
        return g if self.frame is None else self.frame.gaussians_to_world(g, b)

    def update_state(self, b: int = 0) -> UpdateState:
        """The updater's :class:`UpdateState` of scene ``b`` (opacity logits with eps 1e-6)."""
        return UpdateState.from_release(self.means[b], self.scales[b], self.quats_xyzw[b], self.opacities[b],
                                        self.sh[b], self.view_rotations[b], self.grid)


def _amp(enabled: bool, x: Tensor):
    return autocast(x.device, enabled)


def block_depth(depth: Tensor, cell: int) -> Tensor:
    """Exact depth per ``cell`` x ``cell`` block: the median of the block's valid pixels.

    Args:
        depth: [B, V, H, W] z-depth (model units); 0, inf or nan mark unknown pixels.
        cell: block size in pixels (H and W multiples of it).

    Returns:
        [B, V, H / cell, W / cell] in the dtype of ``depth``; nan for blocks with no valid
        pixel. A block on an object's silhouette takes the median of the pixels that see
        something, so its Gaussian lands on the nearer surface or the farther one, never
        between them (a mean would put it in the air).
    """
    b, v, H, W = depth.shape
    d = torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.full_like(depth, float("nan")))
    d = d.reshape(b, v, H // cell, cell, W // cell, cell).permute(0, 1, 2, 4, 3, 5).reshape(b, v, H // cell, W // cell, -1)
    if cell == 1:
        return d[..., 0]
    return d.nanmedian(-1).values


def behind_known(depth: Tensor, known: Tensor, factor: float = BACKGROUND_DEPTH_FACTOR) -> Tensor:
    """The network's depth of blocks where exact depth saw nothing, kept behind everything it saw.

    A depth map's unknown pixels are where nothing was hit (Blender's Z pass: the world
    background), so what they show lies beyond the farthest surface of the scene; the network's
    own depth for them falls inside the plane sweep's range and can put sky splats in front of
    the far ground when seen from another view. Each such block gets ``max(network depth,
    factor x the scene's farthest known block depth)`` (its size follows, as sizes are relative
    to the cell's footprint at its depth).

    Args:
        depth: [B, V, gh, gw] the network's z-depth (model units).
        known: [B, V, gh, gw] exact block depth (:func:`block_depth`), nan where unknown.
        factor: distance behind the farthest known block (:data:`BACKGROUND_DEPTH_FACTOR`).

    Returns:
        [B, V, gh, gw]: ``depth`` raised where needed (callers use it only where ``known`` is nan);
        unchanged for a scene with no known block.
    """
    top = torch.nan_to_num(known, nan=0.0).flatten(1).amax(1).reshape(-1, 1, 1, 1)
    return torch.maximum(depth, top.to(depth.dtype) * factor)


def latent_depth_prior(depth: Tensor, config: ModelConfig) -> Tensor:
    """[B, V, H, W] exact depth (model units; 0, inf or nan unknown) -> the full-resolution map
    :func:`predict_initial` takes as ``depth_prior`` (invalid values as nan); sizes are checked
    there."""
    return torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.full_like(depth, float("nan")))


def predict_initial(encoder, images: Tensor, c2w: Tensor, K_norm: Tensor, depth: DepthOutput,
                    amp: bool = True, depth_prior: Tensor | None = None) -> InitialPrediction:
    """Run the Gaussian part of the initial model (module docstring) on a depth result.

    Args:
        encoder: object with ``gaussian_regressor, proj, pt, gaussian_head`` and ``config``.
        images: [B, V, 3, H, W] in [0, 1].
        c2w: [B, V, 4, 4] model-frame camera-to-world; K_norm: [B, V, 3, 3] normalised intrinsics.
        depth: :class:`DepthOutput` of the depth network for these inputs.
        amp: bf16 autocast of the networks on CUDA (the release's setting); never on CPU.
        depth_prior: optional [B, V, H, W] exact z-depth in model units (nan where unknown):
            latent points and Gaussians whose block (:func:`block_depth`) has known depth are
            placed at it, and the regressor sees it as its depth input; the others keep the
            depth network's, the Gaussians among them no nearer than :func:`behind_known`
            (nothing was hit there, so they show the background).

    Returns:
        :class:`InitialPrediction` (``depth_known`` set when ``depth_prior`` is given).

    Raises:
        LatentFeatureError, PointTransformerInputError, KnnInputError: inputs that do not fit.
    """
    cfg: ModelConfig = encoder.config
    b, v, _, H, W = images.shape
    lat = latent_inputs(depth, images, cfg)
    h, w = lat.depth.shape[-2:]
    if depth_prior is not None:
        if tuple(depth_prior.shape) != (b, v, H, W):
            raise LatentFeatureError(f"depth prior must be {[b, v, H, W]}, got {list(depth_prior.shape)}")
        known = block_depth(depth_prior.to(lat.depth.dtype), H // h)
        lat.depth = torch.where(torch.isnan(known), lat.depth, known)
    with _amp(amp, images):
        reg = encoder.gaussian_regressor(lat.regressor_input())
    x = lat.proj_input(reg)  # [BV, Cin, h, w]
    # latent point cloud (release: pixel centres of the latent grid at the latent depth)
    xy = pixel_centres(h, w, images.device, lat.depth.dtype).reshape(1, 1, -1, 2).expand(b, v, -1, 2)
    origins, dirs = pixel_rays(xy, c2w.to(lat.depth.dtype), K_norm.to(lat.depth.dtype))
    points = (origins + dirs * lat.depth.reshape(b, v, -1, 1)).reshape(b, v * h * w, 3)
    with _amp(amp, images):
        feat = encoder.proj(x.reshape(b, v, -1, h * w).permute(0, 1, 3, 2).reshape(b, v * h * w, -1))
        out = feat + encoder.pt(feat, points, grid=(v, h, w))
        condition = out.reshape(b * v, h, w, -1).permute(0, 3, 1, 2)
        head = encoder.gaussian_head(out)
    head = head.float() if head.dtype in (torch.float16, torch.bfloat16) else head
    m = cfg.gaussians_per_point
    r = int(round(m ** 0.5))
    gh, gw = h * r, w * r
    raw = split_gaussian_grid(head.reshape(b, v, h * w, -1), h, w, m, cfg.sh_channels)
    d = lat.depth if m == 1 else F.interpolate(depth.depth, size=(gh, gw), mode="bilinear", align_corners=True)
    depth_known = None
    if depth_prior is not None:
        known = block_depth(depth_prior.to(d.dtype), H // gh)
        d = torch.where(torch.isnan(known), behind_known(d, known), known)
        depth_known = (~torch.isnan(known)).reshape(b, -1)
    act = activate(raw, d, images, c2w, K_norm, cfg)
    n = v * gh * gw
    idx = torch.arange(n, device=images.device)
    pixel = torch.stack([(idx % (gh * gw)) // gw, idx % gw], -1)
    pred = InitialPrediction(
        gaussians=[], means=act.means.reshape(b, n, 3), scales=act.scales.reshape(b, n, 3),
        quats_xyzw=act.quats_xyzw.reshape(b, n, 4), opacities=act.opacities.reshape(b, n),
        sh=act.sh.reshape(b, n, 3, -1), raw=raw.reshape(b, n, -1), view_index=idx // (gh * gw), pixel=pixel,
        view_rotations=c2w[..., :3, :3].to(act.means.dtype), condition_features=condition, depth=depth.depth,
        grid=(v, gh, gw), depth_known=depth_known)
    pred.gaussians = [pred.update_state(i).to_gaussians() for i in range(b)]
    return pred


__all__ = ["PARAMETER_BLOCKS", "Activated", "InitialPrediction", "activate", "behind_known", "cell_footprint", "block_depth", "latent_depth_prior", "parameter_blocks", "pixel_centres", "pixel_rays", "predict_initial",
           "split_gaussian_grid"]
