"""Procedural multi-object scenes: the parameters the synthetic-data renderer draws.

World frame: metres, right-handed, +z up (as in Blender); the floor is the plane z = 0. A scene
sits inside a "room" (a box or a hemispherical dome, so that every camera ray hits a surface)
or is "open": a ground disc of radius ``half`` under a world background (a uniform colour or a
vertical gradient, as Blender's World shader gives), whose pixels have no depth. Objects are analytic primitives, each the image of a unit primitive under
``x_world = R @ (scale * x_unit) + center``:

- ``ellipsoid``: the unit sphere (a sphere when the three scales are equal);
- ``box``: the cube [-1, 1]^3 (scales are half-extents);
- ``cylinder``: x^2 + y^2 <= 1, |z| <= 1, capped;
- ``cone``: x^2 + y^2 <= ((1 - z) / 2)^2, |z| <= 1 (apex at z = 1, base radius 1 at z = -1).

Surfaces are numbered: objects 0..O-1, then the floor (O), then the walls / dome (O+1); each has
a material (a texture from :mod:`.textures`, a linear-RGB tint, a texture tile size in metres,
Blinn-Phong specular strength and exponent). Lights are directional (unit vectors towards the
light, linear-RGB intensities) plus a linear-RGB ambient term; a light of angular radius > 0 casts
soft shadows (penumbrae), one of radius 0 hard ones. A surface's ``smooth`` weight blends its
texture towards its mean colour (0: the photo, 1: a plain painted material).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .textures import PATTERN_NAMES, SURFACE_TEXTURES, TEXTURE_NAMES

KINDS = ("ellipsoid", "box", "cylinder", "cone")
ROOMS = ("box", "dome")
#: every room kind, including the open ground under a world background
ALL_ROOMS = ROOMS + ("open",)


@dataclass
class Scene:
    """One procedural scene (all tensors float64 unless stated).

    Attributes:
        kinds: O primitive names from :data:`KINDS`.
        centers: [O, 3] object centres (metres). rotations: [O, 3, 3] local-to-world rotations.
        scales: [O, 3] per-axis scales of the unit primitive (metres).
        texture: [O + 2] int64 index into :data:`~.textures.ALL_TEXTURES` per surface (photos,
            then procedural patterns).
        tint: [O + 2, 3] linear-RGB multipliers. tile: [O + 2] metres per texture repeat.
        specular: [O + 2] Blinn-Phong strength. shininess: [O + 2] Blinn-Phong exponent.
        room: "box" (floor [-half, half]^2 at z = 0, ceiling at ``height``) or "dome" (a
            hemisphere of radius ``half`` over the floor). half, height: metres.
        light_dirs: [L, 3] unit vectors towards the lights. light_colors: [L, 3] linear RGB.
        ambient: [3] linear RGB. shadows: cast shadows (a second ray per light).
        sky_top, sky_bottom: [3] linear-RGB world colour straight up and at the horizon and
            below ("open" rooms; equal for a uniform world), None otherwise.
        light_radius: angular radius of every light, radians (0: hard shadows).
        smooth: [O + 2] texture-to-plain blend per surface, None for all 0.
    """

    kinds: list[str]
    centers: Tensor
    rotations: Tensor
    scales: Tensor
    texture: Tensor
    tint: Tensor
    tile: Tensor
    specular: Tensor
    shininess: Tensor
    room: str
    half: float
    height: float
    light_dirs: Tensor
    light_colors: Tensor
    ambient: Tensor
    shadows: bool = True
    sky_top: Tensor | None = None
    sky_bottom: Tensor | None = None
    light_radius: float = 0.0
    smooth: Tensor | None = None

    @property
    def num_objects(self) -> int:
        """O, the number of objects (surfaces O and O + 1 are the floor and the walls)."""
        return len(self.kinds)

    def bounding_radii(self) -> Tensor:
        """[O] radius of a sphere about each centre that contains the object (metres)."""
        return torch.stack([_bound_radius(k, s) for k, s in zip(self.kinds, self.scales)]) if self.kinds else torch.zeros(0, dtype=torch.float64)

    def to_dict(self) -> dict:
        """JSON-ready parameters (lists of floats); inverse of :meth:`from_dict`."""
        out = {}
        for k, v in self.__dict__.items():
            out[k] = v.tolist() if isinstance(v, Tensor) else v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        """The scene of a :meth:`to_dict` dict (as stored in scene.json), float64 / int64."""
        ints = {"texture"}
        vals = {}
        for k, v in d.items():
            if k in ("kinds", "room", "half", "height", "shadows", "light_radius") or v is None:
                vals[k] = v
            else:
                vals[k] = torch.tensor(v, dtype=torch.long if k in ints else torch.float64)
        if not vals["kinds"]:
            vals["centers"] = vals["centers"].reshape(0, 3)
            vals["scales"] = vals["scales"].reshape(0, 3)
            vals["rotations"] = vals["rotations"].reshape(0, 3, 3)
        return cls(**vals)


def _bound_radius(kind: str, s: Tensor) -> Tensor:
    if kind == "ellipsoid":
        return s.max()
    if kind == "box":
        return s.norm()
    return torch.sqrt(s[:2].max() ** 2 + s[2] ** 2)


def _z_below(kind: str, R: np.ndarray, s: np.ndarray) -> float:
    """How far the rotated, scaled primitive reaches below its centre along world z (the
    support function of -e_z; an object resting on the floor has its centre this high)."""
    a = R[2] * s  # z row of R @ diag(s)
    if kind == "ellipsoid":
        return float(np.linalg.norm(a))
    if kind == "box":
        return float(np.abs(a).sum())
    if kind == "cone":  # apex (0, 0, 1) or the base circle at z = -1
        return float(max(-a[2], a[2] + math.hypot(a[0], a[1])))
    return float(abs(a[2]) + math.hypot(a[0], a[1]))


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation matrix about a unit axis (radians)."""
    x, y, z = axis / np.linalg.norm(axis)
    c, s, C = math.cos(angle), math.sin(angle), 1 - math.cos(angle)
    return np.array([[c + x * x * C, x * y * C - z * s, x * z * C + y * s],
                     [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
                     [z * x * C - y * s, z * y * C + x * s, c + z * z * C]])


def _tint(rng: np.random.Generator, saturation: float) -> list[float]:
    """A random linear-RGB multiplier: a hue at ``saturation``, value 0.55-1.0."""
    h = rng.uniform(0, 1)
    rgb = np.array([np.clip(abs(h * 6 - 3) - 1, 0, 1), np.clip(2 - abs(h * 6 - 2), 0, 1), np.clip(2 - abs(h * 6 - 4), 0, 1)])
    value = rng.uniform(0.55, 1.0)
    return list(value * (1 - saturation + saturation * rgb))


def random_scene(rng: np.random.Generator, min_objects: int = 3, max_objects: int = 12, open_fraction: float = 0.0,
                 soft_fraction: float = 0.0, smooth_fraction: float = 0.0, pattern_fraction: float = 0.0) -> Scene:
    """Draw a scene: ``min_objects``..``max_objects`` primitives resting on (or floating just
    above) the floor within a disc of radius 1-3.5 m, without overlapping bounding spheres; a
    box room (8-25 m wide) or dome; one or two directional lights. Deterministic given ``rng``.

    With a fraction > 0, after those draws (so that the fractions 0 give the scenes of the
    first generator version exactly): ``open_fraction`` of the scenes are "open" (a ground disc
    of 6-25 m radius beyond the layout under a uniform or gradient world colour; 1-4 objects
    more often, as an artist's object on a floor), ``soft_fraction`` get lights of 3-15 degrees
    angular radius (soft shadows), each surface is plain-painted (smooth 0.7-1) with
    probability ``smooth_fraction``, and, drawn from a child stream (``rng.spawn``, so that
    the draws the caller makes next are unchanged), the floor takes a procedural pattern
    (:data:`~.textures.PATTERN_NAMES`: checker, tiles, stripes) with probability
    ``pattern_fraction`` and every other surface with a third of it (patterns are never
    painted over)."""
    layout = rng.uniform(1.0, 3.5)
    n_target = int(rng.integers(min_objects, max_objects + 1))
    kinds, centers, rots, scales, radii = [], [], [], [], []
    for _ in range(n_target):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        r = rng.uniform(0.15, 0.6) * (0.6 + 0.25 * layout)
        if kind == "ellipsoid":
            s = np.full(3, r) if rng.uniform() < 0.35 else r * rng.uniform(0.5, 1.6, 3)
        elif kind == "box":
            s = r * rng.uniform(0.45, 1.4, 3)
        else:  # cylinder, cone
            rad = r * rng.uniform(0.4, 1.1)
            s = np.array([rad, rad, r * rng.uniform(0.5, 1.8)])
        R = _rotation(np.array([0.0, 0.0, 1.0]), rng.uniform(0, 2 * math.pi))
        if rng.uniform() < 0.4:
            a = rng.uniform(0, 2 * math.pi)
            R = _rotation(np.array([math.cos(a), math.sin(a), 0.0]), rng.uniform(0, math.pi / 2)) @ R
        rb = float(_bound_radius(kind, torch.from_numpy(s)))
        for _try in range(40):
            rho, phi = layout * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
            xy = np.array([rho * math.cos(phi), rho * math.sin(phi)])
            if all(np.linalg.norm(xy - c[:2]) >= 0.85 * (rb + rj) for c, rj in zip(centers, radii)):
                break
        else:
            continue
        z = _z_below(kind, R, s) + (rng.uniform(0.1, 0.8) if rng.uniform() < 0.15 else 0.0)
        kinds.append(kind)
        centers.append(np.array([xy[0], xy[1], z]))
        rots.append(R)
        scales.append(s)
        radii.append(rb)
    o = len(kinds)
    n_tex = len(TEXTURE_NAMES)
    texture = [int(rng.integers(n_tex)) for _ in range(o)]
    texture += [TEXTURE_NAMES.index(SURFACE_TEXTURES[int(rng.integers(len(SURFACE_TEXTURES)))]), int(rng.integers(n_tex))]
    tint = [_tint(rng, rng.uniform(0.0, 0.7)) for _ in range(o)] + [_tint(rng, rng.uniform(0, 0.4)) for _ in range(2)]
    tile = [radii[i] * rng.uniform(0.8, 3.0) for i in range(o)] + [rng.uniform(0.5, 2.5), rng.uniform(1.0, 4.0)]
    spec = [rng.uniform(0.05, 0.4) if rng.uniform() < 0.5 else 0.0 for _ in range(o + 2)]
    shin = [rng.uniform(8, 80) for _ in range(o + 2)]
    room = ROOMS[int(rng.integers(2))]
    half = rng.uniform(layout + 4.0, layout + 9.0)
    height = rng.uniform(3.0, 6.0) if room == "box" else half
    n_lights = int(rng.integers(1, 3))
    dirs, cols = [], []
    for i in range(n_lights):
        el, az = rng.uniform(math.radians(25), math.radians(75)), rng.uniform(0, 2 * math.pi)
        dirs.append([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        warm = rng.uniform(-0.1, 0.1)
        cols.append(list((rng.uniform(0.7, 1.1) if i == 0 else rng.uniform(0.2, 0.5)) * np.array([1 + warm, 1.0, 1 - warm])))
    ambient = list(rng.uniform(0.12, 0.3) * np.array([1.0, 1.0, 1.0]) * rng.uniform(0.9, 1.1, 3))
    sky_top = sky_bottom = None
    light_radius, smooth = 0.0, None
    if open_fraction > 0 and rng.uniform() < open_fraction:
        room = "open"
        half = layout + rng.uniform(6.0, 25.0)
        grey = rng.uniform(0.05, 0.8)
        sky_bottom = list(grey * np.array([1.0, 1.0, 1.0]) * rng.uniform(0.9, 1.1, 3))
        sky_top = sky_bottom if rng.uniform() < 0.5 else list(np.array(_tint(rng, rng.uniform(0, 0.5))) * rng.uniform(0.3, 1.0))
        if o > 1 and rng.uniform() < 0.6:  # an artist's few objects on a floor
            keep = min(int(rng.integers(1, 5)), o)
            kinds, centers, rots, scales = kinds[:keep], centers[:keep], rots[:keep], scales[:keep]
            texture, tint, tile = texture[:keep] + texture[o:], tint[:keep] + tint[o:], tile[:keep] + tile[o:]
            spec, shin = spec[:keep] + spec[o:], shin[:keep] + shin[o:]
            o = keep
    if soft_fraction > 0 and rng.uniform() < soft_fraction:
        light_radius = math.radians(rng.uniform(3.0, 15.0))
    if smooth_fraction > 0:
        smooth = [rng.uniform(0.7, 1.0) if rng.uniform() < smooth_fraction else 0.0 for _ in range(o + 2)]
    if pattern_fraction > 0:  # from a child stream: the caller's later draws (cameras) stay as they were
        prng = rng.spawn(1)[0]
        for i in range(o + 2):
            if prng.uniform() < (pattern_fraction if i == o else pattern_fraction / 3):
                texture[i] = len(TEXTURE_NAMES) + int(prng.integers(len(PATTERN_NAMES)))
                if smooth is not None:
                    smooth[i] = 0.0
    f64 = torch.float64
    opt = (lambda x: None if x is None else torch.tensor(x, dtype=f64))
    return Scene(
        kinds=kinds,
        centers=torch.tensor(np.array(centers).reshape(o, 3), dtype=f64),
        rotations=torch.tensor(np.array(rots).reshape(o, 3, 3), dtype=f64),
        scales=torch.tensor(np.array(scales).reshape(o, 3), dtype=f64),
        texture=torch.tensor(texture, dtype=torch.long),
        tint=torch.tensor(tint, dtype=f64), tile=torch.tensor(tile, dtype=f64),
        specular=torch.tensor(spec, dtype=f64), shininess=torch.tensor(shin, dtype=f64),
        room=room, half=float(half), height=float(height),
        light_dirs=torch.tensor(dirs, dtype=f64), light_colors=torch.tensor(cols, dtype=f64),
        ambient=torch.tensor(ambient, dtype=f64), shadows=True,
        sky_top=opt(sky_top), sky_bottom=opt(sky_bottom), light_radius=float(light_radius), smooth=opt(smooth),
    )
