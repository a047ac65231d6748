"""Write the model goldens of tests/data/golden/ by running the ReSplat release itself.

Usage (from the repository root; not run in CI)::

    git -C <mirror of mohammed1916/resplat> archive cc4594a | tar x -C /tmp/release-cc4594a
    PYTHONPATH=$PWD/runtime OMP_NUM_THREADS=2 .venv/bin/python tests/data/golden/make_goldens.py \
        /tmp/release-cc4594a [--out tests/data/golden] [--only CASE ...]

Needs, besides torch and this repository's test dependencies, the release's pure-Python
dependencies ``einops`` and ``jaxtyping`` (``pip install einops jaxtyping``; the runtime never
imports them, so they are not in runtime/pyproject.toml).

What runs: the release's ``EncoderReSplat`` (``src/model/encoder/encoder_resplat.py`` at commit
cc4594a) built from its own config values (``config/model/encoder/resplat.yaml`` overridden by
``config/experiment/{dl3dv,re10k}.yaml`` and the preset's ``scripts/*_refine.sh`` flags), in eval
mode, on CPU, in float64: ``forward`` (initial Gaussians) and, for the cases with ``updates``,
``forward_update`` with ``num_refine = 2``. Everything from the release is imported from the
extracted tree unchanged; the stand-ins below replace only what cannot run on a CPU without
CUDA extensions, and the one cast that would defeat float64:

- ``pointops`` (CUDA extension): ``knn_query`` is an exact brute force per batch segment on
  float64 squared distances with a stable sort, so among equal distances the lower index
  wins at the k-th place, as the CUDA max-heap with its strict ``<`` does
  (``pointops/src/knn_query/knn_query_cuda_kernel.cu``); the order inside the k neighbours
  differs from the heap's only between equal distances, and the point transformer's
  attention is invariant to it. It returns int32 indices and sqrt distances like pointops.
  ``knn_query_and_group`` gathers ``feat[idx]`` (``pointops/functions/grouping.py``
  ``grouping`` without the -1 padding row, which never occurs here).
- ``torchvision.models.resnet18`` (not installed): the torchvision ResNet-18 layout
  (conv1 7x7/2, bn1, relu, maxpool 3/2, layer1..4 of BasicBlocks with 1x1 downsample + BN),
  written out here; its weights are the seeded ones below. ``torchvision.transforms.Normalize``
  is ``(x - mean) / std``.
- gsplat (CUDA): the renderer ``forward_update`` is given draws the release Gaussians with
  this repository's torch rasteriser (``resplat.render.render``, backend "torch", eps2d 0.1,
  antialiased, near/far of view 0, black background, as
  ``src/model/decoder/gsplat_decoder_splatting_cuda.py`` calls gsplat) after splitting each
  covariance into rotation and scales by ``eigh`` (gsplat is given the covariances).
- float64: while the release runs, ``Tensor.float()`` leaves float64 tensors float64 (its
  casts serve bf16 autocast: the LDM ``GroupNorm8`` forward and attention softmax,
  ``gaussians.float()``, ``pos_embed.float()``, the cost volume) and turns integer tensors
  (pixel grids) into float64 instead of float32 (exact either way); ``sample_image_grid``'s
  float32 pixel centres ``(idx + 0.5) / length`` are handed on as float64 (exact for the
  power-of-two sizes used here); the shifted-window mask (0 / -100, exact) is float64: torch's
  CPU ``scaled_dot_product_attention`` given a float32 mask with float64 q, k, v does not add it
  as a float64 run would (the transformer features then differ by 6e-2); the LDM ``UNetModel.dtype`` (the type its forward casts the
  input to, float32 unless fp16) is float64. Constants the release builds in float32 (the
  ImageNet mean/std, the depth-candidate ramp, the sine position encoding, ``pixel_size``)
  stay float32, and our runtime builds the same ones.
- ``src.misc.sh_rotation`` (needs e3nn) is a stub: ``no_rotate_sh`` is true in every preset.

Weights: ``tests/model_weights.seeded_state_dict(preset, "encoder.")`` (one generator over the
manifest keys, normal * 0.02, norm scales 1 + ...) with BatchNorm ``running_var`` + 1, loaded
into the release encoder with ``strict=True``: the manifests and the release layout agree key by
key, which this script also checks.

Poses: the dataset's ``camera_normalization`` (``src/dataset/dataset_dl3dv.py``):
``torch.inverse(c2w[V // 2]) @ c2w``; intrinsics normalised by (W, H); near/far from the
dataset configs (0.01 / 200 DL3DV, 0.01 / 100 RE10K).

Stored per case (``release_<case>.safetensors``; all float64 unless noted; release model frame):
inputs ``images_u8`` [V, 3, H, W] uint8, world ``c2w`` [V, 4, 4], pixel ``K`` [V, 3, 3],
``model_c2w``; ``nn_matrix`` (the release's ``argsort(cdist)[..., :3]``, int64) for V > 3;
``depth_sub`` = the full-resolution depth at every 4th pixel per side; and for each stored
iteration t (0 = initial, then after each update) the Gaussians listed in ``index`` (every
``stride``-th, view-major order as both sides emit them): ``iter{t}.means`` [n, 3],
``iter{t}.covariances`` upper triangle [n, 6] (xx, xy, xz, yy, yz, zz), ``iter{t}.opacities``
[n], ``iter{t}.sh_dc`` [n, 3]; and for ``sub_index`` (every 5th of ``index``) all 16 SH
coefficients ``iter{t}.sub.sh`` [m, 3, 16] (channel-major, the release layout).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests"))
F64 = torch.float64


# --------------------------------------------------------------------------------------------
# cases
@dataclass(frozen=True)
class Case:
    """One golden scene: ``views`` cameras of ``height`` x ``width``; ``updates`` recurrent
    iterations stored after the initial prediction; ``tied``: a rig with exactly tied camera
    distances (integer centres on the x and y axes, the middle view at the world origin with
    identity rotation, so the pose normalisation is exact and the ties survive it; every other
    view rotates about the axis its centre lies on, so that our ``Cameras`` round trip
    c2w -> w2c -> c2w, ``R (R^T t)``, gives the centres back exactly: with a general rotation
    it moves them by ~1e-16, which breaks the ties differently from the release)."""

    name: str
    preset: str
    views: int
    height: int
    width: int
    updates: int = 0
    tied: bool = False
    seed: int = 0
    max_stored: int = 1024


CASES = {c.name: c for c in [
    Case("small_2v", "small-dl3dv", 2, 64, 128, seed=21),
    Case("small_3v", "small-dl3dv", 3, 64, 128, updates=2, seed=11),
    Case("small_4v", "small-dl3dv", 4, 128, 128, seed=31),
    Case("small_8v", "small-dl3dv", 8, 64, 64, seed=41),
    Case("small_5v_tied", "small-dl3dv", 5, 64, 64, tied=True, seed=51),
    Case("re10k_2v", "base-re10k", 2, 32, 64, updates=2, seed=12),
]}

#: Tied rig: camera centres (metres) of 5 views; view 2 (the middle one) at the origin. View 2
#: is 1 m from every other view (a four-way tie), views 0 and 1 see views 3 and 4 at sqrt(2)
#: (two-way ties for the second neighbour).
TIED_CENTRES = [(-1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)]


def _rotation(axis: torch.Tensor, angle: float) -> torch.Tensor:
    """Rodrigues rotation matrix (float64) about ``axis`` by ``angle`` radians."""
    a = axis / axis.norm()
    k = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=F64)
    return torch.eye(3, dtype=F64) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def make_scene(case: Case):
    """(images_u8 [V, 3, H, W], world c2w [V, 4, 4], K [V, 3, 3] pixels), all from ``case.seed``.

    Images: uint8 noise smoothed by a 5x5 box filter (texture the cost volume can match).
    Cameras: each rotated about a random tilted axis by 0.05-0.15 rad and shifted by up to 0.3 m
    in x, y and z (tied case: the fixed centres of ``TIED_CENTRES``, each view but the middle
    one rotated about the coordinate axis through its centre instead), the rig then placed in the
    world by a 0.9 rad rotation and a (1.5, -2, 0.7) m shift (tied case: left in place).
    fx = fy = 0.9 W (0.9 H), principal points within 3 px of the centre.
    """
    g = torch.Generator().manual_seed(case.seed)
    v, h, w = case.views, case.height, case.width
    noise = torch.rand(v, 3, h + 4, w + 4, generator=g, dtype=F64)
    images = F.avg_pool2d(noise, 5, stride=1)
    images = (images - images.amin()) / (images.amax() - images.amin())
    images_u8 = (images * 255).round().to(torch.uint8)
    c2w = torch.eye(4, dtype=F64).repeat(v, 1, 1)
    for i in range(v):
        axis = torch.randn(3, generator=g, dtype=F64) + torch.tensor([0.0, 0.0, 0.5], dtype=F64)
        angle = 0.05 + 0.1 * float(torch.rand(1, generator=g, dtype=F64))
        shift = (torch.rand(3, generator=g, dtype=F64) - 0.5) * 0.6
        if case.tied:
            c2w[i, :3, 3] = torch.tensor(TIED_CENTRES[i], dtype=F64)
            if i != v // 2:  # about the axis through the centre: the round trip keeps the ties
                c2w[i, :3, :3] = _rotation(torch.tensor(TIED_CENTRES[i], dtype=F64).abs(), angle)
        else:
            c2w[i, :3, :3] = _rotation(axis, angle)
            c2w[i, :3, 3] = shift
    if not case.tied:
        place = torch.eye(4, dtype=F64)
        place[:3, :3] = _rotation(torch.tensor([0.3, 1.0, 0.2], dtype=F64), 0.9)
        place[:3, 3] = torch.tensor([1.5, -2.0, 0.7], dtype=F64)
        c2w = place @ c2w
    K = torch.zeros(v, 3, 3, dtype=F64)
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = 0.9 * w, 0.9 * h, 1.0
    K[:, 0, 2] = w / 2 + (torch.rand(v, generator=g, dtype=F64) - 0.5) * 6
    K[:, 1, 2] = h / 2 + (torch.rand(v, generator=g, dtype=F64) - 0.5) * 6
    return images_u8, c2w, K


# --------------------------------------------------------------------------------------------
# stand-ins
def _knn_query(nsample, xyz, offset, new_xyz=None, new_offset=None):
    """pointops ``knn_query``: exact, per batch segment, ties to the lower index (stable sort)."""
    if new_xyz is None or new_offset is None:
        new_xyz, new_offset = xyz, offset
    idx, dist = [], []
    start = new_start = 0
    for end, new_end in zip(offset.tolist(), new_offset.tolist()):
        d2 = ((new_xyz[new_start:new_end, None, :] - xyz[None, start:end, :]) ** 2).sum(-1)
        d2s, order = torch.sort(d2, dim=1, stable=True)
        idx.append(order[:, :nsample] + start)
        dist.append(d2s[:, :nsample].sqrt())
        start, new_start = end, new_end
    return torch.cat(idx).int(), torch.cat(dist)


def _knn_query_and_group(feat, xyz, offset=None, new_xyz=None, new_offset=None, idx=None, nsample=None,
                         with_xyz=False):
    if idx is None:
        idx, _ = _knn_query(nsample, xyz, offset, new_xyz, new_offset)
    assert not with_xyz
    return feat[idx.long()], idx


class _BasicBlock(nn.Module):
    """torchvision ``BasicBlock`` (conv-bn-relu-conv-bn + identity or 1x1 conv/bn, relu)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _ResNet18(nn.Module):
    """torchvision ``resnet18`` layout (the release uses conv1, bn1, relu, maxpool, layer1, layer2)."""

    def __init__(self, pretrained: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(_BasicBlock(64, 64, 1), _BasicBlock(64, 64, 1))
        self.layer2 = nn.Sequential(_BasicBlock(64, 128, 2), _BasicBlock(128, 128, 1))
        self.layer3 = nn.Sequential(_BasicBlock(128, 256, 2), _BasicBlock(256, 256, 1))
        self.layer4 = nn.Sequential(_BasicBlock(256, 512, 2), _BasicBlock(512, 512, 1))


class _Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, x):
        m = torch.tensor(self.mean, dtype=x.dtype).view(-1, 1, 1)
        s = torch.tensor(self.std, dtype=x.dtype).view(-1, 1, 1)
        return (x - m) / s


