"""The "ReSplat Display" Geometry Nodes group: splats as points or oriented ellipsoids.

Built from Python once per blend file (:func:`display_group`) and shared by every splat object's
modifier. It reads either attribute schema of docs/blender-schema.md, choosing per attribute by
the Named Attribute node's *Exists* output (native 5.3 names first, as ``detect_schema`` does),
and computes the activations in the tree instead of storing extra attributes, so the display
never goes stale when the splats are edited or refined:

- linear scale sigma (metres): native ``scale``; resplat ``exp(resplat_log_scale)``.
- opacity: native ``radiance:base``.a; resplat ``1 / (1 + exp(-resplat_opacity_logit))``.
- rotation: native ``rotation``; resplat ``resplat_rotation`` normalised to unit length.
- colour: ``clamp(0.5 + C0 * DC, 0, 1)`` with C0 = 0.28209479 (the degree-0 real SH constant of
  Kerbl et al. 2023), i.e. the splat's view-independent colour in the training images' (sRGB)
  encoding; stored with the opacity as alpha in the FLOAT_COLOR point attribute
  :data:`COLOR_ATTR` for the materials (:mod:`.materials`).

Modifier inputs (:data:`INPUTS`): *Ellipsoids* (False: points whose radius is Sigma x the largest
sigma; True: an ico-sphere of radius Sigma instanced per splat, scaled by (sigma_x, sigma_y,
sigma_z) and rotated by the quaternion, so its surface is the Sigma-sigma iso-surface of the
Gaussian); *Sigma* (size in standard deviations); *Fraction* with *Seed* (keep a random subset of
that expected fraction, Random Value boolean per point index); *Detail* (ico-sphere subdivisions).
"""

from __future__ import annotations

import bpy

from . import materials
from .materials import COLOR_ATTR
from .builder import Tree
from ..runtime_formats import npmath

GROUP_NAME = "ReSplat Display"
#: Bumped when the tree changes, so an older group in a saved file is rebuilt.
VERSION = 1
VERSION_PROP = "resplat_display_version"
C0 = npmath.SH_C0
#: (name, socket type, default, min, max, description)
INPUTS = (
    ("Ellipsoids", "NodeSocketBool", False, None, None, "Instance an oriented ellipsoid per splat instead of a point"),
    ("Sigma", "NodeSocketFloat", 2.0, 0.05, 8.0,
     "Size in standard deviations (ellipsoid radius, point radius x largest scale)"),
    ("Fraction", "NodeSocketFloat", 1.0, 0.0, 1.0, "Expected fraction of splats shown (random subset)"),
    ("Seed", "NodeSocketInt", 0, None, None, "Seed of the random subset"),
    ("Detail", "NodeSocketInt", 1, 1, 4, "Ico-sphere subdivisions of the ellipsoids"),
)


def display_group():
    """The shared ``GeometryNodeTree`` named :data:`GROUP_NAME`, built if missing or outdated."""
    group = bpy.data.node_groups.get(GROUP_NAME)
    if group is not None and group.bl_idname == "GeometryNodeTree" and group.get(VERSION_PROP) == VERSION:
        return group
    if group is None or group.bl_idname != "GeometryNodeTree":
        group = bpy.data.node_groups.new(GROUP_NAME, "GeometryNodeTree")
    _build(group)
    group[VERSION_PROP] = VERSION
    return group


def _interface(group):
    group.interface.clear()
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    for name, kind, default, lo, hi, desc in INPUTS:
        s = group.interface.new_socket(name, description=desc, in_out="INPUT", socket_type=kind)
        s.default_value = default
        if lo is not None:
            s.min_value, s.max_value = lo, hi
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")


def _named(t, name, data_type):
    return t.node("GeometryNodeInputNamedAttribute", name, data_type=data_type)


def _switch(t, kind, cond, if_false, if_true):
    return t.node("GeometryNodeSwitch", t.out(cond, "Exists") if hasattr(cond, "outputs") else cond,
                  if_false, if_true, input_type=kind)


def _math(t, op, *args):
    return t.node("ShaderNodeMath", *args, operation=op)


def _scale(t):
    """sigma [metres]: native ``scale`` or exp of ``resplat_log_scale``."""
    native = _named(t, "scale", "FLOAT_VECTOR")
    xyz = t.node("ShaderNodeSeparateXYZ", t.out(_named(t, "resplat_log_scale", "FLOAT_VECTOR"), "Attribute"))
    exp = t.node("ShaderNodeCombineXYZ", *(_math(t, "EXPONENT", t.out(xyz, c)) for c in "XYZ"))
    return _switch(t, "VECTOR", native, exp, t.out(native, "Attribute"))


