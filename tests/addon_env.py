"""Headless Blender (PyPI bpy 5.0.1) with the extension built, validated and installed.

``BLENDER_USER_RESOURCES`` points at a temporary folder before bpy is imported, so nothing is
written under the home folder. The zip is built and validated with Blender's own
``blender_ext.py`` (no Blender binary needed), then installed and enabled with
``bpy.ops.extensions.package_install_files``.
"""

from __future__ import annotations

import atexit
import glob
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
_STATE: dict = {}
# before anything can import bpy (it reads the variable once, at import)
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="resplat-blender-")
atexit.register(shutil.rmtree, os.environ["BLENDER_USER_RESOURCES"], True)


def addon_env():
    """(bpy, add-on package module, zip path), built and installed once per process."""
    if "bpy" not in _STATE:
        bpy = pytest.importorskip("bpy")
        cli = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
        out = Path(tempfile.mkdtemp(prefix="resplat-zip-")) / "resplat.zip"
        atexit.register(shutil.rmtree, out.parent, True)
        for args in (["build", "--source-dir", str(REPO), "--output-filepath", str(out)], ["validate", str(out)]):
            r = subprocess.run([sys.executable, str(cli), *args], capture_output=True, text=True)
            assert r.returncode == 0 and "ERROR" not in r.stdout, r.stdout + r.stderr
        assert bpy.ops.extensions.package_install_files(
            filepath=str(out), repo="user_default", enable_on_install=True) == {"FINISHED"}
        _STATE.update(bpy=bpy, addon=importlib.import_module("bl_ext.user_default.resplat.resplat_addon"), zip=out)
    return _STATE["bpy"], _STATE["addon"], _STATE["zip"]


def zip_names(path: Path) -> list[str]:
    """Member names of the built extension zip."""
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def clear_scene(bpy) -> None:
    """Remove every object and orphan mesh/point cloud (the add-on stays enabled)."""
    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob)
    for coll in (bpy.data.meshes, bpy.data.pointclouds):
        for d in list(coll):
            if d.users == 0:
                coll.remove(d)


@pytest.fixture()
def env():
    """(bpy, add-on module) with an empty scene before and after the test."""
    bpy, addon, _ = addon_env()
    clear_scene(bpy)
    yield bpy, addon
    clear_scene(bpy)


def empty_cycles_scene(bpy, samples: int):
    """:func:`clear_scene`, every collection removed, Cycles on the CPU with ``samples`` samples;
    returns the scene."""
    clear_scene(bpy)
    for c in list(bpy.data.collections):
        bpy.data.collections.remove(c)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = samples
    scene.cycles.device = "CPU"
    return scene


def emission_checker(bpy, name: str = "checker", **checker_inputs):
    """A material emitting a checker texture (lighting-free, so renders are deterministic);
    ``checker_inputs`` set the checker node's inputs (e.g. ``Scale=6.0``)."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.remove(nt.nodes["Principled BSDF"])
    em, ch = nt.nodes.new("ShaderNodeEmission"), nt.nodes.new("ShaderNodeTexChecker")
    for key, value in checker_inputs.items():
        ch.inputs[key].default_value = value
    nt.links.new(ch.outputs["Color"], em.inputs["Color"])
    nt.links.new(em.outputs[0], nt.nodes["Material Output"].inputs[0])
    return mat


def camera_ring(bpy, scene, count: int, radius: float, height: float, name: str = "Rig"):
    """A new collection ``name`` in ``scene`` holding ``count`` cameras Cam0.. on a circle of
    ``radius`` at ``height``, each looking at the origin; returns the collection."""
    import math

    from mathutils import Vector

    rig = bpy.data.collections.new(name)
    scene.collection.children.link(rig)
    for i in range(count):
        a = 2 * math.pi * i / count + 0.3
        cam = bpy.data.objects.new(f"Cam{i}", bpy.data.cameras.new(f"Cam{i}"))
        cam.location = (radius * math.cos(a), radius * math.sin(a), height)
        cam.rotation_euler = (Vector((0, 0, 0)) - cam.location).to_track_quat("-Z", "Y").to_euler()
        rig.objects.link(cam)
    return rig


class FakeOperator:
    """Stands in for the operator instance in the add-on's shared modal body
    (``jobs.modal_step``): records its reports as ``(kind, text)``."""

    _timer = None

    def __init__(self):
        self.reports = []

    def report(self, kind, text):
        """Blender's ``Operator.report``: ``kind`` a one-element set such as {"INFO"}."""
        self.reports.append((set(kind).pop(), text))


def event(kind: str):
    """A window-manager event of type ``kind`` ("TIMER", "ESC", ...) as ``modal_step`` reads it."""
    return SimpleNamespace(type=kind)


def jobs_left() -> list[str]:
    """The add-on's job folders (``resplat-job-*``) in the temp folder, sorted."""
    return sorted(glob.glob(os.path.join(tempfile.gettempdir(), "resplat-job-*")))


@contextmanager
def kept_job_folders(addon):
    """While active, the add-on's splat jobs keep their temp folders (the views and the
    runtime's files) instead of removing them; yields the list they are appended to, and
    removes them on exit."""
    sj = importlib.import_module(f"{addon.__name__}.splat_job")
    kept, real = [], sj.remove_tree
    sj.remove_tree = kept.append
    try:
        yield kept
    finally:
        sj.remove_tree = real
        for p in kept:
            real(p)


def addon_module(addon, name: str):
    """The add-on's submodule ``name`` ("views", "operators.reconstruct", ...) of the installed
    package ``addon``."""
    return importlib.import_module(f"{addon.__name__}.{name}")


def run_modal(addon, context, job, timeout: float = 120.0):
    """Drive ``job`` through the operators' shared modal body (``jobs.modal_step``) with TIMER
    events, as Blender's event loop would, until it ends; returns (the modal result set, the
    :class:`FakeOperator` with its reports, the job's status after each running tick).

    Raises:
        AssertionError: the job still runs after ``timeout`` seconds.
    """
    import time

    modal_step, op, statuses = addon_module(addon, "jobs").modal_step, FakeOperator(), []
    end = time.monotonic() + timeout
    while (res := modal_step(op, context, event("TIMER"), job)) == {"RUNNING_MODAL"}:
        statuses.append(job.status)
        assert time.monotonic() < end, f"job still running after {timeout:.0f} s: {job.status}"
        time.sleep(0.02)
    return res, op, statuses
