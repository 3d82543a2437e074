"""Q1.4 tuning with Optuna: the 2023 reference report's knobs as a search space, pruned trials, storage shared by
many workers.

Storage: a journal file under runs/ by default (nothing to install), or any SQLAlchemy URL
(`postgresql://user@host/db`) so that workers on several machines fill one study. Optuna gives every trial a
unique number in the storage, so a second worker on the same study only adds trials.
"""
from __future__ import annotations

import math
import os
import re
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import sqlalchemy

from ..config import runs_dir
from ..errors import ConfigError, TrainingDiverged
from ..history import FitResult, run_status
from ..models import MODELS, has_hidden_size
from ..tables import save_table
from ..train_config import OPTIMIZERS, TrainConfig
from ..transforms import AUGMENTATIONS
from ..validation import check_choice, check_name
from ..viz import plot_importances, plot_trial_curves, plot_trial_history, save_figure
from .experiment import run_experiment

# Optuna's INFO lines are ANSI-coloured log records; `run_study` prints one plain line per trial instead.
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class SearchSpace:
    """The knobs the 2023 reference report tuned by hand; one-element choices fix a knob."""

    models: tuple[str, ...] = ("convnet",)
    optimizers: tuple[str, ...] = ("sgd", "adam", "rmsprop", "adagrad")
    lr: tuple[float, float] = (1e-4, 0.5)                  # sampled on a log scale
    batch_sizes: tuple[int, ...] = (64, 128)
    weight_decay: tuple[float, float] = (1e-6, 1e-2)       # log scale
    momentum: tuple[float, float] = (0.5, 0.99)
    hidden_sizes: tuple[int, ...] = (64, 512)              # MLPs only
    augmentations: tuple[str, ...] = ("q1.3", "q1.4", "none")
    epochs: tuple[int, ...] = (5,)

    def validate(self) -> "SearchSpace":
        """Returns self; raises ConfigError for empty choices, inverted ranges or unknown names."""
        for name, allowed in (("models", MODELS), ("optimizers", OPTIMIZERS), ("augmentations", AUGMENTATIONS)):
            values = getattr(self, name)
            if not values:
                raise ConfigError(f"search space: {name} is empty; give at least one of {', '.join(allowed)}")
            for value in values:
                check_choice(name, value, allowed, context="search space: ")
        for name in ("batch_sizes", "hidden_sizes", "epochs"):
            values = getattr(self, name)
            if not values or any(int(v) != v or v < 1 for v in values):
                raise ConfigError(f"search space: {name} must be a non-empty list of whole numbers >= 1, got {values}")
        for name, (low, high) in (("lr", self.lr), ("weight_decay", self.weight_decay), ("momentum", self.momentum)):
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise ConfigError(f"search space: {name} range ({low}, {high}) needs low <= high")
        if self.lr[0] <= 0 or self.weight_decay[0] <= 0:
            raise ConfigError("search space: lr and weight_decay ranges are log-scaled and must start above 0")
        if not (0 <= self.momentum[0] and self.momentum[1] < 1):
            raise ConfigError(f"search space: momentum range {self.momentum} must lie in [0, 1)")
        return self


def suggest_config(trial: optuna.Trial, space: SearchSpace, base: TrainConfig) -> TrainConfig:
    """Returns `base` with the trial's choices for every knob of `space`."""
    config = replace(base, model_kwargs=dict(base.model_kwargs),
                     model=trial.suggest_categorical("model", space.models),
                     optimizer=trial.suggest_categorical("optimizer", space.optimizers),
                     lr=trial.suggest_float("lr", *space.lr, log=True),
                     batch_size=trial.suggest_categorical("batch_size", space.batch_sizes),
                     weight_decay=trial.suggest_float("weight_decay", *space.weight_decay, log=True),
                     augmentation=trial.suggest_categorical("augmentation", space.augmentations),
                     epochs=trial.suggest_categorical("epochs", space.epochs))
    if config.optimizer in ("sgd", "rmsprop"):
        config.momentum = trial.suggest_float("momentum", *space.momentum)
    if has_hidden_size(config.model):
        config.model_kwargs["hidden_size"] = trial.suggest_categorical("hidden_size", space.hidden_sizes)
    return config


