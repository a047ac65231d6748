"""The extension's model choice (headless bpy 5.0.1): Embedded (default) / Checkpoint File /
Optimisation Only become the right runtime command lines, seen by a stand-in interpreter that
records its arguments and answers with a splat file (the real runtime's side is
tests/test_cli_reconstruct_embedded.py); the lines parse with the runtime's own CLI parser;
a Checkpoint File choice without a file is refused before any work; and the extension zip
carries the embedded weights file when the runtime has one."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from addon_env import REPO, addon_env, addon_module, clear_scene, zip_names
from resplat.cli.main import build_parser
from resplat.formats import write_splats
from resplat.gaussians import Gaussians
from resplat.views import save_image


@pytest.fixture()
def scene(tmp_path):
    """Two cameras in a collection "Rig", a folder of their 64x64 images (no rendering), a splat
    file for the stand-in runtime to return, and that runtime as the preferences' interpreter."""
    bpy, addon, _ = addon_env()
    clear_scene(bpy)
    rig = bpy.data.collections.new("Rig")
    bpy.context.scene.collection.children.link(rig)
    gen = torch.Generator().manual_seed(0)
    (tmp_path / "views").mkdir()
    for i, name in enumerate(("CamA", "CamB")):
        cam = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        cam.location = (0.2 * i, -3.0, 0.0)
        cam.rotation_euler = (1.5708, 0.0, 0.0)
        rig.objects.link(cam)
        save_image(tmp_path / "views" / f"{name}.png", torch.rand(3, 64, 64, generator=gen))
    n = 37
    g = torch.Generator().manual_seed(1)
    write_splats(Gaussians(torch.randn(n, 3, generator=g), torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
                           torch.full((n, 3), -3.0), torch.randn(n, generator=g), torch.randn(n, 16, 3, generator=g)),
                 tmp_path / "answer.ply")
    fake = tmp_path / "fakepython"
    fake.write_text("#!/bin/sh\n"
                    f"printf '%s\\n' \"$@\" > '{tmp_path}/args.txt'\n"
                    'prev=""; for a in "$@"; do [ "$prev" = "--out" ] && out="$a"; prev="$a"; done\n'
                    f"cp '{tmp_path}/answer.ply' \"$out\"\n"
                    'echo "{\\"event\\": \\"result\\", \\"stage\\": \\"reconstruct\\", \\"path\\": \\"$out\\"}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    s = bpy.context.scene.resplat
    s.property_unset("model")  # the default choices
    s.property_unset("polish")
    s.cameras, s.collection, s.views, s.image_folder = "COLLECTION", rig, "FOLDER", str(tmp_path / "views")
    s.iterations, s.prune_opacity, s.steps, s.device, s.checkpoint, s.random_count = 6, 0.01, 8, "cpu", "", 123
    s.model_iterations, s.quality = False, False  # one command; its --iterations
    prefs = addon_module(addon, "preferences").get_prefs()
    prefs.python, prefs.checkpoint = str(fake), ""
    yield bpy, addon, tmp_path
    prefs.python = prefs.checkpoint = ""
    s.property_unset("model")
    s.property_unset("polish")
    s.property_unset("model_iterations")
    s.property_unset("quality")
    clear_scene(bpy)
    for c in list(bpy.data.collections):
        bpy.data.collections.remove(c)


def _run(bpy, tmp_path) -> list[str]:
    """Reconstruct through the operator; the arguments the stand-in runtime received."""
    assert bpy.ops.resplat.reconstruct() == {"FINISHED"}
    # the result is named after the collection ("Rig", or "Rig.001" when an earlier test's remains hold the name)
    ob = bpy.data.objects[bpy.context.scene.resplat.collection.name]
    assert len(ob.data.points) == 37  # the runtime's answer became the result object
    bpy.data.objects.remove(ob)
    return (tmp_path / "args.txt").read_text().splitlines()


def _options(argv: list[str]) -> dict:
    """The runtime's parse of a command line (``-m resplat`` and the interpreter stripped)."""
    assert argv[:2] == ["-m", "resplat"]
    return vars(build_parser().parse_args(argv[2:]))


def test_embedded_is_the_default_and_checkpoint_and_optimise_choices(scene):
    bpy, addon, tmp_path = scene
    s = bpy.context.scene.resplat
    assert s.model == "EMBEDDED"
    argv = _run(bpy, tmp_path)
    job = Path(argv[3]).parent
    assert argv == ["-m", "resplat", "reconstruct", str(job / "transforms.json"), "--out", str(job / "reconstructed.ply"),
                    "--device", "cpu", "--progress", "jsonl", "--iterations", "6", "--prune-opacity", "0.01",
                    "--optimize-steps", "8", "--polish-seconds", "30",  # the Polish default (30 s)
                    "--preview-dir", str(job / "previews"), "--crop", "--preview-every", "2"]
    opts = _options(argv)
    assert opts["checkpoint"] is None and opts["iterations"] == 6 and opts["prune_opacity"] == pytest.approx(0.01)
    assert opts["optimize_steps"] == 8 and opts["crop"]

    # Checkpoint File: the panel's file, else the preferences'
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"stand-in")
    prefs = addon_module(addon, "preferences").get_prefs()
    s.model, prefs.checkpoint = "CHECKPOINT", str(ckpt)
    argv = _run(bpy, tmp_path)
    assert argv[argv.index("--checkpoint") + 1] == str(ckpt) and _options(argv)["checkpoint"] == ckpt
    other = tmp_path / "other.pth"
    other.write_bytes(b"stand-in")
    s.checkpoint = str(other)
    assert _options(_run(bpy, tmp_path))["checkpoint"] == other

    # Optimisation Only: resplat optimize from random Gaussians, the panel's steps
    s.model, s.steps = "OPTIMIZE", 0
    argv = _run(bpy, tmp_path)
    opts = _options(argv)
    assert argv[2] == "optimize" and opts["random"] == 123 and opts["steps"] == 500 and opts["preview_every"] == 125
    assert "--checkpoint" not in argv and "--iterations" not in argv


