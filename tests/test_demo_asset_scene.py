"""demo/asset_scene.py: the spider asset rendered by headless Blender (PyPI bpy) reads back as posed
views whose cameras agree with the pixels.

One small render per module (4 views, 128x128, 4 samples, 1 thread; ~5 s of CPU): once with the
asset, once with it as a holdout (cut out of the image, shadows unchanged), so the pixels that
differ are exactly the asset's. The asset's vertices, projected with the runtime's cameras read
back from transforms.json, must land on those pixels and span them: a wrong axis convention,
mirror, pose, focal length or a 1 px offset fails (checked by perturbing the projections).
Blender's factory startup scene is restored afterwards, so later bpy test modules see the usual
state.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import addon_env  # noqa: F401 (sets BLENDER_USER_RESOURCES before bpy is imported)

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.usefixtures("blender_factory_scene_after")

from resplat.views import read_views  # noqa: E402
from repo_scripts import load_script  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / "assets" / "spider" / "spider.obj"
SIZE, VIEWS, CONTEXT = 128, 4, 2


def _demo():
    """demo/asset_scene.py as a module (demo/ is not a package)."""
    return load_script("demo", "asset_scene")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Render the views with the asset, then with the asset as a holdout; record the scene facts
    the tests check (a later test replaces the scene)."""
    demo = _demo()
    root = tmp_path_factory.mktemp("asset_scene")
    cams = demo.build_scene(ASSET, views=VIEWS, seed=0, size=SIZE, samples=4, threads=1)
    asset = bpy.data.collections[demo.ASSET_COLLECTION].objects
    verts = []
    for o in asset:
        co = np.empty(len(o.data.vertices) * 3)
        o.data.vertices.foreach_get("co", co)
        m = np.array(o.matrix_world)
        verts.append(co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
    images = {n.image.name: (n.image.filepath, n.image.has_data) for o in asset for s in o.material_slots
              for n in s.material.node_tree.nodes if n.type == "TEX_IMAGE"}
    facts = {
        "camera_names": [c.name for c in cams],
        "collection": sorted(o.name for o in bpy.data.collections[demo.CAMERA_COLLECTION].objects),
        "verts": np.concatenate(verts),
        "images": images,
    }
    with_asset = demo.render_views(root / "views", cams, context=CONTEXT)
    for o in asset:
        o.is_holdout = True
    holdout = demo.render_views(root / "holdout", cams, context=CONTEXT)
    return demo, root, with_asset, holdout, facts


def test_split_spaces_context_views_evenly():
    demo = _demo()
    ctx, held = demo.split(12, 8)
    assert held == ["cam_02", "cam_05", "cam_08", "cam_11"]
    assert ctx == ["cam_00", "cam_01", "cam_03", "cam_04", "cam_06", "cam_07", "cam_09", "cam_10"]
    assert demo.split(4, 2) == (["cam_00", "cam_02"], ["cam_01", "cam_03"])
    assert demo.split(5, 5) == ([f"cam_{i:02d}" for i in range(5)], [])
    for bad in (0, 13):
        with pytest.raises(demo.AssetSceneError, match=f"got {bad}"):
            demo.split(12, bad)


def test_asset_is_centred_unit_sphere_with_textures(rendered):
    _, _, _, _, facts = rendered
    v = facts["verts"]
    np.testing.assert_allclose(0.5 * (v.min(0) + v.max(0)), 0.0, atol=1e-5)
    assert np.linalg.norm(v, axis=1).max() == pytest.approx(1.0, abs=1e-5)
    # the .mtl's Windows paths (".\\SpiderTex.jpg") resolved by basename beside the OBJ
    assert set(facts["images"]) == {"SpiderTex.jpg", "drkwood2.jpg", "engineflare1.jpg", "wal67ar_small.jpg"}
    for name, (path, loaded) in facts["images"].items():
        assert Path(path) == ASSET.parent / name and loaded, name
    assert facts["collection"] == facts["camera_names"] == [f"cam_{i:02d}" for i in range(VIEWS)]


def test_views_read_back_with_orbit_cameras(rendered):
    _, root, out, _, _ = rendered
    assert sorted(p.name for p in root.iterdir()) == ["holdout", "views"]  # no .tmp left
    views = read_views(out)
    cams = views.cameras
    assert views.images.shape == (VIEWS, 3, SIZE, SIZE)
    assert cams.names == [f"cam_{i:02d}" for i in range(VIEWS)]
    assert (cams.width, cams.height) == (SIZE, SIZE)
    f = 0.5 * SIZE / math.tan(math.radians(25.0))  # 50 degree field of view
    for k in cams.K:
        np.testing.assert_allclose(k.numpy(), [[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1]], atol=1e-6)
    centres = cams.c2w[:, :3, 3].numpy()
    dist = np.linalg.norm(centres, axis=1)
    assert np.all((dist > 2.8) & (dist < 3.2)), dist
    elevation = np.degrees(np.arcsin(centres[:, 2] / dist))
    assert np.all((elevation >= 20) & (elevation <= 35)), elevation
    azimuth = np.degrees(np.arctan2(centres[:, 1], centres[:, 0])) % 360
    np.testing.assert_allclose(azimuth, [0, 90, 180, 270], atol=5.01)
    # the asset centre (world origin) projects to the image centre, in front of every camera
    origin = cams.w2c[:, :3, 3]
    assert torch.all(origin[:, 2] > 0)
    uv = (cams.K @ origin.unsqueeze(-1)).squeeze(-1)
    np.testing.assert_allclose((uv[:, :2] / uv[:, 2:]).numpy(), SIZE / 2, atol=1.0)
    split = json.loads((out / "split.json").read_text())
    assert split == {"context": ["cam_00", "cam_02"], "heldout": ["cam_01", "cam_03"]}


def _project(cams, points: np.ndarray) -> np.ndarray:
    """[V, M, 2] pixel coordinates of world points in each camera (OpenCV w2c, K)."""
    p = torch.as_tensor(points, dtype=torch.float64)
    cam = p @ cams.w2c[:, :3, :3].transpose(1, 2) + cams.w2c[:, None, :3, 3]
    uv = cam @ cams.K.transpose(1, 2)
    return (uv[..., :2] / uv[..., 2:]).numpy()


def _dilate(m: np.ndarray) -> np.ndarray:
    """[H, W] bool mask grown by one pixel (3x3)."""
    p = np.pad(m, 1)
    return np.any([p[i:i + m.shape[0], j:j + m.shape[1]] for i in range(3) for j in range(3)], axis=0)


def test_pixels_agree_with_the_cameras(rendered):
    _, _, out, holdout, facts = rendered
    a, b = read_views(out), read_views(holdout)
    assert torch.equal(a.cameras.w2c, b.cameras.w2c)
    # the asset's pixels: where the holdout render (asset cut out, same shadows) differs
    mask = ((a.images - b.images).abs().amax(1) > 0.05).numpy()  # [V, H, W]
    uv = _project(a.cameras, facts["verts"])  # [V, M, 2]
    hits = []
    for v in range(VIEWS):
        img = a.images[v]
        assert img.std() > 0.05  # textured, not blank
        # the asset is visible in the middle (the origin projects to the centre) and clear of the corners
        c = SIZE // 2
        assert mask[v, c - 8:c + 8, c - 8:c + 8].mean() > 0.3, (v, mask[v, c - 8:c + 8, c - 8:c + 8].mean())
        assert not mask[v, [0, 0, -1, -1], [0, -1, 0, -1]].any(), v
        # projected vertices land on (or next to) the asset's pixels (1 px shifts, mirror images or the
        # neighbouring camera's pose score 0.80-0.90 on average; the right cameras ~0.94)
        px = np.floor(uv[v]).astype(int)
        inside = ((px >= 0) & (px < SIZE)).all(1)
        hits.append(_dilate(mask[v])[px[inside, 1], px[inside, 0]].sum() / len(px))
        # and span it: left, top and right edges within 1.5 px (a 7 % focal-length error moves
        # them 2-4 px; the feet at the bottom are too dark against their shadow to bound it)
        ys, xs = np.nonzero(mask[v])
        edges = np.array([uv[v, :, 0].min() - xs.min(), uv[v, :, 1].min() - ys.min(), uv[v, :, 0].max() - xs.max() - 1])
        assert np.abs(edges).max() < 1.5, (v, edges)
    assert min(hits) > 0.87 and np.mean(hits) > 0.91, hits


def test_existing_foreign_folder_is_not_replaced(rendered, tmp_path):
    demo = rendered[0]
    cams = [bpy.data.objects[n] for n in rendered[4]["camera_names"]]
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("x")
    with pytest.raises(demo.AssetSceneError, match="not a views folder"):
        demo.render_views(keep, cams)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and (keep / "notes.txt").read_text() == "x"


def test_missing_texture_is_named(rendered, tmp_path):
    demo = rendered[0]
    for name in ("spider.obj", "spider.mtl"):
        shutil.copy(ASSET.parent / name, tmp_path / name)
    with pytest.raises(demo.AssetSceneError, match=r"texture .*\.jpg'? of material .* not found as "):
        demo.build_scene(tmp_path / "spider.obj", views=2, size=16, samples=1)
    with pytest.raises(demo.AssetSceneError, match="asset file not found"):
        demo.build_scene(tmp_path / "nope.obj")
