"""The results registry: every run folder's config.json and metrics.json, summarised per protocol.

A protocol is a preset's name; its runs are named after it, with an optional RNG-seed suffix: q1.3-convnet,
q1.3-convnet-seed1 and q1.3-convnet-seed2 are three seeds of q1.3-convnet. Smoke runs (smoke-*) never enter the
table, accuracies on generated data are not reported, and a run that is being trained is shown as in progress.
The 2023 reference report's number stands only beside the preset that is its protocol (same net, epochs and recipe).

`WHAT_WORKED` is the ladder from the reference report's recipes to ours, decided on the validation split: each rung
names every change it makes and is measured by two saved runs of presets (or a run and its re-evaluation, `python -m
cv_helpers.workbench evaluate`), read against the seed spread. `ON_TEST` measures the chosen recipes, retrained on
all 50,000 training images, on the test split.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from ..config import run_name_for, runs_dir
from ..data import data_name
from ..files import read_json
from ..history import History, minutes_to_accuracy
from ..tables import save_table
from .experiment import evaluation_file, evaluation_views, preset_of
from .presets import PRESETS
from .runs import in_progress_text, is_complete

# The 2023 reference report's numbers (test accuracy in %), by the preset that is its protocol.
REPORT_RESULTS = {"q1.3-mlp": 11.0, "q1.3-convnet": 22.0, "q1.4-mlp": 22.0, "q1.4-convnet": 56.0,
                  "q2-finetune": 82.58, "q2-finetune-e60": 82.67}
SPLIT_NOTE = ("Test accuracy on the data pack's own deterministic, class-balanced CIFAR-100 split (not the "
              "official test membership), so our numbers compare in kind, not digit for digit, with the reference "
              "report's.")
VALIDATION_NOTE = ("Validation accuracy on 5,000 of the 50,000 training images (50 per class) held out, the nets "
                   "trained on the other 45,000: the runs that choose, never compared with the reference report's.")


@dataclass
class RunRecord:
    """One finished run as saved on disk."""

    name: str
    config: dict
    metrics: dict

    @property
    def protocol(self) -> str:
        return preset_of(self.name)

    @property
    def command(self) -> str:
        """The command that reproduces this run."""
        seed = f" --seed {self.config['seed']} --run-name {self.name}" if self.name != self.protocol else ""
        return f"python -m cv_helpers.workbench train --preset {self.protocol}{seed}"

    @property
    def test_acc(self) -> float:
        return float(self.metrics["final_test_acc"])


def load_runs(folder: Path | None = None) -> list[RunRecord]:
    """Returns every non-smoke run of a preset under runs/ whose metrics cover all its epochs, sorted by name.

    Reads only: a run that is being trained is neither waited for nor written to."""
    folder, records = folder or runs_dir(), []
    for run_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
        if run_dir.name.startswith(("smoke-", ".")) or not is_complete(run_dir):
            continue
        records.append(RunRecord(run_dir.name, read_json(run_dir / "config.json"),
                                 read_json(run_dir / "metrics.json")))
    return [r for r in records if r.protocol in PRESETS]


def summarise(records: list[RunRecord], folder: Path | None = None) -> list[list]:
    """Returns one row per protocol: the reference report's number (for its own protocol only), ours (mean, spread,
    seeds), epochs, time, device, data, the split it is measured on (test, or validation for the runs that choose), and
    the command that reproduces it."""
    folder, rows = folder or runs_dir(), []
    for protocol in [name for name in PRESETS if any(r.protocol == name for r in records)]:
        group = [r for r in records if r.protocol == protocol]
        real = [r for r in group if "generated" not in r.metrics.get("data_source", "cifar100")]
        accuracies = [r.test_acc for r in real]
        mean = f"{statistics.mean(accuracies):.2f}" if accuracies else "n/a (generated data only)"
        spread = f"± {statistics.stdev(accuracies):.2f}" if len(accuracies) > 1 else ""
        busy = [text for r in group if (text := in_progress_text(folder, r.name))]
        report_number = REPORT_RESULTS.get(protocol)
        rows.append([protocol, f"{report_number:.2f}" if report_number is not None else "", mean, spread,
                     len(accuracies), group[0].config["epochs"],
                     f"{statistics.mean(r.metrics['train_seconds'] for r in group) / 60:.1f}",
                     group[0].metrics.get("device", ""), data_name(group[0].metrics.get("data_source", "cifar100"),
                                                                   group[0].metrics["train_size"],
                                                                   group[0].metrics["test_size"]),
                     group[0].metrics.get("evaluated_on", "test"), "retrain " + busy[0] if busy else "",
                     f"`{group[0].command}`"])
    return rows


@dataclass(frozen=True)
class Change:
    """One rung of the ladder: `before` and `after` name a run (its final accuracy) or `run:plain` /
    `run:tta-flip` / `run:tta-flip-shift1` (its checkpoint re-evaluated without flip test-time augmentation, with
    it, or with it over shifted copies too). `change` names every setting the rung changes. On the validation
    ladder `spread` names the 3-seed protocol whose seed spread the difference is read against, `decision` says
    what the ladder did with the change, and `why` (a mechanism) is shown only for a difference beyond the spread."""

    change: str
    before: str
    after: str
    why: str = ""
    spread: str = ""
    decision: str = ""


# The seed spreads: each segment's base protocol trained with 3 RNG seeds on the validation split.
MLP_SPREAD, FIGURE6_SPREAD, Q3_SPREAD = "q1.4-val-mlp-base", "q1.4-val-figure6-base", "q3-e4-val"
MIN_SPREAD = 0.5    # points: 3 seeds estimate a spread coarsely, so no smaller one is trusted

# The ladder from the reference report's recipes to ours, decided on the validation split (45,000 training images,
# 5,000 held out): each rung the same budget on both sides.
WHAT_WORKED = [
    Change("MLP-4, 4 changes at once: Adam -> AdamW with weight decay 1e-4 -> 0.05, constant lr 1e-3 -> "
           "one-cycle to 2e-3, label smoothing 0.1, 20 -> 30 epochs; the reference report's augmentation kept",
           "q1.4-mlp-val", "ablation-mlp-recipe-val",
           "decoupled weight decay and an annealed learning rate let a higher rate train without noise at the end",
           MLP_SPREAD, "kept, as one package (its four changes were not separated)"),
    Change("MLP-4: no augmentation instead of flip + crop + colour jitter", "ablation-mlp-recipe-val",
           "ablation-mlp-no-augmentation-val",
           "an MLP has no translation invariance: each shifted copy is a new pattern to fit, so it underfits",
           MLP_SPREAD, "kept: no augmentation, until the next rung"),
    Change("MLP-4: horizontal flip only, instead of no augmentation", "ablation-mlp-no-augmentation-val",
           "q1.4-mlp-plus-val:plain",
           "a mirrored photo is as likely as the original and moves no pixel content across the image",
           MLP_SPREAD, "kept"),
    Change("MLP-4: flip test-time augmentation (same weights)", "q1.4-mlp-plus-val:plain",
           "q1.4-mlp-plus-val",
           "averaging the image's and its mirror's probabilities cancels part of the left-right errors",
           MLP_SPREAD, "kept: it costs one more forward pass at test time only"),
    Change("ConvNet-BN, 5 changes at once (15 epochs both): constant lr 0.01 -> one-cycle to 0.05, label "
           "smoothing 0.1, weight decay 1e-4 -> 5e-4, the reference report's augmentation -> flip + crop only, batch "
           "128 -> 64", "q1.4-convnet-e15-val", "q1.4-convnet-plus-val:plain",
           "a warm-up allows a 5x higher peak rate and annealing to 0 settles the weights; the net under-fits at 15 "
           "epochs, so twice the updates and no colour jitter help", FIGURE6_SPREAD,
           "kept, as one package (its five changes were not separated)"),
    Change("ConvNet-BN: flip test-time augmentation (same weights)", "q1.4-convnet-plus-val:plain",
           "q1.4-convnet-plus-val", "as for the MLP", FIGURE6_SPREAD,
           "kept: it costs one more forward pass at test time only"),
    Change("4 epochs both, 3 changes at once: the Q3 net (five convolutions, two with identity shortcuts, "
           "max-pooling, global max-pooling) instead of ConvNet-BN, peak lr 0.05 -> 0.1, batch 64 -> 128",
           "q1.4-convnet-plus-e4-val", "q3-e4-val",
           "three more 3x3 layers see larger contexts and the shortcuts keep them easy to optimise; global pooling "
           "replaces the 4.2M-parameter fc1, so the parameters go to convolutions instead", Q3_SPREAD,
           "kept, as one package (the net was not tried at ConvNet-BN's lr and batch)"),
    Change("Q3 net, 4 epochs: progressive resizing (epochs 1-3 on 24 px images, the last on 32 px)", "q3-e4-val",
           "q3-e4-low-res-val", "a 24 px image costs (24 / 32)^2 = 0.56x the convolutions of a 32 px one; training "
           "on smaller images than the test's costs accuracy that one epoch at 32 px only partly recovers",
           Q3_SPREAD, "kept for time: the fast presets trade these points for 0.56x the convolutions of 3 epochs"),
    Change("Q3 net, 4 epochs: label smoothing 0.2 instead of 0.1", "q3-e4-low-res-val", "q3-e4-ls02-val",
           "stronger smoothing keeps the logits from growing on the over-confident classes", Q3_SPREAD,
           "kept: the rungs after it were built on it"),
    Change("Q3 net, 4 epochs: conv1 starts as the PCA whitening of 3x3 training patches (trainable)",
           "q3-e4-ls02-val", "q3-e4-whitened-val", "the later layers see decorrelated, equal-variance inputs from "
           "the first step, which the first epochs otherwise spend learning; free at training time", Q3_SPREAD,
           "kept"),
    Change("Q3 net, 4 epochs: epochs 1-3 on 20 px images instead of 24 px", "q3-e4-whitened-val", "q3-e4-20px-val",
           "the further the training images' size from the test's, the larger the mismatch the last epoch at 32 px "
           "has to repair", Q3_SPREAD, "dropped"),
    Change("Q3 net, 4 epochs: batch 64 (peak lr 0.05) instead of 128 (0.1)", "q3-e4-whitened-val",
           "q3-e4-batch64-val", "twice the steps for the same images", Q3_SPREAD,
           "dropped: no effect shown for twice the optimizer steps"),
    Change("Q3 net, 4 epochs: widths 64/160/320 instead of 64/192/384", "q3-e4-whitened-val", "q3-e4-narrow-val",
           "at this budget the narrower net is short of capacity", Q3_SPREAD,
           "kept for time: 0.74x the convolutions"),
    Change("Q3 net, 4 epochs: final evaluation also on the mirror pairs shifted 1 px diagonally either way (6 views "
           "instead of 2; same weights)", "q3-e4-narrow-val", "q3-e4-narrow-val:tta-flip-shift1",
           "a CNN's answer changes with a 1 px shift; averaging over shifts cancels part of that", Q3_SPREAD,
           "kept: four more passes over the test images, once"),
]

# The recipes the ladder chose, each retrained on all 50,000 training images and measured once on the test split,
# and the budgets beside them. These rows choose nothing.
ON_TEST = [
    Change("MLP-4: the improved recipe (AdamW, one-cycle lr, label smoothing, flip only, 30 epochs, flip "
           "TTA; chosen by the validation ladder) instead of the reference report's", "q1.4-mlp", "q1.4-mlp-plus"),
    Change("ConvNet-BN, 15 epochs: the improved recipe (chosen by the validation ladder) instead of "
           "the reference report's", "q1.4-convnet-e15", "q1.4-convnet-plus"),
    Change("ConvNet-BN, the reference report's recipe: 50 epochs (as written) instead of 15", "q1.4-convnet-e15",
           "q1.4-convnet"),
    Change("4 changes at once: the Q3 net, peak lr 0.05 -> 0.1, batch 64 -> 128, 15 -> 20 epochs (q3-best)",
           "q1.4-convnet-plus", "q3-best"),
    Change("Q3 net: flip test-time augmentation (same weights)", "q3-best:plain", "q3-best"),
    Change("Q3 net: 20 epochs instead of 4, the same recipe", "q3-e4", "q3-best"),
    Change("Q3 net, 23 epochs (q3-fast): 6 views instead of 2 at the final evaluation (same weights)",
           "q3-fast-flip-tta", "q3-fast"),
]


def seed_spread(protocol: str, folder: Path | None = None) -> float | None:
    """Returns the spread (points) within which a difference is read as no effect: twice the standard deviation of
    the final accuracies of `protocol` and its -seed1 and -seed2 runs, at least MIN_SPREAD; None if a seed's run
    is missing."""
    accuracies = [measured_accuracy(name, folder) for name in (protocol, f"{protocol}-seed1", f"{protocol}-seed2")]
    if None in accuracies:
        return None
    return max(MIN_SPREAD, 2 * statistics.stdev(accuracies))


def reading(delta: float, spread: float) -> str:
    """Returns what a difference of `delta` points says against a seed spread of `spread` points."""
    if abs(delta) < spread:
        return "within the seed spread: no effect shown"
    return "gain beyond the seed spread" if delta > 0 else "loss beyond the seed spread"


def measured_accuracy(reference: str, folder: Path | None = None) -> float | None:
    """Returns the test accuracy (%) that `reference` names (see `Change`), or None if it was not measured."""
    folder = folder or runs_dir()
    run_name, _, evaluation = reference.partition(":")
    if evaluation:
        accuracy = read_json(evaluation_file(folder / run_name, *evaluation_views(evaluation))).get("test_acc")
    elif is_complete(folder / run_name):
        accuracy = read_json(folder / run_name / "metrics.json").get("final_test_acc")
    else:
        accuracy = None
    return None if accuracy is None else float(accuracy)


def training_minutes(reference: str, folder: Path | None = None) -> float:
    """Returns the wall time in minutes (training and evaluation) of the run that `reference` names (see `Change`;
    a re-evaluation names the same run, so the same time)."""
    run_name = reference.partition(":")[0]
    return float(read_json((folder or runs_dir()) / run_name / "metrics.json")["train_seconds"]) / 60


def reproduce_command(reference: str) -> str:
    """Returns the commands that remake the measurement `reference` names (see `Change`)."""
    run_name, _, evaluation = reference.partition(":")
    commands = [f"python -m cv_helpers.workbench train --preset {run_name}"]
    if evaluation:
        tta_flip, tta_translate = evaluation_views(evaluation)
        switch = "--tta-flip" if tta_flip else "--no-tta-flip"
        switch += f" --tta-translate {tta_translate}" if tta_translate else ""
        commands.append(f"python -m cv_helpers.workbench evaluate {run_name} {switch}")
    return "; ".join(commands)


def _pair(step: Change, folder: Path | None) -> tuple[float, float, str, str] | None:
    """Returns (before, after, the two runs' minutes, the commands that remake them), or None if unmeasured."""
    before, after = measured_accuracy(step.before, folder), measured_accuracy(step.after, folder)
    if before is None or after is None:
        return None
    minutes = " -> ".join(f"{training_minutes(r, folder):.1f}" for r in (step.before, step.after))
    commands = " and ".join(f"`{reproduce_command(r)}`" for r in (step.before, step.after))
    return before, after, minutes, commands


def what_worked(folder: Path | None = None) -> list[list]:
    """Returns one row per measured rung of the validation ladder: change, validation accuracy before and after
    (%), delta and seed spread (points), the reading, the decision, why (only beyond the spread), the two runs'
    minutes and the commands that reproduce them. A rung whose spread is unmeasured is left out."""
    rows, spreads = [], {protocol: seed_spread(protocol, folder) for protocol in {s.spread for s in WHAT_WORKED}}
    for step in WHAT_WORKED:
        pair, spread = _pair(step, folder), spreads[step.spread]
        if pair is not None and spread is not None:
            before, after, minutes, commands = pair
            read = reading(after - before, spread)
            why = "" if read.startswith("within") else step.why
            rows.append([step.change, f"{before:.2f}", f"{after:.2f}", f"{after - before:+.2f}", f"{spread:.2f}",
                         read, step.decision, why, minutes, commands])
    return rows


WHAT_WORKED_HEADERS = ["change", "before (%)", "after (%)", "delta (points)",
                       "seed spread (points)", "reading", "decision", "why", "minutes (before -> after)",
                       "reproduce"]
LADDER_NOTE = ("Validation split: 5,000 of the 50,000 training images (50 per class) held out, the nets trained on "
               "the other 45,000; the test split is never read. The seed spread is twice the standard deviation of "
               "the segment's base recipe over 3 RNG seeds (at least 0.5 points); a difference within it is read "
               "as no effect and given no mechanism. Minutes: on the processor each run names in its metrics.json.")


def on_test(folder: Path | None = None) -> list[list]:
    """Returns one row per measured comparison of ON_TEST: change, test accuracy before and after (%), delta
    (points), the two runs' minutes and the commands that reproduce them."""
    rows = []
    for step in ON_TEST:
        if (pair := _pair(step, folder)) is not None:
            before, after, minutes, commands = pair
            rows.append([step.change, f"{before:.2f}", f"{after:.2f}", f"{after - before:+.2f}", minutes, commands])
    return rows


ON_TEST_HEADERS = ["change", "test before (%)", "test after (%)", "delta (points)", "minutes (before -> after)",
                   "reproduce"]
ON_TEST_NOTE = ("Test split, every run trained on all 50,000 training images, one seed (seed 0). These rows choose "
                "nothing: each measures a recipe the validation ladder chose, or a budget. " + SPLIT_NOTE)

HEADERS = ["protocol", "2023 reference report (%)", "ours (%)", "spread", "seeds", "epochs", "minutes per run",
           "device", "data", "measured on", "status", "reproduce"]


# Time-to-accuracy targets: the 2023 reference report's best CIFAR-100 result (56 %, 50 epochs) and the Q3 goal.
ACCURACY_TARGETS = (56.0, 70.0)
TIME_TO_ACCURACY_HEADERS = ["preset", "epochs", "minutes (all epochs)", "final test accuracy (%)",
                            *(f"minutes to {target:g} %" for target in ACCURACY_TARGETS), "device"]


def time_to_accuracy(run_names: list[str], folder: Path | None = None) -> list[list]:
    """Returns one row per finished run: preset, epochs, wall minutes (training and evaluation), final test
    accuracy, the minutes until each of ACCURACY_TARGETS was first reached ('not reached' if never), and the
    processor it was timed on. In smoke mode it reads the smoke runs of those names."""
    rows = []
    for name in run_names:
        metrics = read_json((folder or runs_dir()) / run_name_for(name) / "metrics.json")
        history = History.from_dict(metrics["history"])
        reached = [minutes_to_accuracy(history, target) for target in ACCURACY_TARGETS]
        rows.append([name, len(history.test_acc), f"{sum(history.seconds) / 60:.1f}", f"{history.test_acc[-1]:.2f}",
                     *("not reached" if m is None else f"{m:.1f}" for m in reached), metrics.get("device", "")])
    return rows


def write_results_table(folder: Path | None = None) -> str:
    """Writes report/tables/results.md and .csv (every protocol), results_on_test and results_on_validation (those
    measured on each split), what_worked (the validation ladder) and what_worked_on_test, from the run folders;
    returns the results Markdown."""
    save_table("what_worked", WHAT_WORKED_HEADERS, what_worked(folder), note=LADDER_NOTE)
    save_table("what_worked_on_test", ON_TEST_HEADERS, on_test(folder), note=ON_TEST_NOTE)
    rows = summarise(load_runs(folder), folder)
    for split, note in (("test", SPLIT_NOTE), ("validation", VALIDATION_NOTE)):
        save_table(f"results_on_{split}", HEADERS, [row for row in rows if row[HEADERS.index("measured on")] == split],
                   note=note)
    return save_table("results", HEADERS, rows, note=SPLIT_NOTE)
