"""The learning-rate range test ("lr finder", Smith 2017): a fresh network trains for a few hundred steps while
the learning rate grows exponentially from `low` to `high`; the smoothed training loss against the rate shows
where learning starts, where it is fastest and where it blows up. Nothing is saved: it costs seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from torch import nn

from ..config import default_device, seed_everything
from ..errors import ConfigError, TrainingDiverged
from ..train import initialize_optimizer, train
from ..train_config import TrainConfig
from .experiment import build_network, load_splits, make_loaders
from .sweep import Sweep


@dataclass
class RangeTest:
    """Learning rates (steps,) and the smoothed training loss (steps,) at each; stops early once the loss has
    blown up, so both may be shorter than the requested steps."""

    lrs: np.ndarray
    losses: np.ndarray

    @property
    def steepest(self) -> float:
        """The rate where the smoothed loss falls fastest per decade of learning rate, before its minimum and after
        the first tenth of the steps (where the moving average and the output layer's first adjustment dominate:
        there every network "falls fastest", at whatever rate the range starts)."""
        start, end = len(self.losses) // 10, int(np.argmin(self.losses)) + 1
        if end - start < 3:
            return float(self.lrs[min(start, end - 1)])
        slopes = np.gradient(self.losses[start:end], np.log10(self.lrs[start:end]))
        return float(self.lrs[start + int(np.argmin(slopes))])

    @property
    def minimum(self) -> float:
        """The rate at the smoothed loss's minimum; a usable constant rate is typically a few times lower."""
        return float(self.lrs[int(np.argmin(self.losses))])

    def region(self, lr: float) -> str:
        """Says where `lr` lies on this curve, in the test's own terms (it sees only the first few hundred steps):
        below the steepest descent, between it and the minimum, or beyond the minimum."""
        if lr < self.steepest:
            return "below the steepest descent: the loss falls slowly in the first steps"
        if lr <= self.minimum:
            return "between the steepest descent and the minimum: the loss falls fast in the first steps"
        return "beyond the minimum: the loss stops falling or rises within the first steps"


def rates_against_sweep(test: RangeTest, rows: list[dict], sweep: Sweep) -> list[tuple]:
    """Returns (rate, where it lies on the range test, validation accuracy after the sweep's budget, the sweep's
    verdict) for each of `sweep.rates()`: the range test's first steps beside the sweep's whole runs at those rates.
    rows: from `run_sweep(sweep)`; the base's rate is its 'base' row, another rate its 'lr=...' row."""
    by_change = {row["change"]: row for row in rows}
    measured = [(lr, by_change["base" if lr == sweep.base.lr else f"lr={lr}"]) for lr in sweep.rates()]
    return [(lr, test.region(lr), row["test_acc"], row["verdict"]) for lr, row in measured]


def lr_range_test(config: TrainConfig, low: float = 1e-5, high: float = 1.0, steps: int = 300,
                  smoothing: float = 0.95, blow_up: float = 4.0, root: Path | str | None = None) -> RangeTest:
    """Trains a fresh `config.model` with `config`'s optimizer, batch size and augmentation for up to `steps`
    steps at rates low * (high / low) ** (step / (steps - 1)); returns the rates and the bias-corrected
    exponential moving average of the loss. Stops when that average exceeds `blow_up` times its minimum or is
    not finite."""
    config.validate()
    if not 0 < low < high or steps < 2:
        raise ConfigError(f"the range test needs 0 < low < high and steps >= 2, got low={low:g}, high={high:g}, "
                          f"steps={steps}")
    seed_everything(config.seed)
    device = default_device()
    train_split, test_split, label_key, names = load_splits(config.dataset, root, config.validation)
    net, _ = build_network(config, len(names), train_split.images.shape[1], train_split.images)
    net.to(device)
    optimizer = initialize_optimizer(net, config.optimizer, low, config.momentum, config.weight_decay)
    loader, _ = make_loaders(config, train_split, test_split, label_key, device, root)
    rates, smoothed, average = [], [], 0.0

    def set_rate(step: int) -> None:
        rates.append(low * (high / low) ** (step / max(1, steps - 1)))
        for group in optimizer.param_groups:
            group["lr"] = rates[-1]

    def record(step: int, loss: float) -> None:
        nonlocal average
        average = smoothing * average + (1 - smoothing) * loss
        smoothed.append(average / (1 - smoothing ** (step + 1)))
        if smoothed[-1] > blow_up * min(smoothed):
            raise _BlownUp

    try:
        train(net, _steps_of(loader, steps), 1, optimizer, nn.CrossEntropyLoss(), before_step=set_rate,
              after_step=record, verbose=False)
    except _BlownUp:
        pass
    except TrainingDiverged:                 # the loss became NaN or infinite: the last rate has no loss
        smoothed.append(float("nan"))
    return RangeTest(np.array(rates), np.array(smoothed))


class _BlownUp(Exception):
    """Ends the range test: the smoothed loss exceeded `blow_up` times its minimum."""


def _steps_of(loader: Iterable, steps: int) -> Iterator:
    """Yields `steps` batches of `loader`, starting a new pass over it whenever one ends."""
    batches = iter(loader)
    for _ in range(steps):
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        yield batch
