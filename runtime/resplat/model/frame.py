"""The model frame: where the ReSplat network sees a scene, and the one way back to the world.

:func:`make_model_frame` makes it and :meth:`ModelFrame.gaussians_to_world` undoes it; every
caller (``reconstruct``, ``ReSplatEncoder.forward_initial``, training) goes through these two.

Rotation and translation: poses are re-expressed relative to the middle context view, as the
release does (``c2w' = inv(c2w[V // 2]) @ c2w``; dataset ``camera_normalization``, paper: +0.9 dB).

Scale (``ModelConfig.frame_scale``):

- ``"metric"`` (the released presets): no rescaling, near/far are the config's constants in
  metres, as the release was trained (DL3DV 0.01-200 m);
- ``"lookat"`` (the embedded ``tiny`` preset): the scene is divided by ``s`` so that the cameras
  sit ``ModelConfig.frame_distance`` model units from what they look at, which makes the network
  free of the scene's scale (a 5 cm object and a 50 m street look alike). The reference distance
  is, in this order of preference:

  1. the median of the valid depth (finite, > 0) of the context views' depth maps, when given;
  2. the mean z-depth, in the cameras, of the *look-at point*: the least-squares point nearest to
     every optical axis, ``argmin_p sum_i |(I - d_i d_i^T)(p - c_i)|^2``, used when the axes
     converge (smallest eigenvalue of ``sum_i (I - d_i d_i^T)`` at least ``0.05 V``) and the
     point lies in front of every camera (orbits, arcs);
  3. otherwise (forward-facing rigs, near-parallel axes) ``ModelConfig.baseline_depth_ratio``
     times the rig's baseline (mean distance of the camera centres to their centroid), and the
     frame's distance itself when all cameras share one centre (no scale can be read off the
     cameras). The ratio is a prior, not a measurement: 40 is the median of depth / baseline
     over the forward rigs of ``resplat.data`` (5th-95th percentile 8.5-237), so this case
     also gets the wider range ``baseline_range``.

  near/far (model units) follow the same evidence: from depth maps, the 0.5th and 99.5th
  percentiles of the valid depth widened by ``DEPTH_RANGE_MARGIN``; from the look-at point
  ``frame_distance * lookat_range``; from the baseline ``frame_distance * baseline_range``
  (config). The plane sweep spends its candidates inside
  that range (uniform in log depth), so a scene whose depth spans 1-3 m has candidates
  ``(3.3 / 0.9)^(1/31) - 1 = 4.3 %`` apart with 32 candidates instead of 38 % for 0.01-200 m.

The frame maps world to model as ``x_model = R^T (x - t) / s``; back to the world, means
``s R m + t``, log-scales ``+ log s``, quaternions ``q(R) * q`` and SH rotated by R
(:func:`.poses.rotate_sh`), so renders from the world cameras equal renders of the model-frame
Gaussians from the model-frame cameras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import Cameras, lookat_point, rigid_inverse
from ..errors import CameraError
from ..gaussians import Gaussians, quat_multiply, rotmat_to_quat
from .poses import rotate_sh

#: Depth-map range: [p0.5 / margin, p99.5 * margin].
DEPTH_RANGE_MARGIN = 1.1
#: The look-at point is used when the smallest eigenvalue of sum (I - d d^T) is >= this x V.
LOOKAT_CONDITION = 0.05


@dataclass
class ModelFrame:
    """The similarity transform from each scene's world to the network's model frame.

    Attributes:
        reference: [B, 4, 4] rigid camera-to-world of the middle context view (world units).
        scale: [B] world units per model unit (1 for ``frame_scale="metric"``).
        near, far: [B] plane-sweep depth range in model units.
        source: per scene, what set the scale: "metric", "depth", "lookat", "baseline" or "none".
    """

    reference: Tensor
    scale: Tensor
    near: Tensor
    far: Tensor
    source: list[str]

    def c2w(self, c2w: Tensor, b: int | None = None) -> Tensor:
        """World camera-to-world -> model frame: ``inv(reference) @ c2w`` with the translation
        divided by ``scale``. ``c2w`` is [B, V, 4, 4] (views of each of the B scenes), or
        [V, 4, 4] views of scene ``b``."""
        ref, s = self.reference.to(c2w), self.scale.to(c2w)
        if b is not None:
            ref, s = ref[b:b + 1], s[b:b + 1]
        out = rigid_inverse(ref).unsqueeze(-3) @ (c2w if b is None else c2w[None])
        top = torch.cat([out[..., :3, :3], out[..., :3, 3:] / s[:, None, None, None]], -1)
        out = torch.cat([top, out[..., 3:, :]], -2)
        return out if b is None else out[0]

    def cameras(self, cameras: Cameras, b: int = 0) -> Cameras:
        """Cameras (world) of scene ``b`` in the model frame (same K, size and names)."""
        return Cameras.from_c2w(self.c2w(cameras.c2w, b), cameras.K, cameras.width, cameras.height, cameras.names)

    def depth(self, depth: Tensor) -> Tensor:
        """[B, V, ...] world z-depth -> model units (invalid values stay invalid)."""
        return depth / self.scale.to(depth).reshape(-1, *([1] * (depth.dim() - 1)))

    def gaussians_to_world(self, gaussians: Gaussians, b: int = 0) -> Gaussians:
        """Scene ``b``'s Gaussians from the model frame back to the world (module docstring)."""
        T = self.reference[b].to(gaussians.means)
        s = self.scale[b].to(gaussians.means)
        R, t = T[:3, :3], T[:3, 3]
        q = rotmat_to_quat(R)
        quats = quat_multiply(q.expand_as(gaussians.quats), gaussians.quats)
        return Gaussians(s * gaussians.means @ R.T + t, quats, gaussians.log_scales + torch.log(s),
                         gaussians.logit_opacities, rotate_sh(gaussians.sh, R))


