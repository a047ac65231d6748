"""demo/cycles_dataset.py: the generator's scenes rendered by Cycles (PyPI bpy) are the same
scenes as the ray caster's: same cameras bit for bit, depth maps that agree to the tessellation
of curved surfaces (so objects, floor, walls, scales and the OpenCV -> Blender camera conversion
are right), comparable brightness (so the lights' units are right), and a dataset that loads,
resumes and refuses another dataset's folder.

Two small scenes (3 views of 48x48, 4 samples, 1 thread; ~10 s): one open scene under a studio
HDRI, one room. Blender's factory startup scene is restored afterwards.
"""

from __future__ import annotations

import json

import pytest
import torch

import addon_env  # noqa: F401 (sets BLENDER_USER_RESOURCES before bpy is imported)

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.usefixtures("blender_factory_scene_after")

from resplat.data import SyntheticDataset  # noqa: E402
from resplat.data.generate import GeneratorConfig, draw_scene, make_scene  # noqa: E402
from repo_scripts import load_script  # noqa: E402


def _demo():
    """demo/cycles_dataset.py as a module (demo/ is not a package)."""
    return load_script("demo", "cycles_dataset")


def _cfg(open_fraction: float) -> GeneratorConfig:
    return GeneratorConfig(width=48, height=48, views=3, context=2, min_objects=2, max_objects=4,
                           open_fraction=open_fraction, soft_fraction=0.5, smooth_fraction=0.3,
                           pattern_fraction=0.3, scale_decades=2.0)


def _first(cfg: GeneratorConfig, seed: int, room: str) -> int:
    """The first scene index of ``seed`` whose room kind is (or is not, for "room") ``room``."""
    for i in range(50):
        kind = draw_scene(cfg, seed, i).scene.room
        if (kind == "open") == (room == "open"):
            return i
    raise AssertionError(f"no {room} scene in the first 50")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    demo = _demo()
    out = {}
    for room, frac in (("open", 1.0), ("room", 0.0)):
        cfg = _cfg(frac)
        i = _first(cfg, 7, room)
        tmp = tmp_path_factory.mktemp(f"cycles_{room}")
        out[room] = (cfg, i, demo.make_cycles_scene(cfg, 7, i, samples=4, hdri_fraction=1.0, threads=1,
                                                    scratch=tmp / "scratch"))
    return out


@pytest.mark.parametrize("room", ["open", "room"])
def test_cycles_renders_the_generators_scene(rendered, room):
    cfg, i, (images, depth, cameras, meta) = rendered[room]
    ref_images, ref_depth, ref_cameras, ref_meta = make_scene(cfg, 7, i)
    # the same drawn scene, cameras and world scale, bit for bit
    assert torch.equal(cameras.c2w, ref_cameras.c2w) and torch.equal(cameras.K, ref_cameras.K)
    assert meta["world_scale"] == ref_meta["world_scale"] and meta["scene"] == ref_meta["scene"]
    assert meta["context"] == ref_meta["context"] and meta["target"] == ref_meta["target"]
    # depth: the same surfaces at the same distances (tessellation and pixel-edge differences only)
    assert images.shape == ref_images.shape == (3, 3, 48, 48) and depth.shape == ref_depth.shape
    both = (depth > 0) & (ref_depth > 0)
    assert ((depth > 0) != (ref_depth > 0)).float().mean() < 0.02
    rel = ((depth - ref_depth).abs() / ref_depth)[both]
    assert rel.median() < 1e-3, f"median relative depth error {float(rel.median()):.2e}"
    # light units: the mean brightness of the same scene within 0.12 of the ray caster's
    assert abs(float(images.mean() - ref_images.mean())) < 0.12
    r = meta["renderer"]
    assert r["engine"] == "CYCLES" and r["samples"] == 4
    if room == "open":
        demo = _demo()
        assert r["hdri"] in [p.name for p in demo.studio_hdris()]
    else:
        assert r["hdri"] is None and bool((depth > 0).all())  # a closed room: every ray hits


def test_camera_mismatch_is_refused(rendered):
    demo = _demo()
    cfg, i, (_, _, cameras, _) = rendered["room"]
    drawn = draw_scene(cfg, 7, i)
    bad = drawn.cameras.K.clone()
    bad[1, 0, 2] += 0.5  # half a pixel off the principal point of view 1
    from resplat.cameras import Cameras

    other = Cameras.from_c2w(drawn.cameras.c2w, bad, drawn.cameras.width, drawn.cameras.height)
    views = [type("V", (), {"K": other.K[j].double().numpy(), "c2w": other.c2w[j].double().numpy() @ demo._cameras.GL_TO_CV})()
             for j in range(len(other))]
    with pytest.raises(demo.CyclesDatasetError, match="view 1"):
        demo._check_views(views, drawn.cameras)


def test_dataset_loads_resumes_and_refuses_other_options(tmp_path):
    demo = _demo()
    cfg = _cfg(0.5)
    out = tmp_path / "cyc"
    index = demo.generate_cycles_dataset(out, 1, 3, cfg, samples=2, threads=1, log=lambda *a, **k: None)
    assert index["renderer"]["engine"] == "CYCLES" and index["scenes"] == ["scene_000000"]
    ds = SyntheticDataset(out)
    s = ds[0]
    assert s.images.shape == (3, 3, 48, 48) and s.depths.shape == (3, 1, 48, 48) and len(s.context) == 2
    stamp = (out / "scene_000000" / "scene.json").stat().st_mtime_ns
    lines = []
    demo.generate_cycles_dataset(out, 1, 3, cfg, samples=2, threads=1, log=lambda *a, **k: lines.append(a))
    assert lines == [] and (out / "scene_000000" / "scene.json").stat().st_mtime_ns == stamp  # kept, not redone
    with pytest.raises(demo.CyclesDatasetError, match="another seed, options or renderer"):
        demo.generate_cycles_dataset(out, 1, 3, cfg, samples=3, threads=1)
    assert json.loads((out / "index.json").read_text())["renderer"]["samples"] == 2
