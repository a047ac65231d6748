"""Optional depth pass when the add-on renders views: each camera's Z pass saved as ``.npy``.

Blender's "Depth" (Z) pass of Cycles and EEVEE is the z-depth in metres along the camera's
viewing axis, not the distance along the ray (measured with bpy 5.0.1: a plane facing the
camera at 5 m reads 5.0 in every pixel, the corners included), which is the runtime's depth
convention (``resplat.views.depths``: float32 [H, W], 0 = no surface). Cycles takes one sample
per pixel for it (Blender manual, "Render Passes"); pixels that see no surface (the world) come
back as 1e10 or at the clip end and are written as 0.

The pass is read through a temporary compositor node tree (Render Layers -> a File Output node
writing a 32-bit OpenEXR; Image -> Group Output, so the combined image stays the raw render)
that replaces the scene's compositor during the renders only. The scene's compositor, the view
layer's Z pass switch and ``render.use_compositing`` are restored afterwards, even on error, and
the temporary tree and images are removed.
"""

from __future__ import annotations

import glob
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np

from .runtime_formats import ResplatError

#: depth values at or above this (metres) are "no surface" whatever the clip end (Cycles: 1e10)
NO_SURFACE = 1e9


def exr_depth(path: str, width: int, height: int, clip_end: float) -> np.ndarray:
    """The first channel of a single-layer EXR written by the File Output node as float32
    [height, width], rows top to bottom (Blender stores images bottom-up), no-surface pixels 0.

    Raises:
        ResplatError: the file cannot be read or has another size.
    """
    try:
        img = bpy.data.images.load(path, check_existing=False)
    except RuntimeError:
        raise ResplatError(f"depth pass {path} cannot be read") from None
    try:
        w, h = img.size
        if (w, h) != (width, height):
            raise ResplatError(f"depth pass {path} is {w}x{h}, expected {width}x{height}")
        px = np.empty(w * h * img.channels, dtype=np.float32)
        img.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(img)
    d = px.reshape(h, w, -1)[::-1, :, 0].copy()
    d[~np.isfinite(d) | (d <= 0) | (d >= min(clip_end, NO_SURFACE))] = 0.0
    return d


class DepthWriter:
    """Writes the Z pass of each render (see :func:`depth_capture`): call :meth:`before_render`
    before ``bpy.ops.render.render`` and :meth:`save` after it."""

    def __init__(self, scene, node, folder: Path):
        self.scene, self.node, self.folder, self.count = scene, node, folder, 0

    def before_render(self) -> None:
        """Point the File Output node at a fresh sub-folder for the next render."""
        self.count += 1
        self.node.directory = str(self.folder / f"pass_{self.count:03d}") + os.sep
        self.node.file_name = "z"

    def save(self, camera, out_path: Path) -> None:
        """Save the last render's depth as float32 ``.npy`` [H, W] (metres, 0 = no surface).

        Raises:
            ResplatError: the engine wrote no depth pass, or it cannot be read.
        """
        files = sorted(glob.glob(os.path.join(self.node.directory, "*.exr")))
        if not files:
            raise ResplatError(f"rendering camera {camera.name!r} wrote no depth pass (render engine "
                               f"{self.scene.render.engine} has no Z pass?); turn Depth Pass off")
        r = self.scene.render
        out_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(str(out_path), exr_depth(files[0], r.resolution_x, r.resolution_y, camera.data.clip_end),
                allow_pickle=False)


@contextmanager
def depth_capture(scene, folder: Path):
    """Set ``scene`` up to write a Z pass per render into ``folder`` (temporary EXR files) and
    yield a :class:`DepthWriter`. The compositor, ``render.use_compositing`` and the view layer's
    Z pass switch are restored on exit, even on error; the temporary node tree and ``folder`` are
    removed.
    """
    layer = bpy.context.view_layer if bpy.context.view_layer in scene.view_layers[:] else scene.view_layers[0]
    saved = (scene.compositing_node_group, scene.render.use_compositing, layer.use_pass_z)
    tree = bpy.data.node_groups.new(".resplat_depth_pass", "CompositorNodeTree")
    try:
        layer.use_pass_z = True  # before the Render Layers node, whose sockets follow the passes
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        rl = tree.nodes.new("CompositorNodeRLayers")
        rl.scene, rl.layer = scene, layer.name
        out = tree.nodes.new("NodeGroupOutput")
        tree.links.new(rl.outputs["Image"], out.inputs[0])
        fo = tree.nodes.new("CompositorNodeOutputFile")
        fo.format.media_type = "IMAGE"
        fo.format.file_format = "OPEN_EXR"
        fo.format.color_depth = "32"
        fo.file_output_items.clear()
        fo.file_output_items.new("FLOAT", "depth")
        tree.links.new(rl.outputs["Depth"], fo.inputs[0])
        scene.render.use_compositing = True
        scene.compositing_node_group = tree
        yield DepthWriter(scene, fo, folder)
    finally:
        scene.compositing_node_group, scene.render.use_compositing, layer.use_pass_z = saved
        bpy.data.node_groups.remove(tree)
        shutil.rmtree(folder, ignore_errors=True)
