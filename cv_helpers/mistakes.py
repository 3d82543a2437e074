"""What a classifier gets wrong, in forms a person can read: the confusion between CIFAR-100's 20 superclasses,
the most-confused pairs of fine classes, and a fixed sample of misclassified test images."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .train import confusion_matrix


def fine_to_coarse(fine_labels: np.ndarray, coarse_labels: np.ndarray) -> np.ndarray:
    """Returns the superclass of each fine class, (num_fine,), from the labels of a split's images (N,)."""
    mapping = np.full(int(fine_labels.max()) + 1, -1)
    mapping[fine_labels] = coarse_labels
    if (mapping < 0).any():
        raise ValueError(f"fine classes {np.flatnonzero(mapping < 0).tolist()} have no image to map from")
    return mapping


def superclass_confusion(predicted: np.ndarray, true: np.ndarray, coarse_of: np.ndarray) -> np.ndarray:
    """Returns superclass counts (S, S), row = true superclass, of fine-class predictions and labels (N,)."""
    return confusion_matrix(coarse_of[predicted], coarse_of[true], int(coarse_of.max()) + 1)


def most_confused_pairs(matrix: np.ndarray, class_names: Sequence[str], count: int = 10) -> list[tuple]:
    """Returns the `count` largest off-diagonal cells of a confusion matrix (C, C) as (true class, predicted
    class, images, % of the true class's images), largest first (ties by class order)."""
    off_diagonal = matrix.astype(float).copy()
    np.fill_diagonal(off_diagonal, -1)
    order = np.argsort(-off_diagonal, axis=None, kind="stable")[:count]
    totals = matrix.sum(axis=1)
    return [(class_names[i], class_names[j], int(matrix[i, j]), 100.0 * matrix[i, j] / max(1, totals[i]))
            for i, j in zip(*np.unravel_index(order, matrix.shape))]


def misclassified_sample(predicted: np.ndarray, true: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Returns the indices of `count` misclassified images (fewer if there are fewer), drawn with `seed`, sorted."""
    wrong = np.flatnonzero(predicted != true)
    chosen = np.random.default_rng(seed).choice(wrong, size=min(count, len(wrong)), replace=False)
    return np.sort(chosen)
