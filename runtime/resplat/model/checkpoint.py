"""Build ReSplat models and load released checkpoints strictly.

The release's checkpoints (``resplat-*.pth``, PyTorch Lightning) hold ``{"state_dict": {key:
tensor}}`` with every key prefixed ``encoder.`` (docs/model-manifest.md); plain state dicts and
``.safetensors`` files of the same keys are accepted too. The release itself loads with
``strict=False``, which hides a wrong layout; here every key and shape must match the model of
the preset, or a :class:`CheckpointError` names the file and the first offending keys.

Files are read with ``torch.load(weights_only=True)`` (no arbitrary code from pickles) or
safetensors; nothing is downloaded. Half-precision files (float16 / bfloat16, such as the
embedded model) are upcast to the model's float32 on loading.

The embedded model: this package may ship the weights of our own ``tiny`` preset as
``model/weights/tiny.safetensors`` (float16, made from a training export by
``python -m resplat.model.ship``); :func:`load_embedded_model` loads it, and the CLI and the
Blender extension use it when no checkpoint is given.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor

from ..errors import ResplatError
from .config import ModelConfig, get_config
from .encoder import ReSplatModel

_SHOWN = 3  # offending keys named in an error message

#: Preset of the model shipped inside the package (trained by ``resplat train``; scripts/train-embedded).
EMBEDDED_PRESET = "tiny"


class CheckpointError(ResplatError):
    """A checkpoint cannot be used: unreadable, not a checkpoint, or a layout that does not match
    the model (one line naming the file and the first offending keys)."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


def build_model(preset: str | ModelConfig, device: torch.device | str | None = None, amp: bool = True) -> ReSplatModel:
    """A :class:`ReSplatModel` of a preset (or config) with untrained weights.

    Its ``state_dict()`` has exactly the keys and shapes of ``manifests/<preset>.json`` (842 keys;
    76.6M / 224.0M / 222.1M parameters for small-dl3dv / base-dl3dv / base-re10k). Pass
    ``device="meta"`` for a model without storage (layout checks, :func:`load_checkpoint`).
    Raises ``ValueError`` for an unknown preset name.
    """
    cfg = get_config(preset)
    with torch.device(device) if device is not None else nullcontext():
        return ReSplatModel(cfg, amp=amp)


