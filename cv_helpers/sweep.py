"""A headless hyperparameter sweep: vary one setting at a time around a base recipe, one run per setting."""
from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Sequence

from .errors import TrainingDiverged
from .experiment import run_experiment
from .train import TrainConfig, run_status

# The settings the course report tried by hand (Q1.4).
REPORT_GRID: dict[str, Sequence] = {
    "optimizer": ("sgd", "adam", "rmsprop", "adagrad"),
    "lr": (0.5, 0.1, 0.01, 0.001),
    "batch_size": (64, 128),
    "augmentation": ("q1.3", "q1.4", "none"),
}

# The report's best ConvNet recipe (SGD with momentum and weight decay, lr 0.01, batch 128) on the LeNet ConvNet,
# 5 epochs: the centre the Q1.4 notebook's sweep varies one setting at a time (runs q1.4-sweep-convnet-<change>).
REPORT_SWEEP_BASE = TrainConfig(model="convnet", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4,
                                batch_size=128, epochs=5, augmentation="q1.4")
REPORT_SWEEP_PREFIX = "q1.4-sweep-convnet"


BASE_SEEDS = (1, 2)   # the base recipe is also trained with these seeds: its spread tells noise from effect


def one_at_a_time(base: TrainConfig, grid: dict[str, Sequence]) -> list[tuple[str, TrainConfig]]:
    """Returns (label, config) for the base, the base with each seed of BASE_SEEDS ('base-seedN'), and each
    single-setting change of the base, without repeats."""
    configs = [("base", base), *[(f"base-seed{seed}", replace(base, seed=seed)) for seed in BASE_SEEDS]]
    for name, values in grid.items():
        for value in values:
            if getattr(base, name) != value:
                configs.append((f"{name}={value}", replace(base, **{name: value})))
    return configs


def run_sweep(base: TrainConfig, grid: dict[str, Sequence], run_prefix: str, progress: bool = False
              ) -> list[dict]:
    """Trains every configuration of `one_at_a_time`; returns one row per run with its status: 'ok', 'diverged'
    (NaN loss, or a loss that rose), or 'at chance' (see `run_status`)."""
    rows = []
    for label, config in one_at_a_time(base, grid):
        row = {"change": label, "optimizer": config.optimizer, "lr": config.lr, "batch_size": config.batch_size,
               "augmentation": config.augmentation}
        try:
            result = run_experiment(config, f"{run_prefix}-{label}", resume=True, progress=progress)
            row.update(test_acc=result.test_acc, train_loss=result.history.train_loss[-1],
                       seconds=sum(result.history.seconds),
                       status=run_status(result.history, len(result.class_names)))
        except TrainingDiverged as err:
            row.update(test_acc=float("nan"), train_loss=float("nan"), seconds=float("nan"), status="diverged")
            print(f"{label}: {err}")
        rows.append(row)
        print(f"{label:>22s}: {row['test_acc']:.2f} % ({row['status']})")
    return add_verdicts(rows)


def add_verdicts(rows: list[dict]) -> list[dict]:
    """Adds 'vs_base' (points against the mean of the base seeds) and 'verdict' to each row: 'better' or 'worse'
    beyond twice the base seeds' standard deviation (at least 0.5 points), else 'within the seed spread'; a run
    that failed ('diverged', 'at chance') has its status as the verdict."""
    base = [r["test_acc"] for r in rows if r["change"].startswith("base")]
    centre = statistics.mean(base)
    noise = max(0.5, 2 * statistics.stdev(base)) if len(base) > 1 else 0.5
    for row in rows:
        row["vs_base"] = row["test_acc"] - centre
        if row["status"] != "ok":
            row["verdict"] = row["status"]
        elif row["change"].startswith("base"):
            row["verdict"] = "base"
        else:
            row["verdict"] = ("better" if row["vs_base"] > noise else "worse" if row["vs_base"] < -noise
                              else "within the seed spread")
    return rows
