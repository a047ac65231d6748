"""ReSplat's recurrent Gaussian updater: modules (``encoder.update_*``) and one update step.

ReSplat (arXiv 2510.08575, Sec. 3.3) renders the current Gaussians at the input views, turns the
rendering error into per-Gaussian features and predicts a residual for every Gaussian parameter
with a point transformer over a recurrent hidden state. The numbers follow the release's
``forward_update`` (``encoder_resplat.py``; docs/model-architecture.md section 4):

1. render every input view (black background, SH degree 3, eps2d 0.1, the dataset's near/far);
2. feature error: frozen ResNet-18 taps (:mod:`.features`) of the ImageNet-normalised renders
   minus those of the images (targets computed once), each resized bilinearly with
   ``align_corners=True`` to the Gaussian grid, without gradient;
3. RGB error: render - image pixel-unshuffled to the Gaussian grid (48 channels for DL3DV,
   3 for RE10K), ``update_rgb_error_proj`` (Linear + LayerNorm), **added** to the feature error;
4. ``update_error_attn.0``: global low-resolution attention over all views' error maps;
5. per Gaussian concat(parameters 59 (detached), hidden 512, error 256) -> ``update_module.0``
   Linear -> ``update_module.1`` point transformer (k = 8 on the current means) -> + hidden;
6. ``update_head`` (last layer zero-initialised) -> deltas applied by
   :meth:`~resplat.model.update_state.UpdateState.updated`.

``ModelConfig.update_mode="footprint"`` (our tiny preset, not the release) measures the mean and
scale steps, and the scales the updater reads, in units of ``FOOTPRINT_GAIN`` x the Gaussian's
cell footprint (:func:`update_units`), as the initial sizes are with ``scale_mode="footprint"``:
the release's absolute steps, learnt at one resolution, are twice too large at twice the
resolution.

Gradient flow as the release: the parameters entering the concat are detached, the RGB error
keeps the render's gradient, the ResNet path has none.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cameras import Cameras
from ..errors import ResplatError
from .amp import autocast
from .config import ModelConfig, get_config
from .features import ResNetFeatures, imagenet_normalize
from .initial import FOOTPRINT_GAIN, cell_footprint
from .point_transformer import MultiViewLowresAttn, PlainPointTransformer
from .update_state import UpdateState

#: Low-pass variance (px^2) the release passes to gsplat when rendering for the updater.
RENDER_EPS2D = 0.1
#: Names of the encoder children built here, in the release's registration order.
UPDATE_MODULE_NAMES = ("update_proj", "update_rgb_error_proj", "update_module", "update_head",
                       "update_feature", "update_error_attn")


class UpdaterInputError(ResplatError, ValueError):
    """Images, cameras and Gaussian grid given to :meth:`Updater.step` do not fit (one line)."""


def update_units(state: UpdateState, cameras: Cameras) -> Tensor:
    """[N, 1] ``FOOTPRINT_GAIN`` x :func:`~resplat.model.initial.cell_footprint` of every
    Gaussian at its current z-depth in the view it was born in (model units, detached; depths
    clamped to >= 1e-6): the unit of the updater's mean and scale steps with
    ``update_mode="footprint"``. About 1 at the frame distance at 128 px, 0.5 at 256 px.

    Raises:
        UpdaterInputError: more than one Gaussian per grid cell (the RE10K presets)."""
    v, gh, gw = state.grid
    if len(state) != v * gh * gw:
        raise UpdaterInputError(f"footprint update units need one Gaussian per grid cell, got {len(state)} for grid {state.grid}")
    means = state.means.detach()
    w2c = cameras.w2c.to(means)[state.view_index]  # [N, 4, 4]
    z = (torch.einsum("nj,nj->n", w2c[:, 2, :3], means) + w2c[:, 2, 3]).clamp(min=1e-6)
    cells = cell_footprint(z.reshape(1, v, gh, gw), cameras.normalized_K().to(means)[None])
    return (FOOTPRINT_GAIN * cells).reshape(-1, 1)


class PointLinearWrapper(nn.Module):
    """``linear``: Linear(in -> out) applied per point (release ``PointLinearWrapper``);
    forward x [..., in] -> [..., out]."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


def gaussian_grid_factor(config: ModelConfig) -> int:
    """Image pixels per Gaussian-grid pixel along each side: latent_downsample / sqrt(m) for m
    Gaussians per latent point (4 for DL3DV, 1 for RE10K)."""
    r = int(round(config.gaussians_per_point ** 0.5))
    return config.latent_downsample // r