def open_storage(url: str | None) -> optuna.storages.BaseStorage:
    """Returns the study storage: a journal file (default runs/optuna-journal.log or a *.log path), or an
    SQLAlchemy URL. A storage that cannot be opened is a one-line ConfigError."""
    url = url or str(runs_dir() / "optuna-journal.log")
    try:
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
        return _open_database(url)
    except Exception as err:  # SQLAlchemy and drivers raise many types; the user needs the URL and the reason
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot open study storage {without_password(url, url)!r} "
                          f"({without_password(reason, url)}); check the URL, that the database "
                          "server runs and that its driver is installed (PostgreSQL: pip install "
                          "'psycopg[binary]')") from None


def without_password(text: str, url: str) -> str:
    """Returns `text` with the password of `url` (scheme://user:PASSWORD@host/...) shown as ***, so that no
    message or log carries it."""
    match = re.match(r"[\w+.-]+://[^/:@]*:([^/@]+)@", url)
    return text.replace(match.group(1), "***") if match else text


def _open_database(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Returns an RDB storage; retries when two workers create the tables of a new database at the same time."""
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except sqlalchemy.exc.IntegrityError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Returns the median pruner ('median') or successive halving ('halving')."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)  # epoch 1 is too noisy to judge
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    raise ConfigError(f"unknown pruner {name!r}; choose median or halving")


def create_or_load_study(study_name: str, storage: str | None = None, seed: int = 0,
                         pruner: str = "median") -> optuna.Study:
    """Returns the study, creating it if new, with a seeded TPE sampler; workers call this with the same name.
    The name must be a safe file name (it names the study's tables and figures). Loading an existing study writes
    nothing to its storage (create_study would log another creation into a journal file)."""
    check_name(study_name, "study name")
    opened, sampler = open_storage(storage), optuna.samplers.TPESampler(seed=seed)
    try:
        return optuna.load_study(study_name=study_name, storage=opened, sampler=sampler, pruner=make_pruner(pruner))
    except KeyError:     # a new study; another worker may create it at the same moment, hence load_if_exists
        return optuna.create_study(study_name=study_name, storage=opened, direction="maximize", sampler=sampler,
                                   pruner=make_pruner(pruner), load_if_exists=True)


MIN_COMPLETE_FOR_IMPORTANCES = 10   # fewer complete trials give importances that change with every added trial


def objective(trial: optuna.Trial, space: SearchSpace, base: TrainConfig) -> float:
    """Trains one suggested configuration; reports validation accuracy per epoch and is pruned when behind. Records
    the trial's status ('ok', 'diverged', 'at chance'; pruned trials are told by their state)."""
    config = suggest_config(trial, space, base)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")

    def report(progress: FitResult) -> None:
        trial.report(progress.history.test_acc[-1], progress.history.epochs)
        if trial.should_prune():
            raise optuna.TrialPruned()

    try:
        result = run_experiment(config, on_epoch_end=report, progress=False)
    except TrainingDiverged as err:
        trial.set_user_attr("status", "diverged")
        trial.set_user_attr("diverged", str(err))
        raise optuna.TrialPruned() from None
    trial.set_user_attr("status", run_status(result.history, len(result.class_names)))
    return result.test_acc


def run_study(study_name: str, trials: int, base: TrainConfig, space: SearchSpace = SearchSpace(),
              storage: str | None = None, seed: int = 0, pruner: str = "median", total: bool = False
              ) -> optuna.Study:
    """Validates the space and the base config, then adds `trials` trials to the study (shared with any other
    worker); with `total`, only as many as it takes to reach `trials` finished trials (a re-run adds nothing).
    A study chooses settings, so its trials are measured on the validation split: a base without it is refused."""
    space.validate()
    base.validate()
    if not base.validation:
        raise ConfigError("a study chooses settings, so it measures on the validation split, never on the test "
                          "split: give it a base with validation=True")
    study = create_or_load_study(study_name, storage, seed, pruner)
    finished = sum(t.state.is_finished() for t in study.trials)
    missing = trials - finished if total else trials
    if missing > 0:
        study.optimize(lambda trial: objective(trial, space, base), n_trials=missing, callbacks=[print_trial])
    else:
        print(f"reused study {study_name}: {finished} finished trials")
    return study


def print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Prints one line per finished trial: its number, status and accuracy (an Optuna callback)."""
    accuracy = f", validation accuracy {trial.value:.2f} %" if trial.value is not None else ""
    print(f"trial {trial.number}: {trial_status(trial)}{accuracy}", flush=True)


def trial_status(trial: optuna.trial.FrozenTrial) -> str:
    """Returns 'ok', 'diverged', 'at chance', 'pruned at epoch k' or the trial's state (e.g. 'RUNNING')."""
    if trial.user_attrs.get("status") == "diverged":
        return "diverged"
    if trial.state == optuna.trial.TrialState.PRUNED:
        return f"pruned at epoch {len(trial.intermediate_values)}"
    return trial.user_attrs.get("status", trial.state.name)


def trials_table(study: optuna.Study) -> tuple[list[str], list[list]]:
    """Returns (headers, rows): one row per trial with its status, accuracy, parameters and worker."""
    params = sorted({name for trial in study.trials for name in trial.params})
    headers = ["trial", "status", "validation accuracy (%)", "epochs run", *params, "worker"]
    rows = []
    for trial in study.trials:
        accuracy = trial.value if trial.value is not None else (
            trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else float("nan"))
        rows.append([trial.number, trial_status(trial), accuracy, len(trial.intermediate_values),
                     *[trial.params.get(p, "") for p in params], trial.user_attrs.get("worker", "")])
    return headers, rows


def trial_curves(study: optuna.Study) -> tuple[dict[int, list[float]], set[int]]:
    """Returns (trial -> validation accuracy per epoch, the trials stopped early: pruned or diverged) of the finished
    trials that reported at least one epoch."""
    finished = [t for t in study.trials if t.state.is_finished() and t.intermediate_values]
    curves = {t.number: [t.intermediate_values[epoch] for epoch in sorted(t.intermediate_values)] for t in finished}
    return curves, {t.number for t in finished if t.state != optuna.trial.TrialState.COMPLETE}


def parameter_importances(study: optuna.Study) -> dict[str, float]:
    """Returns fANOVA importances (seeded) of the parameters every complete trial has (momentum exists for SGD
    trials only) and that varied among them; empty with fewer than MIN_COMPLETE_FOR_IMPORTANCES complete trials
    (too few to say which setting mattered) or when they do not differ in accuracy (no variance to explain)."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < MIN_COMPLETE_FOR_IMPORTANCES or len({t.value for t in complete}) < 2:
        return {}
    shared = set.intersection(*(set(t.params) for t in complete))
    varied = [name for name in sorted(shared) if len({str(t.params[name]) for t in complete}) > 1]
    return {} if not varied else dict(optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=varied))


def describe_best_trials(study: optuna.Study, count: int = 5) -> str:
    """Returns lines that read a study: how many trials completed, were pruned or diverged, the `count` best
    complete ones with their settings, and how often each optimizer and augmentation appears among them."""
    complete = sorted((t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
                      key=lambda t: -t.value)
    statuses = [trial_status(t).split(" at ")[0] for t in study.trials]
    lines = [f"{len(study.trials)} trials: " + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))]
    best = complete[:count]
    for trial in best:
        settings = ", ".join(f"{name} {_shown(value)}" for name, value in sorted(trial.params.items()))
        lines.append(f"  trial {trial.number}: {trial.value:.2f} % ({settings})")
    for name in ("optimizer", "augmentation"):
        values = [str(t.params[name]) for t in best if name in t.params]
        if values:
            lines.append(f"{name} among the {len(best)} best: " +
                         ", ".join(f"{value} {values.count(value)}" for value in sorted(set(values))))
    return "\n".join(lines)


def _shown(value: object) -> str:
    return f"{value:.2g}" if isinstance(value, float) else str(value)


def write_study_report(study: optuna.Study) -> str:
    """Writes report/tables/tune_<study>.{md,csv} and three figures to report/figures/: the trial history, the
    accuracy per epoch of every trial, and the parameter importances (with MIN_COMPLETE_FOR_IMPORTANCES complete
    trials that differ; else a line says why there are none). Returns the table and that line."""
    headers, rows = trials_table(study)
    name = study.study_name
    markdown = save_table(f"tune_{name}", headers, rows)
    curves, stopped = trial_curves(study)
    save_figure(plot_trial_history(curves, stopped, f"{name}: validation accuracy per trial"),
                f"tune_{name}_history")
    save_figure(plot_trial_curves(curves, stopped, f"{name}: validation accuracy per epoch"), f"tune_{name}_epochs")
    importances = parameter_importances(study)
    if importances:
        save_figure(plot_importances(importances, len(curves) - len(stopped)), f"tune_{name}_importances")
        return markdown
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    return (f"{markdown}\nNo importances: {complete} complete trials, fewer than the "
            f"{MIN_COMPLETE_FOR_IMPORTANCES} that make them stable, or no differences to explain.\n")
