"""Peak-memory estimate of a ReSplat reconstruction and the free memory of a device.

The estimate is checked before any work so that a too-large input fails with one clear line
instead of an out-of-memory crash half-way. Model: the float32 weights, plus a per-input-pixel
cost for the activations (cost volume, DPT upsampler, ViT tokens, per-Gaussian point-transformer
features, renders), plus the global low-resolution attention's score matrix where it is
materialised (not on CUDA, whose fused attention kernels do not store it), plus a fixed overhead.

Calibration (``benchmarks/reconstruct_memory.py``: peak resident memory of a fresh CPU process
above the loaded model, random weights, 2 iterations, one thread):

| preset | views x size | pixels | measured peak above weights |
|---|---|---:|---:|
| small-dl3dv | 2 x 64x64 | 8,192 | 78 MB |
| small-dl3dv | 2 x 128x128 | 32,768 | 150 MB |
| small-dl3dv | 2 x 128x256 | 65,536 | 250 MB |
| small-dl3dv | 2 x 256x256 | 131,072 | 485 MB |
| small-dl3dv | 4 x 256x448 | 458,752 | 1,394 MB |
| base-dl3dv | 2 x 128x256 | 65,536 | 328 MB |
| base-dl3dv | 2 x 256x256 | 131,072 | 526 MB |
| base-re10k | 2 x 64x64 | 8,192 | 410 MB |
| base-re10k | 2 x 128x128 | 32,768 | 1,140 MB |

DL3DV (one Gaussian per 4x4 pixels): 2.9-3.0 KB per pixel for both ViT sizes, intercept under
130 MB. RE10K (one Gaussian per pixel, so 16x more point-transformer tokens): about 30 KB per
pixel. The constants below round up so the estimate bounds every measurement.
"""

from __future__ import annotations

import torch

from .config import ModelConfig
from .updater import gaussian_grid_factor

#: Activation bytes per input pixel (all views together) under no_grad, by image pixels per
#: Gaussian-grid pixel (4: DL3DV, 1: RE10K); other factors use the larger value.
BYTES_PER_PIXEL = {4: 3_500, 1: 32_000}
#: Allocator slack, library state and the intercept of the calibration (bytes).
FIXED_OVERHEAD = 256 * 2**20
#: Heads of the global low-resolution attention (its score matrix is tokens^2 x heads floats).
GLOBAL_ATTN_HEADS = 4


def estimate_peak_bytes(config: ModelConfig, views: int, height: int, width: int, num_parameters: int,
                        device_type: str = "cpu") -> int:
    """Estimated peak bytes of :func:`resplat.model.reconstruct.reconstruct`.

    Args:
        config: model configuration.
        views, height, width: input size (pixels).
        num_parameters: parameter count of the model (float32 weights, 4 bytes each).
        device_type: "cuda" drops the attention score term (fused kernels).

    Returns:
        4 * params + BYTES_PER_PIXEL[f] * V H W + FIXED_OVERHEAD, plus (off CUDA) 2 * 4 bytes *
        heads * T^2 for the T = V H W / (4 f)^2 tokens of the largest global
        attention (f = :func:`~.updater.gaussian_grid_factor`) (score matrix and its softmax).
    """
    pixels = views * height * width
    per_pixel = BYTES_PER_PIXEL.get(gaussian_grid_factor(config), max(BYTES_PER_PIXEL.values()))
    need = 4 * num_parameters + per_pixel * pixels + FIXED_OVERHEAD
    if device_type != "cuda":
        tokens = pixels // (4 * gaussian_grid_factor(config)) ** 2
        need += 2 * 4 * GLOBAL_ATTN_HEADS * tokens * tokens
    return need


def free_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` in bytes: ``torch.cuda.mem_get_info`` on CUDA, ``MemAvailable``
    of /proc/meminfo on CPU (Linux); None where it cannot be known (MPS, other systems)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None
