"""PSNR / SSIM against float64 references and scikit-image on real photos; LPIPS architecture
and loading with a random-weights file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.filters import gaussian
from skimage.metrics import structural_similarity
from skimage.transform import resize

from resplat.errors import ResplatError
from resplat.lpips_net import LPIPS
from resplat.metrics import lpips, psnr, ssim, ssim_map
from ssim_reference import ssim_2d


def _photo(name: str, size=(96, 128)) -> np.ndarray:
    """A real RGB photo from skimage.data, float64 [H, W, 3] in [0, 1], downsized for speed."""
    img = getattr(data, name)()[..., :3]
    return resize(img, size, anti_aliasing=True).astype(np.float64)


def _pairs():
    """(target, degraded) photo pairs: noise, blur, and a different photo."""
    rng = np.random.default_rng(0)
    ast, cat, cof = _photo("astronaut"), _photo("chelsea"), _photo("coffee")
    noisy = np.clip(ast + rng.normal(0, 0.05, ast.shape), 0, 1)
    blurred = gaussian(cat, sigma=1.2, channel_axis=-1)
    return [(ast, noisy), (cat, blurred), (cof, cat)]


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def test_psnr_matches_float64_formula():
    pairs = _pairs()
    pred = torch.stack([_t(b) for _, b in pairs])
    target = torch.stack([_t(a) for a, _ in pairs])
    got = psnr(pred, target)
    want = [10 * np.log10(1.0 / np.mean((a - b) ** 2)) for a, b in pairs]
    assert got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-10)
    # data_range scales the peak; single images give a 0-d tensor; float32 agrees to 1e-4 dB
    np.testing.assert_allclose(psnr(pred * 255, target * 255, data_range=255.0).numpy(), want, atol=1e-9)
    assert psnr(pred[0].float(), target[0].float()).shape == ()
    assert abs(float(psnr(pred[0].float(), target[0].float())) - want[0]) < 1e-4


def test_ssim_valid_matches_skimage_on_real_photos():
    pairs = _pairs()
    pred = torch.stack([_t(b) for _, b in pairs])
    target = torch.stack([_t(a) for a, _ in pairs])
    got = ssim(pred, target).numpy()
    want = [
        structural_similarity(b, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)
        for a, b in pairs
    ]
    # the three pairs span very different similarity: noise, blur, another photo
    assert want[2] < 0.5 < want[1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    # float32 (what training uses) stays close
    np.testing.assert_allclose(ssim(pred.float(), target.float()).numpy(), want, atol=2e-5)


def test_ssim_same_padding_is_3dgs_loss_and_matches_valid_inside():
    a, b = _pairs()[1]
    x, y = _t(b)[None], _t(a)[None]
    same = ssim_map(x, y, padding="same")
    valid = ssim_map(x, y, padding="valid")
    assert same.shape == x.shape and valid.shape == (1, 3, x.shape[2] - 10, x.shape[3] - 10)
    # interior windows are identical; only the 5 px border differs (zero padding)
    torch.testing.assert_close(same[..., 5:-5, 5:-5], valid, rtol=0, atol=1e-12)
    # border pixels: a direct float64 evaluation of Wang et al.'s formula with the window cut
    # off at the image edge (zero padding), as 3DGS's F.conv2d(padding=5) does
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w2 = np.outer(g, g) / np.outer(g, g).sum()
    xp, yp = np.pad(b[..., 0], 5), np.pad(a[..., 0], 5)
    for r, c in [(0, 0), (2, 40), (x.shape[2] - 1, x.shape[3] - 3)]:
        px, py = xp[r : r + 11, c : c + 11], yp[r : r + 11, c : c + 11]
        mx, my = (w2 * px).sum(), (w2 * py).sum()
        vx, vy, cxy = (w2 * px * px).sum() - mx * mx, (w2 * py * py).sum() - my * my, (w2 * px * py).sum() - mx * my
        ref = (2 * mx * my + 1e-4) * (2 * cxy + 9e-4) / ((mx * mx + my * my + 1e-4) * (vx + vy + 9e-4))
        assert float(same[0, 0, r, c]) == pytest.approx(ref, abs=1e-12)
    assert float(ssim(x, x, padding="same")) == pytest.approx(1.0, abs=1e-12)
    # differentiable: the gradient of 1 - SSIM moves pred towards target
    p = x.clone().requires_grad_(True)
    (1 - ssim(p, y, padding="same")).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert float(ssim(x - 2e-3 * p.grad.sign(), y, padding="same")) > float(ssim(x, y, padding="same"))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_ssim_gradient_equals_the_direct_2d_window(padding):
    """The separable, fused SSIM against Wang et al.'s formula with one 2D 11x11 convolution per
    statistic (tests/ssim_reference.py, float64): values and gradients in both inputs, on a photo pair
    and a noisy copy, batched; float32 (what training uses) close to float64."""
    a, b = _pairs()[1]
    x = torch.stack([_t(b), _t(a) * 0.7]).requires_grad_(True)
    y = torch.stack([_t(a), _t(b)]).requires_grad_(True)
    ref = ssim_2d(x, y, padding)
    got = ssim(x, y, padding=padding)
    assert got.shape == (2,) and float((got - ref).detach().abs().max()) < 1e-12
    weights = torch.tensor([0.3, 1.7], dtype=torch.float64)
    g_got = torch.autograd.grad((got * weights).sum(), (x, y))
    g_ref = torch.autograd.grad((ref * weights).sum(), (x, y))
    for gg, gr in zip(g_got, g_ref):
        assert float(gr.abs().max()) > 0 and float((gg - gr).abs().max() / gr.abs().max()) < 1e-10
    f32 = ssim(x.detach().float(), y.detach().float(), padding=padding)
    assert float((f32.double() - ref.detach()).abs().max()) < 2e-5


def test_metric_input_errors():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ResplatError, match="differs"):
        psnr(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(ResplatError, match="padding"):
        ssim(x, x, padding="reflect")
    with pytest.raises(ResplatError, match="smaller than"):
        ssim(torch.rand(3, 8, 8), torch.rand(3, 8, 8))


def test_lpips_requires_weights():
    x = torch.rand(3, 32, 32)
    with pytest.raises(ResplatError, match="LPIPS needs weights"):
        lpips(x, x)
    with pytest.raises(ResplatError, match="not found"):
        lpips(x, x, "/nonexistent/lpips.pth")


def _save_lpips_package_layout(net: LPIPS, path):
    """Save ``net`` with the key names of the lpips package's whole-model state dict."""
    out = {"scaling_layer.shift": net.shift, "scaling_layer.scale": net.scale}
    taps = (0,) + tuple(t + 1 for t in net.taps)
    for k, v in net.state_dict().items():
        if k.startswith("features."):
            i = int(k.split(".")[1])
            s = next(j for j in range(5) if taps[j] <= i < taps[j + 1]) + 1
            out[f"net.slice{s}.{k[len('features.'):]}"] = v
        elif k.startswith("lins."):
            out[f"lin{k.split('.')[1]}.model.1.weight"] = v
    torch.save(out, path)


