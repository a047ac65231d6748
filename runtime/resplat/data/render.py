"""The synthetic-data renderer: ray-cast analytic scenes to sRGB photos and z-depth maps.

Per pixel, ``s`` x ``s`` stratified sub-pixel rays (a regular grid, box-filtered: supersampling
anti-aliasing) are cast through the pinhole cameras of :class:`resplat.cameras.Cameras` (OpenCV
axes, pixel centres at half-integers), shaded in linear RGB and averaged, then encoded with the
sRGB OETF (IEC 61966-2-1). Shading: texture (mip level from the pixel footprint, see
:mod:`.textures`) x tint x (ambient + sum over lights of Lambert cos x visibility), plus a
Blinn-Phong highlight (Blinn 1977); visibility is a shadow ray per light (Whitted 1980), towards
a direction jittered within the light's angular radius for soft lights (one random direction per
ray from a fixed seed, averaged over the supersamples: soft shadows, reproducible). Rays that leave an open scene take the
world colour (a vertical gradient from ``sky_bottom`` at the horizon to ``sky_top`` straight up).
Depth is the z-depth of the single ray through each pixel centre (no averaging across edges);
0 where the world background shows (the nerfstudio / Blender-Z convention of our depth maps).
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
    in metres along each camera's +z axis (> 0; 0 where an open scene's world shows)."""

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


#: albedo of a fully smooth (plain-painted) surface before its tint
PLAIN_ALBEDO = 0.6


def soft_directions(ldir: Tensor, radius: float, ray_index: Tensor, light: int) -> Tensor:
    """[N, 3] unit directions uniform over the disc of angular radius ``radius`` (radians)
    around ``ldir`` [3], one per shadow ray, from a generator seeded by the light's number (so a
    render is reproducible) and indexed by each ray's number ``ray_index`` [N] (int64)."""
    g = torch.Generator().manual_seed(7919 + light)
    n_max = int(ray_index.max()) + 1 if ray_index.numel() else 0
    uv = torch.rand(n_max, 2, generator=g, dtype=ldir.dtype)[ray_index]
    r, phi = uv[:, 0].sqrt() * math.tan(radius), uv[:, 1] * 2 * math.pi
    helper = ldir.new_tensor([1.0, 0.0, 0.0]) if abs(float(ldir[0])) < 0.9 else ldir.new_tensor([0.0, 1.0, 0.0])
    t1 = torch.linalg.cross(ldir, helper)
    t1 = t1 / t1.norm()
    t2 = torch.linalg.cross(ldir, t1)
    d = ldir + (r * phi.cos())[:, None] * t1 + (r * phi.sin())[:, None] * t2
    return d / d.norm(dim=-1, keepdim=True)


def sky_colour(st: SceneTensors, d: Tensor) -> Tensor:
    """Linear RGB [N, 3] of the world background seen along directions ``d`` [N, 3]: a linear
    blend from ``sky_bottom`` (horizon and below) to ``sky_top`` (straight up)."""
    e = (d[:, 2] / d.norm(dim=-1)).clamp(0, 1)[:, None]
    top, bottom = st.sky_top.to(d.dtype), st.sky_bottom.to(d.dtype)
    return bottom + (top - bottom) * e


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
    albedo = bank.sample(st.texture[surf], uv[:, 0], uv[:, 1], level)
    if st.smooth is not None:  # plain-painted surfaces: the photo blended towards a flat 0.6
        sm = st.smooth[surf][:, None]
        albedo = albedo * (1 - sm) + PLAIN_ALBEDO * sm
    albedo = albedo * st.tint[surf]
    light = st.ambient.expand_as(albedo).clone()
    spec = torch.zeros_like(albedo)
    p_off = p + n * 1e-3 * (1 + t[:, None] * d.norm(dim=-1, keepdim=True) * 1e-3)
    for li, (ldir, lcol) in enumerate(zip(st.light_dirs, st.light_colors)):
        lam = _dot(n, ldir).clamp_min(0)
        vis = lam > 0
        if st.shadows:
            idx = vis.nonzero().squeeze(1)
            towards = ldir[None] if not st.light_radius else soft_directions(ldir, st.light_radius, idx, li)
            vis[idx] = ~occluded(st, p_off[idx], towards)
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
        if scene.room == "box":
            inside = max(abs(c[0]), abs(c[1])) < scene.half and 0 < c[2] < scene.height
        else:  # dome, or the ground disc of an open scene
            inside = math.hypot(*c) < scene.half and c[2] > 0
        if not inside:
            raise CameraError(f"camera {cameras.name(i)}: centre {c} is outside the scene's room")
    images, depths = [], []
    for i in range(len(cameras)):
        focal = float(cameras.K[i, 0, 0] + cameras.K[i, 1, 1]) / 2
        o, d = camera_rays(cameras, i, s)
        t, surf = intersect(st, o, d)
        hit = torch.isfinite(t)
        if bool(hit.all()):
            rgb = shade(st, o, d, t, surf, focal * s, texture_size)
        else:  # open scene: the world colour where nothing is hit
            rgb = sky_colour(st, d)
            rgb[hit] = shade(st, o, d[hit], t[hit], surf[hit], focal * s, texture_size)
        rgb = rgb.reshape(h, s, w, s, 3).mean(dim=(1, 3))
        images.append(linear_to_srgb(rgb).permute(2, 0, 1))
        if s == 1:
            depth = t.reshape(h, w)
        else:
            o1, d1 = camera_rays(cameras, i, 1)
            depth = intersect(st, o1, d1)[0].reshape(h, w)
        depth = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))
        depths.append(depth[None])
    return RenderedViews(torch.stack(images).contiguous(), torch.stack(depths).contiguous())
