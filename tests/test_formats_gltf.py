"""glTF 2.0 KHR_gaussian_splatting: the bytes we write hold what the extension's README says
(linear scales, activated opacities, unit xyzw rotations, SH DC coefficients, glTF's +Y-up axes),
the SH turn keeps the colour seen from every direction, and the reader accepts the quantised
component types, interleaved views and node transforms the specs allow."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from resplat.errors import SplatFileError
from resplat.formats import read_splat_arrays, write_splat_arrays
from resplat.formats.arrays import SH_C0, SplatArrays, sigmoid
from resplat.formats.axes import TURN_Z, turn
from resplat.formats.gltf import encode_glb, sh_name

from test_formats_spz import _eval_sh

EXT = "KHR_gaussian_splatting"


def _parse(data: bytes) -> tuple[dict, bytes]:
    magic, version, total = struct.unpack_from("<4sII", data)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942 and blen % 4 == 0
    return json.loads(data[20:20 + jlen]), data[28 + jlen:28 + jlen + blen]


def _column(doc, blob, name) -> np.ndarray:
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"][name]]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {5126: "<f4", 5121: "u1"}[acc["componentType"]]
    k = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    return np.frombuffer(blob, dtype, acc["count"] * k, view["byteOffset"]).reshape(acc["count"], k)


def test_written_glb_holds_the_spec_encodings(train_ply, tmp_path):
    a = read_splat_arrays(train_ply)
    doc, blob = _parse(encode_glb(a, "x.glb"))
    prim = doc["meshes"][0]["primitives"][0]
    assert doc["extensionsUsed"] == [EXT] and prim["mode"] == 0
    assert prim["extensions"][EXT]["kernel"] == "ellipse"
    assert prim["extensions"][EXT]["colorSpace"] == "srgb_rec709_display"
    assert set(prim["attributes"]) == {"POSITION", "COLOR_0", f"{EXT}:ROTATION", f"{EXT}:SCALE", f"{EXT}:OPACITY"} | {
        f"{EXT}:SH_DEGREE_{d}_COEF_{n}" for d in range(4) for n in range(2 * d + 1)}
    pos = _column(doc, blob, "POSITION")
    # glTF +Y up: our RDF turned 180 degrees about z, (x, y, z) -> (-x, -y, z)
    np.testing.assert_array_equal(pos, a.means * np.float32([-1, -1, 1]))
    acc = doc["accessors"][prim["attributes"]["POSITION"]]
    np.testing.assert_allclose(acc["min"], pos.min(0)) and np.testing.assert_allclose(acc["max"], pos.max(0))
    np.testing.assert_allclose(_column(doc, blob, f"{EXT}:SCALE"), np.exp(a.log_scales.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(_column(doc, blob, f"{EXT}:OPACITY")[:, 0], sigmoid(a.logit_opacities), rtol=1e-6)
    rot = _column(doc, blob, f"{EXT}:ROTATION").astype(np.float64)  # x, y, z, w
    np.testing.assert_allclose(np.linalg.norm(rot, axis=1), 1.0, atol=1e-6)
    # the turned Gaussian: covariance D R S^2 R^T D with D = diag(-1, -1, 1)
    def cov(q_wxyz, log_s):
        w, x, y, z = (q_wxyz / np.linalg.norm(q_wxyz, axis=1, keepdims=True)).T
        r = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                      2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                      2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1).reshape(-1, 3, 3)
        s = np.exp(log_s.astype(np.float64))
        return r @ (s[:, :, None] ** 2 * np.transpose(r, (0, 2, 1)))
    d = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(cov(rot[:, [3, 0, 1, 2]], a.log_scales), d @ cov(a.quats.astype(np.float64), a.log_scales) @ d,
                               atol=1e-9)
    np.testing.assert_array_equal(_column(doc, blob, sh_name(0)), a.sh[:, 0])  # DC coefficient, not colour
    rgba = _column(doc, blob, "COLOR_0") / 255.0
    srgb = np.clip(0.5 + SH_C0 * a.sh[:, 0].astype(np.float64), 0, 1)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    assert np.abs(rgba[:, :3] - lin).max() <= 0.5 / 255 + 1e-9
    assert np.abs(rgba[:, 3] - sigmoid(a.logit_opacities)).max() <= 0.5 / 255 + 1e-9


def test_sh_turn_keeps_the_colour_seen_from_every_direction():
    rng = np.random.default_rng(3)
    sh = rng.normal(size=(64, 16, 3))
    d = rng.normal(size=(64, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    _, _, rest = turn(np.zeros((64, 3)), np.ones((64, 4)), sh[:, 1:], TURN_Z)
    turned = np.concatenate([sh[:, :1], rest], axis=1)
    np.testing.assert_allclose(_eval_sh(turned, d * TURN_Z), _eval_sh(sh, d), atol=1e-12)
    assert not np.allclose(_eval_sh(sh, d * TURN_Z), _eval_sh(sh, d))


@pytest.mark.parametrize("ext", ["glb", "gltf", "GLB"])
def test_round_trip_is_float32_exact(train_ply, tmp_path, ext):
    a = read_splat_arrays(train_ply)
    write_splat_arrays(a, tmp_path / f"s.{ext}")
    if ext == "gltf":
        assert (tmp_path / "s.bin").stat().st_size == 240000
        assert json.loads((tmp_path / "s.gltf").read_text())["buffers"][0]["uri"] == "s.bin"
    b = read_splat_arrays(tmp_path / f"s.{ext}")
    np.testing.assert_array_equal(b.means, a.means)
    np.testing.assert_array_equal(b.sh, a.sh)
    np.testing.assert_allclose(b.log_scales, a.log_scales, atol=1e-5)
    np.testing.assert_allclose(sigmoid(b.logit_opacities), sigmoid(a.logit_opacities), atol=1e-6)
    ua = a.quats / np.linalg.norm(a.quats, axis=1, keepdims=True)
    ub = b.quats / np.linalg.norm(b.quats, axis=1, keepdims=True)
    assert np.minimum(np.abs(ua - ub).max(1), np.abs(ua + ub).max(1)).max() < 1e-6


def _gltf(tmp_path, attributes: dict, accessors: list, blob: bytes, views: list, node: dict | None = None):
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [{"mesh": 0, **(node or {})}],
           "meshes": [{"primitives": [{"attributes": attributes, "mode": 0, "extensions": {EXT: {"kernel": "ellipse"}}}]}],
           "buffers": [{"byteLength": len(blob), "uri": "b.bin"}], "bufferViews": views, "accessors": accessors}
    (tmp_path / "b.bin").write_bytes(blob)
    (tmp_path / "s.gltf").write_text(json.dumps(doc))
    return tmp_path / "s.gltf"


def test_reader_accepts_quantised_interleaved_attributes_and_node_transforms(tmp_path):
    """Two splats: float positions, normalised i16 rotations and u8 opacities, u8 linear scales,
    interleaved in one view with byteStride 28, inside a node translated by (1, 2, 3), scale 2."""
    pos = np.float32([[1, 2, 3], [-1, 0, 0.5]])
    rot_i16 = np.int16([[0, 0, 0, 32767], [32767, 0, 0, 0]])  # xyzw: identity, 180 deg about x
    rows = bytearray()
    for i in range(2):
        rows += pos[i].tobytes() + rot_i16[i].tobytes() + bytes([2, 4, 8, 0]) + bytes([255 if i == 0 else 0, 0, 0, 0])
    dc = np.float32([[0.1, 0.2, 0.3], [0, 0, 0]])
    blob = bytes(rows) + dc.tobytes()
    views = [{"buffer": 0, "byteOffset": 0, "byteLength": 56, "byteStride": 28},
             {"buffer": 0, "byteOffset": 56, "byteLength": 24}]
    accessors = [
        {"bufferView": 0, "byteOffset": 0, "componentType": 5126, "count": 2, "type": "VEC3"},
        {"bufferView": 0, "byteOffset": 12, "componentType": 5122, "normalized": True, "count": 2, "type": "VEC4"},
        {"bufferView": 0, "byteOffset": 20, "componentType": 5121, "count": 2, "type": "VEC3"},
        {"bufferView": 0, "byteOffset": 24, "componentType": 5121, "normalized": True, "count": 2, "type": "SCALAR"},
        {"bufferView": 1, "componentType": 5126, "count": 2, "type": "VEC3"},
    ]
    attrs = {"POSITION": 0, f"{EXT}:ROTATION": 1, f"{EXT}:SCALE": 2, f"{EXT}:OPACITY": 3, sh_name(0): 4}
    a = read_splat_arrays(_gltf(tmp_path, attrs, accessors, blob, views, {"translation": [1, 2, 3], "scale": [2, 2, 2]}))
    world = pos * 2 + [1, 2, 3]
    np.testing.assert_allclose(a.means, world * [-1, -1, 1], rtol=1e-6)  # back to RDF
    np.testing.assert_allclose(a.log_scales, np.log(np.float64([[2, 4, 8], [2, 4, 8]]) * 2), rtol=1e-6)
    np.testing.assert_allclose(sigmoid(a.logit_opacities), [1 - 2.0**-24, 2.0**-24], rtol=1e-6)
    np.testing.assert_allclose(a.sh[:, 0], dc)
    # the turn about z maps the identity to a 180-degree turn about z, and 180 about x to 180 about y
    ua = np.abs(a.quats / np.linalg.norm(a.quats, axis=1, keepdims=True))
    np.testing.assert_allclose(ua, [[0, 0, 0, 1], [0, 0, 1, 0]], atol=1e-6)
    # a rotated node is refused with a clear message
    doc = json.loads((tmp_path / "s.gltf").read_text())
    doc["nodes"][0]["rotation"] = [0, 0.7071068, 0, 0.7071068]
    (tmp_path / "s.gltf").write_text(json.dumps(doc))
    with pytest.raises(SplatFileError, match="node 0 has a rotation"):
        read_splat_arrays(tmp_path / "s.gltf")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["meshes"][0]["primitives"][0].pop("extensions"), "no mesh primitive with the KHR_gaussian_splatting"),
    (lambda d: d["meshes"][0]["primitives"][0]["attributes"].pop(f"{EXT}:SCALE"), "lacks attribute KHR_gaussian_splatting:SCALE"),
    (lambda d: d["accessors"][0].update(count=10**6), "needs 12000000 bytes"),
    (lambda d: d["meshes"][0]["primitives"][0].update(mode=4), "requires POINTS"),
    (lambda d: d["accessors"][2].update(componentType=5125), "does not allow"),  # ROTATION as u32
    (lambda d: d.update(asset={"version": "1.0"}), "not a glTF 2.0"),
])
def test_malformed_documents_raise_one_line_errors(train_ply, tmp_path, change, message):
    a = read_splat_arrays(train_ply).select(np.arange(4))
    write_splat_arrays(a, tmp_path / "s.gltf")
    doc = json.loads((tmp_path / "s.gltf").read_text())
    change(doc)
    (tmp_path / "s.gltf").write_text(json.dumps(doc))
    with pytest.raises(SplatFileError, match=message) as e:
        read_splat_arrays(tmp_path / "s.gltf")
    assert str(tmp_path / "s.gltf") in str(e.value) and "\n" not in str(e.value)


def test_opacity_out_of_range_and_huge_scales(tmp_path):
    one = lambda x: np.asarray([x], np.float32)  # noqa: E731
    huge = SplatArrays(one([0, 0, 0]), one([1, 0, 0, 0]), one([100.0, 0, 0]), np.float32([0.0]), one([[0, 0, 0]]))
    with pytest.raises(SplatFileError, match="overflows float32"):
        write_splat_arrays(huge, tmp_path / "h.glb")
    assert not (tmp_path / "h.glb").exists()
    # logits far beyond float32 sigmoid's range stay finite on the way back
    sure = SplatArrays(one([0, 0, 0]), one([1, 0, 0, 0]), one([0, 0, 0]), np.float32([40.0]), one([[0, 0, 0]]))
    write_splat_arrays(sure, tmp_path / "s.glb")
    assert np.isfinite(read_splat_arrays(tmp_path / "s.glb").logit_opacities).all()
