"""Architectures, parameter counts and the fine-tuning surgery."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cv_helpers.errors import ConfigError
from cv_helpers.finetune import adapt_for_finetuning, knn_accuracy, weight_change
from cv_helpers.models import (MODELS, ConvNet, ConvNetBN, FourLayerNet, Network, TwoLayerNet, build_model,
                               count_parameters, eval_mode, flattened_size, layer_table, model_name_of, size_kwargs)
from cv_helpers.workbench.presets import PRESETS


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


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("side", [32, 96])
def test_every_registered_network_keeps_the_model_contract(name, side):
    cls = MODELS[name]
    assert issubclass(cls, Network)
    net = build_model(name, num_classes=7, **size_kwargs(name, side))
    head, first_fc = getattr(net, cls.HEAD), getattr(net, cls.FIRST_FC)
    assert isinstance(head, torch.nn.Linear) and isinstance(first_fc, torch.nn.Linear) and head.out_features == 7
    x = torch.randn(2, 3, side, side)
    features = net.features(x)
    assert net(x).shape == (2, 7) and features.shape == (2, head.in_features)
    assert net.conv_features(x).flatten(1).shape[1] == first_fc.in_features == flattened_size(net, side)
    if cls.ANY_SIZE:                                     # global pooling: the 32 px network takes 96 px images
        assert build_model(name)(x).shape == (2, 100)


def test_eval_mode_restores_the_mode_the_network_had_even_after_an_error():
    net = ConvNetBN()
    with eval_mode(net):
        assert not net.training and not net.bn1.training
    assert net.training and net.bn1.training
    net.eval()
    with pytest.raises(RuntimeError), eval_mode(net):
        net.train()
        raise RuntimeError("inside")
    assert not net.training


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


# Each network written out with torch.nn.functional and the module's own weights: a changed pooling, activation,
# padding or layer order in a forward changes its output. Value: (reference (net, x) -> (logits, features),
# feature width, {pooling module: its type}).
def _mlp2(net, x):
    features = F.relu(_linear(net.fc1, x.flatten(1)))
    return _linear(net.fc2, features), features


def _mlp4(net, x):
    features = F.relu(_linear(net.fc3, F.relu(_linear(net.fc2, F.relu(_linear(net.fc1, x.flatten(1)))))))
    return _linear(net.fc4, features), features


def _lenet(net, x):
    x = F.avg_pool2d(F.relu(_conv(net.conv1, x, 0)), 2)
    x = F.avg_pool2d(F.relu(_conv(net.conv2, x, 0)), 2)
    features = F.relu(_linear(net.fc2, F.relu(_linear(net.fc1, x.flatten(1)))))
    return _linear(net.fc3, features), features


def _figure6(pool, padding):
    def reference(net, x):
        x = pool(F.relu(_bn(net.bn1, _conv(net.conv1, x, padding))), 2)
        x = pool(F.relu(_bn(net.bn2, _conv(net.conv2, x, padding))), 2)
        features = F.relu(_linear(net.fc1, x.flatten(1)))
        return _linear(net.fc2, features), features
    return reference


def _resnet5(net, x):
    def block(layers, x):
        conv, bn, _ = layers
        return F.relu(_bn(bn, _conv(conv, x, 1)))
    x = F.max_pool2d(block(net.conv1, x), 2)
    x = F.max_pool2d(block(net.conv2, x), 2)
    x = x + block(net.res3.block, x)
    x = F.max_pool2d(block(net.conv4, x), 2)
    x = x + block(net.res5.block, x)
    features = x.amax((2, 3))
    return _linear(net.fc, features), features


def _linear(layer, x):
    return F.linear(x, layer.weight, layer.bias)


def _conv(layer, x, padding):
    return F.conv2d(x, layer.weight, layer.bias, padding=padding)


def _bn(layer, x):
    return F.batch_norm(x, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0, layer.eps)


REFERENCES = {
    "mlp": (_mlp2, 64, {}),
    "convnet": (_lenet, 84, {"pool1": torch.nn.AvgPool2d, "pool2": torch.nn.AvgPool2d}),
    "mlp4": (_mlp4, 128, {}),
    "convnet-bn": (_figure6(F.avg_pool2d, 1), 512, {"pool": torch.nn.AvgPool2d}),
    "convnet-bn5-max": (_figure6(F.max_pool2d, 2), 512, {"pool": torch.nn.MaxPool2d}),
    "resconvnet5": (_resnet5, 384, {"pool": torch.nn.MaxPool2d}),
}


def test_every_registered_network_has_a_functional_reference():
    assert set(REFERENCES) == set(MODELS)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_each_network_computes_what_its_functional_reference_computes(name):
    reference, width, pools = REFERENCES[name]
    torch.manual_seed(0)
    net = build_model(name)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):        # statistics that are not the identity
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.normal_(module.weight)
    net.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits, features = reference(net, x)
        torch.testing.assert_close(net(x), logits)
        torch.testing.assert_close(net.features(x), features)
    assert features.shape == (3, width) and logits.shape == (3, 100)
    found = {n: type(m) for n, m in net.named_modules() if "Pool" in type(m).__name__}
    assert found == pools


def test_knn_accuracy_counts_the_neighbours_of_each_image_and_refuses_a_k_with_no_one_left_to_vote():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    apart = rng.normal(0, 0.1, (30, 4)) + labels[:, None] * 5.0          # three tight, distant clusters
    assert knn_accuracy(apart, labels, k=1) == knn_accuracy(apart, labels, k=15) == 100.0
    mixed = rng.normal(0, 1.0, (30, 4))                                  # no structure: near chance
    assert knn_accuracy(mixed, labels, k=5) < 70.0
    with pytest.raises(ConfigError, match="k-NN with k=29 on 30 images: choose 1 <= k < 29"):
        knn_accuracy(apart, labels, k=29)


def test_weight_change_is_the_distance_a_layer_moved_relative_to_its_norm():
    before = ConvNetBN()
    after = copy.deepcopy(before)
    assert weight_change(before, after, ("conv1", "conv2")) == {"conv1": 0.0, "conv2": 0.0}
    with torch.no_grad():
        after.conv2.weight.mul_(1.1)                       # every weight 10 % larger: moved by 10 % of the norm
    moved = weight_change(before, after, ("conv1", "conv2"))
    assert moved["conv1"] == 0.0 and moved["conv2"] == pytest.approx(10.0, rel=1e-4)
