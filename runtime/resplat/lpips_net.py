"""The LPIPS network (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", Eq. 1), built in plain torch (no torchvision) and loaded from one user file.

distance(x, y) = sum_l mean_hw || w_l * (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|) ||^2
with f_l the ReLU activations of five layers of an ImageNet backbone (VGG16: relu1_2, relu2_2,
relu3_3, relu4_3, relu5_3; AlexNet: relu1..relu5), normalised over channels (eps 1e-10), and w_l
the learned non-negative 1x1 "linear" heads. Inputs in [-1, 1] are first shifted and scaled by
the LPIPS ScalingLayer constants. The module here takes images in [0, 1] and maps them to [-1, 1].

Accepted weight layouts (one .safetensors file or a torch state dict, read with
``torch.load(weights_only=True)``; an optional ``"state_dict"`` wrapper and ``module.`` prefixes
are stripped):
- the ``lpips`` package's whole-model state dict: ``net.slice{1..5}.{i}.weight|bias`` (torchvision
  layer indices), ``lin{0..4}.model.1.weight`` (or ``lins.{l}.model.1.weight``), optionally
  ``scaling_layer.shift|scale``;
- torchvision-style ``features.{i}.weight|bias`` plus heads ``lin{l}.weight`` or the above.
The variant (VGG16 or AlexNet) is detected from the first convolution's kernel size.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import ResplatError

#: LPIPS ScalingLayer constants (inputs in [-1, 1]).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# (kind, args) per torchvision ``features`` index; "C" conv (in, out, kernel, stride, pad), "R" ReLU, "M" max-pool (k, s).
_ALEX = [("C", (3, 64, 11, 4, 2)), ("R",), ("M", (3, 2)), ("C", (64, 192, 5, 1, 2)), ("R",), ("M", (3, 2)),
         ("C", (192, 384, 3, 1, 1)), ("R",), ("C", (384, 256, 3, 1, 1)), ("R",), ("C", (256, 256, 3, 1, 1)), ("R",)]
_ALEX_TAPS = (1, 4, 7, 9, 11)


def _vgg16_layers() -> list[tuple]:
    layers, cin = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]:
        if v == "M":
            layers.append(("M", (2, 2)))
        else:
            layers += [("C", (cin, v, 3, 1, 1)), ("R",)]
            cin = v
    return layers


_VGG16 = _vgg16_layers()
_VGG16_TAPS = (3, 8, 15, 22, 29)


class LPIPS(nn.Module):
    """LPIPS with a VGG16 ("vgg") or AlexNet ("alex") backbone; weights start random.

    forward(x, y): x, y [B, 3, H, W] images in [0, 1] (mapped to [-1, 1], the range of the
    original LPIPS, inside) -> [B] distances (same dtype).
    """

    def __init__(self, variant: str = "vgg"):
        super().__init__()
        if variant not in ("vgg", "alex"):
            raise ResplatError(f"LPIPS variant must be 'vgg' or 'alex', got {variant!r}")
        self.variant = variant
        spec, self.taps = (_VGG16, _VGG16_TAPS) if variant == "vgg" else (_ALEX, _ALEX_TAPS)
        mods = []
        for layer in spec:
            if layer[0] == "C":
                cin, cout, k, s, p = layer[1]
                mods.append(nn.Conv2d(cin, cout, k, s, p))
            elif layer[0] == "R":
                mods.append(nn.ReLU())
            else:
                mods.append(nn.MaxPool2d(*layer[1]))
        self.features = nn.Sequential(*mods)
        channels = [self.features[t - 1].out_channels for t in self.taps]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def _feats(self, x: Tensor) -> list[Tensor]:
        x = (x * 2 - 1 - self.shift) / self.scale
        out = []
        for i, m in enumerate(self.features[: self.taps[-1] + 1]):
            x = m(x)
            if i in self.taps:
                out.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        total = x.new_zeros(x.shape[0])
        for lin, fx, fy in zip(self.lins, self._feats(x), self._feats(y)):
            total = total + lin((fx - fy).square()).mean((1, 2, 3))
        return total


def _canonical_key(key: str) -> str | None:
    """Map a key of any accepted layout to this module's names (None: ignore the key)."""
    key = re.sub(r"^(module\.)+", "", key)
    key = re.sub(r"^net\.slice\d\.", "features.", key)
    key = re.sub(r"^scaling_layer\.", "", key)
    m = re.match(r"^(?:lins\.|lin)(\d)\.(?:model\.1\.)?weight$", key)
    if m:
        return f"lins.{m.group(1)}.weight"
    if key.startswith("features.") or key in ("shift", "scale"):
        return key
    return None


def _read_state(path: Path) -> dict[str, Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ResplatError(f"{path}: LPIPS weights file not found") from None
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad input file
        raise ResplatError(f"{path}: cannot read LPIPS weights ({type(e).__name__}: {e})".splitlines()[0]) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ResplatError(f"{path}: not a state dict of tensors")
    return state


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int) -> LPIPS:
    state = {}
    for k, v in _read_state(Path(path)).items():
        ck = _canonical_key(k)
        if ck is not None:
            state[ck] = v
    first = state.get("features.0.weight")
    if first is None:
        raise ResplatError(f"{path}: no backbone weights (features.0.weight or net.slice1.0.weight) in the file")
    variant = "alex" if first.shape[-1] == 11 else "vgg"
    net = LPIPS(variant)
    expected = net.state_dict()
    state.setdefault("shift", expected["shift"].clone())
    state.setdefault("scale", expected["scale"].clone())
    for k, t in expected.items():
        if k not in state:
            raise ResplatError(f"{path}: LPIPS-{variant} weight {k} is missing")
        if tuple(state[k].shape) != tuple(t.shape) and state[k].numel() == t.numel() and k in ("shift", "scale"):
            state[k] = state[k].reshape(t.shape)
        if tuple(state[k].shape) != tuple(t.shape):
            raise ResplatError(f"{path}: LPIPS-{variant} weight {k} has shape {list(state[k].shape)}, expected {list(t.shape)}")
    net.load_state_dict({k: state[k].float() for k in expected})
    return net.eval().requires_grad_(False)


def load_lpips(path: str | os.PathLike) -> LPIPS:
    """A fresh LPIPS network with weights from ``path`` (see the module docstring for layouts),
    in eval mode, float32 on CPU, parameters frozen; call it as ``net(pred, target)`` on [B, 3,
    H, W] images in [0, 1]. The file is parsed once per path and modification time (cached);
    each call returns its own copy, so moving it to a device leaves the cache intact.

    Raises:
        ResplatError: file missing or unreadable, a required weight missing or misshapen.
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise ResplatError(f"{p}: LPIPS weights file not found")
    return copy.deepcopy(_load_cached(str(p), p.stat().st_mtime_ns))
