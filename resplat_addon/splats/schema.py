"""Splat attribute schemas of a PointCloud: SplatArrays <-> named per-point arrays (no bpy).

Two schemas hold the same content (docs/blender-schema.md is the reference):

- ``native`` (Blender >= 5.3, whose own 3DGS PLY/SPZ importer uses it; Blender 5.3 release notes):
  ``scale`` FLOAT_VECTOR = exp(log scale) (metres), ``rotation`` QUATERNION = unit (w, x, y, z),
  ``radiance:base`` FLOAT_COLOR = (f_dc_0, f_dc_1, f_dc_2, sigmoid(logit opacity)),
  ``radiance:sh_k`` FLOAT_VECTOR for k = 0 .. K-2 (the higher-order SH, f_rest coefficient k
  of R, G, B). Activations make it inexact on the way back: log(exp(x)) and logit(sigmoid(x))
  differ from x by float32 rounding, the quaternion norm is lost (same rotation), and opacity
  is clamped to (0, 1) in float32 (|logit| <= ~16.6).
- ``resplat`` (Blender < 5.3, our own): ``resplat_log_scale`` FLOAT_VECTOR (natural log of the
  standard deviations, metres), ``resplat_rotation`` QUATERNION (w, x, y, z as stored in the
  file, not normalised), ``resplat_opacity_logit`` FLOAT, ``resplat_sh_dc`` FLOAT_VECTOR,
  ``resplat_sh_rest_k`` FLOAT_VECTOR for k = 0 .. K-2. Every value is the file's float32 value:
  the round trip is bit-exact.

Both store ``position`` (the file's means, metres, file axes unchanged) and ``radius`` (the
largest linear scale, for the plain point display; ignored on the way back), and the SH degree
as the object custom property :data:`SH_DEGREE_PROP`.
"""

from __future__ import annotations

import numpy as np

from ..runtime_formats import SH_COUNTS, ResplatError, SplatArrays, logit, sigmoid

NATIVE = "native"
LEGACY = "resplat"
#: Object custom property holding the SH degree (0..3).
SH_DEGREE_PROP = "resplat_sh_degree"
#: Blender data type -> floats per point.
WIDTHS = {"FLOAT": 1, "FLOAT_VECTOR": 3, "QUATERNION": 4, "FLOAT_COLOR": 4}
#: Largest float32 strictly below 1: sigmoid values are clamped to [1 - this, this].
_ALPHA_MAX = float(np.nextafter(np.float32(1), np.float32(0)))

_NAMES = {
    NATIVE: {"scale": "scale", "rotation": "rotation", "base": "radiance:base", "sh": "radiance:sh_{}"},
    LEGACY: {"scale": "resplat_log_scale", "rotation": "resplat_rotation", "opacity": "resplat_opacity_logit",
             "dc": "resplat_sh_dc", "sh": "resplat_sh_rest_{}"},
}


def schema_for_version(version: tuple) -> str:
    """Schema to write on a Blender ``version`` tuple: :data:`NATIVE` from 5.3, else :data:`LEGACY`."""
    return NATIVE if tuple(version)[:2] >= (5, 3) else LEGACY


def required_names(schema: str) -> tuple[str, ...]:
    """Attribute names an object must have to hold splats in ``schema`` (SH rest excluded)."""
    n = _NAMES[schema]
    return tuple(v for k, v in n.items() if k != "sh")


def detect_schema(names) -> str | None:
    """The schema whose required attributes are all in ``names``, or ``None`` (native first)."""
    names = set(names)
    for schema in (NATIVE, LEGACY):
        if set(required_names(schema)) <= names:
            return schema
    return None


def sh_rest_names(schema: str, degree: int) -> list[str]:
    """Names of the (d + 1)^2 - 1 higher-order SH attributes for SH degree ``degree``."""
    return [_NAMES[schema]["sh"].format(k) for k in range(SH_COUNTS[degree] - 1)]


def degree_from_names(schema: str, names) -> int:
    """Highest SH degree whose rest attributes are all present in ``names``."""
    names = set(names)
    best = 0
    for d in (1, 2, 3):
        if set(sh_rest_names(schema, d)) <= names:
            best = d
    return best


def point_radius(log_scales: np.ndarray) -> np.ndarray:
    """[N] float32 largest standard deviation exp(max log scale) in metres (display radius)."""
    if len(log_scales) == 0:
        return np.zeros(0, np.float32)
    return np.exp(log_scales.astype(np.float64).max(axis=1)).astype(np.float32)


def encode(a: SplatArrays, schema: str) -> dict[str, tuple[str, np.ndarray]]:
    """Per-point attributes for ``a`` in ``schema``: name -> (Blender data type, [N, width] float32).

    ``position`` and ``radius`` are included; the SH degree is ``a.sh_degree`` (store it as
    :data:`SH_DEGREE_PROP`).
    """
    n = _NAMES[schema]
    out = {"position": ("FLOAT_VECTOR", a.means), "radius": ("FLOAT", point_radius(a.log_scales)[:, None])}
    if schema == NATIVE:
        q = a.quats.astype(np.float64)
        out[n["scale"]] = ("FLOAT_VECTOR", np.exp(a.log_scales.astype(np.float64)))
        out[n["rotation"]] = ("QUATERNION", q / np.linalg.norm(q, axis=1, keepdims=True))
        alpha = sigmoid(a.logit_opacities)[:, None]
        out[n["base"]] = ("FLOAT_COLOR", np.concatenate([a.sh[:, 0], alpha], axis=1))
    elif schema == LEGACY:
        out[n["scale"]] = ("FLOAT_VECTOR", a.log_scales)
        out[n["rotation"]] = ("QUATERNION", a.quats)
        out[n["opacity"]] = ("FLOAT", a.logit_opacities[:, None])
        out[n["dc"]] = ("FLOAT_VECTOR", a.sh[:, 0])
    else:
        raise ResplatError(f"unknown splat attribute schema {schema!r}")
    for k, name in enumerate(sh_rest_names(schema, a.sh_degree)):
        out[name] = ("FLOAT_VECTOR", a.sh[:, k + 1])
    return {k: (t, np.ascontiguousarray(v, dtype=np.float32).reshape(len(a), WIDTHS[t])) for k, (t, v) in out.items()}


def decode(attrs: dict[str, np.ndarray], schema: str, degree: int) -> SplatArrays:
    """SplatArrays from per-point attributes (name -> [N, width] float32, ``position`` included).

    Raises:
        ResplatError: a required attribute is missing, or a value is not finite / a zero
            quaternion (one line naming it).
    """
    n = _NAMES[schema]
    needed = ["position", *required_names(schema), *sh_rest_names(schema, degree)]
    missing = [k for k in needed if k not in attrs]
    if missing:
        raise ResplatError(f"missing splat attribute {missing[0]!r} ({schema} schema)")
    means = attrs["position"]
    if schema == NATIVE:
        log_scales = np.log(attrs[n["scale"]].astype(np.float64))
        base = attrs[n["base"]]
        alpha = np.clip(base[:, 3].astype(np.float64), 1.0 - _ALPHA_MAX, _ALPHA_MAX)
        opacity, dc = logit(alpha), base[:, :3]
    else:
        log_scales, opacity, dc = attrs[n["scale"]], attrs[n["opacity"]][:, 0], attrs[n["dc"]]
    sh = np.stack([dc, *(attrs[k] for k in sh_rest_names(schema, degree))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return SplatArrays(means, attrs[n["rotation"]], log_scales, opacity, sh)