def read_state_dict(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Tensor]:
    """The tensors of a checkpoint file: ``ckpt.get("state_dict", ckpt)`` of a torch file read
    with ``weights_only=True``, or a safetensors file. Non-tensor entries are dropped.

    Raises:
        CheckpointError: missing or unreadable file, a file of another kind (a PLY, a pickle
            that is not plain tensors), or no tensors in it.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(p, "no such checkpoint file")
    with open(p, "rb") as f:
        head = f.read(16)
    if head.startswith(b"ply"):
        raise CheckpointError(p, "this is a PLY splat file, not a model checkpoint")
    if _looks_like_safetensors(p, head):
        try:
            from safetensors.torch import load_file
            ckpt = load_file(str(p), device=str(map_location))
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise CheckpointError(p, f"unreadable safetensors file ({_one_line(exc)})") from None
    else:
        try:
            ckpt = torch.load(p, map_location=map_location, weights_only=True)
        except Exception as exc:  # the weights-only unpickler fails on foreign data in many ways
            why = ("it holds Python objects other than tensors, which are not loaded for safety"
                   if "weights only load failed" in str(exc).lower() else _one_line(exc))
            raise CheckpointError(p, f"not a PyTorch checkpoint of plain tensors ({why})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(p, f"expected a dict of tensors, found {type(ckpt).__name__}")
    sd = ckpt.get("state_dict", ckpt)
    if not isinstance(sd, dict):
        raise CheckpointError(p, f"'state_dict' is a {type(sd).__name__}, not a dict of tensors")
    tensors = {k: v for k, v in sd.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(p, "contains no tensors (not a model checkpoint)")
    return tensors


def _looks_like_safetensors(p: Path, head: bytes) -> bool:
    if p.suffix == ".safetensors":
        return True
    n = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    return 2 <= n <= p.stat().st_size - 8 and head[8:9] == b"{"


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def infer_preset(state_dict: dict[str, Tensor]) -> str:
    """The preset whose layout a state dict has, from the ViT width
    (``encoder.depth_predictor.pretrained.pos_embed`` [1, 1370, D]: 384 small, 768 base) and the
    Gaussian head (``encoder.gaussian_head.2.weight`` [58 m, 58 m]: m = 4 for RE10K) or
    ``encoder.update_rgb_error_proj.0.weight`` ([256, 3] for RE10K). The 16-view 540x960 model
    has base-dl3dv's weights: name ``base-dl3dv-16view`` explicitly to use it. A state dict with
    the small CNN monocular branch (``pretrained.stem``) is ``tiny``.

    Raises ``KeyError`` (caught by :func:`load_checkpoint`) when the telling keys are absent or
    have shapes of no preset.
    """
    if "encoder.depth_predictor.pretrained.stem.0.0.weight" in state_dict:
        return "tiny"  # the small CNN monocular branch instead of DINOv2
    pos = state_dict.get("encoder.depth_predictor.pretrained.pos_embed")
    if pos is None or pos.dim() != 3:
        raise KeyError("encoder.depth_predictor.pretrained.pos_embed")
    width = pos.shape[-1]
    if width == 384:
        return "small-dl3dv"
    if width != 768:
        raise KeyError(f"ViT width {width}")
    head = state_dict.get("encoder.gaussian_head.2.weight")
    rgb = state_dict.get("encoder.update_rgb_error_proj.0.weight")
    if head is not None:
        return "base-re10k" if head.shape[0] == 4 * 58 else "base-dl3dv"
    if rgb is not None:
        return "base-re10k" if rgb.shape[-1] == 3 else "base-dl3dv"
    raise KeyError("encoder.gaussian_head.2.weight")


#: ``unet_norm_groups`` of a stored config written before that field existed: every model
#: trained then had 32-group GroupNorms in its depth U-Net (the embedded ``tiny`` weights too).
LEGACY_UNET_NORM_GROUPS = 32


def config_from_fields(fields: dict) -> ModelConfig:
    """The :class:`ModelConfig` of a stored field dict (``dataclasses.asdict`` of a config, as
    our exporter and training checkpoints write it): unknown fields of a newer version are
    ignored and a missing ``unet_norm_groups`` is :data:`LEGACY_UNET_NORM_GROUPS`.

    Raises TypeError / ValueError when required fields are missing or wrong."""
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    # JSON has no tuples: tuple fields (lookat_range) come back as lists
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in known}
    values.setdefault("unet_norm_groups", LEGACY_UNET_NORM_GROUPS)
    return ModelConfig(**values)


def stored_config(path: str | os.PathLike) -> ModelConfig | None:
    """The :class:`ModelConfig` stored in a safetensors header's metadata by our exporter
    (``{"preset": name, "config": JSON of the config's fields}``,
    :func:`resplat.train.checkpointing.export_safetensors`), read by :func:`config_from_fields`;
    None for other files or metadata without a usable config."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(16)
        if not _looks_like_safetensors(p, head):
            return None
        from safetensors import safe_open
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        return config_from_fields(json.loads(meta["config"]))
    except Exception:  # no or foreign metadata: fall back to the tensor shapes
        return None


def compare_layout(state_dict: dict[str, Tensor], expected: dict[str, tuple[int, ...]]) -> str | None:
    """None when ``state_dict`` has exactly the keys and shapes of ``expected``; else a short
    description naming the first few missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shaped = [f"{k} {list(state_dict[k].shape)} (model {list(expected[k])})" for k in expected
              if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k])]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shaped)):
        if keys:
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:_SHOWN])}{more}")
    return "; ".join(parts) or None


def load_checkpoint(path: str | os.PathLike, preset: str | ModelConfig | None = None,
                    map_location: str | torch.device = "cpu", amp: bool = True) -> ReSplatModel:
    """Load a released ReSplat checkpoint (``.pth``/``.ckpt`` or ``.safetensors``) strictly.

    Args:
        path: checkpoint file.
        preset: preset name or config; None takes the config stored in a safetensors header
            by ``resplat train`` (:func:`stored_config`), else infers it from the tensor
            shapes (:func:`infer_preset`).
        map_location: device of the loaded tensors (and of the model).
        amp: bf16 autocast on CUDA in the forward passes (the release's setting).

    Returns:
        a :class:`ReSplatModel` in eval mode holding the checkpoint's tensors (half-precision
        tensors are converted to float32).

    Raises:
        CheckpointError: unreadable or foreign file (:func:`read_state_dict`), a preset that
            cannot be inferred, or keys/shapes that differ from the preset's model (the message
            names the first missing, unexpected and mis-shaped keys).
    """
    sd = read_state_dict(path, map_location)
    if preset is None:
        preset = stored_config(path)
    if preset is None:
        try:
            preset = infer_preset(sd)
        except KeyError as exc:
            raise CheckpointError(path, f"cannot tell which ReSplat preset this is (no usable {exc.args[0]})") from None
    cfg = get_config(preset)
    model = build_model(cfg, device="meta", amp=amp)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = compare_layout(sd, expected)
    if problem is not None:
        raise CheckpointError(path, f"does not match the {cfg.name} model: {problem}")
    sd = {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=True)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:  # non-persistent buffers are not in checkpoints: rebuild them for real
        real = build_model(cfg, device=map_location, amp=amp)
        real.load_state_dict(sd, strict=True)
        model = real
    return model.eval()


def embedded_weights_path() -> Path:
    """Where the embedded model's weights live: ``<package>/model/weights/tiny.safetensors``
    (found from this module's folder, so it works from a source checkout, a wheel and the
    Blender extension's bundled runtime; the file may be absent)."""
    return Path(__file__).resolve().parent / "weights" / f"{EMBEDDED_PRESET}.safetensors"


def load_embedded_model(preset: str | ModelConfig | None = None, map_location: str | torch.device = "cpu",
                        amp: bool = True) -> ReSplatModel:
    """The embedded ``tiny`` model (:func:`embedded_weights_path`), loaded strictly by
    :func:`load_checkpoint` (float16 file, float32 model; config from the file's metadata
    unless ``preset`` is given). Nothing is downloaded.

    Raises:
        CheckpointError: this copy of resplat has no embedded weights file (one line naming the
            expected path), or the file does not load.
    """
    path = embedded_weights_path()
    if not path.is_file():
        raise CheckpointError(path, "this copy of resplat ships no embedded weights; pass --checkpoint")
    return load_checkpoint(path, preset=preset, map_location=map_location, amp=amp)
