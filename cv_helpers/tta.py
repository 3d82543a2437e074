"""Test-time augmentation: class probabilities averaged over an image's mirror image and shifted copies."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import autocast, model_device


def log_probabilities(net: nn.Module, images: torch.Tensor, tta_flip: bool, tta_translate: int = 0) -> torch.Tensor:
    """Returns log class probabilities (N, classes) of images (N, 3, H, W): with `tta_flip`, of the mean over the
    images and their mirror images; with `tta_translate` = t as well, of the mean of that (weight 1/2) and of the
    same for the images shifted t pixels diagonally either way (reflect padding, 1/4 each)."""
    with autocast(model_device(net)):
        log_probs = _mirror_averaged(net, images, tta_flip)
        if tta_translate:
            height, width, t = images.shape[-2], images.shape[-1], tta_translate
            padded = F.pad(images, (t, t, t, t), mode="reflect")
            shifted = [padded[..., :height, :width], padded[..., 2 * t:, 2 * t:]]
            views = [log_probs + math.log(1 / 2)]
            views += [_mirror_averaged(net, view.contiguous(), tta_flip) + math.log(1 / 4) for view in shifted]
            log_probs = torch.logsumexp(torch.stack(views), 0)
    return log_probs


def _mirror_averaged(net: nn.Module, images: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    """Returns log class probabilities (N, classes); with `tta_flip`, of the mean over images (N, 3, H, W) and
    their horizontal mirror images."""
    log_probs = net(images).float().log_softmax(1)
    if tta_flip:
        mirrored = net(images.flip(-1)).float().log_softmax(1)
        log_probs = torch.logaddexp(log_probs, mirrored) - math.log(2)
    return log_probs