def test_checkpoint_choice_without_a_file_is_refused(scene):
    bpy, addon, tmp_path = scene
    s = bpy.context.scene.resplat
    s.model = "CHECKPOINT"
    names = sorted(o.name for o in bpy.data.objects)
    with pytest.raises(RuntimeError, match="Model is Checkpoint File but no checkpoint is set"):
        bpy.ops.resplat.reconstruct()
    s.checkpoint = str(tmp_path / "gone.safetensors")
    with pytest.raises(RuntimeError, match=r"checkpoint .*gone\.safetensors not found"):
        bpy.ops.resplat.reconstruct()
    assert sorted(o.name for o in bpy.data.objects) == names and not (tmp_path / "args.txt").exists()


def test_command_lines_per_choice(scene):
    _, addon, tmp_path = scene
    rec = addon_module(addon, "operators.reconstruct")
    s = SimpleNamespace(model="EMBEDDED", model_iterations=False, iterations=0, steps=0, prune_opacity=0.0,
                        random_count=5, polish="OFF", polish_seconds=1.0, quality=False)
    cmd = rec.reconstruct_commands("py", s, "v.json", tmp_path, "", "auto")
    assert len(cmd) == 1 and cmd[0][cmd[0].index("--iterations"):cmd[0].index("--preview-dir")] == [
        "--iterations", "0", "--prune-opacity", "0", "--optimize-steps", "0"]
    # a checkpoint path is passed only for the Checkpoint File choice
    assert "--checkpoint" not in rec.reconstruct_commands("py", s, "v.json", tmp_path, "/m.pth", "auto")[0]
    s.model = "CHECKPOINT"
    assert "/m.pth" in rec.reconstruct_commands("py", s, "v.json", tmp_path, "/m.pth", "auto")[0]


def test_zip_carries_the_embedded_weights(tmp_path):
    """Build the extension from a copy of its sources with a weights file added, as the real
    one will be: the file is in the zip at the path the runtime looks for it."""
    bpy, _, _ = addon_env()
    src = tmp_path / "src"
    src.mkdir()
    for part in ("__init__.py", "blender_manifest.toml"):
        shutil.copy(REPO / part, src / part)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "resplat_addon", src / "resplat_addon", ignore=ignore)
    shutil.copytree(REPO / "runtime" / "resplat", src / "runtime" / "resplat", ignore=ignore)
    shutil.copytree(REPO / "wheels", src / "wheels")
    weights = src / "runtime" / "resplat" / "model" / "weights" / "tiny.safetensors"
    weights.parent.mkdir(exist_ok=True)
    weights.write_bytes(b"\0" * 1000)
    cli = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    out = tmp_path / "resplat.zip"
    r = subprocess.run([sys.executable, str(cli), "build", "--source-dir", str(src), "--output-filepath", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    names = zip_names(out)
    assert "runtime/resplat/model/weights/tiny.safetensors" in names and "runtime/resplat/model/checkpoint.py" in names
