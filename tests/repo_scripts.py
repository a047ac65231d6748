"""The repository's scripts (``benchmarks/*.py``, ``demo/*.py``: folders that are not packages)
as modules for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_script(folder: str, name: str, module_name: str | None = None):
    """``REPO/folder/name.py`` imported once as the module ``module_name`` (default ``name``),
    registered in ``sys.modules`` (dataclasses look their module up there; a failed import is
    removed again) with ``folder`` on ``sys.path`` for the script's own sibling imports."""
    key = module_name or name
    if key not in sys.modules:
        where = str(REPO / folder)
        if where not in sys.path:
            sys.path.insert(0, where)
        spec = importlib.util.spec_from_file_location(key, REPO / folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[key]
            raise
    return sys.modules[key]
