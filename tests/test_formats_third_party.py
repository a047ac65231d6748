"""Our splat files against implementations that are not ours: PlayCanvas splat-transform 3.7.0
reads each file we write and gives back the same splats, we read each file it writes from the
same source the same way, and the Khronos glTF validator finds nothing wrong with our .glb that
it does not also report on PlayCanvas's.

"The same splats" is checked on the real fixture against the source, per attribute, within
bounds derived from each format's quantisation: positions, log scales, opacities, the colour a
viewer shows (clip(0.5 + C0 * DC)), unit rotations up to sign, and SH where the format keeps it.
An axis, order or sign convention error moves values by far more than these bounds.

.spz is the one format where splat-transform 3.7.0 and the format's owner disagree on axes:
Niantic's spec stores RUB (we write and read RUB), splat-transform copies the PLY's RDF axes
into the file and out again ("Decode is RAW", see resplat/formats/spz.py). The tests assert that
measured relation: each reads the other's .spz turned 180 degrees about x (y and z negated,
rotations and SH turned with them), and our reader with ``convert_axes=False`` reads theirs as is.

The tools come from `make third-party` (npm, pinned in the Makefile; `.cache/npm`, or
RESPLAT_NPM_DIR). Skipped only where node itself is missing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from resplat.formats import read_splat_arrays, read_spz, write_splat_arrays
from resplat.formats.arrays import SH_C0, SplatArrays, sigmoid
from resplat.formats.spz_quant import flip_axes

REPO = Path(__file__).resolve().parents[1]
NPM_DIR = Path(os.environ.get("RESPLAT_NPM_DIR", REPO / ".cache" / "npm"))
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: third-party format checks need it")

F32 = 1e-6
SPZ_ROT = 2 * np.sqrt(3) * np.sqrt(0.5) / 511 / 2  # 9-bit smallest three (see test_formats_spz.py)


@pytest.fixture(scope="module")
def splat_transform() -> Path:
    tool = NPM_DIR / "node_modules" / ".bin" / "splat-transform"
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run `make third-party` (npm install of the pinned tools)")
    return tool


@pytest.fixture(scope="module")
def source(train_ply) -> SplatArrays:
    return read_splat_arrays(train_ply)


def run_tool(tool: Path, *args) -> None:
    extra = ["-g", "cpu"] if str(args[-1]).endswith(".sog") else []  # SOG compression without a GPU
    proc = subprocess.run([str(tool), "-w", "-q", *extra, *map(str, args)], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, f"splat-transform {args} failed: {proc.stderr[-2000:]}"


# -- comparison ------------------------------------------------------------------------------------
def unit(q: np.ndarray) -> np.ndarray:
    q = q.astype(np.float64)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def colour(a: SplatArrays) -> np.ndarray:
    return np.clip(0.5 + SH_C0 * a.sh[:, 0].astype(np.float64), 0.0, 1.0)


def match(got: SplatArrays, want: SplatArrays, tol: np.ndarray) -> SplatArrays:
    """``want`` reordered to ``got``'s order (formats that sort splats) by nearest position; each
    splat must find a distinct partner within ``tol`` per axis."""
    d = np.abs(got.means[:, None, :].astype(np.float64) - want.means[None, :, :]).max(axis=2)
    idx = d.argmin(axis=1)
    assert len(np.unique(idx)) == len(want), "splats do not pair up one to one by position"
    return want.select(idx)


def assert_same(got: SplatArrays, want: SplatArrays, b: dict, what: str) -> None:
    assert len(got) == len(want), what
    pos_tol = np.broadcast_to(np.asarray(b["pos"], np.float64), want.means.shape)
    want = match(got, want, pos_tol.max(axis=0))
    if np.ndim(b["pos"]) == 2:  # per-splat bound: recompute for the matched order
        pos_tol = b["pos_fn"](want)
    errs = {
        "pos": (np.abs(got.means - want.means.astype(np.float64)) / pos_tol).max(),
        "log_scale": np.abs(got.log_scales - want.log_scales).max() / b["log_scale"],
        "opacity": np.abs(sigmoid(got.logit_opacities) - sigmoid(want.logit_opacities)).max() / b["opacity"],
        "colour": np.abs(colour(got) - colour(want)).max() / b["colour"],
    }
    qa, qb = unit(got.quats), unit(want.quats)
    errs["rotation"] = np.minimum(np.abs(qa - qb).max(axis=1), np.abs(qa + qb).max(axis=1)).max() / b["rot"]
    if b.get("sh") is not None:
        assert got.sh_degree == want.sh_degree, f"{what}: SH degree {got.sh_degree}, source {want.sh_degree}"
        err = np.abs(got.sh[:, 1:] - want.sh[:, 1:])
        sh_b = np.asarray(b["sh"])
        errs["sh"] = (err / (sh_b[None, :, None] if sh_b.ndim else sh_b)).max()
    if b.get("sh_rms") is not None:  # clustered SH: no per-value bound, the error must be small
        err = got.sh[:, 1:] - want.sh[:, 1:]
        errs["sh_rms"] = np.sqrt((err**2).mean()) / (b["sh_rms"] * np.sqrt((want.sh[:, 1:] ** 2).mean()))
    bad = {k: round(float(v), 3) for k, v in errs.items() if not v <= 1.0}
    assert not bad, f"{what}: error / bound above 1 for {bad}"


def spz_bounds() -> dict:
    sh = np.full(15, 8.5 / 128 + 1e-6)
    sh[:3] = 4.5 / 128 + 1e-6
    return {"pos": 2.0**-13 + F32, "log_scale": 1 / 32 + F32, "opacity": 1 / 255 + F32,
            "colour": SH_C0 * 0.5 / (255 * 0.15) + 1e-5, "rot": SPZ_ROT + F32, "sh": sh}


def codebook_bound(codebook, values) -> float:
    """Worst distance from a value to its nearest entry of a 1D codebook (what a SOG codebook
    can be off by), from the file's codebook and the source values."""
    cb = np.sort(np.asarray(codebook, np.float64))
    v = np.asarray(values, np.float64).reshape(-1)
    i = np.clip(np.searchsorted((cb[1:] + cb[:-1]) / 2, v), 0, len(cb) - 1)
    return float(np.abs(cb[i] - v).max()) + 1e-6


