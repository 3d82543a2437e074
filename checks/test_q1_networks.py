"""Q1.1 un-normalising, Q1.2 the two networks: shapes, parameter counts, and the forward pass the definitions give."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cv_helpers.models import ConvNet, TwoLayerNet, count_parameters
from cv_helpers.transforms import MEAN, STD, unnormalize


@pytest.mark.task("Q1.1")
def test_unnormalize_undoes_the_normalisation():
    images = torch.rand(2, 3, 4, 4)
    normalised = (images - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    torch.testing.assert_close(unnormalize(normalised), images)


@pytest.mark.task("Q1.1")
def test_unnormalize_clamps_to_the_displayable_range():
    assert unnormalize(torch.full((3, 2, 2), 3.0)).max() == 1.0


@pytest.mark.task("Q1.2")
def test_two_layer_net_has_the_parameters_of_its_two_layers():
    assert count_parameters(TwoLayerNet(3 * 32 * 32, 64, 100)) == 3072 * 64 + 64 + 64 * 100 + 100


@pytest.mark.task("Q1.2")
def test_two_layer_net_computes_fc2_of_relu_of_fc1():
    torch.manual_seed(0)
    net, x = TwoLayerNet(3 * 32 * 32, 64, 100), torch.randn(4, 3, 32, 32)
    expected = F.linear(F.relu(F.linear(x.flatten(1), net.fc1.weight, net.fc1.bias)), net.fc2.weight, net.fc2.bias)
    torch.testing.assert_close(net(x), expected)


@pytest.mark.task("Q1.2")
def test_lenet_has_lenet5s_layers_and_f6_has_10164_parameters():
    net = ConvNet()
    assert count_parameters(net, "fc2") == 120 * 84 + 84
    assert (net.conv1.out_channels, net.conv2.out_channels, net.fc1.in_features) == (6, 16, 400)
    assert count_parameters(net) == 69_656


@pytest.mark.task("Q1.2")
def test_lenet_computes_relu_convolutions_with_average_pooling():
    torch.manual_seed(0)
    net, x = ConvNet(), torch.randn(4, 3, 32, 32)
    h = F.avg_pool2d(F.relu(F.conv2d(x, net.conv1.weight, net.conv1.bias)), 2)
    h = F.avg_pool2d(F.relu(F.conv2d(h, net.conv2.weight, net.conv2.bias)), 2).flatten(1)
    h = F.relu(F.linear(F.relu(F.linear(h, net.fc1.weight, net.fc1.bias)), net.fc2.weight, net.fc2.bias))
    torch.testing.assert_close(net(x), F.linear(h, net.fc3.weight, net.fc3.bias))
