"""What a training measured: `History` (per-epoch numbers), `FitResult`, and what is read from a history."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np


@dataclass
class History:
    """Per-epoch metrics of a run: losses, accuracies in percent, learning rate and seconds per epoch."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def append(self, **values: float) -> None:
        for name, value in values.items():
            getattr(self, name).append(float(value))

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "History":
        return cls(**{f.name: list(values.get(f.name, [])) for f in fields(cls)})


def minutes_to_accuracy(history: History, target: float) -> float | None:
    """Returns the wall time in minutes (training and evaluation) until the test accuracy first reached
    `target` %, counted to the end of that epoch; None if it never did."""
    elapsed = 0.0
    for seconds, accuracy in zip(history.seconds, history.test_acc):
        elapsed += seconds
        if accuracy >= target:
            return elapsed / 60
    return None


def run_status(history: History, num_classes: int) -> str:
    """Returns 'diverged' (training loss ended above both its first epoch and ln(classes), the loss of guessing),
    'at chance' (final test accuracy within 1.5 points of 100 / classes %) or 'ok'."""
    guessing_loss, chance = math.log(num_classes), 100.0 / num_classes
    if history.train_loss[-1] > max(history.train_loss[0], guessing_loss):
        return "diverged"
    if abs(history.test_acc[-1] - chance) <= 1.5:
        return "at chance"
    return "ok"


@dataclass
class FitResult:
    """What `fit` measured: the history so far, the last epoch's test predictions and labels (N,), and how many
    epochs this call trained (0 when it only reloaded a finished run)."""

    history: History
    predicted: np.ndarray
    true: np.ndarray
    epochs_trained: int
