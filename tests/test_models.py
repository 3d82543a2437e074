"""Architectures, parameter counts and the fine-tuning surgery."""
from __future__ import annotations

import pytest
import torch

from cv_helpers.errors import ConfigError
from cv_helpers.models import (MODELS, ConvNet, ConvNetBN, FourLayerNet, ResConvNet5, TwoLayerNet,
                               adapt_for_finetuning, build_model, count_parameters, layer_table, model_name_of)
from cv_helpers.presets import PRESETS


def test_f6_of_lenet_has_10164_parameters():
    assert count_parameters(ConvNet(), "fc2") == 120 * 84 + 84 == 10_164


def test_lenet_layer_sizes_match_figure_2():
    net = ConvNet()
    assert (net.conv1.in_channels, net.conv1.out_channels, net.conv1.kernel_size) == (3, 6, (5, 5))
    assert (net.fc1.in_features, net.fc1.out_features, net.fc3.out_features) == (400, 120, 100)
    assert isinstance(net.pool1, torch.nn.AvgPool2d)
    assert count_parameters(net) == 456 + 2416 + 48120 + 10164 + 8500


def test_two_layer_net_keeps_the_skeleton_layer_names():
    net = TwoLayerNet(3 * 32 * 32, 64, 100)
    assert count_parameters(net, "fc1") == 3072 * 64 + 64 and count_parameters(net, "fc2") == 64 * 100 + 100


def test_figure_5_and_6_nets():
    mlp = FourLayerNet()
    assert [m.out_features for m in (mlp.fc1, mlp.fc2, mlp.fc3, mlp.fc4)] == [128, 128, 128, 100]
    conv = ConvNetBN()
    assert conv.fc1.in_features == 8192 and conv.fc1.out_features == 512
    assert [name for name, _ in conv.named_children()].count("pool") == 1


@pytest.mark.parametrize("net, side", [(TwoLayerNet(), 32), (FourLayerNet(), 32), (ConvNet(), 32),
                                        (ConvNetBN(), 32), (ResConvNet5(), 32), (ResConvNet5(), 96)])
def test_forward_gives_logits_and_features(net, side):
    x = torch.randn(5, 3, side, side)
    assert net(x).shape == (5, 100)
    assert net.features(x).shape[0] == 5


def test_finetuning_surgery_for_96px_figure_6():
    net = ConvNetBN()
    conv_weights = net.conv1.weight.clone()
    adapt_for_finetuning(net, num_classes=5, image_size=96)
    assert net.fc1.in_features == 73_728 and net.fc2.out_features == 5
    assert torch.equal(net.conv1.weight, conv_weights)
    assert net(torch.randn(2, 3, 96, 96)).shape == (2, 5)


def test_finetuning_surgery_for_lenet_and_mlp():
    lenet = adapt_for_finetuning(ConvNet(), 5, 96)
    assert lenet.fc1.in_features == 16 * 21 * 21 and lenet.fc3.out_features == 5
    mlp = adapt_for_finetuning(TwoLayerNet(), 5, 96)
    assert mlp.fc1.in_features == 3 * 96 * 96 and mlp(torch.randn(1, 3, 96, 96)).shape == (1, 5)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_network_keeps_the_course_rule_of_at_most_five_convolutions(name):
    # the assignment's nets have two; the course allows at most three more
    convolutions = [m for m in build_model(name).modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) <= 5


def test_q3_net_has_five_convolutions_two_shortcuts_and_fits_any_input_size():
    net = build_model("resconvnet5", **PRESETS["q3-best"].model_kwargs)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 5
    x = torch.randn(2, 192, 8, 8)
    net.eval()
    assert torch.allclose(net.res3(x), x + net.res3.block(x))          # identity shortcut
    assert net.features(torch.randn(2, 3, 32, 32)).shape == (2, 384)
    head = net.fc
    adapt_for_finetuning(net, num_classes=5, image_size=96)
    assert net.fc is not head and (net.fc.in_features, net.fc.out_features) == (384, 5)
    assert net(torch.randn(2, 3, 96, 96)).shape == (2, 5)


def test_layer_table_lists_layers_with_weights():
    rows = [(name, count) for name, _, _, count in layer_table(ConvNet()) if count]
    assert [name for name, _ in rows] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert dict(rows)["fc2"] == 10_164


def test_layer_table_shows_the_shape_arithmetic_of_lenet_and_of_the_figure_6_net():
    shapes = [(name, shape) for name, _, shape, _ in layer_table(ConvNet())]
    assert shapes[:4] == [("conv1", "6 x 28 x 28"), ("pool1", "6 x 14 x 14"), ("conv2", "16 x 10 x 10"),
                          ("pool2", "16 x 5 x 5")] and ("fc1", "120") in shapes            # 16 * 5 * 5 = 400 inputs
    figure6 = layer_table(ConvNetBN())
    pools = [shape for name, _, shape, _ in figure6 if name == "pool"]
    assert pools == ["64 x 16 x 16", "128 x 8 x 8"]                     # one module, applied twice: 128 * 8 * 8
    assert sum(count for *_, count in figure6) == count_parameters(ConvNetBN())


def test_unknown_model_and_layer_are_refused_with_choices():
    with pytest.raises(ConfigError, match="choose one of mlp, convnet, mlp4, convnet-bn, convnet-bn5-max, resconvnet5"):
        build_model("resnet")
    with pytest.raises(ConfigError, match="has no layer 'fc9'"):
        count_parameters(ConvNet(), "fc9")


def test_the_reports_dropped_figure_6_alternative_has_5x5_kernels_max_pooling_and_the_same_shapes():
    alternative, figure6 = build_model("convnet-bn5-max"), ConvNetBN()
    assert alternative.conv1.kernel_size == (5, 5) and type(alternative.pool).__name__ == "MaxPool2d"
    assert [shape for *_, shape, _ in layer_table(alternative)] == [shape for *_, shape, _ in layer_table(figure6)]
    extra = (5 * 5 - 3 * 3) * (3 * 64 + 64 * 128)                          # the larger kernels' extra weights
    assert count_parameters(alternative) - count_parameters(figure6) == extra
    assert model_name_of(alternative) == "convnet-bn5-max"
