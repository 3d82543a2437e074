"""The assignment's networks, the improved nets of the 2023 reference report's Figures 5 and 6, the Q3 net, parameter
counting, and the fine-tuning surgery that moves a CIFAR-100 network to another input size and class count.

Every network is a `Network`: the contract below is what fine-tuning, feature extraction and the registry rely on.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError


class Network(nn.Module):
    """What every network of the workbook provides.

    - `conv_features(x)`: images (N, 3, H, W) -> the map the first fully connected layer flattens (the images
      themselves for the MLPs; (N, C, 1, 1) after global pooling);
    - `features(x)`: images -> (N, D), the penultimate activations (t-SNE, k-NN, linear probes);
    - `forward(x)`: images -> logits (N, classes), the layer named `HEAD` applied to `features(x)`.

    Class attributes: `HEAD` names the final layer (a new one replaces it for another class count), `FIRST_FC` the
    first fully connected layer (resized for another image size; the head itself after global pooling),
    `FLAT_INPUT` says whether the constructor takes a flat `input_size` (3 * H * W, the MLPs) or an `image_size`
    (H = W, the conv nets), and `ANY_SIZE` whether one network classifies images of any size (global pooling).
    Every constructor takes `num_classes` and its size argument as keywords.
    """

    HEAD: str
    FIRST_FC: str
    FLAT_INPUT: bool
    ANY_SIZE: bool = False

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.HEAD)(self.features(x))


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Puts `net` in evaluation mode (BatchNorm running statistics, no dropout) for a `with` block and restores
    the mode it had afterwards, also when the block raises."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


class TwoLayerNet(Network):
    """The assignment's MLP: x (N, 3, H, W) -> flatten -> fc1 -> ReLU -> fc2 -> logits (N, num_classes)."""

    HEAD, FIRST_FC, FLAT_INPUT = "fc2", "fc1", True

    def __init__(self, input_size: int = 3 * 32 * 32, hidden_size: int = 64, num_classes: int = 100) -> None:
        super().__init__()
        # TODO(Q1.2): create fc1 (input_size -> hidden_size) and fc2 (hidden_size -> num_classes)
        # BEGIN SOLUTION
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_classes)
        # END SOLUTION

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # TODO(Q1.2): flatten x (N, 3, H, W) and return ReLU(fc1(x)), (N, hidden_size)
        # BEGIN SOLUTION
        return F.relu(self.fc1(x.flatten(1)))
        # END SOLUTION



class FourLayerNet(Network):
    """MLP-4, the 2023 reference report's Figure 5 MLP: fc1 (input -> 128), fc2, fc3 (128 -> 128), fc4 (128 ->
    classes), ReLU between."""

    HEAD, FIRST_FC, FLAT_INPUT = "fc4", "fc1", True

    def __init__(self, input_size: int = 3 * 32 * 32, hidden_size: int = 128, num_classes: int = 100) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, hidden_size)
        self.fc4 = nn.Linear(hidden_size, num_classes)

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x.flatten(1)))
        return F.relu(self.fc3(F.relu(self.fc2(x))))