class TorchRenderer:
    """Stand-in for the release's gsplat decoder: ``forward(gaussians, extrinsics, intrinsics,
    near, far, (h, w))`` -> object with ``color`` [B, V, 3, H, W], drawn by resplat.render."""

    def forward(self, gaussians, extrinsics, intrinsics, near, far, image_shape):
        from resplat.cameras import Cameras
        from resplat.gaussians import Gaussians, rotmat_to_quat
        from resplat.render import render

        h, w = image_shape
        evals, evecs = torch.linalg.eigh(gaussians.covariances[0])
        evecs = evecs * torch.where(torch.linalg.det(evecs) < 0, -1.0, 1.0).to(evecs)[:, None, None]
        opac = gaussians.opacities[0]
        g = Gaussians(gaussians.means[0], rotmat_to_quat(evecs), 0.5 * torch.log(evals.clamp_min(1e-30)),
                      torch.log(opac) - torch.log1p(-opac), gaussians.harmonics[0].permute(0, 2, 1).contiguous())
        K = intrinsics[0].clone()
        K[:, 0] *= w
        K[:, 1] *= h
        cams = Cameras(torch.linalg.inv(extrinsics[0]), K, w, h)
        out = render(g, cams, backend="torch", near=float(near[0, 0]), far=float(far[0, 0]), eps2d=0.1,
                     antialiased=True)
        return types.SimpleNamespace(color=out.rgb[None])


