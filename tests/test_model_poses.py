"""Pose normalisation to the middle view and the way back (resplat.model.poses), checked on the
real 1,000-splat fixture: rotated SH must give the same colour along the rotated direction, and
the inverse transform must undo the normalisation exactly (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from resplat.cameras import Cameras, K_from_fov, rigid_inverse
from resplat.errors import CameraError
from resplat.formats import read_splats
from resplat.gaussians import quat_to_rotmat
from resplat.model.poses import (
    gaussians_to_world,
    middle_view_transform,
    normalize_poses,
    normalized_intrinsics,
    rotate_sh,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from resplat.render.sh import sh_to_colors


def random_rigid(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    T[:, :3, :3] = quat_to_rotmat(q)
    T[:, :3, 3] = torch.randn(n, 3, generator=g, dtype=torch.float64) * 3
    return T


def test_normalize_poses_relative_to_middle_view():
    c2w = random_rigid(10, 0).reshape(2, 5, 4, 4)
    out = normalize_poses(c2w)
    eye = torch.eye(4, dtype=torch.float64)
    for b in range(2):
        torch.testing.assert_close(out[b, 2], eye)  # V // 2 = 2 becomes the identity
        for i in range(5):
            torch.testing.assert_close(out[b, i], torch.linalg.inv(c2w[b, 2]) @ c2w[b, i])
    # relative poses between views are unchanged
    torch.testing.assert_close(rigid_inverse(out[0, 0]) @ out[0, 4], rigid_inverse(c2w[0, 0]) @ c2w[0, 4])
    # even view counts: middle = V // 2 (index 1 of 2)
    torch.testing.assert_close(middle_view_transform(c2w[:, :2]), c2w[:, 1])
    bad = c2w.clone()
    bad[0, 2, :3, :3] *= 2
    with pytest.raises(CameraError, match="not rigid"):
        normalize_poses(bad)


def test_normalized_intrinsics_and_quaternion_order():
    cams = Cameras(torch.eye(4), K_from_fov(1.0, 64, 32), 64, 32)
    K = normalized_intrinsics(cams)[0]
    assert K[0, 2] == 0.5 and K[1, 2] == 0.5
    assert math.isclose(float(K[0, 0]), 0.5 / math.tan(0.5), rel_tol=1e-6)
    q = torch.tensor([[0.1, 0.2, 0.3, 0.9]])  # xyzw
    assert torch.equal(xyzw_to_wxyz(q), torch.tensor([[0.9, 0.1, 0.2, 0.3]]))
    assert torch.equal(wxyz_to_xyzw(xyzw_to_wxyz(q)), q)


def test_rotate_sh_keeps_colour_along_rotated_directions(train_ply):
    g = read_splats(train_ply).to(dtype=torch.float64)
    R = random_rigid(1, 3)[0, :3, :3]
    dirs = torch.nn.functional.normalize(torch.randn(len(g), 3, dtype=torch.float64), dim=-1)
    before = sh_to_colors(3, dirs, g.sh)
    after = sh_to_colors(3, dirs @ R.T, rotate_sh(g.sh, R))
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(rotate_sh(g.sh, R)[:, 0], g.sh[:, 0])  # DC unchanged


def test_gaussians_to_world_inverts_normalisation(train_ply):
    g = read_splats(train_ply).to(dtype=torch.float64)
    T = random_rigid(1, 4)[0]
    world = gaussians_to_world(g, T)
    R, t = T[:3, :3], T[:3, 3]
    torch.testing.assert_close(world.means, g.means @ R.T + t)
    torch.testing.assert_close(world.covariances(), R @ g.covariances() @ R.T)
    torch.testing.assert_close(world.log_scales, g.log_scales)
    back = gaussians_to_world(world, rigid_inverse(T))
    torch.testing.assert_close(back.means, g.means)
    torch.testing.assert_close(back.covariances(), g.covariances())
    torch.testing.assert_close(back.sh, g.sh, rtol=1e-9, atol=1e-9)
