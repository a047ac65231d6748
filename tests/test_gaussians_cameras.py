import math

import torch

from resplat.cameras import Cameras, K_from_fov, flip_yz, rigid_inverse
from resplat.gaussians import Gaussians, quat_to_rotmat, rotmat_to_quat


def _random_rigid(n, gen):
    q = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    T[:, :3, :3] = quat_to_rotmat(q)
    T[:, :3, 3] = torch.randn(n, 3, generator=gen, dtype=torch.float64) * 3
    return T


def test_rigid_inverse_matches_linalg():
    gen = torch.Generator().manual_seed(0)
    T = _random_rigid(16, gen)
    torch.testing.assert_close(rigid_inverse(T), torch.linalg.inv(T), rtol=0, atol=1e-12)


def test_opengl_round_trip_and_axes():
    gen = torch.Generator().manual_seed(1)
    c2w_gl = _random_rigid(5, gen)
    K = K_from_fov(math.radians(60), 64, 48, dtype=torch.float64)
    cams = Cameras.from_opengl_c2w(c2w_gl, K, 64, 48)
    torch.testing.assert_close(cams.opengl_c2w(), c2w_gl, rtol=0, atol=1e-12)
    # A point 2 m in front of a Blender camera (-z in its frame) is at +z = 2 in OpenCV.
    p_cam_gl = torch.tensor([0.3, 0.2, -2.0, 1.0], dtype=torch.float64)
    p_world = c2w_gl[0] @ p_cam_gl
    p_cv = cams.w2c[0] @ p_world
    torch.testing.assert_close(p_cv[:3], torch.tensor([0.3, -0.2, 2.0], dtype=torch.float64))
    torch.testing.assert_close(flip_yz(flip_yz(c2w_gl)), c2w_gl, rtol=0, atol=0)


def test_normalized_K_round_trip_and_resize_crop():
    K = torch.tensor([[500.0, 0, 320], [0, 480, 240], [0, 0, 1]], dtype=torch.float64)
    cams = Cameras(torch.eye(4, dtype=torch.float64), K, 640, 480)
    Kn = cams.normalized_K()
    assert Kn[0, 0, 2] == 0.5 and Kn[0, 1, 2] == 0.5
    back = Cameras.from_normalized_K(cams.w2c, Kn, 640, 480)
    torch.testing.assert_close(back.K, cams.K)
    half = cams.resized(320, 240)
    assert half.K[0, 0, 0] == 250 and half.K[0, 0, 2] == 160
    crop = cams.cropped(10, 20, 512, 448)
    assert crop.K[0, 0, 2] == 310 and crop.K[0, 1, 2] == 220


def test_rotmat_quat_round_trip():
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(1000, 4, generator=gen, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    torch.testing.assert_close(rotmat_to_quat(quat_to_rotmat(q)), q, rtol=0, atol=1e-10)


def test_gaussians_ops():
    gen = torch.Generator().manual_seed(3)
    n = 10
    g = Gaussians(torch.randn(n, 3, generator=gen), torch.randn(n, 4, generator=gen),
                  torch.randn(n, 3, generator=gen), torch.randn(n, generator=gen),
                  torch.randn(n, 16, 3, generator=gen))
    assert g.sh_degree == 3 and len(g) == n
    keep = g.opacities > 0.5
    assert len(g[keep]) == int(keep.sum())
    both = Gaussians.cat([g, g.with_sh_degree(0)])
    assert len(both) == 2 * n and both.sh_degree == 3
    assert torch.all(both.sh[n:, 1:] == 0)
    torch.testing.assert_close(g.scales, g.log_scales.exp())
    cov = g.covariances()
    R = g.rotation_matrices()
    torch.testing.assert_close(cov, R @ torch.diag_embed(g.scales**2) @ R.transpose(1, 2))
    act = Gaussians.from_activated(g.means, g.quats, g.scales, g.opacities, sh=g.sh)
    torch.testing.assert_close(act.logit_opacities, g.logit_opacities, atol=1e-5, rtol=1e-5)


def test_bad_camera_errors_name_the_camera():
    import pytest

    from resplat.errors import CameraError

    K = K_from_fov(math.radians(60), 64, 48).expand(3, 3, 3).clone()
    w2c = torch.eye(4).repeat(3, 1, 1)
    w2c[1, 0, 3] = float("nan")
    with pytest.raises(CameraError, match="camera 'b': pose or intrinsics are not finite"):
        Cameras(w2c, K, 64, 48, ["a", "b", "c"])
    w2c[1, 0, 3] = 0
    K[2, 1, 1] = -1
    with pytest.raises(CameraError, match="camera 'c': focal length must be positive"):
        Cameras(w2c, K, 64, 48, ["a", "b", "c"])
    assert len(Cameras(w2c[:2], K[:2], 64, 48, ["a", "b"])) == 2