def _package(name: str, path: Path | None) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)] if path is not None else []
    sys.modules[name] = mod
    return mod


def install_stubs(release: Path) -> None:
    """Make ``src.model.encoder.encoder_resplat`` of the extracted release importable: its
    packages are registered without running their ``__init__`` (which import training code),
    the CUDA/absent dependencies are replaced by the stand-ins above."""
    src = release / "src"
    for name in ["src", "src.model", "src.model.encoder", "src.dataset", "src.dataset.shims", "src.misc",
                 "src.geometry", "src.model.encoder.visualization"]:
        _package(name, src.joinpath(*name.split(".")[1:]))
    sh = types.ModuleType("src.misc.sh_rotation")
    sh.rotate_sh = None  # no_rotate_sh: never called
    sys.modules[sh.__name__] = sh
    pointops = types.ModuleType("pointops")
    pointops.knn_query = _knn_query
    pointops.knn_query_and_group = _knn_query_and_group
    sys.modules["pointops"] = pointops
    tv = _package("torchvision", None)
    tv.models = types.ModuleType("torchvision.models")
    tv.models.resnet18 = _ResNet18
    tv.models.resnet34 = tv.models.resnet50 = None
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.Normalize = _Normalize
    sys.modules["torchvision.models"], sys.modules["torchvision.transforms"] = tv.models, tv.transforms


