"""resplat.formats entry points: torch-free import, Gaussians conversion, dispatch by extension."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from resplat.errors import SplatFileError
from resplat.formats import SH_C0, read_splat_arrays, read_splats, write_splat_arrays, write_splats
from resplat.gaussians import SH_C0 as TORCH_SH_C0
from resplat.gaussians import Gaussians


def test_import_and_round_trip_without_torch(train_ply, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any "import torch" now raises ImportError
        import resplat.formats as f
        a = f.read_splat_arrays({str(train_ply)!r})
        f.write_splat_arrays(a, {str(tmp_path / 'x.spz')!r})
        b = f.read_splat_arrays({str(tmp_path / 'x.spz')!r})
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        try:
            f.read_splats({str(train_ply)!r})
        except ImportError:
            print("ok", len(b))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok 1000"


def test_sh_c0_matches_gaussians():
    assert SH_C0 == TORCH_SH_C0


def test_gaussians_round_trip(train_ply, tmp_path):
    g = read_splats(train_ply)
    assert isinstance(g, Gaussians) and len(g) == 1000 and g.sh_degree == 3 and g.dtype == torch.float32
    a = read_splat_arrays(train_ply)
    np.testing.assert_array_equal(g.sh.numpy(), a.sh)
    out = tmp_path / "g.ply"
    write_splats(g.to(dtype=torch.float64).requires_grad_(), out)  # any dtype, grads detached
    assert out.read_bytes() == train_ply.read_bytes()


def test_write_splats_rejects_bad_input_before_writing(train_ply, tmp_path):
    g = read_splats(train_ply)
    means = g.means.clone()
    means[3, 1] = float("inf")
    bad = Gaussians(means, g.quats, g.log_scales, g.logit_opacities, g.sh)
    dest = tmp_path / "keep.splat"
    dest.write_bytes(b"old")
    with pytest.raises(SplatFileError, match="means of splat 3 is not finite"):
        write_splats(bad, dest)
    assert dest.read_bytes() == b"old"
    with pytest.raises(SplatFileError, match="unsupported extension '.usdz'"):
        write_splats(bad, tmp_path / "x.usdz")


@pytest.mark.parametrize("name", ["a.Ply", "b.SPLAT", "c.sPz", "d.GLB", "e.glTF", "f.Sog"])
def test_extension_case_insensitive(train_ply, tmp_path, name):
    a = read_splat_arrays(train_ply).select(np.arange(10))
    write_splat_arrays(a, tmp_path / name)
    assert len(read_splat_arrays(tmp_path / name)) == 10
