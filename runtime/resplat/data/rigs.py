"""Camera rigs for synthetic scenes: inward-facing orbits (dense or sparse arcs), forward-facing
captures (small baselines, one viewing direction) and random inward views, with a per-scene
horizontal field of view of 40-70 degrees; plus the context/target split of the views.

Cameras follow :mod:`resplat.cameras` (OpenCV w2c, K in pixels with a centred principal point at
(W/2, H/2)). Every camera is placed at least 0.3 m outside every object's bounding sphere and
0.5 m inside the room, so all visible surfaces are more than 0.1 m in front of it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..cameras import Cameras, K_from_fov
from ..errors import ResplatError
from .scene import Scene

RIGS = ("orbit", "forward", "random")


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV camera-to-world [4, 4] at ``eye`` looking at ``target`` with world ``up`` towards
    the top of the image (x right, y down, z forward)."""
    f = target - eye
    f = f / np.linalg.norm(f)
    r = np.cross(f, np.asarray(up))
    r = r / np.linalg.norm(r)
    dn = np.cross(f, r)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = r, dn, f, eye
    return c2w


def _safe(scene: Scene, eye: np.ndarray) -> bool:
    """Camera centre clear of objects (0.3 m) and inside the room (0.5 m margin)."""
    c, rad = scene.centers.numpy(), scene.bounding_radii().numpy()
    if len(c) and (np.linalg.norm(c - eye, axis=1) < rad + 0.3).any():
        return False
    if eye[2] < 0.3:
        return False
    if scene.room == "box":
        return max(abs(eye[0]), abs(eye[1])) < scene.half - 0.5 and eye[2] < scene.height - 0.5
    return np.linalg.norm(eye) < scene.half - 0.5


def _layout_radius(scene: Scene) -> float:
    if not scene.kinds:
        return 1.0
    return float((scene.centers[:, :2].norm(dim=1) + scene.bounding_radii()).max())


def _orbit_eye(rng, scene, az, el, radius, center):
    """A safe eye near spherical coordinates (az, el, radius) about ``center``: first further
    out and higher, then also at other azimuths."""
    r_max = scene.half - 1.5
    for k in range(120):
        r = min(radius * 1.04 ** k, r_max)
        e = min(el + 0.02 * k, math.radians(75)) if k < 60 else rng.uniform(math.radians(5), math.radians(70))
        if scene.room == "box":  # stay under the ceiling
            e = min(e, math.asin(max(min((scene.height - 0.6 - center[2]) / r, 1.0), 0.0)))
        a = az + (rng.normal() * 0.05 * (k - 20) if k > 20 else 0.0)
        eye = center + r * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        if _safe(scene, eye):
            return eye
    raise ResplatError("no camera position clear of the objects inside the room")


def sample_rig(rng: np.random.Generator, scene: Scene, n_views: int, kind: str, width: int, height: int) -> tuple[Cameras, dict]:
    """``n_views`` cameras of rig ``kind`` ("orbit", "forward" or "random") around ``scene``,
    ordered along the rig (by azimuth or position). Returns the cameras and a JSON-ready dict of
    the rig's parameters. Raises ResplatError for an unknown rig or when no safe spot exists."""
    if kind not in RIGS:
        raise ResplatError(f"unknown camera rig {kind!r}: use one of {', '.join(RIGS)}")
    lay = _layout_radius(scene)
    fov = math.radians(rng.uniform(40, 70))
    center = np.array([0.0, 0.0, rng.uniform(0.2, 0.8)])
    room_r = scene.half - 1.0
    r_lo, r_hi = min(lay + 0.8, room_r), min(lay * 2.2 + 1.5, room_r)
    params = {"kind": kind, "fov_x_degrees": math.degrees(fov), "target": center.tolist()}
    c2ws = []
    if kind == "orbit":
        arc = math.radians(rng.uniform(40, 120)) if rng.uniform() < 0.5 else math.radians(rng.uniform(180, 360))
        az0, el0, rad0 = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(8, 45)), rng.uniform(r_lo, r_hi)
        params.update(arc_degrees=math.degrees(arc), elevation_degrees=math.degrees(el0), radius=rad0)
        step = arc / n_views if arc > math.radians(300) else arc / max(n_views - 1, 1)
        for i in range(n_views):
            az = az0 + i * step + rng.uniform(-0.15, 0.15) * step
            el = el0 + math.radians(rng.uniform(-5, 5))
            eye = _orbit_eye(rng, scene, az, el, rad0 * rng.uniform(0.92, 1.08), center)
            c2ws.append(look_at(eye, center + rng.uniform(-0.15, 0.15, 3)))
    elif kind == "forward":
        az, el, rad = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(5, 30)), rng.uniform(r_lo, r_hi)
        eye0 = _orbit_eye(rng, scene, az, el, rad, center)
        base = look_at(eye0, center)
        baseline = rng.uniform(0.05, 0.3) if rng.uniform() < 0.5 else rng.uniform(0.3, 1.0)
        params.update(baseline=baseline, elevation_degrees=math.degrees(el), radius=rad)
        offsets = np.stack([np.linspace(-0.5, 0.5, n_views) * baseline, rng.uniform(-0.15, 0.15, n_views) * baseline,
                            rng.uniform(-0.1, 0.1, n_views) * baseline], 1)
        for off in offsets:
            eye = eye0 + base[:3, :3] @ off
            if not _safe(scene, eye):
                eye = eye0
            look = eye + (center - eye0) + rng.uniform(-0.05, 0.05, 3) * rad
            c2ws.append(look_at(eye, look))
    else:
        eyes = []
        for _ in range(n_views):
            az, el = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(5, 60))
            eyes.append((az, _orbit_eye(rng, scene, az, el, rng.uniform(r_lo, r_hi), center)))
        eyes.sort(key=lambda e: e[0])
        for _, eye in eyes:
            c2ws.append(look_at(eye, center + rng.uniform(-0.5, 0.5, 3) * np.array([lay, lay, 0.3]) * 0.5))
    K = K_from_fov(fov, width, height)
    return Cameras.from_c2w(torch.tensor(np.stack(c2ws), dtype=torch.float32), K, width, height), params


def split_views(rng: np.random.Generator, n_views: int, n_context: int) -> tuple[list[int], list[int]]:
    """Context and target view indices (sorted). Targets are drawn from the interior of the
    rig's ordering (not the first or last view) when there is room, so that they are mostly
    interpolations between context views. Raises ResplatError unless 1 <= n_context < n_views."""
    if not 1 <= n_context < n_views:
        raise ResplatError(f"need 1 <= context views < views, got {n_context} of {n_views}")
    n_target = n_views - n_context
    pool = list(range(1, n_views - 1)) if n_views - 2 >= n_target else list(range(n_views))
    target = sorted(int(i) for i in rng.choice(pool, size=n_target, replace=False))
    context = [i for i in range(n_views) if i not in target]
    return context, target
