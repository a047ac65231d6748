"""Helpers shared by the format readers and writers: reading a whole file, building a validated
:class:`SplatArrays` with errors that name the file, and checking arrays before a write."""

from __future__ import annotations

import os

import numpy as np

from ..errors import ResplatError, SplatFileError
from .arrays import SplatArrays


def read_bytes(path: str | os.PathLike) -> bytes:
    """Whole content of ``path``.

    Raises:
        SplatFileError: the file is missing, unreadable or empty (zero bytes).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise SplatFileError(path, "no such file") from None
    except OSError as e:
        raise SplatFileError(path, f"cannot read: {e.strerror or e}") from None
    if not data:
        raise SplatFileError(path, "file is empty (0 bytes)")
    return data


def build_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> SplatArrays:
    """:class:`SplatArrays` from decoded arrays; any shape or value problem (NaN, inf, zero
    quaternion) becomes :class:`SplatFileError` naming ``path``."""
    try:
        return SplatArrays(**arrays)
    except ResplatError as e:
        raise SplatFileError(path, str(e).removeprefix("SplatArrays: ")) from None


def check_for_write(arrays: SplatArrays, path: str | os.PathLike) -> None:
    """Raise :class:`SplatFileError` naming ``path`` if ``arrays`` is not a valid SplatArrays
    (its arrays may have been changed in place since construction); called before any write."""
    if not isinstance(arrays, SplatArrays):
        raise SplatFileError(path, f"expected SplatArrays to write, got {type(arrays).__name__}")
    try:
        SplatArrays(**arrays.arrays())
    except ResplatError as e:
        raise SplatFileError(path, f"refusing to write: {str(e).removeprefix('SplatArrays: ')}") from None
