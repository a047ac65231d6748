"""The synthetic-data renderer: ray-cast analytic scenes to sRGB photos and z-depth maps.

Per pixel, ``s`` x ``s`` stratified sub-pixel rays (a regular grid, box-filtered: supersampling
anti-aliasing) are cast through the pinhole cameras of :class:`resplat.cameras.Cameras` (OpenCV
axes, pixel centres at half-integers), shaded in linear RGB and averaged, then encoded with the
sRGB OETF (IEC 61966-2-1). Shading: texture (mip level from the pixel footprint, see
:mod:`.textures`) x tint x (ambient + sum over lights of Lambert cos x visibility), plus a
Blinn-Phong highlight (Blinn 1977); visibility is a hard shadow ray per light (Whitted 1980).
Depth is the z-depth of the single ray through each pixel centre (no averaging across edges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import Cameras
from ..errors import CameraError
from .raycast import SceneTensors, _dot, intersect, occluded, surface_attributes
from .scene import Scene
from .textures import linear_to_srgb, texture_bank


@dataclass
class RenderedViews:
    """images: [V, 3, H, W] float32 sRGB-encoded in [0, 1]; depth: [V, 1, H, W] float32 z-depth
    in metres along each camera's +z axis (always > 0: the room encloses every camera)."""

    images: Tensor
    depth: Tensor


def camera_rays(cameras: Cameras, view: int, samples: int) -> tuple[Tensor, Tensor]:
    """Origin [1, 3] and directions [H*s*W*s, 3] (world, float32, camera z component 1, so the
    ray parameter is z-depth) of view ``view`` on an s x s sub-pixel grid, rows of sub-pixels in
    raster order (sub-pixel (a, b) of pixel (x, y) sits at (x + (b + 0.5)/s, y + (a + 0.5)/s))."""
    w, h, s = cameras.width, cameras.height, samples
    K = cameras.K[view].double()
    xs = (torch.arange(w * s, dtype=torch.float64) + 0.5) / s
    ys = (torch.arange(h * s, dtype=torch.float64) + 0.5) / s
    x = (xs - K[0, 2]) / K[0, 0]
    y = (ys - K[1, 2]) / K[1, 1]
    dc = torch.stack([x[None, :].expand(h * s, -1), y[:, None].expand(-1, w * s), torch.ones(h * s, w * s, dtype=torch.float64)], -1)
    c2w = cameras.c2w[view].double()
    d = dc.reshape(-1, 3)
    d = d[:, 0:1] * c2w[:3, 0] + d[:, 1:2] * c2w[:3, 1] + d[:, 2:3] * c2w[:3, 2]
    return c2w[None, :3, 3].float(), d.float()


def shade(st: SceneTensors, o: Tensor, d: Tensor, t: Tensor, surf: Tensor, focal: float, tex_size: int) -> Tensor:
    """Linear RGB [N, 3] of the hits (``t``, ``surf`` from :func:`~.raycast.intersect`) of rays
    ``o + t d``; ``focal`` (pixels per unit of d's camera-plane offset, divided by the
    supersampling factor) sets the mip level from the footprint t / focal metres per sample."""
    bank = texture_bank(tex_size)
    p = o + t[:, None] * d
    n, uv = surface_attributes(st, p, surf)
    v = d / d.norm(dim=-1, keepdim=True)
    n = torch.where(_dot(n, v)[:, None] > 0, -n, n)
    cos_v = _dot(n, v).abs().clamp_min(0.2)
    footprint = t * d.norm(dim=-1) / focal / cos_v
    level = torch.log2((footprint * bank.sizes[0] / st.tile[surf]).clamp_min(1e-8))
    albedo = bank.sample(st.texture[surf], uv[:, 0], uv[:, 1], level) * st.tint[surf]
    light = st.ambient.expand_as(albedo).clone()
    spec = torch.zeros_like(albedo)
    p_off = p + n * 1e-3 * (1 + t[:, None] * d.norm(dim=-1, keepdim=True) * 1e-3)
    for ldir, lcol in zip(st.light_dirs, st.light_colors):
        lam = _dot(n, ldir).clamp_min(0)
        vis = lam > 0
        if st.shadows:
            idx = vis.nonzero().squeeze(1)
            vis[idx] = ~occluded(st, p_off[idx], ldir[None])
        lam = lam * vis
        light = light + lam[:, None] * lcol
        half = ldir - v
        half = half / half.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        hs = _dot(n, half).clamp_min(0) ** st.shininess[surf] * st.specular[surf] * vis
        spec = spec + hs[:, None] * lcol
    return albedo * light + spec


def render_scene(scene: Scene, cameras: Cameras, supersample: int = 2, texture_size: int = 256) -> RenderedViews:
    """Render ``scene`` from every camera.

    Args:
        scene: the procedural scene (world metres, z up).
        cameras: V pinhole cameras (OpenCV w2c, K in pixels); each must be inside the room.
        supersample: s, casting s x s rays per pixel (1 = none).
        texture_size: base texture resolution (power of two).

    Returns:
        :class:`RenderedViews` (float32, on the CPU).

    Raises:
        CameraError: ``supersample`` < 1 or a camera centre outside the room.
    """
    if supersample < 1:
        raise CameraError(f"supersample must be >= 1, got {supersample}")
    st = SceneTensors.of(scene)
    w, h, s = cameras.width, cameras.height, supersample
    for i, c in enumerate(cameras.centers.tolist()):
        inside = (max(abs(c[0]), abs(c[1])) < scene.half and 0 < c[2] < scene.height) if scene.room == "box" else (math.hypot(*c) < scene.half and c[2] > 0)
        if not inside:
            raise CameraError(f"camera {cameras.name(i)}: centre {c} is outside the scene's room")
    images, depths = [], []
    for i in range(len(cameras)):
        focal = float(cameras.K[i, 0, 0] + cameras.K[i, 1, 1]) / 2
        o, d = camera_rays(cameras, i, s)
        t, surf = intersect(st, o, d)
        rgb = shade(st, o, d, t, surf, focal * s, texture_size)
        rgb = rgb.reshape(h, s, w, s, 3).mean(dim=(1, 3))
        images.append(linear_to_srgb(rgb).permute(2, 0, 1))
        if s == 1:
            depth = t.reshape(h, w)
        else:
            o1, d1 = camera_rays(cameras, i, 1)
            depth = intersect(st, o1, d1)[0].reshape(h, w)
        depths.append(depth[None])
    return RenderedViews(torch.stack(images).contiguous(), torch.stack(depths).contiguous())
