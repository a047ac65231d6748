"""glTF 2.0 with ``KHR_gaussian_splatting``: binary ``.glb`` and ``.gltf`` + ``.bin``.

Source: the extension's README in github.com/KhronosGroup/glTF,
``extensions/2.0/Khronos/KHR_gaussian_splatting/README.md`` ("Ellipse Kernel", "Attributes",
"Spherical Harmonics Attributes", "Fallback Behavior"), and the glTF 2.0 specification (GLB
container, accessors, buffer views, coordinate system).

One mesh primitive with ``mode`` POINTS (0) and the attributes
  ``POSITION``                                   VEC3 float, the splat centres;
  ``KHR_gaussian_splatting:ROTATION``            VEC4 float, unit quaternion (x, y, z, w);
  ``KHR_gaussian_splatting:SCALE``               VEC3 float, *linear* standard deviations;
  ``KHR_gaussian_splatting:OPACITY``             SCALAR float, *activated* opacity in [0, 1];
  ``KHR_gaussian_splatting:SH_DEGREE_l_COEF_n``  VEC3 float, RGB of SH coefficient (l, m = n - l),
                                                  l = 0 being the DC coefficient (not a colour);
  ``COLOR_0``                                     VEC4 unsigned byte normalised, the fallback
                                                  point colour: linear RGB of the clamped diffuse
                                                  colour 0.5 + C0 * DC (decoded from sRGB) and
                                                  the opacity;
and the extension object ``{"kernel": "ellipse", "colorSpace": "srgb_rec709_display",
"projection": "perspective", "sortingMethod": "cameraDistance"}``.

Axes: glTF is right-handed with +Y up and the front facing +Z. We write our RDF scene turned
180 degrees about z (x left, y up, z forward: "LUF", as Niantic's spz README names glTF's
convention and as PlayCanvas splat-transform writes it), see :mod:`resplat.formats.axes`;
reading turns it back.

The reader also accepts the quantised component types the extension allows (normalised
signed byte / short rotations, unsigned byte / short scales and opacities), interleaved buffer
views (``byteStride``), ``data:`` buffer URIs, several splat primitives (concatenated at their
lowest SH degree) and node transforms made of a translation and a uniform positive scale.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from urllib.parse import unquote

import numpy as np

from ..errors import SplatFileError
from .arrays import SH_C0, SH_COUNTS, SplatArrays, logit
from .atomic import atomic_write
from .axes import TURN_Z, turn
from .common import build_arrays, check_for_write, read_bytes

EXT = "KHR_gaussian_splatting"
GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
ARRAY_BUFFER = 34962
FLOAT, BYTE, UBYTE, SHORT, USHORT, UINT = 5126, 5120, 5121, 5122, 5123, 5125
_DTYPES = {FLOAT: "<f4", BYTE: "i1", UBYTE: "u1", SHORT: "<i2", USHORT: "<u2", UINT: "<u4"}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
#: Accepted component types per attribute (KHR_gaussian_splatting "Attributes" table); the
#: boolean says whether integer types must be normalised.
_ALLOWED = {
    "POSITION": ({FLOAT}, False),
    f"{EXT}:ROTATION": ({FLOAT, BYTE, SHORT}, True),
    f"{EXT}:SCALE": ({FLOAT, UBYTE, USHORT}, None),
    f"{EXT}:OPACITY": ({FLOAT, UBYTE, USHORT}, True),
}
#: Opacities are stored activated; reading clamps them this far inside (0, 1) so the logit
#: stays finite (float32 sigmoid of a logit above ~17 is exactly 1).
_OPACITY_EPS = 2.0**-24


def sh_name(k: int) -> str:
    """Attribute name of SH coefficient k (0 = DC): ``KHR_gaussian_splatting:SH_DEGREE_l_COEF_n``."""
    degree = int(np.sqrt(k))
    return f"{EXT}:SH_DEGREE_{degree}_COEF_{k - degree * degree}"


# -- writing ---------------------------------------------------------------------------------------
def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def encode_gltf(arrays: SplatArrays, path, uri: str | None = None) -> tuple[dict, bytes]:
    """The glTF JSON document and its binary buffer for ``arrays`` (see the module docstring).

    ``uri`` names the external buffer (``.gltf`` + ``.bin``); None for the GLB-stored buffer.

    Raises:
        SplatFileError: 0 splats, or a scale whose exponential overflows float32.
    """
    n = len(arrays)
    if n == 0:
        raise SplatFileError(path, "glTF cannot hold 0 splats (accessor count must be at least 1)")
    means, quats, sh_rest = turn(arrays.means, arrays.quats, arrays.sh[:, 1:], TURN_Z)
    with np.errstate(over="ignore"):
        scales = np.exp(arrays.log_scales.astype(np.float64)).astype(np.float32)
    if not np.isfinite(scales).all():
        raise SplatFileError(path, f"a log scale of {arrays.log_scales.max():.6g} overflows float32 in glTF's linear scale")
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    opacity = 1.0 / (1.0 + np.exp(-arrays.logit_opacities.astype(np.float64)))
    colour = _srgb_to_linear(np.clip(0.5 + SH_C0 * arrays.sh[:, 0].astype(np.float64), 0.0, 1.0))
    rgba = np.rint(np.concatenate([colour, opacity[:, None]], axis=1) * 255.0).astype(np.uint8)
    pos32 = means.astype(np.float32)
    columns: list[tuple[str, np.ndarray, int, str, dict]] = [
        ("POSITION", pos32, FLOAT, "VEC3",
         {"min": pos32.min(axis=0).tolist(), "max": pos32.max(axis=0).tolist()}),
        ("COLOR_0", rgba, UBYTE, "VEC4", {"normalized": True}),
        (f"{EXT}:ROTATION", quats[:, [1, 2, 3, 0]].astype(np.float32), FLOAT, "VEC4", {}),
        (f"{EXT}:SCALE", scales, FLOAT, "VEC3", {}),
        (f"{EXT}:OPACITY", opacity.astype(np.float32), FLOAT, "SCALAR", {}),
        (sh_name(0), arrays.sh[:, 0], FLOAT, "VEC3", {}),
    ]
    columns += [(sh_name(k + 1), sh_rest[:, k], FLOAT, "VEC3", {}) for k in range(sh_rest.shape[1])]
    views, accessors, attributes, chunks, offset = [], [], {}, [], 0
    for i, (name, data, ctype, kind, extra) in enumerate(columns):
        raw = np.ascontiguousarray(data, _DTYPES[ctype]).tobytes()
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(raw), "target": ARRAY_BUFFER})
        accessors.append({"bufferView": i, "componentType": ctype, "count": n, "type": kind, **extra})
        attributes[name] = i
        chunks.append(raw)
        offset += len(raw)  # every element is a multiple of 4 bytes: views stay 4-aligned
    buffer = {"byteLength": offset}
    if uri is not None:
        buffer["uri"] = uri
    doc = {
        "asset": {"version": "2.0", "generator": "resplat"},
        "extensionsUsed": [EXT],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{
            "attributes": attributes,
            "mode": 0,
            "extensions": {EXT: {"kernel": "ellipse", "colorSpace": "srgb_rec709_display",
                                 "projection": "perspective", "sortingMethod": "cameraDistance"}},
        }]}],
        "buffers": [buffer],
        "bufferViews": views,
        "accessors": accessors,
    }
    return doc, b"".join(chunks)


def _padded(data: bytes, pad: bytes) -> bytes:
    return data + pad * (-len(data) % 4)


def encode_glb(arrays: SplatArrays, path) -> bytes:
    """The bytes of a GLB file holding ``arrays`` (12-byte header, JSON chunk, BIN chunk)."""
    doc, blob = encode_gltf(arrays, path)
    js = _padded(json.dumps(doc, separators=(",", ":")).encode(), b" ")
    blob = _padded(blob, b"\0")
    total = 12 + 8 + len(js) + 8 + len(blob)
    return b"".join([struct.pack("<4sII", GLB_MAGIC, 2, total), struct.pack("<II", len(js), CHUNK_JSON), js,
                     struct.pack("<II", len(blob), CHUNK_BIN), blob])


def write_glb(arrays: SplatArrays, path: str | os.PathLike) -> None:
    """Write ``arrays`` as a binary glTF (``.glb``) with KHR_gaussian_splatting, atomically.

    Raises:
        SplatFileError: invalid ``arrays`` (checked before writing), 0 splats, a scale that
            overflows float32, or the file cannot be written.
    """
    check_for_write(arrays, path)
    data = encode_glb(arrays, path)
    with atomic_write(path) as fh:
        fh.write(data)


def write_gltf(arrays: SplatArrays, path: str | os.PathLike) -> None:
    """Write ``arrays`` as ``.gltf`` JSON plus a ``.bin`` buffer beside it (same stem), each
    atomically; the buffer is written first, so the JSON never points at a missing buffer.

    Raises:
        SplatFileError: as :func:`write_glb`.
    """
    check_for_write(arrays, path)
    bin_path = os.path.splitext(os.fspath(path))[0] + ".bin"
    doc, blob = encode_gltf(arrays, path, uri=os.path.basename(bin_path))
    with atomic_write(bin_path) as fh:
        fh.write(blob)
    with atomic_write(path) as fh:
        fh.write(json.dumps(doc, indent=1).encode())


# -- reading ---------------------------------------------------------------------------------------
class _Doc:
    """A parsed glTF document and its buffers, with bounds-checked accessor reads."""

    def __init__(self, path, doc, buffers: list[bytes]):
        self.path, self.doc, self.buffers = path, doc, buffers

    def fail(self, problem: str):
        raise SplatFileError(self.path, problem)

    def item(self, kind: str, index) -> dict:
        items = self.doc.get(kind)
        if not isinstance(items, list) or not isinstance(index, int) or not 0 <= index < len(items) \
                or not isinstance(items[index], dict):
            self.fail(f"glTF refers to {kind}[{index!r}], which does not exist")
        return items[index]

    def accessor(self, index, name: str) -> tuple[np.ndarray, dict]:
        """Accessor ``index`` as an [count, components] array of its component type."""
        acc = self.item("accessors", index)
        if "sparse" in acc:
            self.fail(f"glTF accessor {index} ({name}) is sparse, which is not supported")
        ctype, kind, count = acc.get("componentType"), acc.get("type"), acc.get("count")
        if ctype not in _DTYPES or kind not in _NCOMP or not isinstance(count, int) or count < 0:
            self.fail(f"glTF accessor {index} ({name}) has an invalid componentType, type or count")
        dtype, ncomp = np.dtype(_DTYPES[ctype]), _NCOMP[kind]
        if "bufferView" not in acc:
            return np.zeros((count, ncomp), dtype), acc  # all zeros, glTF 2.0 "Accessors"
        view = self.item("bufferViews", acc["bufferView"])
        buf_index = view.get("buffer")
        buf = self.buffers[buf_index] if isinstance(buf_index, int) and 0 <= buf_index < len(self.buffers) else None
        if buf is None:
            self.fail(f"glTF bufferView {acc['bufferView']} refers to a missing buffer")
        v_off, v_len = view.get("byteOffset", 0), view.get("byteLength")
        a_off = acc.get("byteOffset", 0)
        elem = dtype.itemsize * ncomp
        stride = view.get("byteStride") or elem
        ints = all(isinstance(x, int) and x >= 0 for x in (v_off, v_len, a_off, stride))
        if not ints or v_off + v_len > len(buf) or stride < elem:
            self.fail(f"glTF bufferView {acc['bufferView']} lies outside its {len(buf)}-byte buffer")
        need = a_off + (stride * (count - 1) + elem if count else 0)
        if need > v_len:
            self.fail(f"glTF accessor {index} ({name}) needs {need} bytes, its bufferView holds {v_len}")
        if count == 0:
            return np.zeros((0, ncomp), dtype), acc
        start = v_off + a_off
        if stride == elem:
            out = np.frombuffer(buf, dtype, count * ncomp, start).reshape(count, ncomp)
        else:
            rows = np.frombuffer(buf, np.uint8, stride * (count - 1) + elem, start)
            out = np.lib.stride_tricks.as_strided(rows, (count, elem), (stride, 1)).copy()
            out = out.view(dtype).reshape(count, ncomp)
        return out, acc

    def values(self, index, name: str, kind: str, normalized_rule) -> np.ndarray:
        """Accessor as float64 [count, components], integer types decoded per glTF 2.0
        "Animations"/"Accessors" (normalised: signed max(c / (2^(b-1) - 1), -1), unsigned
        c / (2^b - 1))."""
        arr, acc = self.accessor(index, name)
        if acc.get("type") != kind:
            self.fail(f"glTF attribute {name} must be {kind}, got {acc.get('type')}")
        ctype = acc["componentType"]
        allowed, must_normalise = _ALLOWED.get(name, ({FLOAT}, False))
        normalised = bool(acc.get("normalized", False))
        if ctype not in allowed or (ctype != FLOAT and must_normalise is True and not normalised):
            self.fail(f"glTF attribute {name} has component type {ctype}, which KHR_gaussian_splatting does not allow")
        with np.errstate(invalid="ignore"):  # a signalling NaN casts quietly; build_arrays refuses NaN
            out = arr.astype(np.float64)
        if ctype != FLOAT and normalised:
            info = np.iinfo(arr.dtype)
            out = np.maximum(out / info.max, -1.0) if info.min < 0 else out / info.max
        return out


def _splat_primitives(g: _Doc) -> list[tuple[dict, np.ndarray, float]]:
    """(primitive, translation [3], uniform scale) of every splat primitive the scene shows."""
    doc = g.doc
    scenes = doc.get("scenes")
    if isinstance(scenes, list) and scenes:
        scene = g.item("scenes", doc.get("scene", 0))
        roots = scene.get("nodes", [])
    else:
        roots = list(range(len(doc.get("nodes", []) or [])))
    found, stack, seen = [], [(r, np.zeros(3), 1.0) for r in roots], set()
    while stack:
        index, t, s = stack.pop()
        if not isinstance(index, int) or index in seen:
            g.fail(f"glTF node {index} appears twice in the scene hierarchy")
        seen.add(index)
        node = g.item("nodes", index)
        lt, ls = _node_transform(g, node, index)
        t, s = t + s * lt, s * ls
        if "mesh" in node:
            for prim in g.item("meshes", node["mesh"]).get("primitives", []):
                if isinstance(prim, dict) and EXT in (prim.get("extensions") or {}):
                    found.append((prim, t, s))
        stack.extend((c, t, s) for c in node.get("children", []))
    if not found:
        g.fail(f"glTF has no mesh primitive with the {EXT} extension in its scene")
    return found


def _node_transform(g: _Doc, node: dict, index: int) -> tuple[np.ndarray, float]:
    """(translation, uniform scale) of a node; other transforms are refused."""
    try:
        if "matrix" in node:
            m = np.asarray(node["matrix"], np.float64).reshape(4, 4).T  # column-major
            t, lin = m[:3, 3], m[:3, :3]
            s = float(lin[0, 0])
            if not np.allclose(lin, s * np.eye(3), atol=1e-6) or not np.allclose(m[3], [0, 0, 0, 1]):
                raise ValueError
        else:
            t = np.asarray(node.get("translation", [0, 0, 0]), np.float64).reshape(3)
            r = np.asarray(node.get("rotation", [0, 0, 0, 1]), np.float64).reshape(4)
            sv = np.asarray(node.get("scale", [1, 1, 1]), np.float64).reshape(3)
            if not np.allclose(np.abs(r), [0, 0, 0, 1], atol=1e-6) or not np.allclose(sv, sv[0]):
                raise ValueError
            s = float(sv[0])
    except (TypeError, ValueError):
        g.fail(f"glTF node {index} has a rotation, non-uniform scale or invalid transform; only a "
               "translation and a uniform scale are supported for splats")
    if not (s > 0 and np.isfinite(s) and np.isfinite(t).all()):
        g.fail(f"glTF node {index} has a non-positive or non-finite scale")
    return t, s


def _read_primitive(g: _Doc, prim: dict, t: np.ndarray, s: float) -> SplatArrays:
    attrs = prim.get("attributes")
    if not isinstance(attrs, dict):
        g.fail("glTF splat primitive has no attributes")
    if prim.get("mode", 4) != 0:
        g.fail(f"glTF splat primitive has mode {prim.get('mode', 4)!r}, {EXT} requires POINTS (0)")
    need = ["POSITION", f"{EXT}:ROTATION", f"{EXT}:SCALE", f"{EXT}:OPACITY", sh_name(0)]
    missing = [a for a in need if a not in attrs]
    if missing:
        g.fail(f"glTF splat primitive lacks attribute {', '.join(missing)}")
    degree = 0
    for d in (1, 2, 3):
        if all(sh_name(k) in attrs for k in range(SH_COUNTS[d - 1], SH_COUNTS[d])):
            degree = d
        else:
            break
    cols = {a: g.values(attrs[a], a, kind, None) for a, kind in
            zip(need, ["VEC3", "VEC4", "VEC3", "SCALAR", "VEC3"])}
    rest = [g.values(attrs[sh_name(k)], sh_name(k), "VEC3", None) for k in range(1, SH_COUNTS[degree])]
    n = len(cols["POSITION"])
    if any(len(c) != n for c in list(cols.values()) + rest):
        g.fail("glTF splat attributes have different counts")
    scale = cols[f"{EXT}:SCALE"]
    opacity = cols[f"{EXT}:OPACITY"][:, 0]
    if (scale < 0).any() or not np.isfinite(scale).all():
        g.fail("glTF splat scale is negative or not finite (KHR_gaussian_splatting: linear, non-negative)")
    if not ((opacity >= 0) & (opacity <= 1)).all():
        g.fail("glTF splat opacity lies outside [0, 1] (KHR_gaussian_splatting: activated opacity)")
    sh_rest = np.stack(rest, axis=1) if rest else np.zeros((n, 0, 3))
    means, quats, sh_rest = turn(cols["POSITION"] * s + t, cols[f"{EXT}:ROTATION"][:, [3, 0, 1, 2]], sh_rest, TURN_Z)
    with np.errstate(divide="ignore"):
        log_scales = np.log(np.maximum(scale * s, np.finfo(np.float32).tiny))
    return build_arrays(
        g.path, means=means, quats=quats, log_scales=log_scales,
        logit_opacities=logit(np.clip(opacity, _OPACITY_EPS, 1 - _OPACITY_EPS)),
        sh=np.concatenate([cols[sh_name(0)][:, None, :], sh_rest], axis=1),
    )


def _parse_json(path, raw: bytes) -> dict:
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SplatFileError(path, f"glTF JSON is malformed ({type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise SplatFileError(path, "glTF JSON is not an object")
    version = str((doc.get("asset") or {}).get("version", "")) if isinstance(doc.get("asset"), dict) else ""
    if not version.startswith("2."):
        raise SplatFileError(path, f"not a glTF 2.0 document (asset.version {version!r})")
    return doc


def _read_doc(path, doc: dict, glb_bin: bytes | None) -> SplatArrays:
    buffers = []
    for i, b in enumerate(doc.get("buffers") or []):
        if not isinstance(b, dict) or not isinstance(b.get("byteLength"), int):
            raise SplatFileError(path, f"glTF buffers[{i}] is malformed")
        uri = b.get("uri")
        if uri is None:
            if i != 0 or glb_bin is None:
                raise SplatFileError(path, f"glTF buffers[{i}] has no uri and there is no GLB binary chunk")
            data = glb_bin
        elif not isinstance(uri, str):
            raise SplatFileError(path, f"glTF buffers[{i}].uri is not a string")
        elif uri.startswith("data:"):
            try:
                data = base64.b64decode(uri.split(",", 1)[1], validate=True)
            except (IndexError, ValueError):
                raise SplatFileError(path, f"glTF buffers[{i}] has a malformed data: uri") from None
        else:
            target = os.path.join(os.path.dirname(os.fspath(path)), unquote(uri))
            try:
                data = read_bytes(target)
            except SplatFileError as e:
                raise SplatFileError(path, f"buffer {uri!r}: {e.problem}") from None
        if len(data) < b["byteLength"]:
            raise SplatFileError(path, f"glTF buffers[{i}] holds {len(data)} bytes, byteLength says {b['byteLength']}")
        buffers.append(data)
    g = _Doc(path, doc, buffers)
    try:
        parts = [_read_primitive(g, *p) for p in _splat_primitives(g)]
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as e:
        # a JSON value of the wrong type somewhere the checks above do not look
        raise SplatFileError(path, f"malformed glTF document ({type(e).__name__}: {e})") from None
    degree = min(p.sh_degree for p in parts)
    parts = [p.with_sh_degree(degree) for p in parts]
    if len(parts) == 1:
        return parts[0]
    return build_arrays(path, **{k: np.concatenate([p.arrays()[k] for p in parts]) for k in parts[0].arrays()})


def read_glb(path: str | os.PathLike) -> SplatArrays:
    """Read a binary glTF (``.glb``) holding KHR_gaussian_splatting primitives.

    Returns float32 :class:`SplatArrays` in our RDF axes (log scales, logit opacities clamped
    2^-24 inside (0, 1), (w, x, y, z) quaternions).

    Raises:
        SplatFileError: not a GLB, truncated or malformed chunks, malformed JSON, no splat
            primitive, missing or out-of-bounds accessors, disallowed component types,
            negative scales, opacities outside [0, 1], unsupported node transforms.
    """
    data = read_bytes(path)
    if len(data) < 20 or data[:4] != GLB_MAGIC:
        raise SplatFileError(path, "not a GLB file (no 'glTF' magic)")
    _, version, total = struct.unpack_from("<4sII", data)
    if version != 2:
        raise SplatFileError(path, f"unsupported GLB version {version} (expected 2)")
    if total > len(data):
        raise SplatFileError(path, f"GLB header says {total} bytes, the file holds {len(data)} (truncated)")
    offset, js, blob = 12, None, None
    while offset + 8 <= total:
        length, kind = struct.unpack_from("<II", data, offset)
        if offset + 8 + length > total:
            raise SplatFileError(path, f"GLB chunk at byte {offset} runs past the end of the file (truncated)")
        chunk = data[offset + 8:offset + 8 + length]
        if kind == CHUNK_JSON and js is None:
            js = chunk
        elif kind == CHUNK_BIN and blob is None:
            blob = chunk
        offset += 8 + length
    if js is None:
        raise SplatFileError(path, "GLB has no JSON chunk")
    return _read_doc(path, _parse_json(path, js), blob)


def read_gltf(path: str | os.PathLike) -> SplatArrays:
    """Read a ``.gltf`` JSON document (buffers in ``.bin`` files beside it or ``data:`` URIs)
    holding KHR_gaussian_splatting primitives; see :func:`read_glb`.

    Raises:
        SplatFileError: as :func:`read_glb`, or a missing buffer file.
    """
    return _read_doc(path, _parse_json(path, read_bytes(path)), None)
