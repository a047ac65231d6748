"""The one device rule (resplat.device.resolve_device): auto picks CUDA, then MPS, then the CPU;
a named device must exist; every command and the library share the same function."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

from resplat import device as device_mod
from resplat.cli import common
from resplat.defaults import DEVICE_AUTO_TEXT
from resplat.device import resolve_device
from resplat.errors import ResplatError


def _machine(monkeypatch, cuda: int, mps: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, want", [(1, True, "cuda"), (0, True, "mps"), (0, False, "cpu"), (2, False, "cuda")])
def test_auto_order(monkeypatch, cuda, mps, want):
    _machine(monkeypatch, cuda, mps)
    assert resolve_device("auto") == torch.device(want)
    assert common.pick_device("auto") == torch.device(want)


def test_named_devices_must_exist(monkeypatch):
    _machine(monkeypatch, 1, False)
    assert resolve_device("cuda:0") == torch.device("cuda:0") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ResplatError, match=r"device 'cuda:1': no such CUDA device"):
        resolve_device("cuda:1")
    with pytest.raises(ResplatError, match=r"device 'mps': Apple Metal \(MPS\) is not available"):
        resolve_device("mps")
    for bad in ("gpu", "meta", "xla"):
        with pytest.raises(ResplatError, match=rf"unknown device '{bad}': use auto, cpu, cuda, mps or cuda:N"):
            resolve_device(bad)
    _machine(monkeypatch, 0, False)
    with pytest.raises(ResplatError, match="device 'cuda'"):
        resolve_device("cuda")
    dev = torch.device("cpu")
    assert resolve_device(dev) is dev


def test_everyone_uses_the_one_resolver():
    reconstruct = importlib.import_module("resplat.model.reconstruct")  # the package exports the function
    assert reconstruct.resolve_device is resolve_device
    assert DEVICE_AUTO_TEXT == "CUDA, then MPS, then CPU" and DEVICE_AUTO_TEXT in common.DEVICE_HELP
    # every command's --device help says the rule (train and reconstruct used to say "CUDA else CPU")
    for cmd in ("reconstruct", "optimize", "render", "eval", "train"):
        out = subprocess.run([sys.executable, "-m", "resplat", cmd, "--help"], capture_output=True, text=True)
        assert DEVICE_AUTO_TEXT in " ".join(out.stdout.split()), cmd


def test_cli_error_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "resplat", "render", str(tmp_path / "x.ply"), str(tmp_path),
                        "--out", str(tmp_path / "o"), "--device", "tpu"], capture_output=True, text=True)
    assert r.returncode != 0 and "unknown device 'tpu'" in r.stderr and "Traceback" not in r.stderr
