"""Peak-memory estimate of a ReSplat reconstruction and the free memory of a device.

The estimate is checked before any work so that a too-large input fails with one clear line
instead of an out-of-memory crash half-way. Model: the float32 weights, plus a per-input-pixel
cost for the activations (cost volume, DPT upsampler, renders), plus a per-Gaussian cost
proportional to the updater's state width (point-transformer features and the per-Gaussian
tensors), plus a fixed overhead, plus (on devices other than CPU and CUDA) the global
low-resolution attention's score matrix: torch's CPU and CUDA ``scaled_dot_product_attention``
kernels are blocked and never store it (measured: the CPU peak grows linearly in the pixels,
not in their square, rows tiny/m4 below).

Calibration (``benchmarks/reconstruct_memory.py``: peak resident memory of a fresh CPU process
above the loaded model, random weights, 2 iterations, one thread):

| preset | views x size | pixels | Gaussians | measured peak above weights |
|---|---|---:|---:|---:|
| small-dl3dv | 2 x 64x64 | 8,192 | 512 | 78 MB |
| small-dl3dv | 2 x 128x128 | 32,768 | 2,048 | 150 MB |
| small-dl3dv | 2 x 128x256 | 65,536 | 4,096 | 250 MB |
| small-dl3dv | 2 x 256x256 | 131,072 | 8,192 | 485 MB |
| small-dl3dv | 4 x 256x448 | 458,752 | 28,672 | 1,394 MB |
| base-dl3dv | 2 x 128x256 | 65,536 | 4,096 | 328 MB |
| base-dl3dv | 2 x 256x256 | 131,072 | 8,192 | 526 MB |
| base-re10k | 2 x 64x64 | 8,192 | 8,192 | 410 MB |
| base-re10k | 2 x 128x128 | 32,768 | 32,768 | 1,140 MB |
| tiny | 4 x 256x256 | 262,144 | 16,384 | 394 MB |
| tiny/m4 | 4 x 256x256 | 262,144 | 65,536 | 925 MB |
| tiny/m4 | 8 x 256x256 | 524,288 | 131,072 | 1,665 MB |
| tiny/m4 | 2 x 512x512 | 524,288 | 131,072 | 1,621 MB |

A least-bounding fit of ``a * pixels + c * state_channels * Gaussians``: DL3DV (512 state
channels, one Gaussian per 16 pixels) 2.9-3.0 KB per pixel, RE10K (512, one per pixel) about
30 KB, tiny (128, one per 16 or per 4 pixels) 1.5 and 2.8 KB; a = 1.5 KB and c = 60 bytes round
every row up: estimate / peak 1.11-1.91 from 128x256 up (3.6 at 2 x 64x64, where the fixed
overhead is most of it).
"""

from __future__ import annotations

import torch

from .config import ModelConfig
from .updater import gaussian_grid_factor

#: Activation bytes per input pixel (all views together) under no_grad.
BYTES_PER_PIXEL = 1_500
#: Activation bytes per Gaussian and per updater state channel under no_grad.
BYTES_PER_GAUSSIAN_CHANNEL = 60
#: Allocator slack, library state and the intercept of the calibration (bytes).
FIXED_OVERHEAD = 256 * 2**20
#: Heads of the global low-resolution attention (its score matrix is tokens^2 x heads floats).
GLOBAL_ATTN_HEADS = 4
#: Device types whose attention kernels never materialise the score matrix (see above).
FUSED_ATTENTION_DEVICES = ("cpu", "cuda")


def estimate_peak_bytes(config: ModelConfig, views: int, height: int, width: int, num_parameters: int,
                        device_type: str = "cpu") -> int:
    """Estimated peak bytes of :func:`resplat.model.reconstruct.reconstruct`.

    Args:
        config: model configuration.
        views, height, width: input size (pixels).
        num_parameters: parameter count of the model (float32 weights, 4 bytes each).
        device_type: torch device type; outside :data:`FUSED_ATTENTION_DEVICES` the attention
            score matrix is added.

    Returns:
        4 * params + BYTES_PER_PIXEL * P + BYTES_PER_GAUSSIAN_CHANNEL * state_channels * P / f^2
        + FIXED_OVERHEAD for P = V H W pixels and f = :func:`~.updater.gaussian_grid_factor`,
        plus (other devices) 2 * 4 bytes * heads * T^2 for the T = P / (4 f)^2 tokens of the
        updater's global attention (score matrix and its softmax).
    """
    pixels = views * height * width
    f = gaussian_grid_factor(config)
    gaussians = pixels // f ** 2
    need = (4 * num_parameters + BYTES_PER_PIXEL * pixels
            + BYTES_PER_GAUSSIAN_CHANNEL * config.state_channels * gaussians + FIXED_OVERHEAD)
    if device_type not in FUSED_ATTENTION_DEVICES:
        tokens = pixels // (4 * f) ** 2
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
