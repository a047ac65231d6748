"""Viewport display and render approximation of splat point clouds (docs/blender-display.md).

:func:`attach` gives a splat object the shared "ReSplat Display" Geometry Nodes modifier
(:mod:`.geometry`) with the materials of :mod:`.materials`; the import operator and the runtime's
reconstruct/refine results get it through :func:`..splats.pointcloud.build_object`.
"""

from __future__ import annotations

from .geometry import GROUP_NAME, INPUTS, display_group
from .materials import COLOR_ATTR

MODIFIER_NAME = "ReSplat Display"
#: Up to this many splats a new object shows ellipsoids; above it, points (interactive at 500k).
ELLIPSOID_MAX = 100_000

__all__ = ["COLOR_ATTR", "ELLIPSOID_MAX", "GROUP_NAME", "MODIFIER_NAME", "attach", "set_inputs"]


def set_inputs(mod, **values) -> None:
    """Set the display modifier's inputs by name (:data:`.geometry.INPUTS`: Ellipsoids, Sigma,
    Fraction, Seed, Detail) and tag the object for re-evaluation.

    Raises:
        KeyError: a name that is not an input of the group.
    """
    ids = {s.name: s.identifier for s in mod.node_group.interface.items_tree
           if getattr(s, "in_out", None) == "INPUT" and s.socket_type != "NodeSocketGeometry"}
    for name, value in values.items():
        mod[ids[name]] = value
    mod.id_data.update_tag()


def attach(obj, ellipsoids: bool | None = None):
    """Add (or refresh) the display modifier on splat object ``obj`` and return it.

    Args:
        obj: a PointCloud object with splat attributes (either schema).
        ellipsoids: display mode; default ellipsoids up to :data:`ELLIPSOID_MAX` splats, else
            points.
    """
    mod = obj.modifiers.get(MODIFIER_NAME)
    if mod is None or mod.type != "NODES":
        mod = obj.modifiers.new(MODIFIER_NAME, "NODES")
    mod.node_group = display_group()
    if ellipsoids is None:
        ellipsoids = len(obj.data.points) <= ELLIPSOID_MAX
    set_inputs(mod, Ellipsoids=bool(ellipsoids))
    return mod
