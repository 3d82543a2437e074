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

    The geometric steps (flips, rotation, crop with zero padding) are composed into one source-pixel index per
    output pixel and applied with a single gather on the uint8 batch: one pass over the pixels instead of one per
    step. Then sharpness (only on the images drawn for it), colour jitter and normalisation, in float.
    Order of the random steps as in `make_train_transform`; the one difference from torchvision is that
    sharpening follows the crop instead of preceding it, which only changes the pixels beside a padded border.
    """

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        r, n, device = self.recipe, images.shape[0], images.device
        if r.hflip or r.vflip or r.rotation or r.crop_padding:
            images = self._geometric(images, generator)
        x = images.float().div_(255)
        if r.sharpness_p:
            chosen = torch.nonzero(_per_image(n, r.sharpness_p, generator)).flatten().to(device)
            x[chosen] = self._sharpen(x[chosen], r.sharpness)
        if r.brightness:
            x = _blend(x, torch.zeros_like(x), _uniform(n, 1 - r.brightness, 1 + r.brightness, generator).to(device))
        if r.contrast:
            means = _grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
            x = _blend(x, means.expand_as(x), _uniform(n, 1 - r.contrast, 1 + r.contrast, generator).to(device))
        if r.saturation:
            x = _blend(x, _grayscale(x).expand_as(x), _uniform(n, 1 - r.saturation, 1 + r.saturation, generator)
                       .to(device))
        return normalize_batch(x)

    def _geometric(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Returns flipped, rotated (nearest neighbour) and cropped images, zero where no source pixel exists."""
        r = self.recipe
        n, channels, h, w = images.shape
        hflip = _per_image(n, r.hflip, generator) if r.hflip else torch.zeros(n, dtype=torch.bool)
        vflip = _per_image(n, r.vflip, generator) if r.vflip else torch.zeros(n, dtype=torch.bool)
        angle = _uniform(n, -r.rotation, r.rotation, generator) if r.rotation else torch.zeros(n)
        pad = r.crop_padding
        top = torch.randint(0, 2 * pad + 1, (n,), generator=generator) - pad if pad else torch.zeros(n, dtype=torch.long)
        left = torch.randint(0, 2 * pad + 1, (n,), generator=generator) - pad if pad else torch.zeros(n, dtype=torch.long)
        # Output pixel -> pixel of the rotated image (crop is a shift; outside the image it is zero padding).
        y = torch.arange(h).view(1, h, 1) + top.view(n, 1, 1)                       # (N, H, 1)
        x = torch.arange(w).view(1, 1, w) + left.view(n, 1, 1)                      # (N, 1, W)
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)                             # (N, H, W)
        # Rotated image -> flipped image: rotate back by -angle about the centre, nearest neighbour.
        radians = angle.view(n, 1, 1) * (math.pi / 180.0)
        cy, cx = (h - 1) / 2, (w - 1) / 2
        dy, dx = y - cy, x - cx
        source_y = torch.round(cy + radians.cos() * dy - radians.sin() * dx).long()
        source_x = torch.round(cx + radians.sin() * dy + radians.cos() * dx).long()
        inside &= (source_y >= 0) & (source_y < h) & (source_x >= 0) & (source_x < w)
        # Flipped image -> original image.
        source_y = torch.where(vflip.view(n, 1, 1), h - 1 - source_y, source_y)
        source_x = torch.where(hflip.view(n, 1, 1), w - 1 - source_x, source_x)
        # One gather; index h * w is an extra zero pixel for everything outside.
        flat_index = torch.where(inside, source_y * w + source_x, h * w).view(n, 1, h * w).to(images.device)
        padded = F.pad(images.reshape(n, channels, h * w), (0, 1))
        return padded.gather(2, flat_index.expand(n, channels, h * w)).view(n, channels, h, w)

    @staticmethod
    def _sharpen(x: torch.Tensor, factor: float) -> torch.Tensor:
        """Returns torchvision's adjust_sharpness: blend with a smoothed copy, borders untouched."""
        kernel = _SMOOTH_KERNEL.to(x.device).expand(3, 1, 3, 3)
        smooth = F.conv2d(x, kernel, groups=3)
        blurred = x.clone()
        blurred[:, :, 1:-1, 1:-1] = smooth
        return (factor * x + (1.0 - factor) * blurred).clamp_(0.0, 1.0)


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
