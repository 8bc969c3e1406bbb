"""Models build for any input shape and class count and keep their contract."""

import pytest
import torch

from losslab.models.cnn import SmallCNN
from losslab.models.mlp import MLP
from losslab.models.resnet import ResNet18

SHAPES = [(1, 8, 8), (3, 32, 32), (1, 28, 28), (3, 5, 7)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls", [MLP, SmallCNN, ResNet18])
def test_any_image_shape_and_class_count(cls, shape):
    model = cls(input_shape=shape, num_classes=7, width=8).eval()
    x = torch.randn(3, *shape)
    logits = model(x)
    assert logits.shape == (3, 7)
    torch.testing.assert_close(model.head(model.forward_features(x)), logits)
    assert model.forward_features(x).shape == (3, model.feature_dim)


def test_mlp_on_vectors_and_options():
    model = MLP(input_shape=[10], num_classes=3, width=4, depth=3, activation="tanh", dropout=0.1)
    assert model(torch.randn(2, 10)).shape == (2, 3)
    linear = MLP(input_shape=[10], num_classes=3, depth=0)
    assert sum(p.numel() for p in linear.parameters()) == 10 * 3 + 3


def test_resnet18_has_cifar_stem():
    model = ResNet18(input_shape=(3, 32, 32), num_classes=10)
    stem = model.features[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 11_300_000


@pytest.mark.parametrize("cls", [SmallCNN, ResNet18])
def test_image_models_reject_vectors(cls):
    with pytest.raises(ValueError, match=r"needs image inputs .* input_shape=\[16\]"):
        cls(input_shape=[16], num_classes=3)


def test_bad_activation_lists_choices():
    with pytest.raises(ValueError, match="activation='swish'.*relu"):
        MLP(input_shape=[4], num_classes=2, activation="swish")


def test_auto_model_follows_the_input_shape():
    from losslab.models.auto import by_input_shape

    image = by_input_shape((3, 32, 32), 10, image={"width": 8})
    assert isinstance(image, ResNet18)
    tabular = by_input_shape([16], 26, vector={"width": 12, "depth": 2, "activation": "tanh"})
    assert isinstance(tabular, MLP) and tabular(torch.randn(4, 16)).shape == (4, 26)
    tanh = [m for m in tabular.modules() if isinstance(m, torch.nn.Tanh)]
    linear = [m for m in tabular.modules() if isinstance(m, torch.nn.Linear)]
    assert len(tanh) == 2 and [m.out_features for m in linear] == [12, 12, 26]
    with pytest.raises(ValueError, match=r"model=auto needs .* input_shape=\[4, 4\]"):
        by_input_shape((4, 4), 3)
