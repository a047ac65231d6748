"""The runtime process from Blender (headless): preferences registered, Check Runtime against
the project's venv and against fake interpreters, Install Runtime's commands, and its cancel /
failure paths with a fake interpreter (no network: pip is never really run)."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from addon_env import addon_env, addon_module
from resplat.defaults import EMBEDDED_ITERATIONS


@pytest.fixture()
def env():
    bpy, addon, _ = addon_env()
    return bpy, addon


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_preferences_and_check_runtime(env, tmp_path):
    bpy, addon = env
    prefs_mod = addon_module(addon, "preferences")
    prefs = prefs_mod.get_prefs()
    assert prefs_mod.ADDON_ID == "bl_ext.user_default.resplat" and prefs.device == "auto"
    # The default, not the current value: other test modules share this Blender session's scene.
    assert bpy.types.VIEW3D_PT_resplat.bl_category == "ReSplat"
    props = bpy.context.scene.resplat.bl_rna.properties
    assert props["iterations"].default == EMBEDDED_ITERATIONS
    assert (props["iterations"].hard_min, props["iterations"].hard_max) == (0, 8)
    assert props["model"].default == "EMBEDDED" and abs(props["prune_opacity"].default - 0.005) < 1e-9
    # Auto's text is the runtime's rule (resplat.device), the one the probe below applies
    auto = next(d for d in prefs_mod.DEVICES if d[0] == "auto")
    assert auto[2] == "CUDA, then MPS, then CPU" == prefs.bl_rna.properties["device"].enum_items["auto"].description
    assert {"reconstruct", "refine", "check_runtime", "install_runtime"} <= set(dir(bpy.ops.resplat))
    prefs.python = sys.executable
    try:
        assert bpy.ops.resplat.check_runtime() == {"FINISHED"}
        import torch

        import resplat
        from resplat.model.checkpoint import embedded_weights_path

        embedded = "present" if embedded_weights_path().is_file() else "missing (choose a checkpoint file)"
        assert prefs.status == (f"resplat {resplat.__version__}, torch {torch.__version__}, device auto: cpu, "
                                f"embedded model {embedded}")
        prefs.device = "cuda"  # this machine has none: the runtime's resolver says why (a warning)
        try:
            assert bpy.ops.resplat.check_runtime() == {"FINISHED"}
        finally:
            prefs.device = "auto"
        assert prefs.status == (f"resplat {resplat.__version__}, torch {torch.__version__}, device cuda: unavailable "
                                "(device 'cuda': no such CUDA device is available to this torch build), "
                                f"embedded model {embedded}")
        for present, word in ((True, "present"), (False, "missing (choose a checkpoint file)")):
            info = json.dumps({"resplat": "9.9", "torch": "2.x", "device": "cuda", "embedded": present})
            prefs.python = _script(tmp_path / f"probe{present}", f"echo '{info}'\n")
            assert bpy.ops.resplat.check_runtime() == {"FINISHED"}
            assert prefs.status == f"resplat 9.9, torch 2.x, device auto: cuda, embedded model {word}"
        prefs.python = _script(tmp_path / "notorch", "echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 1\n")
        with pytest.raises(RuntimeError, match="has no working runtime: ModuleNotFoundError: No module named 'torch'"):
            bpy.ops.resplat.check_runtime()  # an ERROR report raises in background mode
        assert prefs.status.endswith("has no working runtime: ModuleNotFoundError: No module named 'torch'")
        prefs.python = str(tmp_path / "missing" / "python")
        with pytest.raises(RuntimeError, match="not found"):
            bpy.ops.resplat.check_runtime()
        assert prefs.status == f"runtime interpreter {tmp_path / 'missing' / 'python'} not found (Preferences > Add-ons > ReSplat)"
    finally:
        prefs.python = ""


def test_install_commands(env, tmp_path):
    rp = addon_module(env[1], "runtime_process")
    venv = tmp_path / "venv"
    cmds = rp.install_commands("/blender/python", venv, "/ext/runtime", "CUDA")
    py = str(venv / "bin" / "python")
    assert cmds[0] == ["/blender/python", "-m", "venv", str(venv)]
    assert cmds[1] == [py, "-m", "pip", "install", "--progress-bar", "off", "torch", "--index-url",
                       "https://download.pytorch.org/whl/cu128"]
    assert cmds[2][:6] == [py, "-m", "pip", "install", "--progress-bar", "off"] and "safetensors>=0.4" in cmds[2]
    assert cmds[3][0] == py and cmds[3][-1] == "/ext/runtime"
    assert "--index-url" not in rp.install_commands("p", venv, "r", "MPS")[1]
    assert rp.install_commands("p", venv, "r", "CPU")[1][-1] == "https://download.pytorch.org/whl/cpu"
    with pytest.raises(rp.ResplatError, match="unknown torch variant 'ROCM'"):
        rp.install_commands("p", venv, "r", "ROCM")
    assert cmds[3][1] == "-c" and "resplat_runtime.pth" in cmds[3][2]


def test_pth_step_makes_the_bundled_runtime_importable(env, tmp_path):
    """The last install command, run for real in a pip-less venv: the folder it names becomes
    importable (as the bundled ``runtime/`` folder holding ``resplat`` does)."""
    import subprocess

    rp = addon_module(env[1], "runtime_process")
    pkg = tmp_path / "runtime" / "probe_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 42\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    cmd = rp.install_commands(sys.executable, venv, tmp_path / "runtime", "CPU")[3]
    subprocess.run(cmd, check=True)
    out = subprocess.run([str(rp.venv_python(venv)), "-c", "import probe_pkg; print(probe_pkg.VALUE)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"


def _fake_base(tmp_path: Path, pip_body: str) -> str:
    """A 'python' that makes a venv whose python runs ``pip_body`` for every command."""
    pip = _script(tmp_path / "fakepip", pip_body)
    return _script(tmp_path / "fakepython", f'mkdir -p "$3/bin" && cp "{pip}" "$3/bin/python"\n')


def test_install_cancel_kills_pip_and_removes_the_venv(env, tmp_path):
    bpy, addon = env
    inst = addon_module(addon, "operators.install_runtime")
    base = _fake_base(tmp_path, f'echo $$ > "{tmp_path}/pid"\nwhile true; do echo "Collecting torch"; sleep 0.05; done\n')
    ctl = inst.InstallController(bpy.context, base, str(tmp_path / "venv"), "CPU")
    ctl.start()
    end = time.monotonic() + 20
    while "Collecting" not in ctl.status and time.monotonic() < end:
        assert not ctl.tick()
        time.sleep(0.05)
    assert ctl.status == "Collecting torch" and 0 < ctl.fraction < 1
    assert (tmp_path / "venv" / "bin" / "python").is_file()
    ctl.cancel()
    assert ctl.cancelled and not (tmp_path / "venv").exists()
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # pip is gone (reaped by the reader thread)
        os.kill(pid, 0)


def test_install_failure_and_success(env, tmp_path):
    bpy, addon = env
    inst = addon_module(addon, "operators.install_runtime")
    base = _fake_base(tmp_path, 'echo "Collecting torch"\necho "ERROR: No matching distribution found for torch" >&2\nexit 1\n')
    ctl = inst.InstallController(bpy.context, base, str(tmp_path / "venv"), "CPU")
    ctl.start()
    ctl.run_to_end(timeout=30)
    assert ctl.error == "runtime exited with status 1: ERROR: No matching distribution found for torch"
    assert not (tmp_path / "venv").exists()
    ok = tmp_path / "ok"
    ok.mkdir()
    base = _fake_base(ok, 'echo "Successfully installed"\n')
    ctl = inst.InstallController(bpy.context, base, str(ok / "venv"), "CPU")
    ctl.start()
    ctl.run_to_end(timeout=30)
    assert ctl.error == "" and ctl.status == f"runtime installed in {ok / 'venv'}" and (ok / "venv/bin/python").is_file()
    # an existing venv is never overwritten
    with pytest.raises(inst.ResplatError, match="already exists"):
        inst.InstallController(bpy.context, base, str(ok / "venv"), "CPU").start()