def build_update_modules(config: ModelConfig | str) -> dict[str, nn.Module]:
    """The six updater children of ``ReSplatEncoder`` with the release's layout and init.

    Returns a dict name -> module for :data:`UPDATE_MODULE_NAMES`; their state dicts under the
    prefix ``encoder.<name>.`` equal the manifest (``manifests/<preset>.json``):
    ``update_proj`` Conv1x1(C -> 512); ``update_rgb_error_proj`` Sequential(Linear(3 f^2 -> 256),
    LayerNorm) with f = :func:`gaussian_grid_factor`; ``update_module`` Sequential(
    :class:`PointLinearWrapper` (59 + 512 + 256 -> 512), :class:`PlainPointTransformer` (512,
    k = 8, 4 kNN blocks)); ``update_head`` 4-layer MLP with GELU, last Linear(512 -> 59) zero
    (weights and bias: the first update is the identity); ``update_feature``
    :class:`ResNetFeatures` (frozen); ``update_error_attn`` ModuleList([MultiViewLowresAttn(256)]).
    Linear layers other than the last head layer keep torch's default init (the checkpoint
    replaces them).
    """
    cfg = get_config(config)
    s, e = cfg.state_channels, cfg.error_channels
    f = gaussian_grid_factor(cfg)
    head = nn.Sequential(nn.Linear(s, s), nn.GELU(), nn.Linear(s, s), nn.GELU(), nn.Linear(s, s), nn.GELU(),
                         nn.Linear(s, cfg.update_channels))
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return {
        "update_proj": nn.Conv2d(cfg.regressor_channels, s, 1),
        "update_rgb_error_proj": nn.Sequential(nn.Linear(3 * f * f, e), nn.LayerNorm(e)),
        "update_module": nn.Sequential(
            PointLinearWrapper(cfg.update_channels + s + e, s),
            PlainPointTransformer(s, cfg.update_knn, cfg.update_blocks, attn_proj_channels=cfg.attn_proj_channels),
        ),
        "update_head": head,
        "update_feature": ResNetFeatures(),
        "update_error_attn": nn.ModuleList([MultiViewLowresAttn(e)]),
    }


def rgb_error_tokens(render_rgb: Tensor, images: Tensor, factor: int, proj: nn.Module) -> Tensor:
    """Per-Gaussian RGB error features [V, gh, gw, E] (release step 3, before the feature error
    is added): ``proj(pixel_unshuffle(render - image, factor))`` with channel order
    ``c * factor^2 + dy * factor + dx`` (torch ``pixel_unshuffle``), gh = H / factor.

    Args:
        render_rgb, images: [V, 3, H, W] linear renders and the [0, 1] input images.
        factor: image pixels per grid pixel per side (1: no unshuffle).
        proj: ``update_rgb_error_proj`` (Linear(3 factor^2 -> E) + LayerNorm).
    """
    err = render_rgb - images
    if factor > 1:
        err = F.pixel_unshuffle(err, factor)
    return proj(err.permute(0, 2, 3, 1))


