"""Baseline PLY reader/writer for the benchmarks: the INRIA 3DGS reference pattern.

This is what a straightforward script does, and what most splat tools copied from Kerbl et al.
2023 (``scene/gaussian_model.py``: ``save_ply`` / ``load_ply``), in numpy: writing concatenates
the attributes into one float array and fills a structured array row by row
(``list(map(tuple, ...))``); reading takes every property one at a time from
``plyfile.PlyData.read`` into float64 arrays. Property order and the channel-major ``f_rest``
layout are INRIA's, so resplat.formats reads what :func:`save_ply` writes and vice versa
(tests/test_bench_summary.py).
"""

from __future__ import annotations

import os

import numpy as np
from plyfile import PlyData, PlyElement

from resplat.formats.arrays import SplatArrays


def save_ply(a: SplatArrays, path: str | os.PathLike) -> None:
    """Write ``a`` as a binary INRIA PLY the way INRIA's ``save_ply`` does (normals 0)."""
    n = len(a)
    f_dc = a.sh[:, 0, :]
    f_rest = a.sh[:, 1:, :].transpose(0, 2, 1).reshape(n, -1)
    names = (["x", "y", "z", "nx", "ny", "nz"] + [f"f_dc_{i}" for i in range(3)]
             + [f"f_rest_{i}" for i in range(f_rest.shape[1])] + ["opacity"]
             + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])
    elements = np.empty(n, dtype=[(name, "f4") for name in names])
    attributes = np.concatenate((a.means, np.zeros_like(a.means), f_dc, f_rest, a.logit_opacities[:, None],
                                 a.log_scales, a.quats), axis=1)
    elements[:] = list(map(tuple, attributes))
    PlyData([PlyElement.describe(elements, "vertex")]).write(str(path))


def load_ply(path: str | os.PathLike) -> SplatArrays:
    """Read an INRIA PLY the way INRIA's ``load_ply`` does (per-property access, float64), then
    return float32 :class:`SplatArrays` like resplat.formats does."""
    v = PlyData.read(str(path)).elements[0]
    xyz = np.stack((np.asarray(v["x"]), np.asarray(v["y"]), np.asarray(v["z"])), axis=1)
    opacities = np.asarray(v["opacity"])[..., np.newaxis]
    features_dc = np.zeros((xyz.shape[0], 3, 1))
    for i in range(3):
        features_dc[:, i, 0] = np.asarray(v[f"f_dc_{i}"])
    extra = sorted((p.name for p in v.properties if p.name.startswith("f_rest_")), key=lambda x: int(x.split("_")[-1]))
    features_extra = np.zeros((xyz.shape[0], len(extra)))
    for idx, name in enumerate(extra):
        features_extra[:, idx] = np.asarray(v[name])
    features_extra = features_extra.reshape((xyz.shape[0], 3, len(extra) // 3))
    scale_names = sorted((p.name for p in v.properties if p.name.startswith("scale_")), key=lambda x: int(x.split("_")[-1]))
    scales = np.zeros((xyz.shape[0], len(scale_names)))
    for idx, name in enumerate(scale_names):
        scales[:, idx] = np.asarray(v[name])
    rot_names = sorted((p.name for p in v.properties if p.name.startswith("rot")), key=lambda x: int(x.split("_")[-1]))
    rots = np.zeros((xyz.shape[0], len(rot_names)))
    for idx, name in enumerate(rot_names):
        rots[:, idx] = np.asarray(v[name])
    sh = np.concatenate([features_dc, features_extra], axis=2).transpose(0, 2, 1)  # [N, K, 3]
    return SplatArrays(means=xyz.astype(np.float32), quats=rots.astype(np.float32),
                       log_scales=scales.astype(np.float32), logit_opacities=opacities[:, 0].astype(np.float32),
                       sh=sh.astype(np.float32))
