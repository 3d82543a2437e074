"""The learning-rate range test: geometric rates, a smoothed loss, an early stop once the loss blows up."""
from __future__ import annotations

import numpy as np
import pytest

from cv_helpers.errors import ConfigError
from cv_helpers.train import TrainConfig
from cv_helpers.workbench.lr_finder import RangeTest, lr_range_test

MLP = TrainConfig(model="mlp", optimizer="sgd", momentum=0.9, batch_size=32, augmentation="none")


def test_the_rates_grow_geometrically_from_low_to_high_and_the_test_repeats_exactly(data_root):
    first = lr_range_test(MLP, low=1e-4, high=1e-2, steps=12, root=data_root)
    assert len(first.lrs) == len(first.losses) == 12
    assert first.lrs[0] == pytest.approx(1e-4) and first.lrs[-1] == pytest.approx(1e-2)
    assert np.allclose(first.lrs[1:] / first.lrs[:-1], 10 ** (2 / 11))
    assert np.isfinite(first.losses).all()
    again = lr_range_test(MLP, low=1e-4, high=1e-2, steps=12, root=data_root)
    assert np.array_equal(first.losses, again.losses)


def test_the_test_stops_once_the_loss_blows_up(data_root):
    result = lr_range_test(MLP, low=1e-3, high=1e4, steps=60, root=data_root)
    assert len(result.lrs) < 60
    assert not np.isfinite(result.losses[-1]) or result.losses[-1] > 4 * result.losses.min()


def test_the_steepest_descent_and_the_minimum_split_the_rates_into_three_regions():
    lrs = np.logspace(-4, 0, 9)
    curve = RangeTest(lrs, np.array([4.6, 4.6, 4.5, 4.0, 3.2, 3.0, 2.9, 3.5, 9.0]))
    assert curve.steepest == pytest.approx(lrs[3]) and curve.minimum == pytest.approx(lrs[6])
    # A sharp fall over the first steps (the output layer adjusting, at any rate) is not the steepest descent.
    first_steps = RangeTest(np.logspace(-4, 0, 20), np.r_[4.6, 3.6, 3.55, 3.5, 3.4, 3.0, 2.6, 2.5, 2.45, 2.4,
                                                          np.linspace(2.39, 2.3, 8), 2.8, 5.0])
    assert first_steps.steepest == pytest.approx(first_steps.lrs[5])
    assert [curve.region(lr).split(":")[0] for lr in (1e-4, lrs[5], 1.0)] == [
        "below the steepest descent", "between the steepest descent and the minimum", "beyond the minimum"]


def test_an_empty_range_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="0 < low < high"):
        lr_range_test(MLP, low=0.1, high=0.01)