def resnet_error_features(resnet: ResNetFeatures, images: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """The three ResNet-18 taps of ``images`` [V, 3, H, W] in [0, 1] (ImageNet-normalised first),
    each resized bilinearly (``align_corners=True``) to ``grid_hw`` unless already that size,
    concatenated: [V, 256, gh, gw], computed without gradient."""
    with torch.no_grad():
        taps = resnet(imagenet_normalize(images))
        taps = [t if tuple(t.shape[-2:]) == tuple(grid_hw) else
                F.interpolate(t, size=grid_hw, mode="bilinear", align_corners=True) for t in taps]
        return torch.cat(taps, dim=1)


class Updater:
    """One ReSplat refinement step over the encoder's ``update_*`` modules (not a module itself:
    it only references them, so the state dict stays the encoder's).

    Args:
        modules: the encoder (or any object/dict) exposing the six :data:`UPDATE_MODULE_NAMES`.
        config: the model's :class:`ModelConfig` (grid factor, near/far of the renders).
        backend: rasteriser backend for :func:`resplat.render.render` ("auto": gsplat on CUDA).
        amp: bf16 autocast of the networks on CUDA (the release's setting); ignored elsewhere.
        zero_error: ablation only (benchmarks/recurrence.py): the rendering-error features are
            replaced by zeros before the global error attention, so the update sees no feedback
            from the images (the render and the ResNet taps are skipped). An inference-time
            stand-in for the paper's "no error input" ablation, which retrains without it.
    """

    def __init__(self, modules, config: ModelConfig | str, backend: str = "auto", amp: bool = True,
                 zero_error: bool = False):
        get = modules.__getitem__ if isinstance(modules, dict) else lambda n: getattr(modules, n)
        for name in UPDATE_MODULE_NAMES:
            setattr(self, name, get(name))
        self.config = get_config(config)
        self.factor = gaussian_grid_factor(self.config)
        self.backend = backend
        self.amp = amp
        self.zero_error = zero_error

    def _autocast(self, device: torch.device):
        return autocast(device, self.amp)

    def initial_hidden(self, condition_features: Tensor) -> Tensor:
        """Hidden state [N, 512] from the initial model's ``condition_features`` [V, C, h, w]
        (detached): ``update_proj`` 1x1 conv, resized x sqrt(m) bilinearly (``align_corners=True``)
        when several Gaussians share a latent point (RE10K), flattened view-major (v, y, x)."""
        with self._autocast(condition_features.device):
            state = self.update_proj(condition_features.detach())
        r = int(round(self.config.gaussians_per_point ** 0.5))
        if r > 1:
            state = F.interpolate(state, scale_factor=r, mode="bilinear", align_corners=True)
        return state.permute(0, 2, 3, 1).reshape(-1, state.shape[1])

    def target_features(self, images: Tensor, grid_hw: tuple[int, int]) -> Tensor:
        """ResNet error features [V, 256, gh, gw] of the input images (computed once per scene)."""
        with self._autocast(images.device):
            return resnet_error_features(self.update_feature, images, grid_hw)

    def render(self, state: UpdateState, cameras: Cameras) -> Tensor:
        """Linear RGB renders [V, 3, H, W] of ``state`` at ``cameras`` (model frame), black
        background, eps2d 0.1, near/far of the config, as the release's gsplat call."""
        from ..render import render

        out = render(state.to_gaussians(), cameras, backend=self.backend, near=self.config.near,
                     far=self.config.far, eps2d=RENDER_EPS2D)
        return out.rgb

    def rendering_error(self, render_rgb: Tensor, images: Tensor, targets: Tensor) -> Tensor:
        """Summed per-Gaussian error features [V, 256, gh, gw] before the global attention:
        (ResNet taps of the render - ``targets``) + :func:`rgb_error_tokens`."""
        grid_hw = tuple(targets.shape[-2:])
        with self._autocast(images.device):
            feat = resnet_error_features(self.update_feature, render_rgb, grid_hw) - targets
        rgb = rgb_error_tokens(render_rgb, images, self.factor, self.update_rgb_error_proj)
        return feat + rgb.permute(0, 3, 1, 2)

    def step(self, state: UpdateState, hidden: Tensor, images: Tensor, cameras: Cameras,
             targets: Tensor | None = None, render_rgb: Tensor | None = None) -> tuple[UpdateState, Tensor]:
        """One refinement iteration (docs/model-architecture.md section 4, steps 1-6).

        Args:
            state: current Gaussians (:class:`UpdateState`, model frame, grid (V, gh, gw)).
            hidden: [N, 512] recurrent state (:meth:`initial_hidden` at the start).
            images: [V, 3, H, W] input images in [0, 1] (sRGB values as stored), H = gh * f.
            cameras: the V input cameras in the model frame (same as ``state.view_rotations``).
            targets: :meth:`target_features` of ``images`` (computed here when None).
            render_rgb: :meth:`render` of ``state`` at ``cameras`` when the caller has it already
                ([V, 3, H, W]; rendered here when None), so that it is not rendered twice.

        Returns:
            (new state, new hidden [N, 512]). The count of Gaussians never changes.

        Raises:
            UpdaterInputError: images, cameras and grid that do not match.
        """
        v, gh, gw = state.grid
        if tuple(images.shape) != (v, 3, gh * self.factor, gw * self.factor) or len(cameras) != v:
            raise UpdaterInputError(f"updater: images {list(images.shape)} and {len(cameras)} cameras do not match the "
                             f"Gaussian grid {state.grid} x {self.factor} px")
        if targets is None and not self.zero_error:
            targets = self.target_features(images, (gh, gw))
        if self.zero_error:  # ablation: no feedback from the rendering error
            error = state.means.new_zeros(v, self.config.error_channels, gh, gw)
        else:
            if render_rgb is None:
                render_rgb = self.render(state, cameras)
            error = self.rendering_error(render_rgb, images, targets)  # [V, E, gh, gw]
        with self._autocast(images.device):
            for block in self.update_error_attn:
                error = block(error[None])[0]
        tokens = error.permute(0, 2, 3, 1).reshape(1, len(state), -1)
        prev = state.detach()
        params = prev.as_vector()
        units = None
        if self.config.update_mode == "footprint":
            units = update_units(prev, cameras)
            params = torch.cat([params[:, :3], params[:, 3:6] / units, params[:, 6:]], dim=-1)
        elif self.config.update_mode != "absolute":
            raise UpdaterInputError(f"unknown update_mode {self.config.update_mode!r} (absolute or footprint)")
        with self._autocast(images.device):
            x = torch.cat([params[None], hidden[None], tokens], dim=-1)
            x = self.update_module[0](x)
            hidden = self.update_module[1](x, prev.means[None])[0] + hidden
            delta = self.update_head(hidden)
        delta = delta.to(prev.means.dtype)
        if units is not None:
            delta = torch.cat([delta[:, :6] * units, delta[:, 6:]], dim=-1)
        return prev.updated(delta), hidden
