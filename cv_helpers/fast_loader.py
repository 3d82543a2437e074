"""The fast data path: uint8 images held as one tensor on the training device, augmented per batch.

Why: the per-image PIL pipeline spends far more time per image than a small network does, so on a 2-core
CPU the data loader, not the model, sets the pace. Here a batch is gathered with one index operation and
augmented with a handful of tensor ops, each with its own random parameters per image.
"""
from __future__ import annotations

import functools
import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .config import epoch_seed
from .transforms import MEAN, STD, Augmentation


# Every random draw comes from `generator` on its own device (the training device): on a GPU nothing is drawn on
# the host and copied over per batch, and on the CPU the numbers are the same as they always were.
def _per_image(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Returns a (n,) bool mask, True with probability p."""
    return torch.rand(n, generator=generator, device=generator.device) < p


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=generator.device)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Returns clamp(factor * images + (1 - factor) * other) with factor (N,), as torchvision's _blend."""
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1.0 - factor) * other).clamp_(0.0, 1.0)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    """Returns (N, 1, H, W) luma with torchvision's weights."""
    r, g, b = images.unbind(dim=1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


class BatchAugment:
    """Applies an `Augmentation` to a batch: uint8 (N, 3, H, W) -> float32 (N, 3, H, W) normalised to [-1, 1].

    The geometric steps (flips, rotation, crop with zero padding) are composed into one source-pixel index per
    output pixel and applied with a single gather on the uint8 batch: one pass over the pixels instead of one per
    step. Then sharpness, colour jitter and normalisation, in float.
    Order of the random steps as in `make_train_transform`; the one difference from torchvision is that
    sharpening follows the crop instead of preceding it, which only changes the pixels beside a padded border.
    """

    def __init__(self, recipe: Augmentation) -> None:
        self.augmentation = recipe

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """images: uint8 (N, 3, H, W) on the generator's device."""
        r, n = self.augmentation, images.shape[0]
        if r.hflip or r.vflip or r.rotation or r.crop_padding:
            images = self._geometric(images, generator)
        x = images.float().div_(255)
        if r.sharpness_p:  # only the images drawn for it: about half the work at p = 0.5
            chosen = torch.nonzero(_per_image(n, r.sharpness_p, generator)).flatten()
            x[chosen] = self._sharpen(x[chosen], r.sharpness)
        if r.brightness:
            x = _blend(x, torch.zeros_like(x), _uniform(n, 1 - r.brightness, 1 + r.brightness, generator))
        if r.contrast:
            means = _grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
            x = _blend(x, means.expand_as(x), _uniform(n, 1 - r.contrast, 1 + r.contrast, generator))
        if r.saturation:
            x = _blend(x, _grayscale(x).expand_as(x), _uniform(n, 1 - r.saturation, 1 + r.saturation, generator))
        return normalize_batch(x)

    def _geometric(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Returns flipped, rotated (nearest neighbour) and cropped images, zero where no source pixel exists.

        Per output pixel: shift by the crop offset, rotate back about the centre, undo the flips; flips and
        rotation are one linear map per image, so the per-pixel work is two multiply-adds, a rounding and a clamp
        per coordinate. Sources outside the image are clamped onto a one-pixel zero border.
        """
        r, device = self.augmentation, generator.device
        n, channels, h, w = images.shape
        ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)
        flip_y = torch.where(_per_image(n, r.vflip, generator), -1.0, 1.0) if r.vflip else ones
        flip_x = torch.where(_per_image(n, r.hflip, generator), -1.0, 1.0) if r.hflip else ones
        radians = _uniform(n, -r.rotation, r.rotation, generator) * (math.pi / 180) if r.rotation else zeros
        top = self._crop_offsets(n, r.crop_padding, generator)
        left = self._crop_offsets(n, r.crop_padding, generator)
        # Output pixel -> pixel of the rotated image, relative to the centre. Rows and columns in the crop's zero
        # padding are sent far away, so that after the rotation they land on the zero border.
        far = 4.0 * (h + w)
        rows = torch.arange(h, device=device) + top                                     # (N, H)
        cols = torch.arange(w, device=device) + left                                    # (N, W)
        dy = torch.where((rows >= 0) & (rows < h), rows - (h - 1) / 2, far).unsqueeze(2)  # (N, H, 1)
        dx = torch.where((cols >= 0) & (cols < w), cols - (w - 1) / 2, far).unsqueeze(1)  # (N, 1, W)
        cos, sin = radians.cos().view(n, 1, 1), radians.sin().view(n, 1, 1)
        fy, fx = flip_y.view(n, 1, 1), flip_x.view(n, 1, 1)
        # +1: coordinates in the image padded by one zero pixel on each side.
        source_y = ((h - 1) / 2 + 1 + fy * cos * dy) - fy * sin * dx                    # (N, H, W)
        source_x = ((w - 1) / 2 + 1 + fx * sin * dy) + fx * cos * dx
        source_y = source_y.round_().clamp_(0, h + 1)
        source_x = source_x.round_().clamp_(0, w + 1)
        index = source_y.mul_(w + 2).add_(source_x).long().view(n, 1, h * w)
        padded = F.pad(images, (1, 1, 1, 1)).view(n, channels, (h + 2) * (w + 2))
        return padded.gather(2, index.expand(n, channels, h * w)).view(n, channels, h, w)

    @staticmethod
    def _crop_offsets(n: int, pad: int, generator: torch.Generator) -> torch.Tensor:
        """Returns (N, 1) offsets ~ U{-pad..pad} of a random crop from the zero-padded image (0 without padding)."""
        if not pad:
            return torch.zeros(n, 1, dtype=torch.long, device=generator.device)
        return torch.randint(-pad, pad + 1, (n, 1), generator=generator, device=generator.device)

    @staticmethod
    def _sharpen(x: torch.Tensor, factor: float) -> torch.Tensor:
        """Returns torchvision's adjust_sharpness of x (N, 3, H, W) in place, borders untouched.

        torchvision blends with PIL's SMOOTH filter, (3x3 box sum + 4 * centre) / 13; with a box sum done as two
        separable passes of shifted slices, the interior is clamp(a * centre + b * box), a handful of elementwise
        ops (a depthwise convolution is several times slower on a CPU).
        """
        centre = x[:, :, 1:-1, 1:-1]
        rows = x[:, :, :-2, :] + x[:, :, 1:-1, :] + x[:, :, 2:, :]                  # (N, 3, H-2, W)
        box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]                     # (N, 3, H-2, W-2)
        a, b = factor + 4.0 * (1.0 - factor) / 13.0, (1.0 - factor) / 13.0
        centre.copy_(box.mul_(b).add_(centre, alpha=a).clamp_(0.0, 1.0))
        return x


def normalize_batch(x: torch.Tensor) -> torch.Tensor:
    """Returns (x - mean) / std for x in [0, 1], (N, 3, H, W), in place; same arithmetic as T.Normalize."""
    mean, std = _normalisation(x.device)
    return x.sub_(mean).div_(std)


@functools.cache
def _normalisation(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (mean, std), each (1, 3, 1, 1) on `device`: made once per device, not copied over per batch."""
    return (torch.tensor(MEAN, device=device).view(1, 3, 1, 1), torch.tensor(STD, device=device).view(1, 3, 1, 1))


class FastLoader:
    """Iterates (images, labels) batches from arrays kept on `device`.

    images: (N, H, W, 3) uint8 array; labels: (N,) int64. Yields float32 (B, 3, H, W) and int64 (B,) on `device`
    (B, 3, R, R) with `resize_to` = R: the augmented batch resized with an anti-aliased bilinear filter.
    With `shuffle`, each epoch's order and augmentation come from a generator on `device` seeded by (seed, epoch),
    so an epoch is the same whether or not the run was interrupted before it.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, batch_size: int,
                 shuffle: bool = False, augmentation: Augmentation | None = None, device: torch.device | str = "cpu",
                 seed: int = 0, drop_last: bool = False) -> None:
        images = torch.as_tensor(images)
        self.images = images.permute(0, 3, 1, 2).contiguous().to(device)     # (N, 3, H, W) uint8
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment = BatchAugment(augmentation or Augmentation())
        self.seed, self.epoch = seed, 0
        self.resize_to: int | None = None       # side of the yielded images, if not the stored one

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
        device = self.images.device
        generator = torch.Generator(device=device).manual_seed(epoch_seed(self.seed, self.epoch))
        self.epoch += 1
        n = self.num_samples
        order = (torch.randperm(n, generator=generator, device=device) if self.shuffle
                 else torch.arange(n, device=device))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            images = self.augment(self.images[index], generator)
            if self.resize_to:                                  # progressive resizing: smaller, cheaper images
                images = F.interpolate(images, size=(self.resize_to, self.resize_to), mode="bilinear",
                                       antialias=True, align_corners=False)
            yield images, self.labels[index]
