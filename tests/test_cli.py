"""The `resplat` command line end to end: real files in, real files out, one-line errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from resplat.cameras import Cameras, K_from_fov
from resplat.cli.main import main
from resplat.formats import read_splat_arrays, write_splats
from resplat.gaussians import Gaussians
from resplat.render import render
from resplat.views import load_image, save_image, write_transforms_json


def _scene(n=300, seed=0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 1.2
    return Gaussians.from_activated(
        means, torch.randn(n, 4, generator=g), torch.rand(n, 3, generator=g) * 0.08 + 0.02,
        torch.rand(n, generator=g) * 0.8 + 0.1, rgb=torch.rand(n, 3, generator=g))


def _orbit(v=4, size=(48, 40)) -> Cameras:
    c2w = []
    for i in range(v):
        a = 2 * math.pi * i / v
        eye = torch.tensor([3 * math.sin(a), 0.4, -3 * math.cos(a)])
        z = -eye / eye.norm()
        x = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), z)
        x = x / x.norm()
        y = torch.linalg.cross(z, x)
        T = torch.eye(4)
        T[:3, :3] = torch.stack([x, y, z], 1)
        T[:3, 3] = eye
        c2w.append(T)
    w, h = size
    return Cameras.from_c2w(torch.stack(c2w), K_from_fov(math.radians(50), w, h), w, h, [f"cam{i}" for i in range(v)])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A scene file and views rendered from it (ground truth), written as transforms.json."""
    root = tmp_path_factory.mktemp("cli")
    scene, cams = _scene(), _orbit()
    with torch.no_grad():
        rgb = render(scene, cams, background=torch.ones(3)).rgb
    paths = []
    for i in range(len(cams)):
        p = root / "images" / f"cam{i}.png"
        p.parent.mkdir(exist_ok=True)
        save_image(p, rgb[i])
        paths.append(p)
    write_transforms_json(root / "transforms.json", cams, paths)
    write_splats(scene, root / "scene.ply")
    return root


def _run_cli(*args):
    """Run `python -m resplat` in a subprocess (the user's view: exit code, stdout, stderr)."""
    return subprocess.run([sys.executable, "-m", "resplat", *map(str, args)], capture_output=True, text=True)


def test_render_matches_library_and_writes_pngs(dataset, tmp_path):
    assert main(["render", str(dataset / "scene.ply"), str(dataset), "--out", str(tmp_path), "--background", "1,1,1", "--depth"]) == 0
    for i in range(4):
        ours = load_image(tmp_path / f"cam{i}.png")
        truth = load_image(dataset / "images" / f"cam{i}.png")
        # Same scene, same cameras, both quantised to 8 bits: identical up to one code value.
        assert (ours - truth).abs().max() <= 1 / 255 + 1e-6
        depth = np.load(tmp_path / f"cam{i}.depth.npy")
        assert depth.shape == (40, 48) and 1.5 < depth[depth > 0].mean() < 4.5


def test_eval_table_and_json(dataset, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["eval", str(dataset / "scene.ply"), str(dataset), "--background", "1,1,1", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| view | psnr | ssim |" in table and "| mean |" in table
    report = json.loads(out.read_text())
    assert len(report["views"]) == 4
    assert report["mean"]["psnr"] > 40 and report["mean"]["ssim"] > 0.99
    # A different scene must score far worse: the table measures something.
    other = tmp_path / "other.ply"
    write_splats(_scene(seed=1), other)
    assert main(["eval", str(other), str(dataset), "--background", "1,1,1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mean"]["psnr"] < 25


def test_convert_round_trip_via_spz(train_ply, tmp_path):
    spz, back = tmp_path / "a.spz", tmp_path / "b.ply"
    assert main(["convert", str(train_ply), str(spz)]) == 0
    assert main(["convert", str(spz), str(back), "--sh-degree", "1"]) == 0
    a, b = read_splat_arrays(train_ply), read_splat_arrays(back)
    assert len(b) == len(a) and b.sh_degree == 1
    assert np.abs(a.means - b.means).max() <= 2.0**-12


def test_jsonl_progress_is_machine_readable(dataset, tmp_path):
    r = _run_cli("render", dataset / "scene.ply", dataset, "--out", tmp_path, "--progress", "jsonl")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    steps = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4] and all(e["total"] == 4 and e["stage"] == "render" for e in steps)
    assert events[-1] == {"event": "result", "stage": "render", "path": str(tmp_path), "count": 4}


@pytest.mark.parametrize(
    "args, needle",
    [
        (["convert", "{bad}", "{tmp}/x.ply"], "bad.ply"),
        (["convert", "{missing}", "{tmp}/x.ply"], "missing.ply"),
        (["convert", "{train}", "{tmp}/x.obj"], ".obj"),
        (["render", "{train}", "{tmp}/nowhere", "--out", "{tmp}/r"], "nowhere"),
        (["render", "{train}", "{tmp}", "--out", "{tmp}/r", "--size", "0x5"], "size"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path, train_ply):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n\0\0")
    subs = {"{bad}": str(bad), "{missing}": str(tmp_path / "missing.ply"), "{train}": str(train_ply), "{tmp}": str(tmp_path)}
    argv = []
    for a in args:
        for k, v in subs.items():
            a = a.replace(k, v)
        argv.append(a)
    r = _run_cli(*argv)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resplat: error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.ply").exists()


def test_jsonl_error_event(tmp_path):
    r = _run_cli("convert", tmp_path / "nope.spz", tmp_path / "o.ply", "--progress", "jsonl")
    assert r.returncode == 2
    event = json.loads(r.stdout.strip().splitlines()[-1])
    assert event["event"] == "error" and "nope.spz" in event["message"]


def test_optimize_from_random_init_improves_and_reports(dataset, tmp_path):
    out = tmp_path / "fit.ply"
    r = _run_cli("optimize", dataset, "--random", 400, "--steps", 60, "--holdout", 4, "--background", "1,1,1",
                 "--out", out, "--progress", "jsonl", "--prune", "0.005")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    steps = [e for e in events if e["event"] == "progress" and e["stage"] == "optimize"]
    assert len(steps) == 60 and steps[-1]["step"] == 60
    assert "psnr" in steps[-1]["metrics"] and steps[-1]["metrics"]["gaussians"] <= 400
    result = events[-1]
    assert result["event"] == "result" and result["path"] == str(out)
    assert len(read_splat_arrays(out)) == result["metrics"]["gaussians"]
    # Held-out PSNR after fitting must beat the random initialisation's on the same view.
    from resplat.optim import random_init
    from resplat.metrics import psnr
    from resplat.views import read_views

    views = read_views(dataset)
    init = random_init(views.cameras[[1, 2, 3]], 400, seed=0)
    with torch.no_grad():
        before = psnr(render(init, views.cameras[0], background=torch.ones(3)).rgb.clamp(0, 1), views.images[:1])
    assert result["metrics"]["holdout_psnr"] > float(before) + 2.0
