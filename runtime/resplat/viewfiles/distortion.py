"""Lens distortion coefficients of the supported camera models, in OpenCV's order (standard
library only, shared by :mod:`resplat.views.undistort` and the Blender extension).

OpenCV's radial-tangential model takes (k1, k2, p1, p2, k3) (OpenCV ``calib3d``); COLMAP's
OPENCV camera gives (k1, k2, p1, p2), RADIAL (k1, k2) and SIMPLE_RADIAL (k)
(``src/colmap/sensor/models.h``); nerfstudio's ``transforms.json`` gives all five.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import ViewsError

#: Number of coefficients each supported model takes, and where they go in (k1, k2, p1, p2, k3).
DISTORTION_MODELS = {
    "OPENCV": ((4, 5), (0, 1, 2, 3, 4)),  # k1, k2, p1, p2[, k3]
    "RADIAL": ((2,), (0, 1)),  # k1, k2
    "SIMPLE_RADIAL": ((1,), (0,)),  # k
}
#: The transforms.json keys of the five OpenCV coefficients, in order.
OPENCV_KEYS = ("k1", "k2", "p1", "p2", "k3")


def opencv5(dist: Sequence[float], model: str = "OPENCV") -> list[float]:
    """The five OpenCV coefficients [k1, k2, p1, p2, k3] of ``dist`` given in ``model``'s order.

    Raises:
        ViewsError: an unknown model or a wrong number of coefficients.
    """
    if model not in DISTORTION_MODELS:
        raise ViewsError(f"unsupported distortion model {model!r} (supported: {', '.join(DISTORTION_MODELS)})")
    counts, slots = DISTORTION_MODELS[model]
    if len(dist) not in counts:
        raise ViewsError(f"distortion model {model} takes {' or '.join(map(str, counts))} coefficients, got {len(dist)}")
    out = [0.0] * 5
    for slot, value in zip(slots, dist):
        out[slot] = float(value)
    return out
