"""The one device rule of the runtime: what ``--device`` (and every ``device=`` argument) means.

``auto`` takes the first available of :data:`resplat.defaults.DEVICE_AUTO_ORDER` (CUDA, then
Apple's MPS, then the CPU); ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` name a device, which must be
available. Used by ``resplat reconstruct / optimize / render / eval / train``, the library
(:func:`resplat.model.reconstruct.reconstruct`) and the extension's Check Runtime probe.
"""

from __future__ import annotations

import torch

from .defaults import DEVICE_AUTO_ORDER, DEVICE_NAMES
from .errors import ResplatError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def device_available(dev: torch.device) -> bool:
    """Whether this torch build and machine can run on ``dev`` (a CUDA index must exist)."""
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index is None or dev.index < torch.cuda.device_count())
    if dev.type == "mps":
        return _mps_available()
    return dev.type == "cpu"


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device for a device name (module docstring); a ``torch.device`` is returned as
    it is.

    Raises:
        ResplatError: an unknown name, or a device this machine does not have (one line naming it).
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return next(torch.device(d) for d in DEVICE_AUTO_ORDER if device_available(torch.device(d)))
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in DEVICE_NAMES:
        raise ResplatError(f"unknown device {device!r}: use {', '.join(DEVICE_NAMES)} or cuda:N")
    if not device_available(dev):
        what = {"cuda": "no such CUDA device is available to this torch build",
                "mps": "Apple Metal (MPS) is not available on this machine"}[dev.type]
        raise ResplatError(f"device {device!r}: {what}")
    return dev

