"""Patch whitening: a first convolution that starts as the decorrelating (PCA-whitening) map of image patches.

The speed-run nets of CIFAR (airbench and its kin) start from a first layer whose filters are the eigenvectors of
the covariance of the training images' patches, each divided by the square root of its eigenvalue, in pairs of
opposite sign (a ReLU keeps both halves of each component). The layers after it then see decorrelated inputs of
equal variance from the first step, which is what a few epochs of training would otherwise spend time learning.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .errors import ConfigError
from .fast_loader import normalize_batch

WHITENING_IMAGES = 5000   # the first training images the patch covariance is estimated from
EPSILON = 5e-4            # added to the eigenvalues: directions of lower variance than this are not amplified


def patch_whitening_filters(images: torch.Tensor, kernel_size: int, eps: float = EPSILON) -> torch.Tensor:
    """Returns (2 * C * k * k, C, k, k) filters from normalised images (N, C, H, W): the eigenvectors of the
    k x k patches' (uncentred) covariance scaled by 1 / sqrt(eigenvalue + eps), each followed by its negative,
    largest eigenvalue first."""
    channels = images.shape[1]
    patches = images.double().unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)   # (N, C, H', W', k, k)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels * kernel_size ** 2)
    eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
    order = eigenvalues.argsort(descending=True)
    filters = (eigenvectors[:, order].T / (eigenvalues[order] + eps).sqrt().unsqueeze(1))
    filters = filters.reshape(-1, channels, kernel_size, kernel_size)
    return torch.cat([filters, -filters]).float()


def whiten_first_conv(model: nn.Module, images: np.ndarray) -> nn.Conv2d:
    """Sets the first convolution of `model` to the patch-whitening filters of uint8 images (N, H, W, 3) (its
    remaining filters keep their random start); returns that convolution. It stays trainable."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ConfigError(f"{type(model).__name__} has no convolution to whiten; whitened_init needs a conv net")
    kernel_size = conv.kernel_size[0]
    needed = 2 * conv.in_channels * kernel_size ** 2
    if conv.out_channels < needed:
        raise ConfigError(f"whitened_init needs at least {needed} filters in the first convolution "
                          f"({kernel_size}x{kernel_size} over {conv.in_channels} channels), "
                          f"{type(model).__name__} has {conv.out_channels}; use resconvnet5")
    batch = torch.as_tensor(images[:WHITENING_IMAGES]).permute(0, 3, 1, 2).float().div_(255)
    with torch.no_grad():
        conv.weight[:needed] = patch_whitening_filters(normalize_batch(batch), kernel_size).to(conv.weight)
    return conv