def _check_rigid(R: Tensor) -> None:
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    if not torch.allclose(R @ R.transpose(-1, -2), eye.expand_as(R), atol=1e-4):
        raise CameraError("model frame: the middle camera-to-world is not rigid (R R^T != I)")


def valid_depth(depth: Tensor) -> Tensor:
    """The valid values (finite, > 0) of a depth map of any shape, float64, flattened; a strided
    subset of at most 1,000,000 of them when there are more (``torch.quantile`` refuses over 16M)."""
    valid = depth.double()[torch.isfinite(depth) & (depth > 0)]
    if valid.numel() > 1_000_000:
        valid = valid[:: valid.numel() // 1_000_000 + 1]
    return valid


def depth_percentiles(valid: Tensor) -> tuple[float, float]:
    """The 0.5th and 99.5th percentiles of :func:`valid_depth`'s values: the span of a depth map
    that the model frame widens by :data:`DEPTH_RANGE_MARGIN` into near/far."""
    q = torch.quantile(valid, torch.tensor([0.005, 0.995], dtype=torch.float64, device=valid.device))
    return float(q[0]), float(q[1])


def _scene_frame(c2w: Tensor, depth: Tensor | None, config):
    """(scale, near, far, source) of one scene (module docstring), floats in world / model units."""
    distance = config.frame_distance
    lo_ratio, hi_ratio = config.lookat_range
    if depth is not None:
        valid = valid_depth(depth)
        if valid.numel() >= 16:
            lo, hi = depth_percentiles(valid)
            s = float(valid.median()) / distance
            return s, lo / DEPTH_RANGE_MARGIN / s, hi * DEPTH_RANGE_MARGIN / s, "depth"
    point, cond = lookat_point(c2w)
    w2c = rigid_inverse(c2w.double())
    z = (w2c[:, :3, :3] @ point + w2c[:, :3, 3])[:, 2]
    if cond >= LOOKAT_CONDITION and bool((z > 0).all()):
        s = float(z.mean()) / distance
        source = "lookat"
    else:
        centres = c2w[:, :3, 3].double()
        baseline = float((centres - centres.mean(0)).norm(dim=-1).mean())
        if baseline > 0 and math.isfinite(baseline):
            s, source = config.baseline_depth_ratio * baseline / distance, "baseline"
            lo_ratio, hi_ratio = config.baseline_range
        else:
            s, source = 1.0, "none"
    return s, distance * lo_ratio, distance * hi_ratio, source


def make_model_frame(c2w: Tensor, config, depths: Tensor | None = None) -> ModelFrame:
    """The model frame of B scenes from their context cameras (module docstring).

    Args:
        c2w: [B, V, 4, 4] world camera-to-world of the context views (OpenCV axes, any unit).
        config: a :class:`~.config.ModelConfig` (``frame_scale``, ``frame_distance``,
            ``lookat_range``, ``baseline_depth_ratio``, ``baseline_range``, ``near``, ``far``).
        depths: optional [B, V, H, W] world z-depth of the context views (0, inf or nan where
            unknown); only ``frame_scale="lookat"`` reads it.

    Returns:
        :class:`ModelFrame` (float64 scale and range, reference in the dtype of ``c2w``).

    Raises:
        CameraError: a middle view whose rotation block is not a rotation.
    """
    if c2w.dim() != 4 or c2w.shape[-2:] != (4, 4):
        raise CameraError(f"model frame: c2w must be [B, V, 4, 4], got {list(c2w.shape)}")
    b, v = c2w.shape[:2]
    reference = c2w[:, v // 2]
    _check_rigid(reference[:, :3, :3])
    mode = getattr(config, "frame_scale", "metric")
    if mode == "metric":
        ones = torch.ones(b, dtype=torch.float64)
        return ModelFrame(reference, ones, ones * config.near, ones * config.far, ["metric"] * b)
    if mode != "lookat":
        raise CameraError(f"model frame: unknown frame_scale {mode!r} (metric or lookat)")
    rows = [_scene_frame(c2w[i].detach().cpu(), None if depths is None else depths[i].detach().cpu(), config)
            for i in range(b)]
    f64 = torch.float64
    return ModelFrame(reference, torch.tensor([r[0] for r in rows], dtype=f64),
                      torch.tensor([r[1] for r in rows], dtype=f64), torch.tensor([r[2] for r in rows], dtype=f64),
                      [r[3] for r in rows])


__all__ = ["ModelFrame", "make_model_frame", "valid_depth", "depth_percentiles", "DEPTH_RANGE_MARGIN"]
