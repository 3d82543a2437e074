"""Headless hyperparameter sweeps: change one setting at a time around a base recipe, one run per change, and
judge the 2023 reference report's claims about those settings against the runs.

Every sweep chooses, so every run of one is measured on the validation split (5,000 training images held out;
`TrainConfig.validation`), never on the test split. A change that the reference report made at a learning rate
that does not suit it is run at one that does (Adam at 0.001, the rate the reference report itself used for it in
Q1.3), and each verdict says the budget it was measured at; a claim that the budget cannot test gets no verdict.
The Q1.4 notebook runs two, each on the net the reference report tried them on: its ConvNet list around
ConvNet-BN's Table 1 recipe at 3 epochs, and its MLP list around MLP-4's Table 2 recipe.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, fields, replace
from typing import Mapping, Sequence

from ..errors import ConfigError, TrainingDiverged
from ..history import run_status
from ..train_config import TrainConfig
from .experiment import run_experiment
from .presets import PRESETS

FAILED = ("worse", "diverged", "at chance")     # verdicts of a change that did worse than the base


@dataclass(frozen=True)
class Claim:
    """One thing the 2023 reference report says about a setting, and the sweep rows (changes) that test it. `expected`
    is 'worse' (each change does worse than the base) or 'no better' (none does better). Below the budget
    `untested_below` names, its runs are shown but given no verdict."""

    text: str
    changes: tuple[str, ...]
    expected: str = "worse"
    untested_below: tuple[int, str] = (0, "")   # (epochs, why): a budget under which the runs cannot test the claim


@dataclass(frozen=True)
class Sweep:
    """A one-at-a-time sweep around `base`: each entry of `changes` is one run's changed settings (a setting, with
    the learning rate that suits it where the base's does not), and the reference report's `claims` on those runs."""

    prefix: str
    base: TrainConfig
    changes: tuple[Mapping[str, object], ...]
    claims: tuple[Claim, ...]

    def runs(self) -> list[tuple[str, str, TrainConfig]]:
        """Returns (label, run name, config) of every run (see `one_at_a_time`); the run name is the prefix and the
        label with ', ' written '+' (e.g. q1.4-val-figure6-optimizer=adam+lr=0.001)."""
        return [(label, f"{self.prefix}-{label.replace(', ', '+')}", config)
                for label, config in one_at_a_time(self.base, self.changes)]

    def configs(self) -> dict[str, TrainConfig]:
        """Returns run name -> config of every run of the sweep."""
        return {name: config for _, name, config in self.runs()}

    def run_names(self) -> list[str]:
        return list(self.configs())

    def rates(self) -> list[float]:
        """Returns the learning rates the sweep trains with the base's optimizer, the base's among them."""
        return sorted({self.base.lr, *(change["lr"] for change in self.changes
                                       if "lr" in change and "optimizer" not in change)})


# Augmentation regularises: it can pay only once a net fits its training images better than new ones, which the
# ConvNet-BN does not after a few epochs (its training loss stays above the validation loss).
UNFITTED = (15, "augmentation regularises, and after so few epochs the net does not yet fit its training images")

# The settings the 2023 reference report tried by hand for its ConvNet-BN (Q1.4, Table 1 and the text beside it),
# around its best recipe (preset q1.4-convnet: SGD with momentum and weight decay, lr 0.01, batch 128), on the
# same net for 3 epochs instead of 50: the CPU budget. Each optimizer at a rate that suits it (RMSprop without
# SGD's momentum, as PyTorch's default has it).
FIGURE6_SWEEP = Sweep(
    prefix="q1.4-val-figure6",
    base=replace(PRESETS["q1.4-convnet"], epochs=3, validation=True),
    changes=({"optimizer": "adam", "lr": 0.001}, {"optimizer": "rmsprop", "lr": 0.001, "momentum": 0.0},
             {"optimizer": "adagrad"}, {"lr": 0.5}, {"lr": 0.1}, {"lr": 0.001}, {"batch_size": 64},
             {"augmentation": "q1.3"}, {"augmentation": "none"}, {"model": "convnet-bn5-max"}),
    claims=(Claim("SGD with momentum beats Adam, RMSprop and Adagrad (each at a rate that suits it)",
                  ("optimizer=adam, lr=0.001", "optimizer=rmsprop, lr=0.001, momentum=0.0", "optimizer=adagrad")),
            Claim("learning rates 0.5 and 0.1 are too high (unstable)", ("lr=0.5", "lr=0.1")),
            Claim("learning rate 0.001 converges too slowly", ("lr=0.001",)),
            Claim("too many augmentations hurt (the Q1.3 set: flips, rotation, sharpness, crop)",
                  ("augmentation=q1.3",), untested_below=UNFITTED),
            Claim("the Table 1 augmentation beats none", ("augmentation=none",), untested_below=UNFITTED),
            Claim("batch 128 beats 64 (the reference report says it of the MLP)", ("batch_size=64",)),
            Claim("two 5x5 convolutions with max-pooling do worse than ConvNet-BN's 3x3 with average pooling",
                  ("model=convnet-bn5-max",))))

# The reference report's MLP list (Q1.4, Table 2), around MLP-4's recipe (preset q1.4-mlp: Adam with weight
# decay, lr 0.001, batch 128, 20 epochs). SGD at 0.01 with momentum (the ConvNet's recipe), not at Adam's 0.001.
MLP_SWEEP = Sweep(
    prefix="q1.4-val-mlp",
    base=replace(PRESETS["q1.4-mlp"], validation=True),
    changes=({"batch_size": 64}, {"hidden_size": 512}, {"optimizer": "sgd", "lr": 0.01}, {"epochs": 50},
             {"lr": 0.003}, {"lr": 0.01}),
    claims=(Claim("batch 128 beats 64", ("batch_size=64",)),
            Claim("hidden size 512 does not improve accuracy (it over-fits)", ("hidden_size=512",), "no better"),
            Claim("Adam with weight decay beats SGD (SGD at its own rate, 0.01 with momentum)",
                  ("optimizer=sgd, lr=0.01",)),
            Claim("50 epochs are no better than 20", ("epochs=50",), "no better"),
            Claim("a higher learning rate does worse", ("lr=0.003", "lr=0.01"))))

REPORT_SWEEPS = (FIGURE6_SWEEP, MLP_SWEEP)
SWEEP_HEADERS = ["change", "validation accuracy (%)", "vs base (points)", "final train loss", "time (s)", "status",
                 "verdict"]
CLAIM_HEADERS = ["the reference report's claim", "this sweep (validation, points vs the base's mean, verdict)",
                 "verdict"]
BASE_SEEDS = (1, 2)   # the base recipe is also trained with these seeds: its spread tells noise from effect
_FIELDS = {f.name for f in fields(TrainConfig)}


def _changed(base: TrainConfig, name: str, value) -> TrainConfig:
    """Returns `base` with one setting changed: a TrainConfig field or a model keyword (e.g. hidden_size)."""
    if name in _FIELDS:
        return replace(base, **{name: value})
    return replace(base, model_kwargs={**base.model_kwargs, name: value})


def _current(base: TrainConfig, name: str):
    return getattr(base, name) if name in _FIELDS else base.model_kwargs.get(name)


def one_at_a_time(base: TrainConfig, changes: Sequence[Mapping[str, object]]) -> list[tuple[str, TrainConfig]]:
    """Returns (label, config) for the base, the base with each seed of BASE_SEEDS ('base-seedN'), and the base
    with each entry of `changes` ('name=value, name=value'), leaving out entries that change nothing."""
    configs = [("base", base), *[(f"base-seed{seed}", replace(base, seed=seed)) for seed in BASE_SEEDS]]
    for change in changes:
        if any(_current(base, name) != value for name, value in change.items()):
            config = base
            for name, value in change.items():
                config = _changed(config, name, value)
            configs.append((", ".join(f"{name}={value}" for name, value in change.items()), config))
    return configs


def run_sweep(sweep: Sweep, progress: bool = False) -> list[dict]:
    """Trains (or reuses) every configuration of `one_at_a_time`; returns one row per run with its status: 'ok',
    'diverged' (NaN loss, or a loss that rose), or 'at chance' (see `run_status`), and its verdict."""
    if not all(config.validation for config in sweep.configs().values()):
        raise ConfigError(f"sweep {sweep.prefix} chooses settings, so each of its runs measures on the validation "
                          "split, never on the test split: give its base validation=True")
    rows = []
    for label, run_name, config in sweep.runs():
        row = {"change": label}
        try:
            result = run_experiment(config, run_name, resume=True, progress=progress, weights=False)
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


def sweep_table(rows: list[dict]) -> list[tuple]:
    """Returns the rows of `run_sweep` as table rows (SWEEP_HEADERS), best first, failed runs last."""
    ordered = sorted(rows, key=lambda r: -r["test_acc"] if not math.isnan(r["test_acc"]) else math.inf)
    return [(r["change"], r["test_acc"], r["vs_base"], r["train_loss"], r["seconds"], r["status"], r["verdict"])
            for r in ordered]


def judge_claims(rows: list[dict], sweep: Sweep) -> list[tuple[str, str, str]]:
    """Returns (claim, what the rows measured, verdict) per claim of `sweep`: 'confirmed', 'contradicted' (a change
    did the opposite beyond the seed spread) or 'inconclusive (within the seed spread)', each followed by the budget
    it was measured at ('at 3 epochs'). rows: from `run_sweep`."""
    by_change = {row["change"]: row for row in rows}
    judged = []
    for claim in sweep.claims:
        tested = [by_change[change] for change in claim.changes]
        verdicts = [row["verdict"] for row in tested]
        measured = "; ".join(f"{row['change']}: {row['verdict']}" if math.isnan(row["test_acc"]) else
                             f"{row['change']}: {row['test_acc']:.2f} % ({row['vs_base']:+.2f}, {row['verdict']})"
                             for row in tested)
        epochs, why = claim.untested_below
        if sweep.base.epochs < epochs:
            verdict = f"not tested: {why}; no verdict"
        elif "better" in verdicts:
            verdict = "contradicted"
        elif claim.expected == "no better" or all(v in FAILED for v in verdicts):
            verdict = "confirmed"
        else:
            verdict = "inconclusive (within the seed spread)"
        judged.append((claim.text, measured, verdict if verdict.startswith("not tested") else
                       f"{verdict} at {sweep.base.epochs} epochs"))
    return judged
