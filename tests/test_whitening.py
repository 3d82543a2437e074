"""The whitened first layer decorrelates patches, fills only the filters it has, and refuses nets it cannot fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cv_helpers.errors import ConfigError
from cv_helpers.models import build_model
from cv_helpers.train import TrainConfig
from cv_helpers.whitening import patch_whitening_filters, whiten_first_conv
from cv_helpers.workbench.experiment import build_network


def _smooth_images(n: int, side: int = 16, seed: int = 0) -> np.ndarray:
    """Returns (n, side, side, 3) uint8 images whose neighbouring pixels and channels are strongly correlated."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, side // 4, side // 4, 1)).repeat(4, 1).repeat(4, 2)
    noise = rng.integers(-20, 21, (n, side, side, 3))
    return np.clip(coarse + noise, 0, 255).astype(np.uint8)


def _normalised(images: np.ndarray) -> torch.Tensor:
    """Returns uint8 images (N, H, W, 3) as float64 (N, 3, H, W) in [-1, 1], as the training batches are."""
    return torch.as_tensor(images).permute(0, 3, 1, 2).double().div(255).sub(0.5).div(0.5)


def _responses(filters: torch.Tensor, images: np.ndarray) -> torch.Tensor:
    """Returns the filter responses (pixels, filters) of the normalised images."""
    return torch.nn.functional.conv2d(_normalised(images), filters.double()).permute(0, 2, 3, 1).flatten(0, 2)


def test_whitening_filters_give_uncorrelated_unit_variance_responses():
    images = _smooth_images(200)
    filters = patch_whitening_filters(_normalised(images).float(), kernel_size=3, eps=1e-9)
    assert filters.shape == (54, 3, 3, 3)
    assert torch.equal(filters[27:], -filters[:27])
    responses = _responses(filters[:27], images)
    covariance = responses.T @ responses / len(responses)
    assert torch.allclose(covariance, torch.eye(27, dtype=torch.float64), atol=2e-3)
    raw = _responses(torch.eye(27).view(27, 3, 3, 3), images)     # the patches themselves: far from white
    assert (raw.T @ raw / len(raw) - torch.eye(27, dtype=torch.float64)).abs().max() > 0.5


def test_whitening_sets_the_first_filters_and_keeps_the_others():
    torch.manual_seed(0)
    model = build_model("resconvnet5", widths=(64, 32, 32))
    before = model.conv1[0].weight.detach().clone()
    conv = whiten_first_conv(model, _smooth_images(50, side=32))
    assert conv is model.conv1[0] and conv.weight.requires_grad
    assert not torch.allclose(conv.weight[:54], before[:54]) and torch.equal(conv.weight[54:], before[54:])


def test_a_net_whose_first_layer_is_too_narrow_is_refused():
    with pytest.raises(ConfigError, match="at least 150 filters .* ConvNet has 6; use resconvnet5"):
        whiten_first_conv(build_model("convnet"), _smooth_images(4, side=32))


def test_build_network_whitens_only_when_asked_and_fine_tunings_cannot():
    config = TrainConfig(model="resconvnet5", model_kwargs={"widths": [64, 32, 32]}, whitened_init=True)
    images = _smooth_images(20, side=32)
    torch.manual_seed(0)
    whitened, _ = build_network(config, 10, 32, images)
    torch.manual_seed(0)
    plain, _ = build_network(TrainConfig(model="resconvnet5", model_kwargs={"widths": [64, 32, 32]}), 10, 32, images)
    assert not torch.equal(whitened.conv1[0].weight, plain.conv1[0].weight)
    assert torch.equal(whitened.conv4[0].weight, plain.conv4[0].weight)
    with pytest.raises(ConfigError, match="whitened_init needs the training images"):
        build_network(config, 10, 32)
    with pytest.raises(ConfigError, match="a fine-tuning keeps its pretrained conv1"):
        TrainConfig(model="resconvnet5", init_from="q3-best", whitened_init=True).validate()