@contextlib.contextmanager
def float64_casts():
    """While the release runs: ``Tensor.float()`` leaves float64 tensors float64 and turns
    integer ones into float64; ``sample_image_grid`` returns float64 coordinates and the swin
    mask is float64 (module docstring)."""
    import src.geometry.projection as projection
    from src.model.encoder import encoder_resplat
    from src.model.encoder.unimatch import mv_transformer

    orig_float, orig_grid = torch.Tensor.float, projection.sample_image_grid
    orig_mask = mv_transformer.generate_shift_window_attn_mask

    def cast(self, *args, **kwargs):
        if self.dtype == F64 or not (self.is_floating_point() or self.is_complex()):
            return self.to(F64)
        return orig_float(self, *args, **kwargs)

    def grid(*args, **kwargs):
        coordinates, indices = orig_grid(*args, **kwargs)
        return coordinates.to(F64), indices

    def mask(*args, **kwargs):
        return orig_mask(*args, **kwargs).to(F64)

    torch.Tensor.float = cast
    encoder_resplat.sample_image_grid = grid
    mv_transformer.generate_shift_window_attn_mask = mask
    try:
        yield
    finally:
        torch.Tensor.float = orig_float
        encoder_resplat.sample_image_grid = orig_grid
        mv_transformer.generate_shift_window_attn_mask = orig_mask


