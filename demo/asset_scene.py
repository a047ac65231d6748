"""A third-party textured asset in a textured room, rendered from posed cameras in headless
Blender (bpy), written as a ``transforms.json`` folder that :func:`resplat.views.read_views` reads.

The evaluation and the end-to-end demo use it to get real renders of an asset the model never saw:
by default 12 cameras on an orbit, 8 of them context (input) views and 4 held out in between.

Scene (all offline, no downloads): the asset (an OBJ, e.g. ``assets/spider/spider.obj``) centred
at the origin and scaled to a bounding-sphere radius of 1 m, standing on a textured floor inside
four textured walls (scikit-image's CC0 ``gravel`` and ``brick`` photographs, tinted; the asset's
own JPEGs where scikit-image is missing, e.g. inside Blender), lit by a sun and a uniform world
colour of strength 1; Cycles on the CPU with OpenImageDenoise, Standard view transform, 8-bit sRGB
PNG. Cameras look at the origin from ~3 m at 20-35 degrees elevation with a ~50 degree field of
view.

``--world open`` (the evaluation's scene, ``benchmarks/eval_assets.py``) replaces the room with an
open world: the asset on a 40 x 40 m floor with a procedural checker texture (Blender's Checker
Texture node, 0.5 m squares of two warm greys, in object coordinates) under a plain grey world
(uniform colour 0.5, strength 1) and the same sun; no walls, so the world shows above the
horizon of the lower cameras. ``--depth`` also writes the add-on's Depth Pass
(``resplat_addon.depth_pass``): ``depth/<camera>.npy`` float32 z-depth in metres, 0 where the
world shows, listed as ``depth_file_path`` in ``transforms.json`` (read by
:func:`resplat.views.read_views` into ``PosedViews.depths``).

Rendering and the ``transforms.json`` writer are the add-on's own (``resplat_addon.views`` and
``resplat_addon.cameras``, loaded from this checkout), so these views are exactly what the add-on's
"render the cameras" path produces.

Run (project venv, PyPI ``bpy``)::

    .venv/bin/python demo/asset_scene.py --asset assets/spider/spider.obj --out runs/spider256
    .venv/bin/python demo/asset_scene.py --asset assets/spider/spider.obj --out runs/eval/spider \
        --world open --depth

or inside Blender: ``blender -b -P demo/asset_scene.py -- --asset ... --out ...``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

if __name__ == "__main__":  # keep Blender's user config out of the home folder (read at bpy import)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="resplat-demo-blender-"))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: collection holding the cameras (the add-on's "collection" camera source can use it).
CAMERA_COLLECTION = "ReSplat Cameras"
#: collection holding the imported asset's objects.
ASSET_COLLECTION = "Asset"
ORBIT_RADIUS = 3.0  # metres (asset bounding sphere radius is 1 m)
ELEVATION_DEG = (20.0, 35.0)
FOV_DEG = 50.0
ROOM_HALF = 6.0  # metres from the origin to each wall
WALL_HEIGHT = 5.0
#: scene kinds of :func:`build_scene` ``world``
WORLDS = ("room", "open")
OPEN_FLOOR_HALF = 20.0  # metres from the origin to each edge of the open world's floor
CHECKER_SQUARE = 0.5  # metres, side of one checker square
CHECKER_COLOURS = ((0.75, 0.70, 0.62), (0.22, 0.20, 0.18))  # linear base colours
OPEN_WORLD_GREY = 0.5  # linear world colour of the open world (strength 1)


def _addon():
    """(``resplat_addon.views``, ``resplat_addon.cameras``) of this checkout.

    The repository root is the extension package (its modules use package-relative imports, e.g.
    ``..runtime.resplat``), so it is imported under a private package name without running its
    ``register()``.
    """
    name = "_resplat_demo_extension"
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(REPO)]
        sys.modules[name] = pkg
    return (importlib.import_module(f"{name}.resplat_addon.views"),
            importlib.import_module(f"{name}.resplat_addon.cameras"))


_views, _cameras = _addon()
ResplatError = _cameras.ResplatError


class AssetSceneError(ResplatError):
    """The asset cannot be loaded, a texture is missing, or the output folder cannot be used."""


def camera_name(i: int) -> str:
    """Name of the i-th orbit camera: ``cam_00``, ``cam_01``, ..."""
    return f"cam_{i:02d}"


def split_indices(views: int, context: int) -> tuple[list[int], list[int]]:
    """(context, held-out) camera indices: ``context`` views evenly spaced around the orbit
    (index ``floor(i * views / context)``), the rest held out between them.

    Raises:
        AssetSceneError: ``context`` not in 1..``views``.
    """
    if not 1 <= context <= views:
        raise AssetSceneError(f"context views must be between 1 and the {views} views, got {context}")
    ctx = [i * views // context for i in range(context)]
    return ctx, [i for i in range(views) if i not in ctx]


def split(views: int = 12, context: int = 8) -> tuple[list[str], list[str]]:
    """(context names, held-out names) of the orbit cameras, e.g. 12 views, 8 context: held out
    ``cam_02``, ``cam_05``, ``cam_08``, ``cam_11``. See :func:`split_indices`."""
    ctx, held = split_indices(views, context)
    return [camera_name(i) for i in ctx], [camera_name(i) for i in held]


# --- scene -----------------------------------------------------------------------------------


def _import_asset(asset: Path) -> list:
    """Import an OBJ, fix its image paths by basename in the asset's folder, and move its objects
    into the :data:`ASSET_COLLECTION` collection. Returns the mesh objects.

    Raises:
        AssetSceneError: missing file, nothing imported, or a texture not found beside the asset.
    """
    if not asset.is_file():
        raise AssetSceneError(f"{asset}: asset file not found")
    before = set(bpy.data.objects)
    if bpy.ops.wm.obj_import(filepath=str(asset)) != {"FINISHED"}:
        raise AssetSceneError(f"{asset}: OBJ import failed")
    objs = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    if not objs:
        raise AssetSceneError(f"{asset}: no mesh was imported")
    coll = bpy.data.collections.new(ASSET_COLLECTION)
    bpy.context.scene.collection.children.link(coll)
    for o in objs:
        for c in list(o.users_collection):
            c.objects.unlink(o)
        coll.objects.link(o)
    # .mtl files written on Windows name textures ".\\tex.jpg": resolve every image by basename
    for mat in sorted({s.material for o in objs for s in o.material_slots if s.material}, key=lambda m: m.name):
        for node in mat.node_tree.nodes if mat.node_tree else ():
            if node.type != "TEX_IMAGE" or node.image is None:
                continue
            base = re.split(r"[\\/]", node.image.filepath)[-1]
            path = asset.parent / base
            if not path.is_file():
                raise AssetSceneError(f"{asset}: texture {node.image.filepath!r} of material {mat.name!r} "
                                      f"not found as {path}")
            node.image.filepath = str(path)
            node.image.reload()
            if not node.image.size[0]:  # reading the size loads the file
                raise AssetSceneError(f"{asset}: texture {path} of material {mat.name!r} cannot be read")
    return objs


def _normalise(objs: list) -> float:
    """Move/scale ``objs`` so their vertices' bounding-box centre is the origin and their
    bounding sphere about it has radius 1 m. Returns the lowest z (m) after the change."""
    bpy.context.view_layer.update()
    pts = []
    for o in objs:
        co = np.empty(len(o.data.vertices) * 3, dtype=np.float64)
        o.data.vertices.foreach_get("co", co)
        m = np.array(o.matrix_world, dtype=np.float64)
        pts.append(co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
    pts = np.concatenate(pts)
    centre = 0.5 * (pts.min(0) + pts.max(0))
    radius = float(np.linalg.norm(pts - centre, axis=1).max())
    if not radius > 0:
        raise AssetSceneError("the asset has no extent (all vertices coincide)")
    s = 1.0 / radius
    fix = Matrix.Translation(Vector((-centre * s).tolist())) @ Matrix.Scale(s, 4)
    for o in objs:
        o.matrix_world = fix @ o.matrix_world
    bpy.context.view_layer.update()
    return float((pts[:, 2].min() - centre[2]) * s)


def _texture(name: str, photo: str, tint: tuple[float, float, float], fallback: Path):
    """A Blender image: scikit-image's CC0 photo ``photo`` (grey, 512x512) tinted by ``tint``
    (packed into the .blend data, no file written), or the image file ``fallback`` when
    scikit-image is not installed."""
    try:
        import skimage.data
    except ImportError:
        return bpy.data.images.load(str(fallback), check_existing=True)
    grey = getattr(skimage.data, photo)().astype(np.float32) / 255.0
    h, w = grey.shape
    rgba = np.ones((h, w, 4), dtype=np.float32)
    rgba[..., :3] = grey[::-1, :, None] * np.asarray(tint, dtype=np.float32)  # Blender rows go up
    img = bpy.data.images.new(name, w, h, alpha=False)
    img.pixels.foreach_set(rgba.ravel())
    img.pack()
    return img


def _textured_plane(name: str, size: tuple[float, float], matrix: Matrix, image, tiles: tuple[float, float]):
    """A ``size`` (x, y metres) plane placed by ``matrix`` with ``image`` repeated ``tiles``
    times across it (diffuse, rough)."""
    sx, sy = size
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(-sx / 2, -sy / 2, 0), (sx / 2, -sy / 2, 0), (sx / 2, sy / 2, 0), (-sx / 2, sy / 2, 0)],
                     [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", [0, 0, tiles[0], 0, tiles[0], tiles[1], 0, tiles[1]])
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.9
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = image
    nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    obj.matrix_world = matrix
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _room(floor_z: float, asset_dir: Path) -> None:
    """Floor at ``floor_z`` and four walls :data:`ROOM_HALF` m from the origin, textured."""
    side = 2 * ROOM_HALF
    floor = _texture("floor_gravel", "gravel", (0.80, 0.68, 0.52), asset_dir / "drkwood2.jpg")
    wall = _texture("wall_brick", "brick", (0.78, 0.50, 0.40), asset_dir / "wal67ar_small.jpg")
    _textured_plane("floor", (side, side), Matrix.Translation((0, 0, floor_z)), floor, (4, 4))
    for k in range(4):  # walls face the origin
        rot = Matrix.Rotation(k * math.pi / 2, 4, "Z") @ Matrix.Translation((0, ROOM_HALF, floor_z + WALL_HEIGHT / 2)) \
            @ Matrix.Rotation(math.pi / 2, 4, "X")
        _textured_plane(f"wall_{k}", (side, WALL_HEIGHT), rot, wall, (4, 4 * WALL_HEIGHT / side))


def _open_floor(floor_z: float) -> None:
    """The open world's floor: a square of side 2 :data:`OPEN_FLOOR_HALF` m at ``floor_z``, with a
    procedural checker (squares of :data:`CHECKER_SQUARE` m in object coordinates, diffuse)."""
    side = 2 * OPEN_FLOOR_HALF
    mesh = bpy.data.meshes.new("floor")
    h = side / 2
    mesh.from_pydata([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [], [(0, 1, 2, 3)])
    mat = bpy.data.materials.new("floor_checker")
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.9
    coords = nt.nodes.new("ShaderNodeTexCoord")
    checker = nt.nodes.new("ShaderNodeTexChecker")
    # the node's squares are 1 / scale wide in each axis of its input (0..1 per unit: 2 squares)
    checker.inputs["Scale"].default_value = 2.0 / (2 * CHECKER_SQUARE)
    checker.inputs["Color1"].default_value = (*CHECKER_COLOURS[0], 1.0)
    checker.inputs["Color2"].default_value = (*CHECKER_COLOURS[1], 1.0)
    nt.links.new(coords.outputs["Object"], checker.inputs["Vector"])
    nt.links.new(checker.outputs["Color"], bsdf.inputs["Base Color"])
    mesh.materials.append(mat)
    obj = bpy.data.objects.new("floor", mesh)
    obj.matrix_world = Matrix.Translation((0, 0, floor_z))
    bpy.context.scene.collection.objects.link(obj)


def _lights(scene, world_colour: tuple[float, float, float] = (0.55, 0.58, 0.62)) -> None:
    """A sun (3 W/m^2, 55 degrees up) and a uniform world of ``world_colour`` (linear),
    strength 1."""
    world = bpy.data.worlds.new("World")
    scene.world = world
    bg = next(n for n in world.node_tree.nodes if n.type == "BACKGROUND")
    bg.inputs["Color"].default_value = (*world_colour, 1.0)
    bg.inputs["Strength"].default_value = 1.0
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = 3.0
    sun.data.angle = math.radians(3.0)
    sun.rotation_euler = (math.radians(35.0), 0.0, math.radians(40.0))  # 90 - 35 = 55 deg elevation
    scene.collection.objects.link(sun)


def render_settings(scene, size: int, samples: int, threads: int) -> None:
    """Cycles on the CPU, ``samples`` samples, OpenImageDenoise, Standard view transform, 8-bit RGB
    PNG, ``size`` x ``size`` pixels, ``threads`` render threads (0: all cores). Also the settings of
    ``demo/cycles_dataset.py``'s training scenes."""
    scene.render.engine = "CYCLES"
    cy = scene.cycles
    cy.device = "CPU"
    cy.samples = samples
    cy.use_denoising = True
    try:
        cy.denoiser = "OPENIMAGEDENOISE"
    except TypeError:  # a build without OIDN: Cycles falls back on its own
        pass
    cy.max_bounces = 4
    r = scene.render
    r.resolution_x = r.resolution_y = size
    r.resolution_percentage = 100
    r.use_persistent_data = True  # keep the BVH between the cameras' renders
    r.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        r.threads = threads
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode, r.image_settings.color_depth = "RGB", "8"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"


