import numpy as np
import pytest
import torch

from facemark.train.model import ModelConfig, create_model, points_to_unit
from facemark.layouts import FACE88, IBUG68


@pytest.mark.parametrize("alpha,rho,shallow,head,scheme", [
    (0.25, 1.0, True, "flatten", FACE88),
    (0.5, 0.8, False, "flatten", FACE88),
    (0.3, 0.6, True, "gap", IBUG68),
    (0.75, 0.5, False, "gap", IBUG68),
])
def test_output_shape_for_alpha_rho_shallow_scheme(alpha, rho, shallow, head, scheme):
    model = create_model("mobilenet", alpha=alpha, rho=rho, shallow=shallow, head=head, scheme=scheme).eval()
    size = model.config.input_size
    assert size == round(160 * rho)
    with torch.no_grad():
        y = model(torch.zeros(2, 3, size, size))
    assert y.shape == (2, scheme.num_points, 2)
    assert model.scheme == scheme


def test_shallow_drops_five_blocks_and_alpha_scales_width():
    deep, shallow = create_model(alpha=0.5), create_model(alpha=0.5, shallow=True)
    assert len(deep.backbone) - len(shallow.backbone) == 5
    n = lambda m: sum(p.numel() for p in m.backbone.parameters())  # noqa: E731
    assert n(shallow) < n(deep)
    assert n(create_model(alpha=0.25)) < n(deep)


def test_unit_and_pixel_coordinates_are_inverse():
    model = create_model(alpha=0.25, rho=0.5)
    px = torch.tensor([[[0.0, 79.0], [-0.5, 79.5]]])
    assert torch.allclose(model.to_pixels(points_to_unit(px, 80)), px, atol=1e-4)
    # the crop's edges are -1 and 1
    assert torch.allclose(points_to_unit(torch.tensor([-0.5, 79.5]), 80), torch.tensor([-1.0, 1.0]))


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown architecture"):
        create_model("resnet")
    with pytest.raises(ValueError, match="unknown head"):
        create_model(head="transformer")
    assert ModelConfig().num_points == 88


@pytest.mark.parametrize("head", ["flatten", "heatmap"])
def test_flip_averaging_is_exactly_mirror_equivariant(head):
    """With flip=True, predicting a mirrored crop gives the mirror of the crop's prediction (by construction:
    both average the same two passes), and differs from the plain prediction."""
    from facemark.train.model import predict_crops
    from facemark.layouts import FACE88

    torch.manual_seed(0)
    net = create_model(alpha=0.25, rho=0.4, shallow=True, head=head, head_channels=16).eval()
    with torch.no_grad():  # live activations and a non-trivial head, so the output depends on the crop
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.uniform_(0.0, 0.5)
        last = net.head.heatmaps if head == "heatmap" else net.head[-1]
        last.weight.normal_(0, 0.05 if head == "flatten" else 2.0)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(3, 80, 80, 3), dtype=np.uint8)
    both = predict_crops(net, crops, flip=True)
    mirrored = predict_crops(net, np.ascontiguousarray(crops[:, :, ::-1]), flip=True)[:, list(FACE88.flip)]
    mirrored[..., 0] = 80 - 1 - mirrored[..., 0]
    np.testing.assert_allclose(mirrored, both, atol=1e-3)
    assert np.abs(predict_crops(net, crops) - both).max() > 1e-2