def sog_bounds(path: Path, src: SplatArrays, own_palette: bool) -> dict:
    meta = json.loads(zipfile.ZipFile(path).read("meta.json"))
    mins, maxs = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])
    step = (maxs - mins) / 65535  # 16 bits over t = sign(x) log(|x| + 1); x moves by dt (|x| + 1) e^dt

    def pos_fn(a):
        return step * (np.abs(a.means.astype(np.float64)) + 1) * np.exp(step) + F32

    rot_step = 2 / 255 / np.sqrt(2)  # one 8-bit step of c sqrt2 in [-1, 1] (truncating writers)
    b = {"pos": pos_fn(src), "pos_fn": pos_fn,
         "log_scale": codebook_bound(meta["scales"]["codebook"], src.log_scales),
         "opacity": 1 / 255 + F32,
         "colour": SH_C0 * codebook_bound(meta["sh0"]["codebook"], src.sh[:, 0]) + F32,
         "rot": 2 * np.sqrt(3) * rot_step}
    if own_palette:  # one palette entry per splat: only the 256-entry codebook quantises SH
        b["sh"] = codebook_bound(meta["shN"]["codebook"], src.sh[:, 1:])
    else:  # k-means palette (PlayCanvas: 512 entries for 1000 splats)
        b["sh_rms"] = 0.5
    return b


def turned_about_x(a: SplatArrays) -> SplatArrays:
    """``a`` in RUB axes: y and z negated, rotations and SH turned with them (RDF <-> RUB)."""
    means, quats, rest = flip_axes(a.means, a.quats, a.sh[:, 1:])
    return SplatArrays(means.astype(np.float32), quats.astype(np.float32), a.log_scales, a.logit_opacities,
                       np.concatenate([a.sh[:, :1], rest], axis=1))


EXACT = {"pos": F32, "log_scale": 1e-5, "opacity": F32, "colour": F32, "rot": F32, "sh": F32}
SPLAT = {"pos": F32, "log_scale": 1e-5, "opacity": 0.5 / 255 + F32, "colour": 0.5 / 255 + F32,
         "rot": 2 / 128}  # u8 (q * 128 + 128) per component, then renormalised: at most ~2 steps