def _orbit_cameras(scene, views: int, seed: int) -> list:
    """``views`` perspective cameras on an orbit about the origin, in :data:`CAMERA_COLLECTION`."""
    rng = random.Random(seed)
    coll = bpy.data.collections.new(CAMERA_COLLECTION)
    scene.collection.children.link(coll)
    lens = 18.0 / math.tan(math.radians(FOV_DEG / 2))  # 36 mm sensor across the (square) image
    cams = []
    for i in range(views):
        az = 2 * math.pi * i / views + math.radians(rng.uniform(-5.0, 5.0))
        el = math.radians(rng.uniform(*ELEVATION_DEG))
        r = ORBIT_RADIUS * rng.uniform(0.95, 1.05)
        data = bpy.data.cameras.new(camera_name(i))
        data.type, data.lens, data.sensor_width, data.sensor_fit = "PERSP", lens, 36.0, "AUTO"
        data.clip_start, data.clip_end = 0.05, 100.0
        cam = bpy.data.objects.new(camera_name(i), data)
        cam.location = Vector((r * math.cos(el) * math.cos(az), r * math.cos(el) * math.sin(az), r * math.sin(el)))
        cam.rotation_mode = "QUATERNION"
        cam.rotation_quaternion = (-cam.location).to_track_quat("-Z", "Y")  # look at the origin, +Y up
        coll.objects.link(cam)
        cams.append(cam)
    return cams