# --------------------------------------------------------------------------------------------
# the release encoder
def encoder_cfg(preset: str, num_refine: int):
    """``EncoderReSplatCfg`` of a preset: resplat.yaml, then the experiment yaml, then the
    preset's test script flags (line references: docs/model-architecture.md section 1)."""
    from src.model.encoder.common.gaussian_adapter import GaussianAdapterCfg
    from src.model.encoder.encoder_resplat import EncoderReSplatCfg
    from src.model.encoder.visualization.encoder_visualizer_resplat_cfg import EncoderVisualizerReSplatCfg

    base = dict(  # config/model/encoder/resplat.yaml
        name="resplat", num_depth_candidates=128, unimatch_weights_path=None, downscale_factor=4, shim_patch_size=4,
        num_scales=1, upsample_factor=4, lowest_feature_resolution=4, depth_unet_channels=128,
        grid_sample_disable_cudnn=False, local_mv_match=2, gaussian_regressor_channels=512,
        supervise_intermediate_depth=True, return_depth=True, sample_log_depth=True, bilinear_upsample_depth=False,
        no_upsample_depth=False, monodepth_vit_type="vitb", attn_proj_channels=64, knn_samples=16, num_blocks=6,
        init_use_local_knn=False, init_local_knn_spatial_radius=3, init_local_knn_num_neighbor_views=32,
        init_local_knn_cross_view_radius=3, latent_downsample=4, fixed_latent_size=True, init_gaussian_multiple=1,
        refine_same_num_points=False, depth_pred_half_res=False, no_crop_image=False, num_refine=0,
        train_min_refine=0, train_max_refine=0, num_basic_refine_blocks=4, state_channels=512,
        update_attn_proj_channels=64, refine_knn_samples=8, refine_use_local_knn=False,
        refine_local_knn_spatial_radius=3, refine_local_knn_num_neighbor_views=32,
        refine_local_knn_cross_view_radius=3, render_error_mv_attn_blocks=1, use_amp=True, pt_head_amp=True,
        pt_update_amp=True, use_checkpointing=False, init_use_checkpointing=False, recurrent_use_checkpointing=False,
    )
    adapter = dict(gaussian_scale_min=0.5, gaussian_scale_max=1.0, sh_degree=3, exp_scale=False, softplus_scale=True,
                   clamp_min_scale=1e-6, scale_detach_depth=False, exp_scale_bias=4.0, no_rotate_sh=True,
                   no_sh_mask=True, init_rotation_identity=False)
    if preset == "small-dl3dv":  # experiment/dl3dv.yaml + scripts/dl3dv_view8_256x448_small_refine.sh
        base.update(shim_patch_size=16, upsample_factor=8, lowest_feature_resolution=8, monodepth_vit_type="vits",
                    gaussian_regressor_channels=256)
    elif preset == "base-re10k":  # experiment/re10k.yaml + scripts/re10k_view2_256x256_base_refine.sh
        base.update(latent_downsample=2, fixed_latent_size=False, init_gaussian_multiple=4, refine_same_num_points=True)
    else:
        raise ValueError(preset)
    base["num_refine"] = num_refine
    names = {f for f in GaussianAdapterCfg.__dataclass_fields__}
    return EncoderReSplatCfg(visualizer=EncoderVisualizerReSplatCfg(8, 256, False),
                             gaussian_adapter=GaussianAdapterCfg(**{k: v for k, v in adapter.items() if k in names}),
                             **base)


def build_release_encoder(preset: str):
    from model_weights import seeded_state_dict
    from src.model.encoder.encoder_resplat import EncoderReSplat

    enc = EncoderReSplat(encoder_cfg(preset, num_refine=2)).double().eval()
    sd = {k: (1 + v if k.endswith("running_var") else v) for k, v in seeded_state_dict(preset, "encoder.").items()}
    own = enc.state_dict()
    extra = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    assert not extra, f"release keys missing from the manifest: {extra[:5]}"
    sd.update({k: own[k] for k in own if k.endswith("num_batches_tracked")})
    enc.load_state_dict(sd, strict=True)
    for m in enc.modules():  # the LDM U-Net casts its input to ``self.dtype`` (float32 unless fp16)
        if type(m).__name__ == "UNetModel":
            m.dtype = F64
    return enc


