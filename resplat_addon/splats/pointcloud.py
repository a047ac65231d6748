"""Blender glue: build a PointCloud object from SplatArrays and read SplatArrays back.

bpy 5.0 has no Python call that adds points to a PointCloud, so :func:`build_object` fills a
mesh with N vertices and the schema's attributes (``foreach_set``) and converts it with
``bpy.ops.object.convert(target='POINTCLOUD')``, which carries attributes over exactly (checked in tests/test_addon_io.py). Attribute layout: :mod:`.schema` and docs/blender-schema.md.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..display import attach as attach_display
from ..runtime_formats import ResplatError, SplatArrays
from . import schema as sch

_KEYS = {"FLOAT": "value", "FLOAT_VECTOR": "vector", "QUATERNION": "value", "FLOAT_COLOR": "color"}
#: Name of the boolean point attribute holding the point cloud's edit-mode selection.
SELECTION = ".selection"


def build_object(context, arrays: SplatArrays, name: str, schema: str | None = None):
    """Link a new PointCloud object holding ``arrays`` to the active collection, make it the
    only selected and the active object, give it the splat display modifier
    (:func:`..display.attach`), and return it.

    Args:
        context: a ``bpy.types.Context`` with a view layer.
        arrays: the splats (file axes, metres), already read and validated.
        name: object and data name.
        schema: :data:`.schema.NATIVE` or :data:`.schema.LEGACY`; default by Blender version.
    """
    schema = schema or sch.schema_for_version(bpy.app.version)
    attrs = sch.encode(arrays, schema)
    mesh = bpy.data.meshes.new(name)
    try:
        mesh.vertices.add(len(arrays))
        for attr_name, (data_type, values) in attrs.items():
            if attr_name == "position":
                mesh.vertices.foreach_set("co", values.ravel())
                continue
            attr = mesh.attributes.new(attr_name, data_type, "POINT")
            attr.data.foreach_set(_KEYS[data_type], values.ravel())
        obj = bpy.data.objects.new(name, mesh)
    except Exception:
        bpy.data.meshes.remove(mesh)
        raise
    context.collection.objects.link(obj)
    view_layer = context.view_layer
    for other in view_layer.objects:
        if other is not None:
            other.select_set(False)
    obj.select_set(True)
    view_layer.objects.active = obj
    with context.temp_override(active_object=obj, object=obj, selected_objects=[obj],
                               selected_editable_objects=[obj]):
        bpy.ops.object.convert(target="POINTCLOUD")
    if mesh.users == 0:
        bpy.data.meshes.remove(mesh)
    pc = obj.data
    pc.name = name
    for leftover in [a.name for a in pc.attributes if a.name.startswith(".select")]:
        pc.attributes.remove(pc.attributes[leftover])
    obj[sch.SH_DEGREE_PROP] = arrays.sh_degree
    attach_display(obj)
    return obj


def splat_schema(obj) -> str | None:
    """The schema of a splat object (:func:`.schema.detect_schema`), or ``None`` when ``obj`` is
    not a PointCloud with splat attributes."""
    if obj is None or obj.type != "POINTCLOUD":
        return None
    return sch.detect_schema(a.name for a in obj.data.attributes)


def _get(attr, n: int) -> np.ndarray:
    width = sch.WIDTHS.get(attr.data_type)
    if width is None or attr.domain != "POINT":
        raise ResplatError(f"splat attribute {attr.name!r} is {attr.data_type} on {attr.domain}, not float on points")
    out = np.empty(n * width, np.float32)
    attr.data.foreach_get(_KEYS[attr.data_type], out)
    return out.reshape(n, width)


def read_arrays(obj, selected_only: bool = False) -> SplatArrays:
    """SplatArrays held by a splat PointCloud object, in object space (transform not applied).

    Args:
        obj: the object.
        selected_only: keep only points whose ``.selection`` attribute is true.

    Raises:
        ResplatError: ``obj`` is not a PointCloud with splat attributes, an attribute has the
            wrong type, a value is not finite, or ``selected_only`` without a selection.
    """
    schema = splat_schema(obj)
    if schema is None:
        label = "nothing" if obj is None else f"object {obj.name!r}"
        raise ResplatError(f"{label} is not a point cloud with splat attributes")
    pc = obj.data
    n = len(pc.points)
    names = [a.name for a in pc.attributes]
    degree = int(obj.get(sch.SH_DEGREE_PROP, sch.degree_from_names(schema, names)))
    if degree not in sch.SH_COUNTS:
        raise ResplatError(f"object {obj.name!r}: {sch.SH_DEGREE_PROP} must be 0..3, got {degree}")
    wanted = ["position", *sch.required_names(schema), *sch.sh_rest_names(schema, degree)]
    attrs = {k: _get(pc.attributes[k], n) for k in wanted if k in pc.attributes}
    try:
        arrays = sch.decode(attrs, schema, degree)
    except ResplatError as e:
        raise ResplatError(f"object {obj.name!r}: {e}") from None
    if selected_only:
        sel = pc.attributes.get(SELECTION)
        if sel is None or sel.data_type != "BOOLEAN":
            raise ResplatError(f"object {obj.name!r} has no point selection (edit the point cloud and select points)")
        mask = np.zeros(n, bool)
        sel.data.foreach_get("value", mask)
        arrays = arrays.select(mask)
    return arrays
