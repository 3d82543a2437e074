"""The training augmentations of the 2023 reference report, as torchvision (PIL) transforms and as plain settings
for the batch path.

One `Augmentation` holds the numbers; `make_train_transform` turns it into the per-image torchvision pipeline the
course teaches, and `cv_helpers.fast_loader.BatchAugment` applies the same augmentation to whole batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision import transforms as T

from .validation import check_choice

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Augmentation:
    """Augmentation settings; zero means off. Probabilities are per image."""

    hflip: float = 0.0             # P(horizontal flip)
    vflip: float = 0.0             # P(vertical flip)
    rotation: float = 0.0          # angle ~ U(-rotation, rotation) degrees, nearest, fill 0
    sharpness: float = 0.0         # sharpness factor applied with probability sharpness_p
    sharpness_p: float = 0.0
    crop_padding: int = 0          # random crop back to the input size after zero-padding
    brightness: float = 0.0        # factor ~ U(1-b, 1+b)
    contrast: float = 0.0
    saturation: float = 0.0


AUGMENTATIONS: dict[str, Augmentation] = {
    "none": Augmentation(),
    # Q1.3: horizontal + vertical flip, rotation, sharpness, random crop with padding.
    "q1.3": Augmentation(hflip=0.5, vflip=0.5, rotation=10.0, sharpness=2.0, sharpness_p=0.5, crop_padding=4),
    # Q1.4 (Tables 1 and 2): horizontal flip, random crop, colour jitter.
    "q1.4": Augmentation(hflip=0.5, crop_padding=4, brightness=0.2, contrast=0.2, saturation=0.2),
    # Q2 (Table 3): horizontal flip, rotation.
    "q2": Augmentation(hflip=0.5, rotation=10.0),
    # Horizontal flip only: the one augmentation that helps an MLP (it has no translation invariance to learn).
    "flip": Augmentation(hflip=0.5),
    # Flip and crop only: the standard CIFAR recipe, used by the improved presets.
    "flip-crop": Augmentation(hflip=0.5, crop_padding=4),
    # The same for 96x96 STL-10 images: padding scaled with the image (4 px at 32 -> 12 px at 96).
    "flip-crop-96": Augmentation(hflip=0.5, crop_padding=12),
}


def get_augmentation(name: str) -> Augmentation:
    """Returns the named augmentation; unknown names list the valid ones."""
    check_choice("augmentation", name, AUGMENTATIONS)
    return AUGMENTATIONS[name]


def make_train_transform(name: str = "q1.3", image_size: int = 32) -> T.Compose:
    """Returns the course's per-image training pipeline for augmentation `name`: PIL image -> float tensor
    (3, H, W) in [-1, 1]."""
    # TODO(Q1.3b): build the augmentation's torchvision steps, then ToTensor and Normalize(MEAN, STD)
    # BEGIN SOLUTION
    recipe = get_augmentation(name)
    steps: list = []
    if recipe.hflip:
        steps.append(T.RandomHorizontalFlip(recipe.hflip))
    if recipe.vflip:
        steps.append(T.RandomVerticalFlip(recipe.vflip))
    if recipe.rotation:
        steps.append(T.RandomRotation(recipe.rotation))
    if recipe.sharpness_p:
        steps.append(T.RandomAdjustSharpness(recipe.sharpness, p=recipe.sharpness_p))
    if recipe.crop_padding:
        steps.append(T.RandomCrop(image_size, padding=recipe.crop_padding))
    if recipe.brightness or recipe.contrast or recipe.saturation:
        steps.append(T.ColorJitter(recipe.brightness, recipe.contrast, recipe.saturation))
    return T.Compose(steps + [T.ToTensor(), T.Normalize(MEAN, STD)])
    # END SOLUTION


def make_test_transform() -> T.Compose:
    """Returns the test pipeline: normalisation only."""
    # TODO(Q1.3b): ToTensor and Normalize(MEAN, STD), nothing random
    # BEGIN SOLUTION
    return T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    # END SOLUTION


def unnormalize(images: torch.Tensor) -> torch.Tensor:
    """Returns images mapped back from [-1, 1] to [0, 1] for display; shape unchanged, (..., 3, H, W)."""
    # TODO(Q1.1): undo Normalize(MEAN, STD): images * std + mean per channel, clamped to [0, 1]
    # BEGIN SOLUTION
    mean = torch.tensor(MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(3, 1, 1)
    return (images * std + mean).clamp(0, 1)
    # END SOLUTION
