"""A reader for the subset of OpenCV ``FileStorage`` YAML that calibration files use.

OpenCV writes (``cv::FileStorage``, YAML 1.0 flavour, see OpenCV's "XML/YAML/JSON Persistence"
docs) a ``%YAML:1.0`` line, ``---``, then top-level ``key: value`` pairs. Values are scalars
(numbers or strings) or matrices tagged ``!!opencv-matrix`` with indented ``rows``, ``cols``,
``dt`` (element type: u, c, w, s, i, f, d) and ``data: [ ... ]`` that may span several lines.
Nested maps and sequences other than matrices are not supported (they are not in calibration
files) and raise :class:`ViewsError`.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import ViewsError

_DTYPES = {"u": np.uint8, "c": np.int8, "w": np.uint16, "s": np.int16, "i": np.int32, "f": np.float32, "d": np.float64}
_KEY = re.compile(r"^([A-Za-z_][\w\-]*)\s*:\s*(.*)$")


def _scalar(text: str):
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip("\"'")


def _matrix(body: str, path, key: str) -> np.ndarray:
    fields = {}
    for line in body.split("\n"):
        m = _KEY.match(line.strip())
        if m and m.group(1) in ("rows", "cols", "dt"):
            fields[m.group(1)] = m.group(2)
    data = re.search(r"data\s*:\s*\[(.*)\]", body, re.S)
    try:
        rows, cols, dt = int(fields["rows"]), int(fields["cols"]), fields["dt"].strip()
        values = np.array([float(v) for v in data.group(1).replace("\n", " ").split(",") if v.strip()], dtype=np.float64)
    except (KeyError, ValueError, AttributeError):
        raise ViewsError(f"{path}: matrix {key!r} needs rows, cols, dt and data: [...]") from None
    if dt not in _DTYPES:
        raise ViewsError(f"{path}: matrix {key!r} has unsupported element type dt={dt!r}")
    if values.size != rows * cols:
        raise ViewsError(f"{path}: matrix {key!r} is {rows}x{cols} but has {values.size} values")
    return values.reshape(rows, cols).astype(_DTYPES[dt])


def read_opencv_yaml(path: str | os.PathLike) -> dict:
    """Top-level entries of an OpenCV FileStorage YAML file: ``int``/``float``/``str`` scalars and
    ``!!opencv-matrix`` nodes as numpy arrays [rows, cols] of their ``dt``.

    Raises:
        ViewsError: missing or unreadable file, a line that is not ``key: value``, a malformed
            matrix (naming the file and key).
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ViewsError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ViewsError(f"{path}: cannot read ({exc})") from None
    if not lines or not lines[0].startswith("%YAML"):
        raise ViewsError(f"{path}: not an OpenCV FileStorage YAML file (no %YAML header)")
    out: dict = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.strip() == "---" or line.lstrip().startswith("#"):
            continue
        m = _KEY.match(line)
        if m is None or line[0].isspace():
            raise ViewsError(f"{path}: line {i}: expected a top-level 'key: value', got {line.strip()!r}")
        key, value = m.groups()
        if value.strip().startswith("!!opencv-matrix"):
            start = i
            while i < len(lines) and (not lines[i].strip() or lines[i][0].isspace()):
                i += 1
            out[key] = _matrix("\n".join(lines[start:i]), path, key)
        elif value.strip() in ("", "{", "[") or value.strip().startswith(("!!", "{", "[")):
            raise ViewsError(f"{path}: line {i}: nested value for {key!r} is not supported")
        else:
            out[key] = _scalar(value)
    return out
