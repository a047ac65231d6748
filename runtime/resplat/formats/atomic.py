"""Atomic file writing: write ``<dest>.tmp-<random>`` beside the destination, then os.replace.

A reader never sees a half-written file, and a failed write leaves any existing destination
untouched (POSIX rename / Windows MoveFileEx semantics of :func:`os.replace`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import BinaryIO, Iterator

from ..errors import SplatFileError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file that replaces ``path`` when the block succeeds.

    The temporary file ``<path>.tmp-<16 hex digits>`` lives in the destination's directory, so
    the final :func:`os.replace` is atomic. If the block raises, the temporary file is removed
    and the exception propagates; the destination is not touched.

    Raises:
        SplatFileError: the temporary file cannot be created or the rename fails (OSError),
            message naming ``path``.
    """
    dest = os.fspath(path)
    tmp = f"{dest}.tmp-{secrets.token_hex(8)}"
    try:
        fh = open(tmp, "xb")
    except OSError as e:
        raise SplatFileError(dest, f"cannot write: {e.strerror or e}") from None
    try:
        with fh:
            yield fh
        os.replace(tmp, dest)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise SplatFileError(dest, f"cannot write: {e.strerror or e}") from None
        raise
