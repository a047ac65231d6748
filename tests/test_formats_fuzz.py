"""Fuzzed readers: real files of every format, mutated (byte flips), truncated and spliced, are
either read as valid splats or refused with a one-line SplatFileError naming the file; never
another exception, a hang or a huge allocation (the readers bound sizes by the file size).

Seeded numpy randomness, a fixed number of inputs per format (deterministic, ~10 s in all)."""

from __future__ import annotations

import numpy as np
import pytest

from resplat.errors import SplatFileError
from resplat.formats import EXTENSIONS, read_splat_arrays, write_splat_arrays

PER_FORMAT = 120


def _mutants(data: bytes, other: bytes, rng: np.random.Generator):
    for i in range(PER_FORMAT):
        kind = i % 3
        b = bytearray(data)
        if kind == 0:  # flip a few bytes, often in the header
            for _ in range(int(rng.integers(1, 6))):
                pos = int(rng.integers(0, min(len(b), 64))) if rng.random() < 0.5 else int(rng.integers(0, len(b)))
                b[pos] = int(rng.integers(0, 256))
        elif kind == 1:  # truncate
            b = b[: int(rng.integers(0, len(b)))]
        else:  # splice the head of one file onto the tail of another
            cut = int(rng.integers(0, len(b)))
            b = b[:cut] + other[int(rng.integers(0, len(other))):]
        yield bytes(b)


@pytest.mark.parametrize("ext", [e for e in EXTENSIONS if e != ".gltf"] + [".gltf"])
def test_mutated_files_are_read_or_refused_cleanly(train_ply, tmp_path, ext):
    src = read_splat_arrays(train_ply).select(np.arange(20))
    good = tmp_path / f"good{ext}"
    write_splat_arrays(src, good)
    target = good if ext != ".gltf" else tmp_path / "good.bin"  # fuzz the buffer of a .gltf
    data = target.read_bytes()
    other = (tmp_path / "o.ply")
    write_splat_arrays(src, other)
    rng = np.random.default_rng(sum(map(ord, ext)))
    tried = refused = 0
    for blob in _mutants(data, other.read_bytes(), rng):
        path = tmp_path / f"m{ext}"
        (tmp_path / "m.bin").write_bytes(blob) if ext == ".gltf" else path.write_bytes(blob)
        if ext == ".gltf":
            path.write_text(good.read_text().replace("good.bin", "m.bin"))
        tried += 1
        try:
            a = read_splat_arrays(path)
        except SplatFileError as e:
            refused += 1
            assert str(path) in str(e) and "\n" not in str(e)
            continue
        assert a.find_problem() is None and len(a) <= 10 * len(blob) + 20
    assert tried == PER_FORMAT and refused > 0
