"""Fuzzed readers (hypothesis): real files of every format, mutated, truncated, spliced onto
another format's bytes, or with a value of their JSON (SOG meta.json, .gltf) replaced, are
either read as valid splats or refused with a one-line SplatFileError naming the file; never
another exception, a hang (hypothesis deadline) or a huge allocation (tracemalloc peak, and the
splat count bounded by the file size).

Bounded and reproducible: ``derandomize=True`` (the same inputs on every run), no example
database, :data:`EXAMPLES` inputs per format plus three explicit ones (the untouched file, its
first 0 and 1 bytes): 3,618 inputs, about 25 s on the shared 2-core machine.
"""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resplat.errors import SplatFileError
from resplat.formats import EXTENSIONS, read_splat_arrays, write_splat_arrays

#: Inputs tried per format (six formats: .ply .splat .spz .glb .gltf .sog).
EXAMPLES = 600
#: Largest traced allocation peak of one read of these few-kilobyte inputs.
PEAK_LIMIT = 64 << 20
SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=timedelta(seconds=5),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)


@pytest.fixture(scope="module")
def originals(train_ply, tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a 20-splat (SH degree 3) file of every format; for .gltf, its JSON (its
    buffer ``good.bin`` stays beside the fuzzed file) and, as ``.bin``, the buffer."""
    src = read_splat_arrays(train_ply).select(np.arange(20))
    out = tmp_path_factory.mktemp("fuzz-originals")
    data = {}
    for ext in EXTENSIONS:
        path = out / f"good{ext}"
        write_splat_arrays(src, path)
        data[ext] = path.read_bytes()
    data[".bin"] = (out / "good.bin").read_bytes()
    return data


# -- edits ---------------------------------------------------------------------------------------------
def _positions(size: int):
    """Byte offsets, half of them in the first 64 bytes (headers)."""
    return st.one_of(st.integers(0, max(0, min(size, 64) - 1)), st.integers(0, max(0, size - 1)))


@st.composite
def byte_edits(draw, data: bytes, others: list[bytes]) -> bytes:
    """``data`` with a few bytes replaced, truncated, or its head spliced onto the tail of
    another format's file (or of itself)."""
    b = bytearray(data)
    kind = draw(st.sampled_from(["flip", "truncate", "splice"]))
    if kind == "flip":
        for pos, value in draw(st.lists(st.tuples(_positions(len(b)), st.integers(0, 255)), min_size=1, max_size=6)):
            b[pos] = value
    elif kind == "truncate":
        b = b[: draw(st.integers(0, len(b) - 1))]
    else:
        other = draw(st.sampled_from(others))
        b = b[: draw(st.integers(0, len(b)))] + other[draw(st.integers(0, len(other))):]
    return bytes(b)


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.sampled_from([0, 1, -1, 2**31, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.one_of(st.integers(-300, 300), st.floats(-1e6, 1e6)), max_size=300),
    st.dictionaries(st.text(max_size=6), st.integers(-5, 5), max_size=3),
)


def _json_slots(node, path=()):
    """Every (path) of a JSON document's values and containers, depth first."""
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_slots(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):  # codebooks are 256 long: their first entries suffice
            yield from _json_slots(v, path + (i,))


@st.composite
def json_edits(draw, text: str) -> str:
    """``text`` (a JSON document) with one value replaced, or one object key dropped."""
    doc = json.loads(text)
    slots = list(_json_slots(doc))[1:]
    path = slots[draw(st.integers(0, len(slots) - 1))]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return json.dumps(doc)  # NaN / Infinity written as Python's json does


def _with_member(bundle: bytes, name: str, data: bytes) -> bytes:
    z = zipfile.ZipFile(io.BytesIO(bundle))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as w:
        for info in z.infolist():
            w.writestr(info.filename, data if info.filename == name else z.read(info))
    return out.getvalue()


def edits(ext: str, originals: dict[str, bytes]):
    """The strategy of fuzzed inputs of ``ext``: (bytes of the file, bytes of its .bin buffer
    for .gltf or None)."""
    others = [v for k, v in originals.items() if k != ".bin"]
    own = originals[ext]
    if ext == ".gltf":  # the JSON text or the binary buffer
        return st.one_of(
            json_edits(own.decode()).map(lambda t: (t.encode(), None)),
            byte_edits(originals[".bin"], others).map(lambda b: (own, b)),
            byte_edits(own, others).map(lambda b: (b, None)),
        )
    if ext == ".sog":  # the ZIP itself, or its meta.json
        meta = zipfile.ZipFile(io.BytesIO(own)).read("meta.json").decode()
        return st.one_of(
            byte_edits(own, others).map(lambda b: (b, None)),
            json_edits(meta).map(lambda t: (_with_member(own, "meta.json", t.encode()), None)),
        )
    return byte_edits(own, others).map(lambda b: (b, None))


# -- the property --------------------------------------------------------------------------------------
def _read_or_refuse(path, blob_size: int) -> str:
    tracemalloc.start()
    try:
        a = read_splat_arrays(path)
    except SplatFileError as e:
        msg = str(e)
        assert str(path) in msg and "\n" not in msg, msg
        return "refused"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= PEAK_LIMIT, f"a read of {blob_size} bytes peaked at {peak / 2**20:.0f} MiB"
    assert a.find_problem() is None, a.find_problem()
    assert 0 < len(a) <= 10 * blob_size + 20
    return "read"


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_fuzzed_files_are_read_or_refused_cleanly(originals, tmp_path, ext):
    outcomes = {"read": 0, "refused": 0}
    path = tmp_path / f"fuzzed{ext}"

    @SETTINGS
    @given(edits(ext, originals))
    @example((originals[ext], None))
    @example((originals[ext][:0], None))
    @example((originals[ext][:1], None))
    def check(case):
        blob, buffer = case
        path.write_bytes(blob)
        if ext == ".gltf":
            (tmp_path / "good.bin").write_bytes(originals[".bin"] if buffer is None else buffer)
        size = len(blob) + (len(buffer) if buffer is not None else 0)
        outcomes[_read_or_refuse(path, size)] += 1

    check()
    tried = sum(outcomes.values())
    print(f"{ext}: {tried} inputs, {outcomes['read']} read, {outcomes['refused']} refused")
    assert tried >= EXAMPLES and outcomes["refused"] > 0 and outcomes["read"] > 0
