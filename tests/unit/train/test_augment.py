import numpy as np
import torch

from facemark.train.augment import AugmentConfig, augment_batch, centre_view, random_geometry, warp_batch
from facemark.layouts import FACE88


def _context(n=2, c=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    crops = (torch.rand(n, c, c, 3, generator=g) * 255).to(torch.uint8)
    points = torch.rand(n, 88, 2, generator=g) * (c - 20) + 10
    return crops, points


def test_flip_is_equivariant_through_the_mirror_permutation():
    crops, points = _context()
    x = crops.permute(0, 3, 1, 2).float()
    eye = torch.eye(2).repeat(2, 1, 1)
    no_shift = torch.zeros(2, 2)
    plain, plain_pts = warp_batch(x, points, eye, no_shift, torch.zeros(2, dtype=torch.bool), 40, 40, FACE88)
    mirror = eye.clone()
    mirror[:, 0, 0] = -1
    flipped, flipped_pts = warp_batch(x, points, mirror, no_shift, torch.ones(2, dtype=torch.bool), 40, 40, FACE88)
    # the image is the mirror image ...
    assert torch.allclose(flipped, plain.flip(-1), atol=1e-4)
    # ... and the points are the mirrored points, renumbered so "left eye" is still the image-left eye
    expected = FACE88.flip_points(plain_pts.numpy(), width=40)
    assert np.allclose(flipped_pts.numpy(), expected, atol=1e-4)


def test_random_flip_keeps_left_eye_on_the_left():
    crops, points = _context(n=16)
    # a face-like layout: left-eye points on the left half, right-eye points on the right half
    points[:, 21:29, 0] = 15.0
    points[:, 29:37, 0] = 40.0
    g = torch.Generator().manual_seed(1)
    cfg = AugmentConfig(rotate_deg=0, shift=0, scale=0, flip=0.5)
    _, pts = augment_batch(crops, points, 40, 40, FACE88, cfg, g)
    assert (pts[:, 21:29, 0].mean(1) < pts[:, 29:37, 0].mean(1)).all()


def test_points_follow_the_pixels_under_random_geometry():
    """A bright dot in the context crop lands where the warped point says, for random similarities."""
    c, s = 64, 44
    crops = torch.zeros(8, c, c, 3, dtype=torch.uint8)
    points = torch.zeros(8, 88, 2)
    rng = np.random.default_rng(0)
    for i in range(8):
        x, y = rng.integers(24, 40, size=2)
        crops[i, y - 1:y + 2, x - 1:x + 2] = 255
        points[i, :] = torch.tensor([float(x), float(y)])
    g = torch.Generator().manual_seed(3)
    m, shift, flip = random_geometry(8, AugmentConfig(flip=0.5), s, g)
    out, pts = warp_batch(crops.permute(0, 3, 1, 2).float(), points, m, shift, flip, s, s, FACE88)
    ys, xs = torch.meshgrid(torch.arange(s).float(), torch.arange(s).float(), indexing="ij")
    for i in range(8):
        w = out[i, 0]
        found = torch.stack([(xs * w).sum(), (ys * w).sum()]) / w.sum()
        assert torch.allclose(found, pts[i, 10], atol=0.35)


def test_centre_view_is_the_undistorted_centre_and_augment_stays_in_range():
    crops, points = _context(n=3, c=56)
    x, pts = centre_view(crops, points, 40, 40, FACE88)
    expected = crops[:, 8:48, 8:48].permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(x, expected, atol=1e-4)
    assert torch.allclose(pts, points - 8)
    xa, _ = augment_batch(crops, points, 40, 32, FACE88, AugmentConfig(), torch.Generator().manual_seed(0))
    assert xa.shape == (3, 3, 32, 32) and xa.min() >= -1 and xa.max() <= 1


def test_same_seed_same_batch():
    crops, points = _context(n=4)
    a = augment_batch(crops, points, 40, 40, FACE88, AugmentConfig(), torch.Generator().manual_seed(5))
    b = augment_batch(crops, points, 40, 40, FACE88, AugmentConfig(), torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
