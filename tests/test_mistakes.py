"""Reading a classifier's mistakes: superclass confusion, most-confused pairs, a fixed sample of errors."""
from __future__ import annotations

import numpy as np
import pytest

from cv_helpers.mistakes import fine_to_coarse, misclassified_sample, most_confused_pairs, superclass_confusion


def test_fine_predictions_are_counted_by_superclass():
    coarse_of = fine_to_coarse(np.array([0, 1, 2, 3, 1]), np.array([0, 0, 1, 1, 0]))
    assert coarse_of.tolist() == [0, 0, 1, 1]
    true, predicted = np.array([0, 1, 2, 3, 0]), np.array([1, 2, 3, 3, 0])
    assert superclass_confusion(predicted, true, coarse_of).tolist() == [[2, 1], [0, 2]]


def test_a_fine_class_without_images_cannot_be_mapped():
    with pytest.raises(ValueError, match=r"\[1\]"):
        fine_to_coarse(np.array([0, 2]), np.array([0, 1]))


def test_the_most_confused_pairs_are_the_largest_off_diagonal_cells():
    matrix = np.array([[5, 3, 0], [1, 6, 2], [4, 0, 1]])
    assert most_confused_pairs(matrix, ["a", "b", "c"], 3) == [("c", "a", 4, 80.0), ("a", "b", 3, 37.5),
                                                              ("b", "c", 2, 2 / 9 * 100)]


def test_the_misclassified_sample_is_fixed_by_its_seed_and_only_holds_errors():
    true = np.arange(100) % 10
    predicted = np.where(np.arange(100) % 3 == 0, (true + 1) % 10, true)
    sample = misclassified_sample(predicted, true, 8, seed=0)
    assert len(sample) == 8 and (predicted[sample] != true[sample]).all()
    assert np.array_equal(sample, misclassified_sample(predicted, true, 8, seed=0))
    assert len(misclassified_sample(predicted, true, 1000)) == 34
