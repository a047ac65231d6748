"""The bundled runtime's torch-free format code, as the add-on sees it.

The extension zip ships the runtime package at ``runtime/resplat`` beside ``resplat_addon``;
``runtime`` has no ``__init__.py``, so it is a namespace package inside the extension package and
``from ..runtime.resplat import formats`` imports *our bundled copy* without touching
``sys.path`` (no clash with another ``resplat`` a user may have installed). Only
:mod:`resplat.formats`, :mod:`resplat.viewfiles` (COLMAP / transforms.json parsing),
:mod:`resplat.npmath` (rotation and SH maths), :mod:`resplat.defaults` (the options' defaults and
limits) and :mod:`resplat.errors` are used inside Blender: they need numpy, plyfile and zstandard (the
manifest's wheels), never torch.
"""

from ..runtime.resplat import defaults, errors, formats, npmath, viewfiles  # noqa: F401
from ..runtime.resplat.formats.atomic import atomic_write  # noqa: F401
from ..runtime.resplat.formats.arrays import SH_COUNTS, SplatArrays, logit, sigmoid  # noqa: F401

ResplatError = errors.ResplatError
SplatFileError = errors.SplatFileError
read_splat_arrays = formats.read_splat_arrays
write_splat_arrays = formats.write_splat_arrays
EXTENSIONS = formats.EXTENSIONS
