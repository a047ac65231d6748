"""Feed-forward reconstruction with ReSplat: posed images in, world-space Gaussians out.

ReSplat (arXiv 2510.08575): the initial model predicts one Gaussian per latent pixel of every
view (Sec. 3.1-3.2, :meth:`ReSplatEncoder.forward_initial`), then the recurrent updater refines
them ``iterations`` times from their rendering error (Sec. 3.3, :class:`.updater.Updater`). The
network works in the model frame (:mod:`.frame`: poses relative to the middle view, as the
release, and for scale-free presets divided by the scene's scale), made once here by
:func:`.frame.make_model_frame`; the result is brought back to the input's world by
:meth:`.frame.ModelFrame.gaussians_to_world`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from ..cameras import Cameras
from ..defaults import KEEP_ITERATION
from ..device import resolve_device  # the one device rule (also imported from here)
from ..errors import CancelledError, ResplatError
from ..gaussians import Gaussians
from .memory import estimate_peak_bytes, free_bytes
from .frame import make_model_frame
from .update_state import UpdateState
from .updater import Updater

#: callback(stage, iteration, total, gaussians) -> False to cancel; stage "initial" or "update".
Callback = Callable[[str, int, int, Gaussians], "bool | None"]

#: What :func:`reconstruct` returns after its iterations (``keep``): "best", the iteration whose
#: renders at the input views are closest to the input images (lowest mean squared error over
#: all views and pixels); "last", the last one (the release's behaviour).
KEEP_CHOICES = ("best", "last")


@dataclass
class Reconstruction:
    """The result of :func:`reconstruct_views`.

    Attributes:
        gaussians: world-space :class:`Gaussians` of the kept iteration.
        kept: the iteration they come from (0 = the initial prediction).
        input_psnr: PSNR (dB, float) of each iteration's renders at the input views against the
            input images (the updater's own renders: black background, linear RGB clamped to
            [0, 1]), iteration 0 first; empty when no iteration ran.
    """

    gaussians: Gaussians
    kept: int = 0
    input_psnr: list = field(default_factory=list)


def nearest_valid_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """The largest (W', H') <= (W, H) that are multiples of ``multiple`` (a centre crop)."""
    return width // multiple * multiple, height // multiple * multiple


def check_inputs(images: Tensor, cameras: Cameras, config, iterations: int) -> None:
    """Raise :class:`ResplatError` (one line) for inputs the model cannot take: a wrong image
    tensor, fewer than 2 views, a size that is not a multiple of ``config.size_multiple``
    (naming the nearest valid crop), non-finite or out-of-range pixels, negative iterations."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ResplatError(f"images must be [V, 3, H, W], got {list(images.shape)}")
    v, _, h, w = images.shape
    if v != len(cameras):
        raise ResplatError(f"{v} images given for {len(cameras)} cameras")
    if (w, h) != (cameras.width, cameras.height):
        raise ResplatError(f"images are {w}x{h} but the cameras are {cameras.width}x{cameras.height}")
    if v < 2:
        raise ResplatError(f"ReSplat needs at least 2 views, got {v}")
    m = config.size_multiple
    if w % m or h % m:
        cw, ch = nearest_valid_size(w, h, m)
        hint = f"crop to {cw}x{ch} (e.g. --crop)" if cw and ch else f"use images of at least {m}x{m}"
        raise ResplatError(f"image size {w}x{h} is not a multiple of {m} for preset {config.name!r}: {hint}")
    if iterations < 0:
        raise ResplatError(f"iterations must be >= 0, got {iterations}")
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ResplatError("image values must be finite and in [0, 1]")


def check_memory(model, views: int, height: int, width: int, device: torch.device) -> None:
    """Raise :class:`ResplatError` when :func:`.memory.estimate_peak_bytes` exceeds the free
    memory of ``device`` (unknown free memory is not checked)."""
    need = estimate_peak_bytes(model.config, views, height, width, sum(p.numel() for p in model.parameters()),
                               device.type)
    free = free_bytes(device)
    if free is not None and need > free:
        raise ResplatError(f"{views} views of {width}x{height} need about {need / 2**30:.1f} GiB on {device}, "
                           f"only {free / 2**30:.1f} GiB is free: use fewer or smaller views")


def reconstruct(images: Tensor, cameras: Cameras, model, iterations: int = 4, device: str | torch.device = "auto",
                callback: Callback | None = None, backend: str = "auto", zero_error: bool = False,
                depths: Tensor | None = None, keep: str = KEEP_ITERATION) -> Gaussians:
    """Reconstruct one scene from posed images: :func:`reconstruct_views` without its report.

    Returns:
        World-space :class:`Gaussians` of the kept iteration (see :func:`reconstruct_views`).
    """
    return reconstruct_views(images, cameras, model, iterations, device, callback, backend, zero_error, depths,
                             keep).gaussians


def input_psnr(render_rgb: Tensor, images: Tensor) -> float:
    """PSNR (dB) of renders [V, 3, H, W] (clamped to [0, 1]) against the images [V, 3, H, W] over
    all views and pixels: 10 log10(1 / MSE); inf for a perfect match."""
    mse = float((render_rgb.clamp(0, 1) - images).square().mean())
    return float("inf") if mse == 0 else -10.0 * torch.log10(torch.tensor(mse, dtype=torch.float64)).item()