def _rotation(t):
    """Unit rotation: native ``rotation`` or ``resplat_rotation``, normalised."""
    native = _named(t, "rotation", "QUATERNION")
    raw = _switch(t, "ROTATION", native, t.out(_named(t, "resplat_rotation", "QUATERNION"), "Attribute"),
                  t.out(native, "Attribute"))
    q = t.node("FunctionNodeRotationToQuaternion", raw)
    xyz = t.node("ShaderNodeCombineXYZ", *(t.out(q, c) for c in "XYZ"))
    dot = t.node("ShaderNodeVectorMath", xyz, xyz, operation="DOT_PRODUCT")
    norm = _math(t, "SQRT", _math(t, "MULTIPLY_ADD", t.out(q, "W"), t.out(q, "W"), t.out(dot, "Value")))
    return t.node("FunctionNodeQuaternionToRotation", *(_math(t, "DIVIDE", t.out(q, c), norm) for c in "WXYZ"))


def _color(t):
    """RGBA: clamp(0.5 + C0 DC, 0, 1) and opacity, from either schema."""
    base = _named(t, "radiance:base", "FLOAT_COLOR")
    rgba = t.node("FunctionNodeSeparateColor", t.out(base, "Attribute"))
    logit = t.out(_named(t, "resplat_opacity_logit", "FLOAT"), "Attribute")
    sigmoid = _math(t, "DIVIDE", 1.0, _math(t, "ADD", _math(t, "EXPONENT", _math(t, "MULTIPLY", logit, -1.0)), 1.0))
    opacity = _switch(t, "FLOAT", base, sigmoid, t.out(rgba, "Alpha"))
    dc_native = t.node("ShaderNodeCombineXYZ", *(t.out(rgba, c) for c in ("Red", "Green", "Blue")))
    dc = _switch(t, "VECTOR", base, t.out(_named(t, "resplat_sh_dc", "FLOAT_VECTOR"), "Attribute"), dc_native)
    col = t.node("ShaderNodeVectorMath", dc, (C0, C0, C0), (0.5, 0.5, 0.5), operation="MULTIPLY_ADD")
    col = t.node("ShaderNodeVectorMath", col, (0.0, 0.0, 0.0), operation="MAXIMUM")
    col = t.node("ShaderNodeVectorMath", col, (1.0, 1.0, 1.0), operation="MINIMUM")
    xyz = t.node("ShaderNodeSeparateXYZ", col)
    return t.node("FunctionNodeCombineColor", *(t.out(xyz, c) for c in "XYZ"), opacity)


def _build(group):
    _interface(group)
    t = Tree(group)
    gi = t.node("NodeGroupInput")
    inp = {name: t.out(gi, name) for name, *_ in INPUTS}
    drop = t.node("FunctionNodeBooleanMath", t.node("FunctionNodeRandomValue", named={
        "Probability": inp["Fraction"], "Seed": inp["Seed"]}, data_type="BOOLEAN"), operation="NOT")
    kept = t.node("GeometryNodeDeleteGeometry", t.out(gi, "Geometry"), drop, domain="POINT")
    stored = t.node("GeometryNodeStoreNamedAttribute", kept, None, COLOR_ATTR, _color(t),
                    data_type="FLOAT_COLOR", domain="POINT")
    scale = _scale(t)
    xyz = t.node("ShaderNodeSeparateXYZ", scale)
    largest = _math(t, "MAXIMUM", t.out(xyz, "X"), _math(t, "MAXIMUM", t.out(xyz, "Y"), t.out(xyz, "Z")))
    points = t.node("GeometryNodeSetPointRadius", stored, None, _math(t, "MULTIPLY", largest, inp["Sigma"]))
    points = t.node("GeometryNodeSetMaterial", points, None, materials.points_material())
    sphere = t.node("GeometryNodeMeshIcoSphere", inp["Sigma"], inp["Detail"])
    sphere = t.node("GeometryNodeSetMaterial", sphere, None, materials.splat_material())
    inst = t.node("GeometryNodeInstanceOnPoints", stored, None, sphere,
                  named={"Rotation": _rotation(t), "Scale": scale})
    out = t.node("GeometryNodeSwitch", inp["Ellipsoids"], points, inst, input_type="GEOMETRY")
    t.node("NodeGroupOutput", out)