@pytest.mark.parametrize("variant", ["alex", "vgg"])
def test_lpips_loads_random_weights_and_is_a_distance(tmp_path, variant):
    torch.manual_seed(0)
    net = LPIPS(variant)
    with torch.no_grad():
        for lin in net.lins:
            lin.weight.abs_()  # LPIPS heads are non-negative
    path = tmp_path / f"lpips_{variant}.pth"
    _save_lpips_package_layout(net, path)
    size = 64 if variant == "alex" else 32  # VGG16's relu5_3 is at 1/16 resolution
    x, y = torch.rand(2, 3, size, size), torch.rand(2, 3, size, size)
    d = lpips(x, y, path)
    assert d.shape == (2,) and (d > 0).all()
    torch.testing.assert_close(lpips(y, x, path), d, rtol=1e-5, atol=0)  # symmetric
    assert torch.all(lpips(x, x, path) == 0)
    # the loaded network is exactly the saved one: compare with a direct float64 evaluation
    ref = net.double()(x.double(), y.double())
    torch.testing.assert_close(d.double(), ref, rtol=1e-4, atol=0)
    # safetensors with torchvision-style keys loads to the same distances
    from safetensors.torch import save_file

    st = tmp_path / "lpips.safetensors"
    save_file({k: v.float().contiguous() for k, v in net.state_dict().items()}, str(st))
    torch.testing.assert_close(lpips(x, y, st), d, rtol=1e-5, atol=0)


def test_lpips_rejects_incomplete_file(tmp_path):
    net = LPIPS("alex")
    state = {k: v for k, v in net.state_dict().items() if k != "lins.4.weight"}
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ResplatError, match="lins.4.weight is missing"):
        lpips(torch.rand(3, 64, 64), torch.rand(3, 64, 64), path)
