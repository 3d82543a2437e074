"""The fast data path: uint8 images held as one tensor on the training device, augmented per batch.

Why: the per-image PIL pipeline spends far more time per image than a small network does, so on a 2-core
CPU the data loader, not the model, sets the pace. Here a batch is gathered with one index operation and
augmented with a handful of tensor ops, each with its own random parameters per image.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .transforms import MEAN, STD, Recipe

# torchvision's sharpness kernel (PIL's SMOOTH filter): centre weight 5, neighbours 1, sum 13.
_SMOOTH_KERNEL = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0


def _per_image(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Returns a (n,) bool mask, True with probability p."""
    return torch.rand(n, generator=generator) < p


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Returns clamp(factor * images + (1 - factor) * other) with factor (N,), as torchvision's _blend."""
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1.0 - factor) * other).clamp_(0.0, 1.0)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    """Returns (N, 1, H, W) luma with torchvision's weights."""
    r, g, b = images.unbind(dim=1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


class BatchAugment:
    """Applies a `Recipe` to a batch: uint8 (N, 3, H, W) -> float32 (N, 3, H, W) normalised to [-1, 1].

    Order as in `make_train_transform`: flips, rotation, sharpness, crop, colour jitter, normalise.
    """

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        r, n, device = self.recipe, images.shape[0], images.device
        x = images.float().div(255)

        def mask(p: float) -> torch.Tensor:
            return _per_image(n, p, generator).to(device).view(-1, 1, 1, 1)

        if r.hflip:
            x = torch.where(mask(r.hflip), x.flip(3), x)
        if r.vflip:
            x = torch.where(mask(r.vflip), x.flip(2), x)
        if r.rotation:
            x = self._rotate(x, _uniform(n, -r.rotation, r.rotation, generator).to(device))
        if r.sharpness_p:
            x = torch.where(mask(r.sharpness_p), self._sharpen(x, r.sharpness), x)
        if r.crop_padding:
            x = self._crop(x, r.crop_padding, generator)
        if r.brightness:
            x = _blend(x, torch.zeros_like(x), _uniform(n, 1 - r.brightness, 1 + r.brightness, generator).to(device))
        if r.contrast:
            means = _grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
            x = _blend(x, means.expand_as(x), _uniform(n, 1 - r.contrast, 1 + r.contrast, generator).to(device))
        if r.saturation:
            x = _blend(x, _grayscale(x).expand_as(x), _uniform(n, 1 - r.saturation, 1 + r.saturation, generator)
                       .to(device))
        return normalize_batch(x)

    @staticmethod
    def _rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
        """Rotates each image about its centre by its own angle; nearest neighbour, zero fill."""
        radians = degrees * (math.pi / 180.0)
        cos, sin = radians.cos(), radians.sin()
        zeros = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)

    @staticmethod
    def _sharpen(x: torch.Tensor, factor: float) -> torch.Tensor:
        """Returns torchvision's adjust_sharpness: blend with a smoothed copy, borders untouched."""
        kernel = _SMOOTH_KERNEL.to(x.device).expand(3, 1, 3, 3)
        smooth = F.conv2d(x, kernel, groups=3)
        blurred = x.clone()
        blurred[:, :, 1:-1, 1:-1] = smooth
        return (factor * x + (1.0 - factor) * blurred).clamp_(0.0, 1.0)

    @staticmethod
    def _crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
        """Zero-pads by `padding` and takes a random window of the input size per image."""
        n, _, h, w = x.shape
        padded = F.pad(x, (padding, padding, padding, padding))
        top = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        left = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        rows = (top[:, None] + torch.arange(h, device=x.device))[:, :, None]      # (N, H, 1)
        cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, :]     # (N, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        return padded[batch, :, rows, cols].permute(0, 3, 1, 2)                   # (N, H, W, C) -> NCHW


def normalize_batch(x: torch.Tensor) -> torch.Tensor:
    """Returns (x - mean) / std for x in [0, 1], (N, 3, H, W); same arithmetic as T.Normalize."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


class FastLoader:
    """Iterates (images, labels) batches from arrays kept on `device`.

    images: (N, H, W, 3) uint8 array; labels: (N,) int64. Yields float32 (B, 3, H, W) and int64 (B,).
    With `shuffle`, each epoch's order and augmentation come from a generator seeded by (seed, epoch), so an
    epoch is the same whether or not the run was interrupted before it.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, batch_size: int,
                 shuffle: bool = False, recipe: Recipe | None = None, device: torch.device | str = "cpu",
                 seed: int = 0, drop_last: bool = False, classes: list[str] | None = None) -> None:
        images = torch.as_tensor(images)
        self.images = images.permute(0, 3, 1, 2).contiguous().to(device)     # (N, 3, H, W) uint8
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment = BatchAugment(recipe or Recipe())
        self.seed, self.epoch, self.classes = seed, 0, classes

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Fixes the shuffling and augmentation of the next pass to those of `epoch`."""
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        n = self.num_samples
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        order = order.to(self.images.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.augment(self.images[index], generator), self.labels[index]
