"""INRIA 3DGS PLY reader and writer (via plyfile).

Layout (Kerbl et al. 2023, ``gaussian_renderer``/``scene/gaussian_model.py`` ``save_ply``): one
``vertex`` element with float properties ``x y z nx ny nz f_dc_0..2 f_rest_0..M-1 opacity
scale_0..2 rot_0..3``; M = 3 * ((d + 1)^2 - 1) in {0, 9, 24, 45}; ``f_rest`` is channel-major,
``f_rest_{c * K' + k}`` = SH coefficient k + 1 of channel c, K' = (d + 1)^2 - 1. Values are stored
before activation (log scale, logit opacity, unnormalised quaternion w, x, y, z).
"""

from __future__ import annotations

import os

import numpy as np
import plyfile

from ..errors import SplatFileError
from ..npmath import sh_coeff_count
from .arrays import SH_COUNTS, SplatArrays
from .atomic import atomic_write
from .common import build_arrays, check_for_write

_REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def read_ply(path: str | os.PathLike) -> SplatArrays:
    """Read an INRIA 3DGS PLY (binary little/big endian or ASCII; float or double properties,
    in any order; SH degree 0..3 inferred from the number of ``f_rest_*`` properties).

    Returns float32 :class:`SplatArrays` (RDF axes, as stored).

    Raises:
        SplatFileError: missing/empty file, not a PLY, malformed header, truncated body (fewer
            vertices than the header claims), no ``vertex`` element, a missing property, an
            ``f_rest`` count other than 0, 9, 24 or 45, or a NaN/inf value.
    """
    try:
        if os.path.getsize(path) == 0:
            raise SplatFileError(path, "file is empty (0 bytes)")
    except OSError as e:
        problem = "no such file" if isinstance(e, FileNotFoundError) else f"cannot read: {e.strerror}"
        raise SplatFileError(path, problem) from None
    try:
        with open(path, "rb") as fh:
            if not fh.read(5).startswith((b"ply\n", b"ply\r\n")):
                raise SplatFileError(path, "not a PLY file (no 'ply' magic line)")
            fh.seek(0)
            # copy-on-write memory map: plyfile's non-mmap binary path reads value by value
            ply = plyfile.PlyData.read(fh, mmap="c")
    except SplatFileError:
        raise
    except plyfile.PlyElementParseError as e:
        if "end-of-file" in str(e) and e.element is not None:
            raise SplatFileError(path, f"truncated PLY: the header claims {e.element.count} {e.element.name} "
                                       f"rows but the data ends in row {e.row}") from None
        raise SplatFileError(path, f"malformed PLY: {_one_line(e)}") from None
    except plyfile.PlyParseError as e:
        raise SplatFileError(path, f"malformed PLY: {_one_line(e)}") from None
    except (ValueError, EOFError, IndexError, UnicodeDecodeError) as e:
        raise SplatFileError(path, f"malformed PLY: {_one_line(e)}") from None
    if "vertex" not in ply:
        raise SplatFileError(path, "PLY has no 'vertex' element")
    data = ply["vertex"].data
    names = set(data.dtype.names or ())
    missing = [p for p in _REQUIRED if p not in names]
    if missing:
        word = "property" if len(missing) == 1 else "properties"
        raise SplatFileError(path, f"PLY vertex element lacks {word} {', '.join(missing)}")
    n_rest = sum(1 for name in names if name.startswith("f_rest_"))
    if n_rest % 3 or n_rest // 3 + 1 not in SH_COUNTS.values():
        raise SplatFileError(path, f"{n_rest} f_rest properties is not 0, 9, 24 or 45 (SH degree 0..3)")
    rest_names = [f"f_rest_{i}" for i in range(n_rest)]
    missing = [p for p in rest_names if p not in names]
    if missing:
        raise SplatFileError(path, f"PLY vertex element lacks property {missing[0]}")

    def cols(props: list[str]) -> np.ndarray:
        out = np.empty((len(data), len(props)), np.float32)
        for i, p in enumerate(props):
            out[:, i] = data[p]
        return out

    k_rest = n_rest // 3
    dc = cols(["f_dc_0", "f_dc_1", "f_dc_2"])
    rest = cols(rest_names).reshape(len(data), 3, k_rest).transpose(0, 2, 1)  # [N, K', 3]
    sh = np.concatenate([dc[:, None, :], rest], axis=1)
    return build_arrays(
        path,
        means=cols(["x", "y", "z"]),
        quats=cols(["rot_0", "rot_1", "rot_2", "rot_3"]),
        log_scales=cols(["scale_0", "scale_1", "scale_2"]),
        logit_opacities=cols(["opacity"])[:, 0],
        sh=sh,
    )


def ply_property_names(sh_degree: int) -> list[str]:
    """INRIA property order for ``sh_degree`` (0..3): x y z nx ny nz f_dc_0..2 f_rest_* opacity
    scale_0..2 rot_0..3."""
    n_rest = 3 * (sh_coeff_count(sh_degree) - 1)
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(n_rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_ply(arrays: SplatArrays, path: str | os.PathLike) -> None:
    """Write ``arrays`` as a binary little-endian float32 INRIA PLY (normals 0), atomically.

    Raises:
        SplatFileError: ``arrays`` holds NaN/inf or a zero quaternion (checked before anything is
            written), or the file cannot be written.
    """
    check_for_write(arrays, path)
    n = len(arrays)
    names = ply_property_names(arrays.sh_degree)
    flat = np.zeros((n, len(names)), "<f4")
    k_rest = arrays.sh.shape[1] - 1
    flat[:, 0:3] = arrays.means
    flat[:, 6:9] = arrays.sh[:, 0, :]
    flat[:, 9:9 + 3 * k_rest] = arrays.sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * k_rest)
    o = 9 + 3 * k_rest
    flat[:, o] = arrays.logit_opacities
    flat[:, o + 1:o + 4] = arrays.log_scales
    flat[:, o + 4:o + 8] = arrays.quats
    vertex = flat.view(np.dtype([(name, "<f4") for name in names])).reshape(n)
    element = plyfile.PlyElement.describe(vertex, "vertex")
    with atomic_write(path) as fh:
        plyfile.PlyData([element], text=False, byte_order="<").write(fh)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__
