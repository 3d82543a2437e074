"""The learning-rate range test ("lr finder", Smith 2017): a fresh network trains for a few hundred steps while
the learning rate grows exponentially from `low` to `high`; the smoothed training loss against the rate shows
where learning starts, where it is fastest and where it blows up. Nothing is saved: it costs seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import default_device, seed_everything
from .errors import ConfigError
from .experiment import build_network, load_splits, make_loaders
from .train import TrainConfig, initialize_optimizer


@dataclass
class RangeTest:
    """Learning rates (steps,) and the smoothed training loss (steps,) at each; stops early once the loss has
    blown up, so both may be shorter than the requested steps."""

    lrs: np.ndarray
    losses: np.ndarray

    @property
    def steepest(self) -> float:
        """The rate where the smoothed loss falls fastest per decade of learning rate (before its minimum)."""
        end = int(np.argmin(self.losses)) + 1
        if end < 3:
            return float(self.lrs[0])
        slopes = np.gradient(self.losses[:end], np.log10(self.lrs[:end]))
        return float(self.lrs[int(np.argmin(slopes))])

    @property
    def minimum(self) -> float:
        """The rate at the smoothed loss's minimum; a usable constant rate is typically a few times lower."""
        return float(self.lrs[int(np.argmin(self.losses))])

    def region(self, lr: float) -> str:
        """Says where `lr` lies on this curve: below the steepest descent (slow), up to the minimum (fast), or
        beyond it (unstable over a longer run)."""
        if lr < self.steepest:
            return "below the steepest descent: learns, slowly"
        if lr <= self.minimum:
            return "between the steepest descent and the minimum: the fastest learning"
        return "beyond the minimum: the loss stops falling or rises"


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
    train, test, label_key, names = load_splits(config.dataset, root)
    net, _ = build_network(config, len(names), train.images.shape[1], train.images)
    net.to(device)
    optimizer = initialize_optimizer(net, config.optimizer, low, config.momentum, config.weight_decay)
    loader, _ = make_loaders(config, train, test, label_key, device, root)
    loss_fn, rates, smoothed, average = nn.CrossEntropyLoss(), [], [], 0.0
    batches = iter(loader)
    for step in range(steps):
        batch = next(batches, None)
        if batch is None:                                   # a new pass over the training set
            batches = iter(loader)
            batch = next(batches)
        images, labels = batch
        lr = low * (high / low) ** (step / max(1, steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        average = smoothing * average + (1 - smoothing) * loss.item()
        rates.append(lr)
        smoothed.append(average / (1 - smoothing ** (step + 1)))
        if not math.isfinite(smoothed[-1]) or smoothed[-1] > blow_up * min(smoothed):
            break
    return RangeTest(np.array(rates), np.array(smoothed))
