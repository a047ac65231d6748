"""Vectorised analytic ray casting of :class:`~resplat.data.scene.Scene` primitives (torch).

Rays are ``o + t d`` with origins ``o`` [N, 3] (or [1, 3], broadcast) and directions ``d``
[N, 3] that need not be unit length: ``t`` is in units of ``d`` (with camera rays whose
camera-space z component is 1, ``t`` is the z-depth in metres). Objects are intersected in their
unit-primitive frame, ``x_unit = R^T (x - c) / s``, which is affine, so ``t`` is unchanged.
Closed-form roots: the ray-quadric quadratic (sphere, cylinder side), slab intervals (box, Kay &
Kajiya 1986), planes (cylinder caps, floor). Misses are ``inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .scene import Scene

INF = float("inf")


@dataclass
class SceneTensors(Scene):
    """A :class:`Scene` with its floating tensors cast for casting (float32 by default) and
    ``radii`` [O] (float64), each object's bounding-sphere radius (metres), computed once per render."""

    radii: Tensor = None

    @classmethod
    def of(cls, scene: Scene, dtype=torch.float32) -> "SceneTensors":
        vals = {k: (v.to(dtype) if isinstance(v, Tensor) and v.is_floating_point() else v) for k, v in scene.__dict__.items()}
        return cls(**vals, radii=scene.bounding_radii())


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Dot products over the last axis (size 3), written out: faster than a sum over it."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _to_local(x: Tensor, R: Tensor, s: Tensor, c: Tensor | None) -> Tensor:
    """R^T (x - c) / s for rows x [N, 3] (elementwise products, no BLAS: bitwise reproducible)."""
    if c is not None:
        x = x - c
    return (x[:, 0:1] * R[0] + x[:, 1:2] * R[1] + x[:, 2:3] * R[2]) / s


def _pick(cands: list[Tensor], eps: float) -> Tensor:
    """Smallest candidate > eps (inf where none)."""
    t = torch.full_like(cands[0], INF)
    for c in cands:
        t = torch.where((c > eps) & (c < t), c, t)
    return t