def build_scene(asset_path, *, views: int = 12, seed: int = 0, size: int = 256, samples: int = 32,
                threads: int = 0, world: str = "room") -> list:
    """Replace the current scene with the asset in a textured room (or an open world) and an
    orbit of cameras.

    Loads Blender's factory startup file without objects (``wm.read_homefile``; the preferences
    and enabled add-ons are kept), imports the OBJ, normalises it (bounding box centre at the
    origin, bounding sphere radius 1 m), and adds the room or the open world's checkered floor,
    the lights, the render settings and the cameras (see the module docstring).

    Args:
        asset_path: the OBJ file; its textures are looked up by basename beside it.
        views: number of cameras (``cam_00``...); seed: camera jitter; size: square render size
            in pixels; samples: Cycles samples per pixel; threads: render threads (0: all cores).
        world: "room" (textured floor and walls, grey-blue world) or "open" (checkered floor
            under a plain grey world, no walls).

    Returns:
        The camera objects, in name order.

    Raises:
        AssetSceneError: bad arguments, missing asset or texture.
    """
    if world not in WORLDS:
        raise AssetSceneError(f"world must be one of {', '.join(WORLDS)}, got {world!r}")
    if views < 1 or size < 1 or samples < 1 or threads < 0:
        raise AssetSceneError(f"views, size and samples must be positive and threads >= 0, got views={views}, "
                              f"size={size}, samples={samples}, threads={threads}")
    asset = Path(asset_path).resolve()
    bpy.ops.wm.read_homefile(use_factory_startup=True, use_empty=True)
    scene = bpy.context.scene
    objs = _import_asset(asset)
    floor_z = _normalise(objs)
    if world == "room":
        _room(floor_z, asset.parent)
        _lights(scene)
    else:
        _open_floor(floor_z)
        _lights(scene, (OPEN_WORLD_GREY,) * 3)
    render_settings(scene, size, samples, threads)
    cams = _orbit_cameras(scene, views, seed)
    scene.camera = cams[0]
    bpy.context.view_layer.update()
    return cams


