"""Synthetic training scenes rendered by Blender's Cycles (PyPI ``bpy``), in the dataset format of
``resplat.data`` (docs/dataset.md), so that part of the embedded model's training data comes from
the renderer the artists' scenes come from: path-traced soft shadows and inter-reflections, a
Principled BSDF with real highlights, Blender's pixel filter and denoiser, HDRI worlds.

The scenes are the generator's own: scene ``i`` of seed ``S`` is drawn by
:func:`resplat.data.generate.draw_scene` exactly as ``resplat data generate`` draws it (same
objects, materials, lights, rig, context/target split and world scale), and only the renderer
differs. So a Cycles dataset and a ray-cast one made with the same seed and options hold the same
scenes and cameras (their depth maps agree up to the tessellation of curved surfaces; the test
checks it), and a training set mixes the two by listing both folders (``resplat train A B``).

How the scene description (:class:`resplat.data.scene.Scene`) becomes a Blender scene:

- objects: unit ellipsoid (UV sphere, 48 x 24, smooth), cube, cylinder and cone (48 segments,
  smooth sides, flat caps) with the scales baked into the mesh, so that object coordinates are
  metres; placed by the scene's rotation and centre;
- surfaces: a Principled BSDF whose base colour is the generator's texture (the texture bank's
  full-resolution level, ``resplat.data.textures``: photos in linear RGB and the procedural
  patterns), blended towards the plain albedo by ``smooth`` and multiplied by ``tint`` (baked into
  a float image per surface), repeated every ``tile`` metres by a box (tri-planar) projection of
  object coordinates; every surface is a dielectric (specular level 0.5, 4 % reflectance at
  normal incidence); a glossy one (``specular`` > 0) has the roughness of its Blinn-Phong
  exponent, ``sqrt(2 / (shininess + 2))`` (Walter et al. 2007's Beckmann-Phong correspondence),
  at least :data:`MIN_ROUGHNESS`, a matte one roughness 0.9;
- rooms: "open" is a ground disc of radius ``half`` under a world that is the scene's vertical
  gradient (``sky_bottom`` at and below the horizon to ``sky_top`` at the zenith, as the ray
  caster's background) or, for ``--hdri-fraction`` of the open scenes, one of the CC0 studio-light
  HDRIs that ship inside Blender (``datafiles/studiolights/world/*.exr``), turned about z at
  random; "box" is a floor square and four walls and a ceiling, "dome" a floor disc under a
  hemisphere; walls, ceilings and domes cast no shadows, so the suns light the room (a closed room
  in a path tracer is otherwise dark) and the room's inside is lit by its bounces;
- lights: each directional light is a sun of strength ``pi * max(colour)`` W/m^2 (so that a white
  diffuse surface facing it has the radiance ``colour`` the ray caster gives it) and angular
  diameter twice the scene's ``light_radius``; the ray caster's ``ambient`` is the room's world
  colour (rooms) or left to the sky (open scenes);
- cameras: the rig's OpenCV pinholes as Blender cameras through the add-on's
  ``lens_settings`` / OpenGL axes (``resplat_addon.cameras``), rendered by the add-on's own
  ``render_views`` with its Depth Pass (z-depth in metres, 0 = world): exactly the path an
  artist's views take. The cameras read back from Blender must equal the rig's (checked per view).

Render settings are the evaluation scenes' (``demo/asset_scene.py`` :func:`render_settings`:
Cycles on the CPU, ``--samples`` samples, OpenImageDenoise, Standard view transform, 8-bit sRGB
PNG). ``scene.json`` records ``"renderer": {"engine": "CYCLES", "samples", "hdri", "blender"}``;
``index.json`` has the generator's layout plus ``"renderer"``. Scenes already written with the same
seed and options are kept (resume); each is written atomically.

Run (project venv, PyPI ``bpy``)::

    .venv/bin/python demo/cycles_dataset.py runs/data-cycles --scenes 200 --seed 21 --size 128x128 \\
        --open-fraction 0.6 --soft-fraction 0.4 --smooth-fraction 0.3 --pattern-fraction 0.3 \\
        --scale-decades 2 --hdri-fraction 0.4 --samples 32 --threads 1
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

if __name__ == "__main__":  # keep Blender's user config out of the home folder (read at bpy import)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="resplat-cycles-data-"))

import bpy  # noqa: E402  (before bmesh and mathutils, which bpy provides)
import bmesh  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asset_scene  # noqa: E402  (the add-on's modules, loaded from this checkout, and render settings)
from resplat.cli.cmd_data import add_generator_arguments, generator_config  # noqa: E402
from resplat.data.dataset import write_json_atomic, write_scene  # noqa: E402
from resplat.data.generate import (GeneratorConfig, dataset_index, draw_scene, finish_scene,  # noqa: E402
                                   finished_scene_meta, scene_name)
from resplat.data.render import PLAIN_ALBEDO  # noqa: E402
from resplat.data.scene import Scene  # noqa: E402
from resplat.data.textures import texture_bank  # noqa: E402
from resplat.errors import ResplatError  # noqa: E402
from resplat.views.images import load_images  # noqa: E402

_views, _cameras = asset_scene._views, asset_scene._cameras

#: texels per side of each surface's image (the texture bank's full-resolution level)
TEXTURE_SIZE = 256
#: mesh resolution of curved primitives (segments around; UV spheres get half as many rings)
SEGMENTS = 48
#: roughness floor of glossy surfaces: the ray caster's weak Blinn-Phong highlights, not mirrors
MIN_ROUGHNESS = 0.2
#: tolerance on the cameras read back from Blender (pixels for K, metres / unit for c2w)
CAMERA_TOLERANCE = 1e-4


class CyclesDatasetError(ResplatError):
    """Bad options, an output folder holding another dataset, or a camera Blender cannot match."""


# --- the Blender scene -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def studio_hdris() -> tuple[Path, ...]:
    """The CC0 studio-light HDRIs that ship inside Blender (``datafiles/studiolights/world``),
    sorted by name; empty when this build has none."""
    root = bpy.utils.system_resource("DATAFILES", path="studiolights/world")
    return tuple(sorted(Path(root).glob("*.exr"))) if root else ()


def _surface_image(name: str, scene: Scene, surface: int):
    """Float (linear) Blender image of surface ``surface``'s albedo: the bank texture blended
    towards :data:`PLAIN_ALBEDO` by ``smooth``, times ``tint`` (as the ray caster shades it)."""
    bank = texture_bank(TEXTURE_SIZE)
    t = int(scene.texture[surface])
    s = int(bank.sizes[0])
    off = int(bank.offsets[t, 0])
    rgb = bank.texels[off:off + s * s].reshape(s, s, 3).double()
    if scene.smooth is not None:
        sm = float(scene.smooth[surface])
        rgb = rgb * (1 - sm) + PLAIN_ALBEDO * sm
    rgb = rgb * scene.tint[surface]
    rgba = np.ones((s, s, 4), dtype=np.float32)
    rgba[..., :3] = rgb.numpy()[::-1]  # Blender's rows go up; the bank's v grows downwards
    img = bpy.data.images.new(name, s, s, alpha=False, float_buffer=True)
    img.pixels.foreach_set(rgba.ravel())
    img.pack()
    return img


def _material(name: str, scene: Scene, surface: int):
    """Principled BSDF with the surface's texture in a box projection of object coordinates, one
    repeat per ``tile`` metres (see the module docstring)."""
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
    spec, shin = float(scene.specular[surface]), float(scene.shininess[surface])
    bsdf.inputs["Roughness"].default_value = max(MIN_ROUGHNESS, math.sqrt(2.0 / (shin + 2.0))) if spec > 0 else 0.9
    bsdf.inputs["Specular IOR Level"].default_value = 0.5  # a dielectric's 4 % reflectance at normal incidence
    coords = nt.nodes.new("ShaderNodeTexCoord")
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = (1.0 / float(scene.tile[surface]),) * 3
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = _surface_image(name, scene, surface)
    tex.projection, tex.projection_blend, tex.extension = "BOX", 0.2, "REPEAT"
    nt.links.new(coords.outputs["Object"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
    nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _primitive(kind: str, scale: np.ndarray) -> bmesh.types.BMesh:
    """The unit primitive ``kind`` (resplat.data.scene.KINDS) scaled by ``scale`` [3] (metres)."""
    bm = bmesh.new()
    if kind == "ellipsoid":
        bmesh.ops.create_uvsphere(bm, u_segments=SEGMENTS, v_segments=SEGMENTS // 2, radius=1.0)
    elif kind == "box":
        bmesh.ops.create_cube(bm, size=2.0)
    elif kind in ("cylinder", "cone"):
        bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=SEGMENTS, radius1=1.0,
                              radius2=1.0 if kind == "cylinder" else 0.0, depth=2.0)
    else:
        raise CyclesDatasetError(f"unknown primitive {kind!r}")
    bmesh.ops.scale(bm, vec=Vector(scale.tolist()), verts=bm.verts)
    bm.normal_update()
    for f in bm.faces:  # smooth curved sides, flat caps and box faces
        f.smooth = kind != "box" and abs(f.normal.z) < 0.999
    return bm


def _object(name: str, bm: bmesh.types.BMesh, matrix: Matrix, material, casts_shadow: bool = True):
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    obj.matrix_world = matrix
    obj.visible_shadow = casts_shadow
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _room(scene: Scene) -> None:
    """Floor (surface O) and walls / dome (surface O + 1) of ``scene.room``."""
    o, half = scene.num_objects, scene.half
    floor = bmesh.new()
    if scene.room == "box":
        bmesh.ops.create_grid(floor, x_segments=1, y_segments=1, size=half)
    else:  # open ground or the dome's floor: a disc
        bmesh.ops.create_circle(floor, cap_ends=True, cap_tris=False, segments=4 * SEGMENTS, radius=half)
    _object("floor", floor, Matrix.Identity(4), _material("floor", scene, o))
    if scene.room == "open":
        return
    walls = bmesh.new()
    if scene.room == "box":
        bmesh.ops.create_cube(walls, size=1.0)
        bmesh.ops.scale(walls, vec=Vector((2 * half, 2 * half, scene.height)), verts=walls.verts)
        bmesh.ops.translate(walls, vec=Vector((0.0, 0.0, scene.height / 2)), verts=walls.verts)
        bmesh.ops.delete(walls, geom=[f for f in walls.faces if f.calc_center_median().z < 1e-6], context="FACES_ONLY")
    else:
        bmesh.ops.create_uvsphere(walls, u_segments=2 * SEGMENTS, v_segments=SEGMENTS, radius=half)
        for f in walls.faces:
            f.smooth = True
    _object("walls", walls, Matrix.Identity(4), _material("walls", scene, o + 1), casts_shadow=False)


def _world(bscene, scene: Scene, hdri: Path | None, turn: float) -> None:
    """The world: the HDRI turned by ``turn`` radians about z, else the scene's sky gradient
    (open scenes) or its ambient colour (rooms)."""
    world = bpy.data.worlds.new("World")
    bscene.world = world
    nt = world.node_tree
    bg = next(n for n in nt.nodes if n.type == "BACKGROUND")
    bg.inputs["Strength"].default_value = 1.0
    coords = nt.nodes.new("ShaderNodeTexCoord")
    if hdri is not None:
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, turn)
        env = nt.nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(str(hdri), check_existing=True)
        nt.links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
        nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    elif scene.sky_top is not None:
        split = nt.nodes.new("ShaderNodeSeparateXYZ")
        ramp = nt.nodes.new("ShaderNodeValToRGB")  # clamps the direction's z to [0, 1]
        ramp.color_ramp.interpolation = "LINEAR"
        ramp.color_ramp.elements[0].color = (*[float(c) for c in scene.sky_bottom], 1.0)
        ramp.color_ramp.elements[1].color = (*[float(c) for c in scene.sky_top], 1.0)
        nt.links.new(coords.outputs["Generated"], split.inputs["Vector"])
        nt.links.new(split.outputs["Z"], ramp.inputs["Fac"])
        nt.links.new(ramp.outputs["Color"], bg.inputs["Color"])
    else:
        bg.inputs["Color"].default_value = (*[float(c) for c in scene.ambient], 1.0)


def _suns(bscene, scene: Scene) -> None:
    """One sun per directional light (see the module docstring)."""
    for i, (d, c) in enumerate(zip(scene.light_dirs.tolist(), scene.light_colors.tolist())):
        peak = max(max(c), 1e-6)
        light = bpy.data.lights.new(f"sun_{i}", "SUN")
        light.energy = math.pi * peak
        light.color = tuple(x / peak for x in c)
        light.angle = 2.0 * scene.light_radius
        sun = bpy.data.objects.new(f"sun_{i}", light)
        sun.rotation_mode = "QUATERNION"
        sun.rotation_quaternion = Vector(d).to_track_quat("Z", "Y")  # local +z towards the light
        bscene.collection.objects.link(sun)


def _blender_cameras(bscene, cameras) -> list:
    """Blender cameras of the rig (OpenCV c2w and K), in view order."""
    out = []
    w, h = cameras.width, cameras.height
    for i in range(len(cameras)):
        ls = _cameras.lens_settings(cameras.K[i].double().numpy(), w, h)
        data = bpy.data.cameras.new(f"view_{i:03d}")
        data.type, data.lens, data.sensor_width, data.sensor_fit = "PERSP", ls.lens, ls.sensor_width, ls.sensor_fit
        data.shift_x, data.shift_y = ls.shift_x, ls.shift_y
        data.clip_start, data.clip_end = 1e-3, 1e4
        cam = bpy.data.objects.new(f"view_{i:03d}", data)
        cam.matrix_world = Matrix((cameras.c2w[i].double().numpy() @ _cameras.GL_TO_CV).tolist())
        bscene.collection.objects.link(cam)
        out.append(cam)
    return out


def build_blender_scene(scene: Scene, cameras, samples: int, threads: int, hdri: Path | None = None,
                        turn: float = 0.0) -> list:
    """Replace Blender's current scene with ``scene`` (see the module docstring) and the rig
    ``cameras`` (:class:`resplat.cameras.Cameras`); returns the camera objects in view order."""
    bpy.ops.wm.read_homefile(use_factory_startup=True, use_empty=True)
    bscene = bpy.context.scene
    for i, kind in enumerate(scene.kinds):
        m = np.eye(4)
        m[:3, :3] = scene.rotations[i].numpy()
        m[:3, 3] = scene.centers[i].numpy()
        _object(f"object_{i:02d}", _primitive(kind, scene.scales[i].numpy()), Matrix(m.tolist()),
                _material(f"object_{i:02d}", scene, i))
    _room(scene)
    _world(bscene, scene, hdri, turn)
    _suns(bscene, scene)
    asset_scene.render_settings(bscene, cameras.width, samples, threads)
    bscene.render.resolution_y = cameras.height
    cams = _blender_cameras(bscene, cameras)
    bscene.camera = cams[0]
    bpy.context.view_layer.update()
    return cams


# --- rendering and the dataset ---------------------------------------------------------------


def _check_views(views, cameras) -> None:
    """The cameras Blender renders (read back by the add-on) must be the rig's."""
    for i, v in enumerate(views):
        K = cameras.K[i].double().numpy()
        c2w = v.c2w @ _cameras.GL_TO_CV
        ref = cameras.c2w[i].double().numpy()
        if np.abs(v.K - K).max() > CAMERA_TOLERANCE or np.abs(c2w - ref).max() > CAMERA_TOLERANCE * max(1.0, np.abs(ref).max()):
            raise CyclesDatasetError(f"view {i}: Blender's camera differs from the rig's (K {v.K.tolist()} vs "
                                     f"{K.tolist()}); not writing the scene")


