"""The display's screenshot (docs/images/blender-display.png, in docs/blender-display.md): a
fitted splat scene shown by the Blender display beside the ground-truth render (headless Cycles
CPU, PyPI bpy 5.0.1).

Usage: python benchmarks/display_screenshot.py [--work DIR] [--out docs/images/blender-display.png]
                                                [--steps 400] [--splats 4000]

1. Scene: a cube and a UV sphere with emissive CC0 photo textures (scikit-image ``astronaut``
   and ``coffee``) on a black world; 8 orbit cameras at 128 x 128 rendered with Cycles
   (Standard view transform) and written as transforms.json by the add-on's camera code.
2. ``resplat optimize`` fits random Gaussians to the 8 views (CPU, torch rasteriser, 64 x 64);
   splats below --min-opacity are dropped before display (invisible, but each costs a
   transparent bounce per ray in Cycles).
3. From a novel camera (not among the 8): the ground truth, the fitted splats imported with the
   add-on and shown as ellipsoids (Gaussian-footprint material), and as points, each rendered
   with Cycles at 256 x 192, pasted side by side into one PNG.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from addon_env import addon_env  # noqa: E402


def _photo_material(bpy, name, pixels):
    img = bpy.data.images.new(name, pixels.shape[1], pixels.shape[0])
    rgba = np.concatenate([pixels / 255.0, np.ones(pixels.shape[:2] + (1,))], -1)[::-1]
    img.pixels.foreach_set(rgba.astype(np.float32).ravel())
    img.pack()
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    nt.nodes.clear()
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = img
    emit = nt.nodes.new("ShaderNodeEmission")
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(tex.outputs["Color"], emit.inputs["Color"])
    nt.links.new(emit.outputs[0], out.inputs["Surface"])
    return mat


def _scene(bpy):
    import skimage.data

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.cycles.transparent_max_bounces = 96  # splats crossed per ray; the render time grows with it
    scene.cycles.max_bounces = 2  # everything emits: no light transport to trace
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("black")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    scene.world = world
    bpy.ops.mesh.primitive_cube_add(size=1.2, location=(-0.5, 0.0, 0.0), rotation=(0.0, 0.0, 0.5))
    bpy.context.active_object.data.materials.append(_photo_material(bpy, "astronaut", skimage.data.astronaut()))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.55, location=(0.75, 0.2, 0.0))
    bpy.ops.object.shade_smooth()
    bpy.context.active_object.data.materials.append(_photo_material(bpy, "coffee", skimage.data.coffee()))
    return [o for o in scene.objects if o.type == "MESH"]


def _camera(bpy, name, azimuth, elevation, radius=4.0):
    from mathutils import Vector

    cam = bpy.data.objects.new(name, bpy.data.cameras.new(name))
    bpy.context.scene.collection.objects.link(cam)
    loc = Vector((math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation),
                  math.sin(elevation))) * radius
    cam.location = loc
    cam.rotation_euler = (-loc).to_track_quat("-Z", "Y").to_euler()
    cam.data.lens = 40
    return cam


def _render(bpy, cam, path, width, height, samples):
    scene = bpy.context.scene
    scene.camera = cam
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.cycles.samples = samples
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=str(REPO / "docs" / "images" / "blender-display.png"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--splats", type=int, default=4000)
    ap.add_argument("--size", default="64x64", help="fit resolution (the views are 128 x 128)")
    ap.add_argument("--min-opacity", type=float, default=0.02, help="drop fainter splats before rendering")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="resplat-shot-"))
    (work / "views").mkdir(parents=True, exist_ok=True)
    bpy, _, _ = addon_env()
    from bl_ext.user_default.resplat.resplat_addon import cameras, display
    from bl_ext.user_default.resplat.resplat_addon.runtime_formats import read_splat_arrays
    from bl_ext.user_default.resplat.resplat_addon.splats.pointcloud import build_object

    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob)
    meshes = _scene(bpy)
    views, paths = [], []
    for i in range(8):
        cam = _camera(bpy, f"cam{i}", 2 * math.pi * i / 8, math.radians(25 if i % 2 else 10))
        paths.append(work / "views" / f"cam{i}.png")
        if not paths[-1].exists():
            _render(bpy, cam, paths[-1], 128, 128, 16)
        views.append(cameras.camera_view(cam, 128, 128))
    cameras.write_transforms_json(work / "views" / "transforms.json", views, paths)
    fit = work / "fit.ply"
    if not fit.exists():
        subprocess.run([str(REPO / ".venv" / "bin" / "resplat"), "optimize", str(work / "views"), "--random",
                        str(args.splats), "--bounds=-1.4,-1.2,-1,1.4,1.2,1", "--steps", str(args.steps),
                        "--size", args.size,
                        "--background", "0,0,0", "--device", "cpu", "--progress", "none", "--out", str(fit)],
                       check=True)
    novel = _camera(bpy, "novel", math.radians(67), math.radians(35), radius=3.6)
    shots = []
    _render(bpy, novel, work / "gt.png", 256, 192, 32)
    shots.append(("ground truth (Cycles)", work / "gt.png"))
    for m in meshes:
        m.hide_render = True
    splats = read_splat_arrays(fit)
    # near-transparent floaters add nothing visible but cost one transparent bounce each per ray
    splats = splats.select(1 / (1 + np.exp(-splats.logit_opacities)) >= args.min_opacity)
    ob = build_object(bpy.context, splats, "fit")
    mod = ob.modifiers[display.MODIFIER_NAME]
    for label, ellipsoids in (("splats: ellipsoids", True), ("splats: points", False)):
        display.set_inputs(mod, Ellipsoids=ellipsoids, Sigma=3.0 if ellipsoids else 1.0, Detail=2)
        path = work / f"{'ell' if ellipsoids else 'pts'}.png"
        _render(bpy, novel, path, 256, 192, 64)
        shots.append((label, path))
    sheet = Image.new("RGB", (256 * len(shots), 192 + 18), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (label, path) in enumerate(shots):
        sheet.paste(Image.open(path).convert("RGB"), (256 * i, 18))
        draw.text((256 * i + 6, 3), label, fill=(0, 0, 0))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes); work folder {work}")


if __name__ == "__main__":
    main()
