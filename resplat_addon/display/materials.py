"""Materials of the splat display, coloured by the :data:`COLOR_ATTR` attribute.

Both emit the splat colour (splats carry baked radiance: no lighting) mixed with a Transparent
BSDF by an alpha, so Cycles and EEVEE (dithered, order independent) render them alike:

- :func:`points_material` ("ReSplat Points", point mode): alpha = opacity, one flat sphere per
  splat (Cycles renders point-cloud points as spheres).
- :func:`splat_material` ("ReSplat Splat", ellipsoid mode): the 3DGS footprint. The instanced
  ico-sphere lives in the splat's *sigma units* (instance scale = the linear scales, rotation =
  the quaternion), so in object coordinates the Gaussian is the unit normal distribution. A
  camera ray through a front-face point p with local direction v (the Incoming vector
  transformed world -> object, normalised) passes the centre at distance
  d = |p - (p . v) v|; the Gaussian's largest value along the ray is exp(-d^2 / 2), which is
  what the 3DGS rasteriser evaluates for a ray through the projected 2D Gaussian (EWA splatting,
  Zwicker et al. 2001; Kerbl et al. 2023 eq. 4-5) up to its affine projection approximation.
  alpha = opacity * exp(-d^2 / 2) on front faces, 0 on back faces (so each splat is counted
  once). docs/blender-display.md lists the limits.

Colour: the attribute holds 0.5 + C0 DC in the training images' sRGB encoding; the shader
turns it into linear emission with ((c + 0.055) / 1.055)^2.4, exact above c = 0.04045 and within
1e-3 below it (IEC 61966-2-1's linear toe is dropped), so a render through the Standard view
transform shows the stored colour.
"""

from __future__ import annotations

import bpy

from .builder import Tree

#: FLOAT_COLOR point/instance attribute written by the display group: (0.5 + C0 DC, opacity).
COLOR_ATTR = "resplat_color"
POINTS_NAME = "ReSplat Points"
SPLAT_NAME = "ReSplat Splat"
VERSION = 1
VERSION_PROP = "resplat_display_version"


def _material(name, build):
    mat = bpy.data.materials.get(name)
    if mat is not None and mat.get(VERSION_PROP) == VERSION:
        return mat
    mat = mat or bpy.data.materials.new(name)
    if not mat.node_tree:
        mat.use_nodes = True
    mat.surface_render_method = "DITHERED"
    build(Tree(mat.node_tree))
    mat[VERSION_PROP] = VERSION
    return mat


def _emit(t, attr, alpha):
    """Material output of mix(Transparent, Emission(linear colour), alpha)."""
    lin = t.node("ShaderNodeVectorMath", t.out(attr, "Color"), (1 / 1.055,) * 3, (0.055 / 1.055,) * 3,
                 operation="MULTIPLY_ADD")
    lin = t.node("ShaderNodeVectorMath", lin, (2.4, 2.4, 2.4), operation="POWER")
    emit = t.node("ShaderNodeEmission", lin, 1.0)
    mix = t.node("ShaderNodeMixShader", alpha, t.node("ShaderNodeBsdfTransparent"), emit)
    t.node("ShaderNodeOutputMaterial", mix)


def _attribute(t, kind):
    return t.node("ShaderNodeAttribute", attribute_type=kind, attribute_name=COLOR_ATTR)


def _build_points(t):
    attr = _attribute(t, "GEOMETRY")
    _emit(t, attr, t.out(attr, "Alpha"))


def _build_splat(t):
    attr = _attribute(t, "INSTANCER")
    p = t.out(t.node("ShaderNodeTexCoord"), "Object")
    geo = t.node("ShaderNodeNewGeometry")
    v = t.node("ShaderNodeVectorTransform", t.out(geo, "Incoming"), vector_type="VECTOR",
               convert_from="WORLD", convert_to="OBJECT")
    v = t.node("ShaderNodeVectorMath", v, operation="NORMALIZE")
    off = t.node("ShaderNodeVectorMath", p, t.out(v, "Vector"), operation="PROJECT")
    off = t.node("ShaderNodeVectorMath", p, t.out(off, "Vector"), operation="SUBTRACT")
    d2 = t.node("ShaderNodeVectorMath", off, off, operation="DOT_PRODUCT")
    g = t.node("ShaderNodeMath", t.node("ShaderNodeMath", t.out(d2, "Value"), -0.5, operation="MULTIPLY"),
               operation="EXPONENT")
    front = t.node("ShaderNodeMath", 1.0, t.out(geo, "Backfacing"), operation="SUBTRACT")
    alpha = t.node("ShaderNodeMath", t.node("ShaderNodeMath", t.out(attr, "Alpha"), g, operation="MULTIPLY"),
                   front, operation="MULTIPLY")
    _emit(t, attr, alpha)


def points_material():
    """The shared "ReSplat Points" material (built once per file)."""
    return _material(POINTS_NAME, _build_points)


def splat_material():
    """The shared "ReSplat Splat" Gaussian-footprint material (built once per file)."""
    return _material(SPLAT_NAME, _build_splat)
