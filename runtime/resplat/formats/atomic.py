"""Atomic file writing: write ``<dest>.tmp-<random>`` beside the destination, then os.replace.

A reader never sees a half-written file, and a failed write leaves any existing destination
untouched (POSIX rename / Windows MoveFileEx semantics of :func:`os.replace`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import BinaryIO, Callable, Iterator

from ..errors import SplatFileError


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, error: Callable[[str, str], Exception] = SplatFileError
) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file that replaces ``path`` when the block succeeds.

    The temporary file ``<path>.tmp-<16 hex digits>`` lives in the destination's directory, so
    the final :func:`os.replace` is atomic. If the block raises, the temporary file is removed
    and the exception propagates; the destination is not touched.

    Args:
        path: the destination.
        error: builds the exception raised on an OSError from (path, problem); default
            :class:`~resplat.errors.SplatFileError` (other callers pass their own error type).

    Raises:
        ``error(path, problem)``: the temporary file cannot be created or written, or the
            rename fails (OSError); the message names ``path``.
    """
    dest = os.fspath(path)
    tmp = f"{dest}.tmp-{secrets.token_hex(8)}"
    try:
        fh = open(tmp, "xb")
    except OSError as e:
        raise error(dest, f"cannot write: {e.strerror or e}") from None
    try:
        with fh:
            yield fh
        os.replace(tmp, dest)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise error(dest, f"cannot write: {e.strerror or e}") from None
        raise
