"""Splat file formats: INRIA 3DGS PLY, antimatter15 ``.splat``, Niantic ``.spz``, glTF 2.0 with
``KHR_gaussian_splatting`` (``.glb``, ``.gltf`` + ``.bin``) and PlayCanvas SOG (``.sog``).

Importable without torch (numpy, plyfile, zstandard and Pillow only), so the Blender extension can use
it: :func:`read_splat_arrays` / :func:`write_splat_arrays` work on numpy :class:`SplatArrays`.
:func:`read_splats` / :func:`write_splats` convert to and from :class:`resplat.gaussians.Gaussians`
and import torch only when called.

All readers return our convention (RDF axes, log scales, logit opacities, (w, x, y, z)
quaternions); every malformed file raises :class:`~resplat.errors.SplatFileError`; every write
is atomic (:mod:`resplat.formats.atomic`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from ..errors import ResplatError, SplatFileError
from .arrays import SH_C0, SplatArrays
from .gltf import read_glb, read_gltf, write_glb, write_gltf
from .ply import read_ply, write_ply
from .sog import read_sog, write_sog
from .splat import read_splat, write_splat
from .spz import read_spz, write_spz

if TYPE_CHECKING:  # pragma: no cover
    from ..gaussians import Gaussians

__all__ = [
    "SH_C0", "SplatArrays", "read_splat_arrays", "write_splat_arrays", "read_splats", "write_splats",
    "read_ply", "write_ply", "read_splat", "write_splat", "read_spz", "write_spz", "read_glb", "write_glb",
    "read_gltf", "write_gltf", "read_sog", "write_sog", "EXTENSIONS",
]

_READERS: dict[str, Callable[[str | os.PathLike], SplatArrays]] = {
    ".ply": read_ply, ".splat": read_splat, ".spz": read_spz, ".glb": read_glb, ".gltf": read_gltf,
    ".sog": read_sog,
}
_WRITERS: dict[str, Callable[[SplatArrays, str | os.PathLike], None]] = {
    ".ply": write_ply, ".splat": write_splat, ".spz": write_spz, ".glb": write_glb, ".gltf": write_gltf,
    ".sog": write_sog,
}
#: Supported file extensions (lower case, matched case-insensitively).
EXTENSIONS = tuple(_READERS)


def _format(path: str | os.PathLike, table: dict) -> Callable:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in table:
        raise SplatFileError(path, f"unsupported extension {ext!r} (expected {', '.join(EXTENSIONS)})")
    return table[ext]


def read_splat_arrays(path: str | os.PathLike) -> SplatArrays:
    """Read a splat file, choosing the format by extension (:data:`EXTENSIONS`, any case).

    Raises:
        SplatFileError: unsupported extension, or the file is missing or malformed.
    """
    return _format(path, _READERS)(path)


def write_splat_arrays(arrays: SplatArrays, path: str | os.PathLike) -> None:
    """Write ``arrays`` in the format given by the extension of ``path``, atomically.

    .splat keeps only the DC colour; .spz quantises (see :mod:`resplat.formats.spz_quant`); .sog
    quantises and clusters (see :mod:`resplat.formats.sog`); .ply and glTF keep float32.

    Raises:
        SplatFileError: unsupported extension, invalid arrays, or the write fails; an existing
            file at ``path`` is then left untouched.
    """
    _format(path, _WRITERS)(arrays, path)


def read_splats(path: str | os.PathLike) -> "Gaussians":
    """Read a splat file as float32 CPU :class:`~resplat.gaussians.Gaussians` (imports torch).

    Raises:
        SplatFileError: as :func:`read_splat_arrays`.
    """
    import torch

    from ..gaussians import Gaussians

    a = read_splat_arrays(path)
    return Gaussians(**{k: torch.from_numpy(v) for k, v in a.arrays().items()})


def write_splats(gaussians: "Gaussians", path: str | os.PathLike) -> None:
    """Write :class:`~resplat.gaussians.Gaussians` (any device/dtype; stored as float32) to
    ``path``, format by extension, atomically (imports torch).

    Raises:
        SplatFileError: unsupported extension, NaN/inf or zero quaternions (checked before
            writing), or the write fails.
    """
    import torch

    _format(path, _WRITERS)  # an unsupported extension is reported before anything else
    arrays = {k: v.detach().to("cpu", dtype=torch.float32).numpy() for k, v in gaussians.tensors().items()}
    try:
        a = SplatArrays(**arrays)
    except ResplatError as e:
        raise SplatFileError(path, f"refusing to write: {str(e).removeprefix('SplatArrays: ')}") from None
    write_splat_arrays(a, path)
