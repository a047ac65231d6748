"""PlayCanvas SOG: the version 2 bundle we write has the documented layout (meta.json, lossless
WebP images, 16-bit log-transformed positions, codebooks, smallest-three quaternions, SH
palette), hand-built bundles of version 1 (no version field, per-channel mins/maxs) and version
2 (codebooks) decode to known values, version 3 is refused, and the fixture round-trips within
the bounds the file's own codebooks allow. splat-transform reads the hand-built version 1 bundle
as we do: test_formats_third_party.py."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from resplat.errors import SplatFileError
from resplat.formats import read_splat_arrays, write_sog, write_splat_arrays
from resplat.formats.arrays import SplatArrays, logit, sigmoid
from resplat.formats.sog import codebook_1d, pack_quats, unpack_quats


def _images(path) -> tuple[dict, dict]:
    z = zipfile.ZipFile(path)
    meta = json.loads(z.read("meta.json"))
    imgs = {}
    for name in z.namelist():
        if name.endswith(".webp"):
            raw = z.read(name)
            assert raw[:4] == b"RIFF" and raw[8:12] == b"WEBP" and raw[12:16] == b"VP8L"  # lossless
            imgs[name] = np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA"))
    return meta, imgs


def test_written_bundle_layout(train_ply, tmp_path):
    a = read_splat_arrays(train_ply)
    write_splat_arrays(a, tmp_path / "s.sog")
    meta, imgs = _images(tmp_path / "s.sog")
    assert meta["version"] == 2 and meta["count"] == 1000
    assert set(imgs) == {"means_l.webp", "means_u.webp", "scales.webp", "quats.webp", "sh0.webp",
                         "shN_centroids.webp", "shN_labels.webp"}
    for name, img in imgs.items():
        if name != "shN_centroids.webp":
            assert img.shape == (32, 32, 4), name  # ceil(sqrt(1000)) wide, row-major
    # positions: 16 bits of t = sign(x) log(|x| + 1) between mins and maxs, splat i at pixel i
    t = np.sign(a.means) * np.log1p(np.abs(a.means.astype(np.float64)))
    np.testing.assert_allclose(meta["means"]["mins"], t.min(0)) and np.testing.assert_allclose(meta["means"]["maxs"], t.max(0))
    q16 = imgs["means_l.webp"].reshape(-1, 4)[:1000, :3].astype(int) + 256 * imgs["means_u.webp"].reshape(-1, 4)[:1000, :3]
    want = np.rint((t - t.min(0)) / (t.max(0) - t.min(0)) * 65535)
    np.testing.assert_array_equal(q16, want)
    # scales and DC: indices of the nearest codebook entry; opacity byte = sigmoid * 255
    cb = np.asarray(meta["scales"]["codebook"])
    assert len(cb) == 256 and (np.diff(cb) >= 0).all()
    idx = imgs["scales.webp"].reshape(-1, 4)[:1000, :3]
    assert np.abs(cb[idx] - a.log_scales).max() <= np.abs(cb[None, None, :] - a.log_scales[..., None]).min(-1).max() + 1e-6
    sh0 = imgs["sh0.webp"].reshape(-1, 4)[:1000]
    np.testing.assert_array_equal(sh0[:, 3], np.rint(sigmoid(a.logit_opacities) * 255))
    # SH: one palette entry per splat (1000 <= 65536), labels are the splat index
    assert meta["shN"]["bands"] == 3 and meta["shN"]["count"] == 1000
    lab = imgs["shN_labels.webp"].reshape(-1, 4)[:1000]
    np.testing.assert_array_equal(lab[:, 0].astype(int) + 256 * lab[:, 1], np.arange(1000))
    assert imgs["shN_centroids.webp"].shape == (16, 64 * 15, 4)


# -- hand-built bundles of each version ----------------------------------------------------------------
def _webp(px: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(px.astype(np.uint8), "RGBA").save(out, "WEBP", lossless=True, exact=True)
    return out.getvalue()


def _image(rows: list, width: int = 2, height: int = 2) -> np.ndarray:
    """A width x height RGBA image holding ``rows`` (one pixel each, row-major), padded opaque."""
    px = np.zeros((width * height, 4), np.uint8)
    px[:, 3] = 255
    px[: len(rows)] = rows
    return px.reshape(height, width, 4)


def hand_built_sog(path, version: int) -> dict[str, np.ndarray]:
    """Write a 3-splat SOG bundle of ``version`` (1: no version field, mins/maxs; 2: codebooks)
    with SH degree 1 to ``path``; return the values its description says it holds."""
    q16 = np.array([[0, 65535, 32768], [65535, 0, 1], [300, 40000, 65000]])
    quats = [[128, 128, 128, 252], [200, 60, 64, 253], [10, 200, 100, 255]]  # tags: w, x, z largest
    scale_px = [[0, 255, 128], [1, 2, 3], [200, 100, 50]]
    sh0_px = [[0, 255, 128, 255], [10, 20, 30, 0], [250, 128, 5, 128]]
    centroids = np.zeros((1, 192, 4), np.uint8)  # 64 entries of 3 coefficients, bands = 1
    centroids[..., 3] = 255
    centroids[0, :6, :3] = [[0, 255, 128], [1, 2, 3], [4, 5, 6], [250, 251, 252], [7, 8, 9], [100, 0, 200]]
    labels = [1, 0, 1]
    images = {
        "means_l.webp": _image([list(q & 0xFF) + [255] for q in q16]),
        "means_u.webp": _image([list(q >> 8) + [255] for q in q16]),
        "quats.webp": _image(quats), "scales.webp": _image([p + [255] for p in scale_px]),
        "sh0.webp": _image(sh0_px), "shN_centroids.webp": centroids,
        "shN_labels.webp": _image([[b & 0xFF, b >> 8, 0, 255] for b in labels]),
    }
    mins, maxs = np.array([-1.0, 0.0, -2.0]), np.array([1.0, 2.0, 0.0])
    t = mins + (maxs - mins) * q16 / 65535
    r = np.sqrt(0.5)
    comp = lambda b: (np.asarray(b) / 255 * 2 - 1) * r  # noqa: E731  spec: (c / 255 - 0.5) * 2 / sqrt2
    expected_quats = []
    for px in quats:
        a = comp(px[:3])
        largest = px[3] - 252
        q = np.insert(a, largest, np.sqrt(max(0.0, 1 - a @ a)))
        expected_quats.append(q)
    cen = centroids[0, :6, :3].reshape(2, 3, 3)[labels]  # [splat, coefficient, rgb]
    files = {"means": {"files": ["means_l.webp", "means_u.webp"]}, "quats": {"files": ["quats.webp"]},
             "scales": {"files": ["scales.webp"]}, "sh0": {"files": ["sh0.webp"]},
             "shN": {"files": ["shN_centroids.webp", "shN_labels.webp"]}}
    px_scale, px_sh0 = np.array(scale_px, float), np.array(sh0_px, float)
    if version == 1:
        meta = {"means": {"shape": [3, 3], "mins": mins.tolist(), "maxs": maxs.tolist()},
                "scales": {"mins": [-9, -8, -7], "maxs": [1, 2, 3]},
                "sh0": {"mins": [-2, -1.5, -1, -6], "maxs": [2, 1.5, 1, 6]},
                "shN": {"mins": -0.5, "maxs": 0.75, "quantization": 8}, "quats": {}}
        lerp = lambda lo, hi, u: np.asarray(lo) + (np.asarray(hi) - lo) * u / 255  # noqa: E731
        log_scales = lerp([-9, -8, -7], [1, 2, 3], px_scale)
        dc_opac = lerp([-2, -1.5, -1, -6], [2, 1.5, 1, 6], px_sh0)
        dc, opac = dc_opac[:, :3], dc_opac[:, 3]
        rest = lerp(-0.5, 0.75, cen)
    else:
        cb_scales, cb_dc, cb_sh = np.linspace(-8, 2, 256), np.linspace(-2, 2, 256), np.linspace(-1, 1, 256)
        meta = {"version": 2, "count": 3, "means": {"mins": mins.tolist(), "maxs": maxs.tolist()},
                "scales": {"codebook": cb_scales.tolist()}, "sh0": {"codebook": cb_dc.tolist()},
                "shN": {"count": 2, "bands": 1, "codebook": cb_sh.tolist()}, "quats": {}}
        log_scales = cb_scales[np.array(scale_px)]
        dc = cb_dc[np.array(sh0_px)[:, :3]]
        opac = logit(np.clip(px_sh0[:, 3] / 255, 0.5 / 255, 254.5 / 255))
        rest = cb_sh[cen]
    for key, value in files.items():
        meta[key].update(value)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, px in images.items():
            z.writestr(name, _webp(px))
        z.writestr("meta.json", json.dumps(meta))
    return {"means": np.sign(t) * np.expm1(np.abs(t)), "quats": np.array(expected_quats), "log_scales": log_scales,
            "logit_opacities": opac, "sh": np.concatenate([dc[:, None], rest], axis=1)}


@pytest.mark.parametrize("version", [1, 2])
def test_hand_built_bundles_of_each_version_decode_to_known_values(tmp_path, version):
    path = tmp_path / f"v{version}.sog"
    expected = hand_built_sog(path, version)
    a = read_splat_arrays(path)
    assert len(a) == 3 and a.sh_degree == 1
    for name, want in expected.items():
        np.testing.assert_allclose(getattr(a, name), want, rtol=1e-6, atol=1e-6, err_msg=name)


def test_version_3_and_unknown_versions_are_refused(tmp_path):
    hand_built_sog(tmp_path / "v2.sog", 2)
    z = zipfile.ZipFile(tmp_path / "v2.sog")
    members = {n: z.read(n) for n in z.namelist()}
    for version in (3, "2", 0):
        meta = json.loads(members["meta.json"])
        meta["version"] = version
        path = tmp_path / f"v{version}.sog"
        with zipfile.ZipFile(path, "w") as out:
            for name, data in {**members, "meta.json": json.dumps(meta).encode()}.items():
                out.writestr(name, data)
        with pytest.raises(SplatFileError, match=f"unsupported SOG version {version!r}") as e:
            read_splat_arrays(path)
        assert str(path) in str(e.value)
        assert ("re-export the scene as version 2" in str(e.value)) == (version == 3)


def test_version_1_palette_width_gives_the_bands(tmp_path):
    path = tmp_path / "v1.sog"
    hand_built_sog(path, 1)
    z = zipfile.ZipFile(path)
    members = {n: z.read(n) for n in z.namelist()}
    members["shN_centroids.webp"] = _webp(np.full((1, 100, 4), 255, np.uint8))
    with zipfile.ZipFile(tmp_path / "bad.sog", "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    with pytest.raises(SplatFileError, match="100 pixels wide, not 192, 512 or 960"):
        read_splat_arrays(tmp_path / "bad.sog")


def test_hand_built_quaternions_decode_to_known_values():
    r = np.sqrt(0.5)
    # largest x (tag 253), the others (w, y, z) in index order; (c sqrt2 + 1) / 2 * 255
    px = np.array([[255, 128, 0, 253], [128, 128, 128, 252], [128, 128, 128, 7]], np.uint8)
    q = unpack_quats(px)
    c = lambda b: (b / 255 * 2 - 1) * r  # noqa: E731
    w, y, z = c(255), c(128), c(0)
    np.testing.assert_allclose(q[0], [w, np.sqrt(max(0.0, 1 - w * w - y * y - z * z)), y, z])
    np.testing.assert_allclose(q[1], [np.sqrt(1 - 3 * c(128) ** 2), c(128), c(128), c(128)])
    np.testing.assert_allclose(q[2], [1, 0, 0, 0])  # invalid tag: identity, as PlayCanvas's reader
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(2000, 4))
    back = unpack_quats(pack_quats(quats))
    u = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    err = np.minimum(np.abs(back - u).max(1), np.abs(back + u).max(1))
    assert err.max() <= 2 * np.sqrt(3) * (1 / 255 / np.sqrt(2)) + 1e-9  # half an 8-bit step, derived largest


def test_codebook_is_nearest_and_covers_the_tails():
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(-5, 0.3, 30000), rng.uniform(-10, 2, 50)])  # dense core, sparse tail
    cb, lab = codebook_1d(v)
    assert len(cb) == 256 and (np.diff(cb) >= 0).all()
    nearest = np.abs(cb[None, :].astype(np.float64) - v[:, None]).min(1)
    assert (np.abs(cb[lab] - v) <= nearest + 1e-6).all()  # the nearest entry (float32 ties aside)
    # the grid half keeps the sparse tail within about one grid step (12 / 128); quantiles alone
    # would leave a single entry or two for those 50 values (errors of several units)
    assert np.abs(cb[lab] - v).max() < 12 / 128


def test_round_trip_within_codebook_bounds(train_ply, tmp_path):
    a = read_splat_arrays(train_ply)
    write_sog(a, tmp_path / "s.sog")
    meta, _ = _images(tmp_path / "s.sog")
    b = read_splat_arrays(tmp_path / "s.sog")
    assert len(b) == len(a) and b.sh_degree == 3

    def bound(cb, v):
        cb = np.asarray(cb)
        return np.abs(cb[None, :] - np.asarray(v, np.float64).reshape(-1)[:, None]).min(1).max() + 1e-6

    step = (np.array(meta["means"]["maxs"]) - meta["means"]["mins"]) / 65535
    assert (np.abs(b.means - a.means) <= 0.5 * step * (np.abs(a.means) + 1) * np.exp(step) + 1e-6).all()
    assert np.abs(b.log_scales - a.log_scales).max() <= bound(meta["scales"]["codebook"], a.log_scales)
    assert np.abs(b.sh[:, 0] - a.sh[:, 0]).max() <= bound(meta["sh0"]["codebook"], a.sh[:, 0])
    assert np.abs(b.sh[:, 1:] - a.sh[:, 1:]).max() <= bound(meta["shN"]["codebook"], a.sh[:, 1:])
    alpha = sigmoid(a.logit_opacities)
    assert np.abs(sigmoid(b.logit_opacities) - np.clip(alpha, 0.5 / 255, 254.5 / 255)).max() <= 0.5 / 255 + 1e-6


def test_many_splats_use_a_clustered_palette(tmp_path):
    rng = np.random.default_rng(2)
    n = 70000
    a = SplatArrays(rng.uniform(-5, 5, (n, 3)), rng.normal(size=(n, 4)), rng.normal(-4, 1, (n, 3)),
                    rng.normal(0, 2, n), rng.normal(0, 0.05, (n, 4, 3)))
    write_sog(a, tmp_path / "big.sog", palette_size=256)
    meta, imgs = _images(tmp_path / "big.sog")
    assert meta["shN"]["count"] == 256 and meta["shN"]["bands"] == 1
    b = read_splat_arrays(tmp_path / "big.sog")
    # k-means: the palette explains part of the SH (noise here), never more error than zeros would
    err = np.sqrt(((b.sh[:, 1:] - a.sh[:, 1:]) ** 2).mean())
    assert err < np.sqrt((a.sh[:, 1:] ** 2).mean())


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(version=3), "unsupported SOG version 3"),
    (lambda m: m.update(count=5000), "has 1024 pixels for 5000 splats"),
    (lambda m: m["scales"].update(codebook=[0.0] * 10), "scales.codebook must hold 256"),
    (lambda m: m["shN"].update(count=10), "outside the 10-entry palette"),
    (lambda m: m.pop("means"), "lacks a numeric means.mins"),
])
def test_malformed_bundles_raise_one_line_errors(train_ply, tmp_path, change, message):
    a = read_splat_arrays(train_ply)
    write_splat_arrays(a, tmp_path / "s.sog")
    z = zipfile.ZipFile(tmp_path / "s.sog")
    members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["meta.json"])
    change(meta)
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(tmp_path / "bad.sog", "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    with pytest.raises(SplatFileError, match=message) as e:
        read_splat_arrays(tmp_path / "bad.sog")
    assert str(tmp_path / "bad.sog") in str(e.value)
    (tmp_path / "junk.sog").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SplatFileError, match="not a SOG bundle"):
        read_splat_arrays(tmp_path / "junk.sog")
