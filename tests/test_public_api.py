"""The top-level API people guess (resplat.read_splats, ...) resolves to the real objects, and
resolving it lazily keeps ``import resplat.formats`` free of torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import resplat

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"


def test_top_level_names_are_the_real_objects():
    from resplat.cameras import Cameras
    from resplat.formats import read_splats, write_splats
    from resplat.gaussians import Gaussians
    from resplat.model.reconstruct import reconstruct
    from resplat.optim.loop import optimize
    from resplat.render import render

    assert (resplat.read_splats, resplat.write_splats, resplat.Gaussians, resplat.Cameras,
            resplat.optimize, resplat.reconstruct) == (read_splats, write_splats, Gaussians, Cameras,
                                                      optimize, reconstruct)
    # resplat.render is also the package's name: the imported package is callable as render()
    import resplat.render as package

    calls = []
    original = package.render
    package.render = lambda *a, **k: calls.append((a, k)) or "image"
    try:
        assert resplat.render(1, x=2) == "image" and calls == [((1,), {"x": 2})]
    finally:
        package.render = original
    assert original is render
    assert set(resplat.__all__) >= {"read_splats", "reconstruct"} and "render" in dir(resplat)


def test_formats_import_without_torch(train_ply, tmp_path):
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == 'torch' or name.startswith('torch.'):
            raise ImportError('torch blocked')
sys.meta_path.insert(0, Block())
import resplat, resplat.formats as f
a = f.read_splat_arrays({str(train_ply)!r})
for ext in f.EXTENSIONS:
    f.write_splat_arrays(a, {str(tmp_path)!r} + '/x' + ext)
    assert len(f.read_splat_arrays({str(tmp_path)!r} + '/x' + ext)) == 1000
assert 'torch' not in sys.modules
try:
    resplat.Gaussians
except ImportError as e:
    print('blocked', e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(RUNTIME), "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "blocked torch blocked" in out.stdout