def _store(out: dict, prefix: str, g, index: torch.Tensor, sub: torch.Tensor) -> None:
    iu = torch.triu_indices(3, 3)
    out[prefix + "means"] = g.means[0, index]
    out[prefix + "covariances"] = g.covariances[0, index][:, iu[0], iu[1]]
    out[prefix + "opacities"] = g.opacities[0, index]
    out[prefix + "sh_dc"] = g.harmonics[0, index, :, 0]
    out[prefix + "sub.sh"] = g.harmonics[0, sub]


def run_case(case: Case, encoders: dict) -> dict:
    if case.preset not in encoders:
        encoders[case.preset] = build_release_encoder(case.preset)
    enc = encoders[case.preset]
    images_u8, c2w, K = make_scene(case)
    v, h, w = case.views, case.height, case.width
    images = images_u8.to(F64) / 255
    model_c2w = torch.bmm(torch.inverse(c2w[v // 2])[None].repeat(v, 1, 1), c2w)  # camera_normalization
    K_norm = K.clone()
    K_norm[:, 0] /= w
    K_norm[:, 1] /= h
    far = 200.0 if case.preset != "base-re10k" else 100.0
    context = {"image": images[None], "extrinsics": model_c2w[None], "intrinsics": K_norm[None],
               "near": torch.full((1, v), 0.01, dtype=F64), "far": torch.full((1, v), far, dtype=F64)}
    out = {"images_u8": images_u8, "c2w": c2w, "K": K, "model_c2w": model_c2w}
    if v > 3:
        centres = model_c2w[None, :, :3, 3]
        nn_matrix = torch.argsort(torch.cdist(centres, centres, p=2))[..., :3]  # as encoder_resplat.forward
        assert torch.equal(nn_matrix, torch.argsort(torch.cdist(centres, centres, p=2), stable=True)[..., :3])
        out["nn_matrix"] = nn_matrix[0]
    with torch.no_grad(), float64_casts():
        res = enc(context, global_step=0, deterministic=True)
        gaussians = res["gaussians"]
        n = gaussians.means.shape[1]
        stride = math.ceil(n / case.max_stored)
        stride += 1 if stride % 2 == 0 else 0  # odd: every 2x2 sub-pixel position of RE10K occurs
        index = torch.arange(0, n, stride)
        sub = index[::5]
        out["index"], out["sub_index"] = index, sub
        out["depth_sub"] = res["depths"][0, :, ::4, ::4]
        _store(out, "iter0.", gaussians, index, sub)
        if case.updates:
            enc.cfg.num_refine = case.updates
            upd = enc.forward_update(context, None, res["condition_features"], gaussians, TorchRenderer())
            for t, g in enumerate(upd["gaussian"], start=1):
                _store(out, f"iter{t}.", g, index, sub)
    return {k: t.contiguous() for k, t in out.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("release", type=Path, help="extracted copy of mohammed1916/resplat at cc4594a")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--only", nargs="*", choices=sorted(CASES), help="cases to write (default: all)")
    args = p.parse_args(argv)
    if not (args.release / "src" / "model" / "encoder" / "encoder_resplat.py").is_file():
        p.error(f"{args.release}: no src/model/encoder/encoder_resplat.py (not an extracted release)")
    from safetensors.torch import save_file

    install_stubs(args.release.resolve())
    torch.manual_seed(0)
    encoders: dict = {}
    for name in args.only or list(CASES):
        tensors = run_case(CASES[name], encoders)
        path = args.out / f"release_{name}.safetensors"
        save_file(tensors, str(path), metadata={"source": "mohammed1916/resplat@cc4594a", "case": name})
        print(f"{path}: {len(tensors['index'])} Gaussians stored, {path.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
