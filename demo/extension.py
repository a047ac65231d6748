"""Enable the ReSplat extension of this checkout in headless Blender (bpy) and point its
preferences at a runtime interpreter.

Two ways, both from the repository (no download):

- ``link`` (default, a few seconds): a local extension repository in a temporary folder whose
  ``resplat`` entry is a symbolic link to the checkout, then ``preferences.addon_enable``; the
  extension runs from the working tree, as a developer's linked repository does.
- ``zip`` (what ``tests/addon_env.py`` does, ~1 minute on a busy 2-core machine): build the
  extension zip with Blender's own ``blender_ext.py``, validate it, and install it with
  ``extensions.package_install_files`` into the user repository.

``BLENDER_USER_RESOURCES`` must name a throw-away folder before bpy is imported (the callers
do), so nothing is written under the home folder.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import bpy

REPO = Path(__file__).resolve().parents[1]
#: the extension's id (blender_manifest.toml)
EXTENSION_ID = "resplat"


class ExtensionError(RuntimeError):
    """The extension could not be built, installed or enabled (one line)."""


def _blender_ext() -> Path:
    return Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def _enable_linked() -> str:
    """Local repository with a link to the checkout; returns the repository's module name."""
    folder = Path(tempfile.mkdtemp(prefix="resplat-demo-repo-"))
    atexit.register(shutil.rmtree, folder, True)
    os.symlink(REPO, folder / EXTENSION_ID, target_is_directory=True)
    before = {r.module for r in bpy.context.preferences.extensions.repos}
    if bpy.ops.preferences.extension_repo_add(name="resplat_demo", type="LOCAL", use_custom_directory=True,
                                              custom_directory=str(folder)) != {"FINISHED"}:
        raise ExtensionError(f"cannot add the local extension repository {folder}")
    module = next(r.module for r in bpy.context.preferences.extensions.repos if r.module not in before)
    if bpy.ops.preferences.addon_enable(module=f"bl_ext.{module}.{EXTENSION_ID}") != {"FINISHED"}:
        raise ExtensionError(f"cannot enable the extension from {REPO}")
    return module


def _install_zip() -> str:
    """Build, validate and install the zip (as tests/addon_env.py); returns "user_default"."""
    out = Path(tempfile.mkdtemp(prefix="resplat-demo-zip-")) / "resplat.zip"
    atexit.register(shutil.rmtree, out.parent, True)
    for args in (["build", "--source-dir", str(REPO), "--output-filepath", str(out)], ["validate", str(out)]):
        r = subprocess.run([sys.executable, str(_blender_ext()), *args], capture_output=True, text=True)
        if r.returncode != 0 or "ERROR" in r.stdout:
            last = ((r.stdout + r.stderr).strip().splitlines() or ["no output"])[-1]
            raise ExtensionError(f"blender_ext.py {args[0]} failed: {last}")
    if bpy.ops.extensions.package_install_files(filepath=str(out), repo="user_default",
                                                enable_on_install=True) != {"FINISHED"}:
        raise ExtensionError(f"cannot install {out}")
    return "user_default"


def enable_extension(python: str, how: str = "link"):
    """Enable the extension (``how``: "link" or "zip", see the module docstring) and set its
    preferences' runtime interpreter to ``python``.

    Returns:
        The extension's ``resplat_addon`` package module (``bl_ext.<repo>.resplat.resplat_addon``).

    Raises:
        ExtensionError: a step failed.
    """
    if how not in ("link", "zip"):
        raise ExtensionError(f"unknown way to enable the extension {how!r} (link or zip)")
    repo = _enable_linked() if how == "link" else _install_zip()
    addon = importlib.import_module(f"bl_ext.{repo}.{EXTENSION_ID}.resplat_addon")
    prefs = importlib.import_module(f"{addon.__name__}.preferences").get_prefs()
    prefs.python, prefs.checkpoint, prefs.device = python, "", "cpu"
    return addon