# -- splat-transform reads our files ---------------------------------------------------------------
@pytest.mark.parametrize("ext", ["ply", "splat", "spz", "sog"])
def test_splat_transform_reads_our_files(splat_transform, source, tmp_path, ext):
    ours = tmp_path / f"ours.{ext}"
    write_splat_arrays(source, ours)
    back = tmp_path / "back.ply"
    run_tool(splat_transform, ours, back)
    got = read_splat_arrays(back)
    bounds = {"ply": EXACT, "splat": SPLAT, "spz": spz_bounds()}.get(ext)
    if ext == "sog":
        bounds = sog_bounds(ours, source, own_palette=True)
    want = source if ext != "splat" else source.with_sh_degree(0)
    if ext == "splat":
        got = got.with_sh_degree(0)
    if ext == "spz":  # we store Niantic's RUB, splat-transform takes the bytes as RDF
        want = turned_about_x(source)
    assert_same(got, want, bounds, f"splat-transform reading our .{ext}")


# -- we read splat-transform's files ---------------------------------------------------------------
@pytest.mark.parametrize("ext", ["ply", "spz", "glb", "sog"])
def test_we_read_splat_transform_files(splat_transform, source, train_ply, tmp_path, ext):
    theirs = tmp_path / f"theirs.{ext}"
    run_tool(splat_transform, train_ply, theirs)
    got = read_splat_arrays(theirs)
    bounds = {"ply": EXACT, "glb": EXACT, "spz": spz_bounds()}.get(ext)
    if ext == "sog":
        bounds = sog_bounds(theirs, source, own_palette=False)
    if ext == "spz":  # splat-transform stores the PLY's RDF axes; we read the file as RUB
        assert_same(got, turned_about_x(source), bounds, "our reader on splat-transform's .spz")
        got = read_spz(theirs, convert_axes=False)
    assert_same(got, source, bounds, f"our reader on splat-transform's .{ext}")


# -- both read a hand-built SOG of each version alike -------------------------------------------------
@pytest.mark.parametrize("version", [1, 2])
def test_splat_transform_reads_hand_built_sog_as_we_do(splat_transform, tmp_path, version):
    from test_formats_sog import hand_built_sog

    path = tmp_path / f"v{version}.sog"
    hand_built_sog(path, version)
    back = tmp_path / "back.ply"
    run_tool(splat_transform, path, back)
    # float32 either side; splat-transform clamps the opacity byte to [1e-6, 1 - 1e-6], we to
    # [0.5, 254.5] / 255 (version 2)
    bounds = {"pos": 1e-5, "log_scale": 1e-5, "opacity": 0.5 / 255 + F32, "colour": 1e-6, "rot": 1e-6, "sh": 1e-6}
    assert_same(read_splat_arrays(back), read_splat_arrays(path), bounds, f"splat-transform on SOG version {version}")


# -- Khronos glTF validator ---------------------------------------------------------------------------
VALIDATE = """
const v = require(process.argv[1]);
const fs = require('fs');
(async () => {
  const out = {};
  for (const f of process.argv.slice(2)) {
    const r = await v.validateBytes(new Uint8Array(fs.readFileSync(f)), {maxIssues: 0});
    out[f] = r.issues.messages.map(m => [m.severity, m.code, m.pointer || '']);
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
"""


def test_gltf_validator_reports_only_the_extension_attributes(splat_transform, source, train_ply, tmp_path):
    ours, theirs = tmp_path / "ours.glb", tmp_path / "theirs.glb"
    write_splat_arrays(source, ours)
    run_tool(splat_transform, train_ply, theirs)
    validator = NPM_DIR / "node_modules" / "gltf-validator"
    proc = subprocess.run([NODE, "-e", VALIDATE, str(validator), str(ours), str(theirs)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    errors = {name: [(code, ptr) for sev, code, ptr in msgs if sev == 0] for name, msgs in report.items()}
    ours_codes = {code for code, _ in errors[str(ours)]}
    theirs_codes = {code for code, _ in errors[str(theirs)]}
    assert ours_codes <= theirs_codes == {"MESH_PRIMITIVE_INVALID_ATTRIBUTE"}, errors[str(ours)][:5]
    # one such error per KHR_gaussian_splatting:* attribute (rotation, scale, opacity, 16 SH), nothing else
    assert len(errors[str(ours)]) == 3 + 16
    assert all("KHR_gaussian_splatting:" in ptr for _, ptr in errors[str(ours)]), errors[str(ours)][:3]
    doc = _glb_json(ours.read_bytes())
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    assert sum(a.startswith("KHR_gaussian_splatting:") for a in attrs) == 19


def _glb_json(data: bytes) -> dict:
    length = int.from_bytes(data[12:16], "little")
    return json.load(io.BytesIO(data[20:20 + length]))