def _quadratic(a: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Both roots of a t^2 + 2 b t + c = 0 (nan-free: inf where there is no real root)."""
    disc = b * b - a * c
    sq = disc.clamp_min(0).sqrt()
    a = torch.where(a.abs() < 1e-20, torch.full_like(a, 1e-20), a)  # a < 0 for cones: keep its sign
    t0, t1 = (-b - sq) / a, (-b + sq) / a
    miss = disc < 0
    return t0.masked_fill(miss, INF), t1.masked_fill(miss, INF)


def t_ellipsoid(o: Tensor, d: Tensor, eps: float) -> Tensor:
    """Nearest t > eps of rays with the unit sphere (local frame)."""
    t0, t1 = _quadratic(_dot(d, d), _dot(o, d), _dot(o, o) - 1)
    return _pick([t0, t1], eps)


def t_box(o: Tensor, d: Tensor, eps: float) -> Tensor:
    """Nearest t > eps of rays with the cube [-1, 1]^3 (slab method)."""
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    ta, tb = (-1 - o) * inv, (1 - o) * inv
    tmin = torch.minimum(ta, tb).amax(-1)
    tmax = torch.maximum(ta, tb).amin(-1)
    t = _pick([tmin, tmax], eps)
    return t.masked_fill(tmax < tmin, INF)


def t_cylinder(o: Tensor, d: Tensor, eps: float) -> Tensor:
    """Nearest t > eps of rays with the capped cylinder x^2 + y^2 <= 1, |z| <= 1."""
    o, d = o.expand_as(d), d
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    t0, t1 = _quadratic(dx * dx + dy * dy, ox * dx + oy * dy, ox * ox + oy * oy - 1)
    cands = [t.masked_fill((oz + t * dz).abs() > 1, INF) for t in (t0, t1)]
    dz_safe = torch.where(dz.abs() < 1e-12, torch.full_like(dz, 1e-12), dz)
    for zc in (-1.0, 1.0):
        t = (zc - oz) / dz_safe
        x, y = ox + t * dx, oy + t * dy
        cands.append(t.masked_fill(x * x + y * y > 1, INF))
    return _pick(cands, eps)


def t_cone(o: Tensor, d: Tensor, eps: float) -> Tensor:
    """Nearest t > eps of rays with the capped cone x^2 + y^2 <= ((1 - z) / 2)^2, |z| <= 1
    (apex at z = 1, base of radius 1 at z = -1)."""
    o = o.expand_as(d)
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    w = 1 - oz
    t0, t1 = _quadratic(dx * dx + dy * dy - dz * dz / 4, ox * dx + oy * dy + w * dz / 4, ox * ox + oy * oy - w * w / 4)
    cands = [t.masked_fill((oz + t * dz).abs() > 1, INF) for t in (t0, t1)]
    t = (-1 - oz) / torch.where(dz.abs() < 1e-12, torch.full_like(dz, 1e-12), dz)
    x, y = ox + t * dx, oy + t * dy
    cands.append(t.masked_fill(x * x + y * y > 1, INF))
    return _pick(cands, eps)


_T_FUNCS = {"ellipsoid": t_ellipsoid, "box": t_box, "cylinder": t_cylinder, "cone": t_cone}


def room_hit(st: SceneTensors, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """Exit distance t [N] of rays from inside the room, and whether it is the floor [N] bool.
    In an "open" scene only the ground disc (radius ``half``) is hit; other rays get t = inf
    (the world background)."""
    o = o.expand_as(d)
    if st.room == "open":
        t_floor = torch.where(d[:, 2] < 0, -o[:, 2] / d[:, 2].clamp_max(-1e-20), torch.full_like(d[:, 2], INF))
        x, y = o[:, 0] + t_floor * d[:, 0], o[:, 1] + t_floor * d[:, 1]
        floor = torch.isfinite(t_floor) & (x * x + y * y <= st.half ** 2)
        return torch.where(floor, t_floor, torch.full_like(t_floor, INF)), floor
    if st.room == "box":
        lo = d.new_tensor([-st.half, -st.half, 0.0])
        hi = d.new_tensor([st.half, st.half, st.height])
        ts = torch.where(d > 0, (hi - o) / d, torch.where(d < 0, (lo - o) / d, torch.full_like(d, INF)))
        t, axis = ts.min(-1)
        return t, (axis == 2) & (d[:, 2] < 0)
    _, t_dome = _quadratic(_dot(d, d), _dot(o, d), _dot(o, o) - st.half ** 2)
    t_floor = torch.where(d[:, 2] < 0, -o[:, 2] / d[:, 2].clamp_max(-1e-20), torch.full_like(t_dome, INF))
    floor = t_floor < t_dome
    return torch.where(floor, t_floor, t_dome), floor


def intersect(st: SceneTensors, o: Tensor, d: Tensor, eps: float = 1e-4) -> tuple[Tensor, Tensor]:
    """Nearest surface along each ray.

    Returns:
        t [N] (units of ``d``) and surface id [N] int64: object index, O for the floor, O + 1
        for walls / dome, or for the world background of an "open" scene (t = inf there). Rays
        that start inside a closed room always hit something.
    """
    t, floor = room_hit(st, o, d)
    o_count = len(st.kinds)
    surf = torch.where(floor, o_count, o_count + 1)
    for i, idx, oi, di in _candidates(st, o, d, eps):
        ti = _T_FUNCS[st.kinds[i]](oi, di, eps)
        closer = ti < t[idx]
        idx = idx[closer]
        t[idx] = ti[closer]
        surf[idx] = i
    return t, surf


def _candidates(st: SceneTensors, o: Tensor, d: Tensor, eps: float):
    """Per object i: the rays that meet its bounding sphere ahead of their origin (a cheap
    world-space cull), as (i, ray indices, local origins, local directions)."""
    a = _dot(d, d)
    radii = st.radii
    for i in range(len(st.kinds)):
        R, s, c = st.rotations[i], st.scales[i], st.centers[i]
        oc = c - o
        b = _dot(d, oc)
        disc = b * b - a * (_dot(oc, oc) - float(radii[i]) ** 2 * 1.0001)
        idx = ((disc >= 0) & (b + disc.clamp_min(0).sqrt() > 0)).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        oi = o if o.shape[0] == 1 else o[idx]
        yield i, idx, _to_local(oi, R, s, c), _to_local(d[idx], R, s, None)


def occluded(st: SceneTensors, p: Tensor, l: Tensor, eps: float = 1e-3) -> Tensor:
    """[N] bool: does the ray p + t l (t > eps) hit any object (shadow rays; the room does not
    occlude directional lights)?"""
    hit = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
    for i, idx, oi, di in _candidates(st, p, l.expand_as(p), eps):
        hit[idx] |= torch.isfinite(_T_FUNCS[st.kinds[i]](oi, di, eps))
    return hit


def _face_uv(m: Tensor, axis: Tensor, sign: Tensor) -> tuple[Tensor, Tensor]:
    """Planar texture coordinates of points ``m`` [N, 3] on faces whose normal (towards the
    viewer) is ``sign`` [N] times axis ``axis`` [N], oriented so that the photo is never
    mirrored: u runs to the viewer's right, v downwards (-z on vertical faces, -y on horizontal
    ones), i.e. (u axis) x (v axis) = -normal."""
    x, y = m[:, 0], m[:, 1]
    u = torch.where(axis == 0, sign * y, torch.where(axis == 1, -sign * x, sign * x))
    v = torch.where(axis == 2, -y, -m[:, 2])
    return u, v


def _around(phi: Tensor, n: float) -> Tensor:
    """Azimuth in (-pi, pi] -> u in tiles, an integer number ``n`` of tiles around (no seam)."""
    return (phi + math.pi) / (2 * math.pi) * n


def surface_attributes(st: SceneTensors, p: Tensor, surf: Tensor) -> tuple[Tensor, Tensor]:
    """World unit normals [N, 3] (outward for objects, inward for the room) and texture
    coordinates [N, 2] in tiles of points ``p`` [N, 3] lying on surfaces ``surf`` [N]."""
    n = torch.zeros_like(p)
    uv = torch.zeros(p.shape[0], 2, dtype=p.dtype, device=p.device)
    o_count = len(st.kinds)
    for i, kind in enumerate(st.kinds):
        idx = (surf == i).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        R, s, tile = st.rotations[i], st.scales[i], float(st.tile[i])
        q = _to_local(p[idx], R, s, st.centers[i])
        if kind == "ellipsoid":
            nl = q
            around = max(1.0, round(math.pi * float(s[0] + s[1]) / tile))
            u = _around(torch.atan2(q[:, 1], q[:, 0]), around)
            v = torch.acos(q[:, 2].clamp(-1, 1)) * float(s[2]) / tile
        elif kind == "box":
            axis = q.abs().argmax(-1)
            nl = torch.nn.functional.one_hot(axis, 3).to(q.dtype) * q.gather(1, axis[:, None]).sign()
            u, v = _face_uv(q * s / tile, axis, q.gather(1, axis[:, None]).squeeze(1).sign())
        else:  # cylinder or cone: a side and flat caps (the cone has only the base, z = -1)
            radial = q[:, :2].norm(dim=-1)
            if kind == "cylinder":
                cap = (1 - q[:, 2].abs()) < (1 - radial).abs()
                side = torch.stack([q[:, 0], q[:, 1], 0 * q[:, 2]], -1)
            else:
                cap = (q[:, 2] + 1).abs() < ((1 - q[:, 2]) / 2 - radial).abs()
                side = torch.stack([q[:, 0], q[:, 1], (1 - q[:, 2]) / 4], -1)  # gradient of x^2+y^2-(1-z)^2/4
            nl = torch.where(cap[:, None], torch.stack([0 * q[:, 0], 0 * q[:, 0], q[:, 2].sign()], -1), side)
            around = max(1.0, round(math.pi * float(s[0] + s[1]) / tile))
            uc, vc = _face_uv(q * s / tile, torch.full_like(radial, 2, dtype=torch.long), q[:, 2].sign())
            u = torch.where(cap, uc, _around(torch.atan2(q[:, 1], q[:, 0]), around))
            v = torch.where(cap, vc, -q[:, 2] * float(s[2]) / tile)
        m = nl / s
        nw = m[:, 0:1] * R[:, 0] + m[:, 1:2] * R[:, 1] + m[:, 2:3] * R[:, 2]
        n[idx] = nw / nw.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        uv[idx] = torch.stack([u, v], -1)
    # room: floor (z = 0) and walls / dome (an open scene has only the floor)
    idx = ((surf == o_count) if st.room == "open" else (surf >= o_count)).nonzero().squeeze(1)
    if idx.numel():
        q = p[idx]
        floor = surf[idx] == o_count
        tf, tw = float(st.tile[o_count]), float(st.tile[o_count + 1])
        if st.room == "box":
            dist = torch.stack([st.half - q[:, 0].abs(), st.half - q[:, 1].abs(), (st.height - q[:, 2]).abs()], -1)
            axis = dist.argmin(-1)
            sign = torch.where(axis == 2, torch.ones_like(q[:, 0]), q.gather(1, axis[:, None]).squeeze(1).sign())
            nr = -torch.nn.functional.one_hot(axis, 3).to(q.dtype) * sign[:, None]
            u, v = _face_uv(q / tw, axis, -sign)
        else:
            nr = -q / st.half
            around = max(1.0, round(2 * math.pi * st.half / tw))
            u = _around(-torch.atan2(q[:, 1], q[:, 0]), around)  # seen from inside: azimuth runs leftwards
            v = torch.acos((q[:, 2] / st.half).clamp(-1, 1)) * st.half / tw
        nr = torch.where(floor[:, None], q.new_tensor([0.0, 0.0, 1.0]).expand_as(nr), nr)
        u = torch.where(floor, q[:, 0] / tf, u)
        v = torch.where(floor, -q[:, 1] / tf, v)
        n[idx] = nr
        uv[idx] = torch.stack([u, v], -1)
    return n, uv