# --- rendering -------------------------------------------------------------------------------


def _replace_folder(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` to ``out``, replacing an existing ``out`` (the caller checked that
    it is empty or a views folder)."""
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def render_views(out_dir, cameras: list, *, context: int | None = None, depth: bool = False) -> Path:
    """Render ``cameras`` with the current scene's settings into ``out_dir/images/<name>.png`` and
    write ``out_dir/transforms.json`` (OpenGL c2w = the camera's ``matrix_world``; intrinsics
    from the sensor fit) and ``out_dir/split.json`` ``{"context": [...], "heldout": [...]}``;
    with ``depth`` also the add-on's Depth Pass as ``out_dir/depth/<name>.npy`` (float32 z-depth
    in metres, 0 = world), listed as ``depth_file_path``.

    Everything is written into ``<out_dir>.tmp`` and renamed to ``out_dir`` at the end.

    Args:
        out_dir: the views folder; if it exists it must be empty or a views folder (it is
            replaced).
        cameras: camera objects, in view order; file names are their (file-safe) names.
        context: number of context views (default: 2/3 of the views, at least 1); see
            :func:`split_indices`.
        depth: also write each camera's Z pass (the add-on's ``render_views(..., depth=True)``).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        AssetSceneError: no cameras, or ``out_dir`` is a non-empty folder without
            ``transforms.json`` (nothing is rendered); ResplatError: see the add-on's
            ``render_views``.
    """
    out = Path(out_dir)
    if not cameras:
        raise AssetSceneError("no cameras to render")
    ctx, held = split_indices(len(cameras), max(1, round(len(cameras) * 2 / 3)) if context is None else context)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "transforms.json").is_file())):
        raise AssetSceneError(f"{out}: exists and is not a views folder (no transforms.json); not replacing it")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    try:
        scene = bpy.context.scene
        r = scene.render
        size = (r.resolution_x * r.resolution_percentage // 100, r.resolution_y * r.resolution_percentage // 100)
        views, rendered, rendered_depth = _views.render_views(scene, cameras, size[0], size[1], tmp / "images",
                                                              depth=depth)
        paths, depth_paths = [], [] if depth else None
        for i, (v, p) in enumerate(zip(views, rendered)):
            paths.append(p.with_name(_views.safe_name(v.name) + p.suffix))
            p.rename(paths[-1])
            if depth:  # the add-on writes them beside the images: images/depth/<i>_<name>.npy
                depth_paths.append(tmp / "depth" / (_views.safe_name(v.name) + ".npy"))
                depth_paths[-1].parent.mkdir(exist_ok=True)
                rendered_depth[i].rename(depth_paths[-1])
        if depth:
            shutil.rmtree(tmp / "images" / "depth", ignore_errors=True)
        _cameras.write_transforms_json(tmp / "transforms.json", views, paths, depth_paths)
        names = [p.stem for p in paths]
        (tmp / "split.json").write_text(json.dumps(
            {"context": [names[i] for i in ctx], "heldout": [names[i] for i in held]}, indent=2) + "\n")
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``asset_scene.py --asset OBJ --out DIR [--views --context --size --samples --seed --threads
    --world room|open --depth]``."""
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="asset_scene.py")
    ap.add_argument("--asset", required=True, help="OBJ file (textures beside it)")
    ap.add_argument("--out", required=True, help="views folder to write (replaced if it is one)")
    ap.add_argument("--views", type=int, default=12)
    ap.add_argument("--context", type=int, default=8, help="context views; the others are held out")
    ap.add_argument("--size", type=int, default=256, help="square image size in pixels")
    ap.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel")
    ap.add_argument("--seed", type=int, default=0, help="camera jitter")
    ap.add_argument("--threads", type=int, default=0, help="render threads (0: all cores)")
    ap.add_argument("--world", choices=WORLDS, default="room",
                    help="room: textured floor and walls (default, the demo); open: checkered floor under a "
                         "plain grey world (the evaluation)")
    ap.add_argument("--depth", action="store_true",
                    help="also write the Depth Pass as depth/<camera>.npy (z-depth in metres, 0 = world)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        split_indices(a.views, a.context)
        cams = build_scene(a.asset, views=a.views, seed=a.seed, size=a.size, samples=a.samples, threads=a.threads,
                           world=a.world)
        t1 = time.perf_counter()
        render_views(a.out, cams, context=a.context, depth=a.depth)
    except ResplatError as e:
        print(f"asset_scene: error: {e}", file=sys.stderr)
        return 2
    t2 = time.perf_counter()
    print(f"rendered {a.views} views ({a.size}x{a.size}, {a.samples} samples, {a.world} world"
          f"{', with depth' if a.depth else ''}) to {a.out} in {t2 - t0:.1f} s "
          f"(scene {t1 - t0:.1f} s, renders {t2 - t1:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
