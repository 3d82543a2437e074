"""Q2's training strategies as presets, which CIFAR-100 runs they start from, and their results table.

Strategies: (a) a linear classifier on the frozen pretrained network's pooled convolutional features (linear
probe), (b) only the new fc1 and head trained, (c) full fine-tuning with the report's Table 3 settings, (d) the
improved recipe from the Q3 net. Each training strategy is a preset, run for three seeds; on the real 219-image
sample the presets are the `q2-sample-*` ones (batch 16: the sample has 46 training images).
"""
from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

from ..data import stl10_source
from ..tables import mean_and_spread
from .experiment import SEEDS, RunResult, seed_run_name, state_of
from .presets import PRESETS, Q2_PRETRAINED_RUN

FULL_FINE_TUNING = "(c) full fine-tuning, Table 3"
TRAINING_STRATEGIES = {
    "real sample": {"(b) new fc1 + head only": "q2-sample-head", FULL_FINE_TUNING: "q2-sample-finetune",
                    "(d) improved recipe, Q3 net": "q2-sample-plus"},
    "official archive": {"(b) new fc1 + head only": "q2-head", FULL_FINE_TUNING: "q2-finetune",
                         "(d) improved recipe, Q3 net": "q2-finetune-plus"},
}
TRAINING_STRATEGIES["generated"] = TRAINING_STRATEGIES["real sample"]


def training_strategies(root: Path | str | None = None) -> dict[str, str]:
    """Returns strategy label -> preset for the STL-10 data under `root`."""
    return TRAINING_STRATEGIES[stl10_source(root)]


def pretrained_runs(strategies: dict[str, str]) -> dict[str, bool]:
    """Returns, for each CIFAR-100 run that a strategy's preset fine-tunes, whether its weights are needed:
    always for Q2_PRETRAINED_RUN (the linear probe and the t-SNE use them), otherwise only while a seed run of a
    strategy that starts from it is not complete or started from other weights (it still has to train)."""
    needed = {Q2_PRETRAINED_RUN: True}
    for preset in strategies.values():
        start = PRESETS[preset].init_from
        pending = any(state_of(seed_run_name(preset, seed), replace(PRESETS[preset], seed=seed), False).action
                      != "reuse" for seed in SEEDS)
        needed[start] = needed.get(start, False) or pending
    return needed


def strategy_rows(probe: dict, trained: dict[str, tuple[str, list[RunResult]]]) -> list[list]:
    """Returns the results table's rows: strategy, preset, accuracy (mean ± std over seeds), seeds, trainable
    parameters, minutes per run. `trained`: strategy label -> (preset, its runs)."""
    rows = [["(a) linear probe on frozen pooled features", "(logistic regression)",
             mean_and_spread([probe["test_acc"]]), "deterministic", f"{probe['features_dim'] * 5 + 5:,}",
             f"{probe['seconds'] / 60:.2f}"]]
    for label, (preset, runs) in trained.items():
        rows.append([label, preset, mean_and_spread([r.test_acc for r in runs]), len(runs),
                     f"{runs[0].parameters:,}",
                     f"{statistics.mean(sum(r.history.seconds) for r in runs) / 60:.2f}"])
    return rows


STRATEGY_HEADERS = ["strategy", "preset", "test accuracy (%, mean ± std)", "seeds", "trainable parameters",
                    "minutes per run"]