class ConvNet(Network):
    """The 2023 reference report's Figure 2: LeNet-5 with ReLU and average pooling.

    (N, 3, 32, 32) -> conv1 5x5 (6) -> pool -> conv2 5x5 (16) -> pool -> fc1 400->120 -> fc2 120->84 -> fc3 84->100.
    """

    HEAD, FIRST_FC, FLAT_INPUT = "fc3", "fc1", False

    def __init__(self, num_classes: int = 100, image_size: int = 32) -> None:
        super().__init__()
        # TODO(Q1.2): create LeNet-5's layers: conv1, pool1, conv2, pool2 (average pooling), fc1, fc2, fc3
        # BEGIN SOLUTION
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)
        self.pool1 = nn.AvgPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.pool2 = nn.AvgPool2d(2, 2)
        side = ((image_size - 4) // 2 - 4) // 2   # 32 -> conv 28 -> pool 14 -> conv 10 -> pool 5
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        # END SOLUTION

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        # TODO(Q1.2): conv1 -> ReLU -> pool1 -> conv2 -> ReLU -> pool2; return the (N, 16, 5, 5) feature maps
        # BEGIN SOLUTION
        x = self.pool1(F.relu(self.conv1(x)))
        return self.pool2(F.relu(self.conv2(x)))
        # END SOLUTION

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # TODO(Q1.2): flatten the feature maps, then fc1 -> ReLU -> fc2 -> ReLU; return (N, 84)
        # BEGIN SOLUTION
        return F.relu(self.fc2(F.relu(self.fc1(self.conv_features(x).flatten(1)))))
        # END SOLUTION



class ConvNetBN(Network):
    """ConvNet-BN, the 2023 reference report's Figure 6 net: two 3x3 conv + BatchNorm + ReLU blocks, one AvgPool2d
    module applied after each.

    (N, 3, 32, 32) -> 64 ch -> pool -> 128 ch -> pool (128 x 8 x 8 = 8192) -> fc1 512 -> fc2 classes.
    At 96x96 input fc1 takes 128 x 24 x 24 = 73,728 inputs.
    """

    HEAD, FIRST_FC, FLAT_INPUT = "fc2", "fc1", False

    def __init__(self, num_classes: int = 100, image_size: int = 32, kernel_size: int = 3,
                 pooling: type[nn.Module] = nn.AvgPool2d) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=kernel_size, padding=kernel_size // 2)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 128, kernel_size=kernel_size, padding=kernel_size // 2)
        self.bn2 = nn.BatchNorm2d(128)
        self.pool = pooling(2, 2)
        self.fc1 = nn.Linear(128 * (image_size // 4) ** 2, 512)
        self.fc2 = nn.Linear(512, num_classes)

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        return self.pool(F.relu(self.bn2(self.conv2(x))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc1(self.conv_features(x).flatten(1)))



class ConvNetBN5Max(ConvNetBN):
    """The alternative the 2023 reference report tried and dropped for its Figure 6 net: the same two conv + BatchNorm
    + ReLU blocks with 5x5 kernels and max-pooling instead of average pooling (same shapes: 128 x 8 x 8 -> fc1 512)."""

    def __init__(self, num_classes: int = 100, image_size: int = 32) -> None:
        super().__init__(num_classes, image_size, kernel_size=5, pooling=nn.MaxPool2d)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (no bias: BatchNorm follows) + BatchNorm + ReLU; keeps the spatial size."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """x -> x + conv_bn_relu(x): one convolution with an identity shortcut, (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = conv_bn_relu(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResConvNet5(Network):
    """The Q3 net: five 3x3 conv + BatchNorm + ReLU layers (the assignment's two plus the three extra the course
    allows), two of them with identity shortcuts, max-pooling between stages and global max-pooling at the end.

    (N, 3, 32, 32) -> conv1 w1 -> pool 16 -> conv2 w2 -> pool 8 -> res3 w2 -> conv4 w3 -> pool 4 -> res5 w3
    -> global max -> (N, w3) -> fc classes. Global pooling makes it input-size agnostic: at 96x96 nothing but
    the head changes (`image_size` is accepted for a uniform constructor).
    """

    HEAD, FIRST_FC, FLAT_INPUT, ANY_SIZE = "fc", "fc", False, True

    def __init__(self, num_classes: int = 100, image_size: int = 32, widths: tuple[int, int, int] = (64, 192, 384)
                 ) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.conv1, self.conv2, self.res3 = conv_bn_relu(3, w1), conv_bn_relu(w1, w2), Residual(w2)
        self.conv4, self.res5 = conv_bn_relu(w2, w3), Residual(w3)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(w3, num_classes)

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv1(x))
        x = self.res3(self.pool(self.conv2(x)))
        x = self.res5(self.pool(self.conv4(x)))
        return F.adaptive_max_pool2d(x, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_features(x).flatten(1)



MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": TwoLayerNet,
    "convnet": ConvNet,
    "mlp4": FourLayerNet,
    "convnet-bn": ConvNetBN,
    "convnet-bn5-max": ConvNetBN5Max,
    "resconvnet5": ResConvNet5,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """Returns a new network by registry name (see MODELS) with its keyword arguments."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


def model_name_of(model: nn.Module) -> str:
    """Returns the registry name of a network's class."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ConfigError(f"{type(model).__name__} is not a registered model; use one of {', '.join(MODELS)}")


def count_parameters(model: nn.Module, layer: str | None = None) -> int:
    """Returns the number of trainable parameters of the model, or of one named layer (e.g. 'fc2')."""
    module = model if layer is None else dict(model.named_modules()).get(layer)
    if module is None:
        names = [n for n, _ in model.named_modules() if n]
        raise ConfigError(f"{type(model).__name__} has no layer {layer!r}; layers: {', '.join(names)}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def layer_table(model: nn.Module, image_size: int = 32) -> list[tuple[str, str, str, int]]:
    """Returns (layer name, layer, output shape of one image, trainable parameters) for every call of a leaf layer
    in forward order, measured on one (1, 3, image_size, image_size) image; a layer applied twice (ConvNet-BN's
    single pooling module) appears twice, its parameters counted on its first row only."""
    rows, seen, hooks = [], set(), []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            def record(module, inputs, output, name=name):
                rows.append((name, repr(module), " x ".join(map(str, output.shape[1:])),
                             0 if name in seen else count_parameters(module)))
                seen.add(name)
            hooks.append(module.register_forward_hook(record))
    try:
        with eval_mode(model):
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def size_kwargs(model_name: str, image_size: int) -> dict[str, int]:
    """Returns the constructor argument that fits network `model_name` to (3, image_size, image_size) images."""
    if MODELS[model_name].FLAT_INPUT:
        return {"input_size": 3 * image_size ** 2}
    return {"image_size": image_size}


def has_hidden_size(model_name: str) -> bool:
    """Returns True for the networks with a `hidden_size` argument (the MLPs)."""
    return "hidden_size" in inspect.signature(MODELS[model_name]).parameters


def flattened_size(model: nn.Module, image_size: int) -> int:
    """Returns how many inputs fc1 sees for one (3, image_size, image_size) image."""
    with eval_mode(model), torch.no_grad():
        return model.conv_features(torch.zeros(1, 3, image_size, image_size)).flatten(1).shape[1]