def render_cycles(scene: Scene, cameras, folder: Path, samples: int, threads: int, hdri: Path | None = None,
                  turn: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``scene`` from ``cameras`` with Cycles into the scratch ``folder``.

    Returns:
        images [V, 3, H, W] float32 sRGB-encoded in [0, 1] and depth [V, 1, H, W] float32
        z-depth (metres of the scene's world, 0 where the world shows), as
        :class:`resplat.data.render.RenderedViews` has them.

    Raises:
        CyclesDatasetError: Blender's cameras differ from the rig's; ResplatError: a render that
            wrote no image (the add-on's ``render_views``).
    """
    cams = build_blender_scene(scene, cameras, samples, threads, hdri, turn)
    bscene = bpy.context.scene
    views, paths, depth_paths = _views.render_views(bscene, cams, cameras.width, cameras.height, folder, depth=True)
    _check_views(views, cameras)
    images = load_images(paths)
    depth = torch.stack([torch.from_numpy(np.load(p)) for p in depth_paths])[:, None]
    return images, depth


def _renderer_options(samples: int, hdri_fraction: float) -> dict:
    return {"engine": "CYCLES", "samples": samples, "denoiser": "OPENIMAGEDENOISE", "hdri_fraction": hdri_fraction,
            "blender": bpy.app.version_string}


def make_cycles_scene(cfg: GeneratorConfig, seed: int, index: int, samples: int, hdri_fraction: float,
                      threads: int, scratch: Path):
    """Scene ``index`` of ``seed`` drawn as ``resplat data generate`` draws it and rendered by
    Cycles: (images, depth, cameras, scene.json dict), like :func:`resplat.data.generate.make_scene`.
    The HDRI choice comes from its own stream (SeedSequence [seed, index, 1]), so it changes no
    other draw."""
    drawn = draw_scene(cfg, seed, index)
    hdri, turn = None, 0.0
    hdris = studio_hdris()
    hrng = np.random.default_rng([seed, index, 1])
    if drawn.scene.room == "open" and hdris and hrng.uniform() < hdri_fraction:
        hdri = hdris[int(hrng.integers(len(hdris)))]
        turn = float(hrng.uniform(0, 2 * math.pi))
    images, depth = render_cycles(drawn.scene, drawn.cameras, scratch, samples, threads, hdri, turn)
    images, depth, cameras, meta = finish_scene(drawn, images, depth)
    meta["renderer"] = {**_renderer_options(samples, hdri_fraction), "hdri": hdri.name if hdri else None,
                        "hdri_turn": turn}
    return images, depth, cameras, meta


def _done(folder: Path, cfg: GeneratorConfig, seed: int, renderer: dict) -> bool:
    """A complete scene of these options (:func:`resplat.data.generate.finished_scene_meta`) that
    this renderer made (its per-scene HDRI choice aside)?"""
    meta = finished_scene_meta(folder, cfg, seed)
    if meta is None:
        return False
    made = {k: v for k, v in (meta.get("renderer") or {}).items() if k not in ("hdri", "hdri_turn")}
    return made == renderer


def generate_cycles_dataset(out: Path, scenes: int, seed: int, cfg: GeneratorConfig, samples: int = 32,
                            hdri_fraction: float = 0.0, threads: int = 1, log=print) -> dict:
    """Write ``scenes`` Cycles-rendered scenes under ``out`` plus index.json (resumes; see the
    module docstring). Returns the index dict.

    Raises:
        CyclesDatasetError: bad options, or ``out`` holds a dataset made with other options.
    """
    cfg.check()
    if scenes < 1 or samples < 1 or threads < 0 or not 0 <= hdri_fraction <= 1:
        raise CyclesDatasetError(f"need scenes >= 1, samples >= 1, threads >= 0 and hdri_fraction in [0, 1], got "
                                 f"{scenes}, {samples}, {threads}, {hdri_fraction}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    renderer = _renderer_options(samples, hdri_fraction)
    index_path = out / "index.json"
    if index_path.exists():
        old = json.loads(index_path.read_text(encoding="utf-8"))
        if old.get("seed") != seed or old.get("options") != asdict(cfg) or old.get("renderer") != renderer:
            raise CyclesDatasetError(f"{out}: holds a dataset made with another seed, options or renderer; "
                                     "use a new folder")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="resplat-cycles-") as tmp:
        for i in range(scenes):
            folder = out / scene_name(i)
            if _done(folder, cfg, seed, renderer):
                continue
            t = time.perf_counter()
            images, depth, cameras, meta = make_cycles_scene(cfg, seed, i, samples, hdri_fraction, threads,
                                                             Path(tmp) / f"{i:06d}")
            write_scene(folder, images, depth, cameras, meta)
            log(json.dumps({"event": "progress", "stage": "generate", "step": i + 1, "total": scenes,
                            "metrics": {"seconds": round(time.perf_counter() - t, 3),
                                        "hdri": meta["renderer"]["hdri"]}}), flush=True)
    index = {**dataset_index(cfg, seed, scenes, time.perf_counter() - t0), "renderer": renderer}
    write_json_atomic(index_path, index)
    return index


def main(argv: list[str] | None = None) -> int:
    """``cycles_dataset.py OUT --scenes N [--seed --size WxH --views --context --rig ... --samples
    --hdri-fraction --threads]``: the generator's options and defaults of ``resplat data generate``
    (:func:`resplat.cli.cmd_data.add_generator_arguments`) plus the renderer's."""
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    ap = argparse.ArgumentParser(prog="cycles_dataset.py", description=__doc__.split("\n\n")[0])
    add_generator_arguments(ap)
    ap.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel (default 32)")
    ap.add_argument("--hdri-fraction", type=float, default=0.0, help="share of open scenes under a studio HDRI")
    ap.add_argument("--threads", type=int, default=1, help="render threads (default 1; 0: all cores)")
    a = ap.parse_args(argv)
    try:
        index = generate_cycles_dataset(a.out, a.scenes, a.seed, generator_config(a), a.samples, a.hdri_fraction,
                                        a.threads)
    except ResplatError as e:
        print(f"cycles_dataset: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {a.scenes} Cycles scenes to {a.out} in {index['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