def reconstruct_views(images: Tensor, cameras: Cameras, model, iterations: int = 4,
                      device: str | torch.device = "auto", callback: Callback | None = None, backend: str = "auto",
                      zero_error: bool = False, depths: Tensor | None = None, keep: str = KEEP_ITERATION) -> Reconstruction:
    """Reconstruct one scene from posed images.
    Args:
        images: [V, 3, H, W] float in [0, 1] (sRGB values as stored, not linearised), V >= 2,
            H and W multiples of ``model.config.size_multiple`` (64 DL3DV, 16 RE10K). Computed
            in float32, or in float64 when ``images`` are float64 (the model must then be
            float64 too, ``model.double()``).
        cameras: the V cameras (OpenCV, pixels; any world frame, metres).
        model: a :class:`ReSplatModel` (``.config``, ``.encoder``); moved to ``device``, eval mode.
        iterations: recurrent update iterations (the release evaluates 2 and trains 1..4).
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", ...
        callback: called as ``callback(stage, iteration, total, gaussians)`` after the initial
            prediction (stage "initial", iteration 0) and after each update (stage "update",
            iteration 1..total) with the current world-space Gaussians; returning False cancels.
        backend: rasteriser backend of the updater's renders ("auto": gsplat on CUDA).
        zero_error: ablation only, not for use: the updater sees zeros instead of its rendering
            error (:class:`.updater.Updater` ``zero_error``; benchmarks/recurrence.py).
        depths: optional [V, H, W] (or [V, 1, H, W]) exact z-depth of the views in the cameras'
            units (e.g. Blender's Z pass; 0, inf or nan where nothing was hit): the initial
            Gaussians of every pixel block with known depth are placed at it and the model frame
            takes its scale and depth range from it (:meth:`ReSplatEncoder.forward_initial`).
        keep: "best" (default, :data:`resplat.defaults.KEEP_ITERATION`): of the initial prediction and the ``iterations`` updates, return
            the one whose renders match the input images best (:func:`input_psnr`; the updater
            renders every state at the inputs anyway, so this costs one render of the last
            state). On scenes unlike its training data an update can raise the input-view error,
            and held-out quality falls with it (runtime/resplat/model/weights/tiny-eval.md);
            "best" never hands back a fit to the inputs worse than one it had. "last": the
            last iteration, as the release. Our addition, not the paper's.

    Returns:
        :class:`Reconstruction`: world-space :class:`Gaussians` (SH degree 3; (H/4)(W/4) per view
        for DL3DV, H W for RE10K) on ``device``, in the frame of ``cameras``, the kept iteration
        and the input-view PSNR of every iteration.

    Raises:
        ResplatError: invalid inputs (an unknown ``keep`` included) or too little memory (before
            any work; see :func:`check_inputs`, :func:`check_memory`).
        CancelledError: the callback returned False.
    """
    config = model.config
    check_inputs(images, cameras, config, iterations)
    if keep not in KEEP_CHOICES:
        raise ResplatError(f"keep must be one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
    if depths is not None:
        depths = depths.reshape(depths.shape[0], *depths.shape[-2:]) if depths.dim() == 4 else depths
        if tuple(depths.shape) != (images.shape[0], *images.shape[-2:]):
            raise ResplatError(f"depth maps must be [V, H, W] = {[images.shape[0], *images.shape[-2:]]}, "
                               f"got {list(depths.shape)}")
    dev = resolve_device(device)
    v, _, h, w = images.shape
    check_memory(model, v, h, w, dev)

    model = model.to(dev).eval()
    # float64 images run in float64 (with a float64 model: the golden test); anything else in float32
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    images = images.to(device=dev, dtype=dtype)
    cameras = cameras.to(device=dev, dtype=dtype)
    # one model frame for the initial model, the updater's renders and the way back
    depths = None if depths is None else depths.to(device=dev, dtype=dtype)[None]
    frame = make_model_frame(cameras.c2w[None], config, depths)
    norm_cams = frame.cameras(cameras)

    def report(stage: str, it: int, state: UpdateState) -> None:
        if callback is None:
            return
        if callback(stage, it, iterations, frame.gaussians_to_world(state.to_gaussians())) is False:
            raise CancelledError(f"reconstruction cancelled after {stage} {it}/{iterations}")

    with torch.no_grad():
        pred = model.encoder.forward_initial(images[None], cameras, depths, frame)
        state = pred.update_state(0)  # release layout, model frame
        report("initial", 0, state)
        best, kept, scores = state, 0, []
        if iterations:
            updater = Updater(model.encoder, config, backend=backend, amp=getattr(model.encoder, "amp", True),
                              zero_error=zero_error)
            hidden = updater.initial_hidden(pred.condition_features)
            targets = updater.target_features(images, state.grid[1:])
            rgb = updater.render(state, norm_cams)
            scores.append(input_psnr(rgb, images))
            for it in range(1, iterations + 1):
                state, hidden = updater.step(state, hidden, images, norm_cams, targets, render_rgb=rgb)
                report("update", it, state)
                # this render is also the next step's input: only the last one is extra work
                rgb = updater.render(state, norm_cams)
                scores.append(input_psnr(rgb, images))
                if keep == "last" or scores[-1] > scores[kept]:
                    best, kept = state, it
    return Reconstruction(frame.gaussians_to_world(best.to_gaussians()), kept, scores)
