"""The heatmap head: soft-argmax decoding, its exact known-answer heatmaps, mirror symmetry, and a network built
on it that trains, exports and predicts like the regression heads."""

import numpy as np
import pytest
import torch

from facemark.train.model import create_model, heatmaps_for_points, soft_argmax
from facemark.layouts import FACE88, IBUG68


@pytest.mark.parametrize("grid", [8, 16, 20])
def test_decode_round_trips_known_points_exactly(grid):
    g = torch.Generator().manual_seed(grid)
    lo, hi = -1 + 1.01 / grid, 1 - 1.01 / grid  # within the reach of soft-argmax (border cell centres)
    points = (lo + (hi - lo) * torch.rand(4, 88, 2, generator=g)).double()
    points[0, 0] = torch.tensor([0.0, 0.0])  # a cell corner at the grid centre
    points[0, 1] = torch.tensor([(2 * 3 + 1) / grid - 1, (2 * 5 + 1) / grid - 1])  # exactly a cell centre
    decoded = soft_argmax(heatmaps_for_points(points, grid))
    assert torch.allclose(decoded, points, atol=1e-12, rtol=0)


def test_known_answer_heatmap_peaks_at_the_point():
    point = torch.tensor([[[0.3, -0.55]]], dtype=torch.float64)
    heat = heatmaps_for_points(point, 16)[0, 0]
    row, col = divmod(int(heat.argmax()), 16)
    cell = (point[0, 0] + 1) * 8 - 0.5  # continuous cell index of the point
    assert abs(col - cell[0].item()) < 1 and abs(row - cell[1].item()) < 1


def test_points_beyond_the_border_cell_centres_are_refused():
    with pytest.raises(ValueError, match="border"):
        heatmaps_for_points(torch.tensor([[[0.99, 0.0]]], dtype=torch.float64), 16)


def test_decode_is_mirror_symmetric():
    """Mirroring the heatmaps left-right mirrors the decoded x about the crop centre and keeps y."""
    heat = torch.randn(2, 5, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    direct, mirrored = soft_argmax(heat), soft_argmax(heat.flip(-1))
    assert torch.allclose(mirrored[..., 0], -direct[..., 0], atol=1e-12)
    assert torch.allclose(mirrored[..., 1], direct[..., 1], atol=1e-12)


def test_flat_heatmaps_put_every_point_at_the_centre():
    assert torch.allclose(soft_argmax(torch.zeros(1, 3, 16, 16)), torch.zeros(1, 3, 2), atol=1e-6)


@pytest.mark.parametrize("rho, shallow, scheme", [(0.8, False, FACE88), (1.0, True, IBUG68), (0.6, False, FACE88)])
def test_heatmap_network_shapes_and_reach(rho, shallow, scheme):
    model = create_model(alpha=0.25, rho=rho, shallow=shallow, head="heatmap", scheme=scheme).eval()
    size = model.config.input_size
    with torch.no_grad():
        y = model(torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (2, scheme.num_points, 2)
    grid = -(-size // 8)
    assert (y.abs() <= 1 - 1 / grid + 1e-6).all()  # soft-argmax stays within the border cells' centres
    # a fresh head starts with (nearly) flat heatmaps: every point near the crop centre
    assert y.abs().max() < 0.05


def test_heatmap_head_learns_a_fixed_target():
    """A few optimiser steps on one batch drive the decoded points to a target shape (gradients flow through the
    soft-argmax into the heatmaps and the backbone)."""
    torch.manual_seed(0)
    model = create_model(alpha=0.25, rho=0.4, head="heatmap", head_channels=16, scheme=IBUG68)
    x = torch.randn(4, 3, 64, 64)
    target = (torch.rand(1, 68, 2) * 1.2 - 0.6).expand(4, -1, -1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    errors = []
    for _ in range(60):
        error = (model(x) - target).abs().mean()
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
        errors.append(error.item())
    assert errors[-1] < 0.25 * errors[0]


def test_heatmap_network_exports_to_onnx(tmp_path):
    pytest.importorskip("onnx")
    from facemark.network import LandmarkNetwork
    from facemark.train.export import export_onnx, max_difference_px

    model = create_model(alpha=0.25, rho=0.8, head="heatmap", head_channels=16).eval()
    path = export_onnx(model, tmp_path / "heat.onnx")
    x = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert max_difference_px(model, LandmarkNetwork(path, threads=1), x) < 1e-3
