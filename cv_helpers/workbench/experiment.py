"""One training run from a `TrainConfig`, end to end.

    run_experiment: validate the config once -> load data -> build the network (or fine-tune a checkpoint)
    -> hold the run's lock -> fit (checkpoint.pt each epoch) -> metrics.json each epoch (runs.write_metrics)
    -> a retrain of a finished run replaces the old folder only once it is complete.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoint import model_from_checkpoint
from ..config import (REPO_ROOT, by_mode, describe_device, memory_layout, resolve_device, run_name_for, runs_dir,
                     seed_everything)
from ..data import (CIFAR100, STL10, STL10_CLASSES, ArraySplit, CIFAR100_loader, STL10_Dataset, load_cifar100,
                    load_cifar100_validation, load_stl10, stl10_source)
from ..errors import CheckpointError, ConfigError
from ..fast_loader import FastLoader
from ..files import read_json, write_json
from ..finetune import adapt_for_finetuning, finetuned_kwargs, freeze_all_but_new_layers
from ..history import FitResult, History
from ..models import build_model, count_parameters, size_kwargs
from ..train import fit, per_class_accuracy, predict
from ..train_config import TrainConfig, differing_settings
from ..transforms import get_augmentation, make_test_transform, make_train_transform
from ..whitening import whiten_first_conv
from .presets import PRESETS, get_preset
from .runs import RunLock, is_complete, publish, retrain_folder, run_folder, write_config, write_metrics

EVAL_BATCH_SIZE = 1000
SEEDS = (0, 1, 2)   # the seeds every published spread is taken over


@dataclass
class RunResult:
    """What a run leaves behind in memory: the trained network and its measurements."""

    model: nn.Module | None        # None when the run was read from its files (see `read_finished_run`)
    history: History
    per_class: np.ndarray          # (num_classes,) accuracy in percent
    predicted: np.ndarray | None   # (N_test,) predicted labels; None when read from the files
    true: np.ndarray | None        # (N_test,) true labels; None when read from the files
    class_names: list[str]
    run_dir: Path | None
    config: TrainConfig
    epochs_trained: int            # 0 when a finished run was reused
    parameters: int                # trainable parameters of the network

    @property
    def test_acc(self) -> float:
        """The last epoch's accuracy on the split the run is measured on (see `evaluated_on`), in percent."""
        return self.history.test_acc[-1]

    @property
    def evaluated_on(self) -> str:
        """'validation' for a run that holds out the validation split (its "test" numbers are measured there),
        else 'test'."""
        return evaluated_on(self.config)


def evaluated_on(config: TrainConfig) -> str:
    """Returns the split a run of `config` is measured on: 'validation' or 'test'."""
    return "validation" if config.validation else "test"


def load_splits(dataset: str, root: Path | str | None = None,
                validation: bool = False) -> tuple[ArraySplit, ArraySplit, str, list[str]]:
    """Returns (train split, evaluation split, label key, class names) of 'cifar100' (fine labels) or 'stl10'. The
    evaluation split is the test split, or with `validation` (CIFAR-100 only) the images held out of the training
    split (`load_cifar100_validation`), which the returned training split then lacks."""
    if dataset == "stl10":
        train, test = load_stl10(True, root), load_stl10(False, root)
        return train, test, "labels", train.meta["label_names"]
    train, test = load_cifar100_validation(root) if validation else (load_cifar100(True, root),
                                                                     load_cifar100(False, root))
    return train, test, "fine_labels", train.meta["fine_label_names"]


def make_test_loader(test: ArraySplit, label_key: str, device: torch.device) -> FastLoader:
    """Returns the evaluation loader: the test split on `device`, in order, large batches, no augmentation."""
    return FastLoader(test.images, test.labels[label_key], EVAL_BATCH_SIZE, device=device)


def make_loaders(config: TrainConfig, train: ArraySplit, test: ArraySplit, label_key: str,
                 device: torch.device, root: Path | str | None = None) -> tuple:
    """Returns (train loader, test loader): the fast tensor path or the course's PIL DataLoader path."""
    if config.loader == "fast":
        return (FastLoader(train.images, train.labels[label_key], config.batch_size, shuffle=True,
                           augmentation=get_augmentation(config.augmentation), device=device, seed=config.seed),
                make_test_loader(test, label_key, device))
    dataset_cls = STL10_Dataset if config.dataset == "stl10" else CIFAR100_loader
    size = train.images.shape[1]
    train_set = dataset_cls(root, train=True, transform=make_train_transform(config.augmentation, size))
    test_set = dataset_cls(root, train=False, transform=make_test_transform())
    generator = torch.Generator().manual_seed(config.seed)
    return (DataLoader(train_set, config.batch_size, shuffle=True, num_workers=2, generator=generator),
            DataLoader(test_set, EVAL_BATCH_SIZE, num_workers=0))


def checkpoint_hint(init_from: str) -> str:
    """Returns what a student runs to create the checkpoint that `init_from` names."""
    command = (f"`python -m cv_helpers.workbench train --preset {init_from}`" if init_from in PRESETS
               else f"train the run {init_from!r}")
    return f"train the CIFAR-100 network first: {command}"


def build_network(config: TrainConfig, num_classes: int, image_size: int,
                  train_images: np.ndarray | None = None) -> tuple[nn.Module, dict]:
    """Returns (network, the keyword arguments that rebuild it); fine-tunes from `config.init_from` if set; with
    `config.whitened_init`, conv1 starts as the patch whitening of `train_images` (N, H, W, 3) uint8."""
    if config.init_from:
        model, state = model_from_checkpoint(resolve_checkpoint(config.init_from),
                                             hint=checkpoint_hint(config.init_from))
        adapt_for_finetuning(model, num_classes, image_size)
        if config.freeze_pretrained:
            freeze_all_but_new_layers(model)
        return model, finetuned_kwargs(state["model_name"], state["model_kwargs"], num_classes, image_size)
    kwargs = network_kwargs(config, num_classes, image_size)
    model = build_model(config.model, **kwargs)
    if config.whitened_init:
        if train_images is None:
            raise ConfigError("whitened_init needs the training images to whiten; pass train_images")
        whiten_first_conv(model, train_images)
    return model, kwargs


def data_source(dataset: str, root: Path | str | None) -> str:
    """Returns what the run's data is: 'cifar100', or the STL-10 source ('real sample', 'official archive', ...)."""
    return f"stl10 {stl10_source(root)}" if dataset == "stl10" else "cifar100"


def resolve_checkpoint(init_from: str) -> Path:
    """Returns the checkpoint path of `init_from`: a file path, or a run name under runs/ (smoke-prefixed in
    smoke mode)."""
    if init_from.endswith(".pt"):
        return Path(init_from)
    return run_folder(init_from) / "checkpoint.pt"


def start_point(init_from: str) -> dict:
    """Returns what identifies the weights a fine-tuning starts from: for a run name, the run and a SHA-256 of its
    per-epoch history (a retrain that reproduces the run has the same one; one on another CPU kind, or on changed
    code, does not); for a checkpoint file, its path."""
    if init_from.endswith(".pt"):
        return {"checkpoint": init_from}
    history = read_json(resolve_checkpoint(init_from).parent / "metrics.json").get("history", {})
    measured = {key: values for key, values in sorted(history.items()) if key != "seconds"}
    return {"run": init_from, "history_sha256": hashlib.sha256(json.dumps(measured).encode()).hexdigest()}


def starts_from_current(run_dir: Path, init_from: str) -> bool:
    """Returns True unless `run_dir` is a fine-tuning whose metrics.json names another start point than
    `init_from`'s present one (its start was trained again with other numbers since)."""
    return not init_from or read_json(run_dir / "metrics.json").get("start_point") == start_point(init_from)


def git_revision() -> str:
    """Returns the current git commit (with '+dirty' for uncommitted changes to anything but the results in runs/
    and report/, which every training rewrites), or 'unknown'."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!runs",
                                ":!report"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_trained_model(run_name: str) -> tuple[nn.Module, dict]:
    """Returns (the network of a run's checkpoint, with its weights; the checkpoint dict); a missing checkpoint
    names the command that trains it."""
    return model_from_checkpoint(resolve_checkpoint(run_name), hint=checkpoint_hint(run_name))


def evaluation_file(run_dir: Path, tta_flip: bool, tta_translate: int = 0) -> Path:
    """Returns where `evaluate_run` writes a run's re-evaluation: evaluation-plain.json, evaluation-tta-flip.json or
    (with shifted copies too) evaluation-tta-flip-shift{tta_translate}.json."""
    views = "tta-flip" if tta_flip else "plain"
    return run_dir / f"evaluation-{views}{f'-shift{tta_translate}' if tta_translate else ''}.json"


def evaluation_views(name: str) -> tuple[bool, int]:
    """Returns (tta_flip, tta_translate) of a re-evaluation named as in its file name, without 'evaluation-' and
    '.json' ('plain', 'tta-flip', 'tta-flip-shift1'): the inverse of `evaluation_file`."""
    views, shifted, shift = name.partition("-shift")
    if views not in ("plain", "tta-flip") or (shifted and (views == "plain" or not shift.isdigit())):
        raise ConfigError(f"no re-evaluation is named {name!r}: use plain, tta-flip or tta-flip-shiftN")
    return views == "tta-flip", int(shift or 0)


def evaluate_run(run_name: str, tta_flip: bool, device: torch.device | str | None = None,
                 root: Path | str | None = None, tta_translate: int = 0) -> dict:
    """Re-evaluates a finished run's checkpoint on its test split, with or without flip test-time augmentation
    (and with `tta_translate` = t, over copies shifted t pixels diagonally too: 6 views); writes and returns
    {test_acc, test_loss, per_class_acc, tta_flip, tta_translate, checkpoint_epoch, ...} (see `evaluation_file`).

    The same weights measured both ways give the accuracy change that the augmentation alone brings. Without the
    checkpoint, the evaluation saved beside the finished run's last epoch is returned (a retrain replaces the whole
    run folder, so a saved evaluation always belongs to the run's weights). A run that is being trained is refused
    at once (RunBusy), never waited for.
    """
    if tta_translate and not tta_flip:
        raise ConfigError("shifted copies (--tta-translate) are averaged with the mirror images: add --tta-flip")
    run_dir = run_folder(run_name)
    with RunLock(run_dir.parent, run_dir.name, action="evaluated"):
        checkpoint = run_dir / "checkpoint.pt"
        saved = read_json(evaluation_file(run_dir, tta_flip, tta_translate))
        if not checkpoint.is_file() and is_complete(run_dir) and \
                saved.get("checkpoint_epoch") == read_json(run_dir / "config.json")["epochs"]:
            return saved
        model, state = model_from_checkpoint(checkpoint, hint=f"train it first: `python -m cv_helpers.workbench train "
                                                              f"--run-name {run_name} ...`")
        config = TrainConfig.from_dict(state["config"])
        device = resolve_device(device)
        _, test, label_key, class_names = load_splits(config.dataset, root, config.validation)
        predicted, true, test_loss = predict(model.to(device), make_test_loader(test, label_key, device), tta_flip,
                                             tta_translate)
        evaluation = {
            "test_acc": 100.0 * float((predicted == true).mean()), "test_loss": test_loss, "tta_flip": tta_flip,
            "tta_translate": tta_translate,
            "per_class_acc": dict(zip(class_names, per_class_accuracy(predicted, true, len(class_names)).tolist())),
            "checkpoint_epoch": state["epoch"], "device": describe_device(device), "git_revision": git_revision(),
            "test_size": len(test), "data_source": data_source(config.dataset, root),
            "evaluated_on": evaluated_on(config),
        }
        write_json(evaluation_file(checkpoint.parent, tta_flip, tta_translate), evaluation)
    return evaluation


def run_experiment(config: TrainConfig, run_name: str | None = None, resume: bool = False,
                   device: torch.device | str | None = None, root: Path | str | None = None,
                   on_epoch_end: Callable[[FitResult], None] | None = None, progress: bool = True,
                   weights: bool = True) -> RunResult:
    """Trains one configuration end to end; with `run_name`, writes runs/<run_name>/ and can resume it.

    The entry point of every training (CLI, notebooks, widget, sweep, study): it validates the config and the
    run name before any work. In smoke mode the run has at most 2 epochs (at most 1 of them at low resolution),
    is not compiled, and its folder is smoke-<run_name>. A second process asking for a run that is being trained
    gets RunBusy at once.
    What happens to an existing run is `run_state`'s decision: with `weights=False` and `resume`, a finished run
    with the same settings is read from its files (no network, no predictions), so its checkpoint is not needed;
    a finished run asked for with weights but without its checkpoint is trained again (the same seed gives the
    same numbers on the same CPU kind).
    """
    config = effective_config(config)
    run_dir = run_folder(run_name) if run_name is not None else None
    device = resolve_device(device)
    config.validate()
    train, test, label_key, class_names = load_splits(config.dataset, root, config.validation)
    config.validate(dataset_size=len(train))
    if run_dir is None:
        return _train(config, None, False, device, root, (train, test, label_key, class_names), on_epoch_end,
                      progress)
    wanted = recorded_config(config)
    if not weights and run_state(run_dir, wanted, need_weights=False, resume=resume).action == "reuse":
        finished = read_finished_run(run_dir)
        if progress:
            print(f"reused runs/{run_dir.name}: {finished.history.epochs} epochs, {finished.test_acc:.2f} %")
        return finished
    with RunLock(run_dir.parent, run_dir.name, config.epochs) as lock:
        plan = run_state(run_dir, wanted, need_weights=True, resume=resume)   # decided again, under the lock
        if plan.action == "retrain":
            shutil.rmtree(plan.folder, ignore_errors=True)
        if progress and plan.action != "reuse":
            print(f"{plan.action} {run_dir.name} ({plan.reason}): {config.epochs} epochs, {expected_time(run_dir)}",
                  flush=True)

        def record_progress(result: FitResult) -> None:
            lock.update(result.history.epochs, result.history.test_acc[-1], evaluated_on(config))
            if on_epoch_end is not None:
                on_epoch_end(result)

        result = _train(config, plan.folder, plan.action in ("reuse", "resume"), device, root,
                        (train, test, label_key, class_names), record_progress, progress)
        publish(plan.folder, run_dir)
    result.run_dir = run_dir
    return result


def _train(config: TrainConfig, folder: Path | None, resume: bool, device: torch.device, root: Path | str | None,
           splits: tuple, on_epoch_end: Callable[[FitResult], None] | None, progress: bool) -> RunResult:
    """Builds the network and loaders and fits; with `folder`, writes config.json once and metrics.json after
    every epoch that trained (a reused run keeps its files as they are)."""
    train, test, label_key, class_names = splits
    seed_everything(config.seed)
    model, config.model_kwargs = build_network(config, len(class_names), train.images.shape[1], train.images)
    model.to(device, memory_format=memory_layout(device))
    train_loader, test_loader = make_loaders(config, train, test, label_key, device, root)
    provenance = {"device": describe_device(device), "git_revision": git_revision(), "train_size": len(train),
                  "test_size": len(test), "data_source": data_source(config.dataset, root),
                  "evaluated_on": evaluated_on(config)}
    if config.init_from:
        provenance["start_point"] = start_point(config.init_from)

    def after_epoch(result: FitResult) -> None:
        write_metrics(folder, config, result, class_names, provenance)
        if on_epoch_end is not None:
            on_epoch_end(result)

    if folder is not None and not resume:   # a reused or resumed run keeps the config.json it started with
        write_config(folder, config)   # before the first epoch, so that an interrupted run can be resumed
    fitted = fit(model, train_loader, test_loader, config, run_dir=folder, resume=resume,
                 on_epoch_end=after_epoch if folder is not None else on_epoch_end, progress=progress)
    if fitted.epochs_trained == 0 and progress:
        print(f"reused runs/{folder.name}: {fitted.history.epochs} epochs, {fitted.history.test_acc[-1]:.2f} %")
    per_class = per_class_accuracy(fitted.predicted, fitted.true, len(class_names))
    return RunResult(model, fitted.history, per_class, fitted.predicted, fitted.true, class_names, folder, config,
                     fitted.epochs_trained, count_parameters(model))


def effective_config(config: TrainConfig) -> TrainConfig:
    """Returns the config a run actually trains with: a copy, in smoke mode with at most 2 epochs (at most 1 of them
    at low resolution) and without torch.compile."""
    return replace(config, model_kwargs=dict(config.model_kwargs), epochs=by_mode(config.epochs, min(config.epochs, 2)),
                   compile=by_mode(config.compile, False),
                   low_res_epochs=by_mode(config.low_res_epochs, min(config.low_res_epochs, 1)))


def network_kwargs(config: TrainConfig, num_classes: int, image_size: int) -> dict:
    """Returns the constructor arguments of a network trained from scratch: the size argument for (3, image_size,
    image_size) images, `config.model_kwargs` and `num_classes`."""
    return {**size_kwargs(config.model, image_size), **config.model_kwargs, "num_classes": num_classes}


def dataset_shape(dataset: str) -> tuple[int, int]:
    """Returns (number of classes, image side in pixels) of 'cifar100' (fine labels) or 'stl10' (the five classes)."""
    if dataset == "stl10":
        return len(STL10_CLASSES), STL10.image_hw
    return CIFAR100.label_files["fine_labels"], CIFAR100.image_hw


def recorded_config(config: TrainConfig) -> TrainConfig:
    """Returns the config a run of `config` records in its config.json: as it trains (`effective_config`), with the
    complete network arguments for its dataset (a fine-tuning's come from its start checkpoint and stay as they
    are). What `run_state` compares a saved run with."""
    config = effective_config(config)
    if config.init_from:
        return config
    return replace(config, model_kwargs=network_kwargs(config, *dataset_shape(config.dataset)))


def state_of(run_name: str, config: TrainConfig, need_weights: bool) -> RunPlan:
    """Returns what `run_experiment(config, run_name, resume=True, weights=need_weights)` will do with the run, without
    loading any data: `run_state` of its folder (smoke-prefixed in smoke mode)."""
    return run_state(runs_dir() / run_name_for(run_name), recorded_config(config), need_weights)


@dataclass
class RunPlan:
    """What asking for a run does (see `run_state`): the `action` (reuse, resume, retrain or train), the `folder` it
    trains in (the run's own, or its retrain folder beside it), and the `reason`, for messages and plans."""

    action: str
    folder: Path
    reason: str


def run_state(run_dir: Path, config: TrainConfig, need_weights: bool = True, resume: bool = True) -> RunPlan:
    """Decides what asking for the run in `run_dir` with `config` (as `recorded_config` makes it) does. The one place
    that decides it: `run_experiment`, the main job's plan and Q2's planning all ask it.

    - reuse: finished with these settings, from the start point it has now: read from its files, or from its
      checkpoint when `need_weights`;
    - resume: begun with these settings and interrupted (or an interrupted retrain): continues from its checkpoint;
    - retrain: finished, but with other settings or from another start point, or its weights are needed and its
      checkpoint is missing, or `resume` is off: trained from scratch in runs/.NAME.retrain, which replaces the
      finished run only once complete;
    - train: nothing finished there: trained from scratch in the run's own folder.
    An interrupted run with other settings is refused (CheckpointError): its progress is never thrown away unasked.
    """
    retrain, checkpoint = retrain_folder(run_dir), run_dir / "checkpoint.pt"
    if resume and (retrain / "checkpoint.pt").is_file() and not _changes(retrain, config):
        return RunPlan("resume", retrain, "its retrain was interrupted")
    if not read_json(run_dir / "config.json"):
        return RunPlan("train", run_dir, "no run yet")
    changes = _changes(run_dir, config)
    if is_complete(run_dir):
        if changes:
            return RunPlan("retrain", retrain, f"finished with other settings ({', '.join(changes)})")
        if not resume:
            return RunPlan("retrain", retrain, "asked to train again from scratch")
        if need_weights and not checkpoint.is_file():
            return RunPlan("retrain", retrain, "its weights are used and its checkpoint is missing")
        return RunPlan("reuse", run_dir, "finished")
    if not (resume and checkpoint.is_file()):
        return RunPlan("train", run_dir, "interrupted before its first checkpoint" if resume else "asked to train "
                                                                                                 "from scratch")
    if changes:
        raise CheckpointError(f"cannot resume from {checkpoint}: its run used different settings "
                              f"({', '.join(changes)}); use the same settings or a new run name")
    return RunPlan("resume", run_dir, "interrupted")


def _changes(folder: Path, config: TrainConfig) -> list[str]:
    """Returns what differs between the run in `folder` and `config`: settings, and 'start point' for a fine-tuning
    whose start was trained again with other numbers since."""
    changes = differing_settings(TrainConfig.from_dict(read_json(folder / "config.json")), config)
    if read_json(folder / "metrics.json") and not starts_from_current(folder, config.init_from):
        changes.append("start point")
    return changes


def read_finished_run(run_dir: Path) -> RunResult:
    """Returns a finished run's result read from its config.json and metrics.json: no network, predictions or
    labels (None); its parameter count from a network built from the saved arguments."""
    saved = TrainConfig.from_dict(read_json(run_dir / "config.json"))
    metrics = read_json(run_dir / "metrics.json")
    network = build_model(saved.model, **saved.model_kwargs)
    if saved.freeze_pretrained:
        freeze_all_but_new_layers(network)
    return RunResult(None, History.from_dict(metrics["history"]), np.array(list(metrics["per_class_acc"].values())),
                     None, None, list(metrics["per_class_acc"]), run_dir, saved, 0, count_parameters(network))


def seed_run_name(preset: str, seed: int) -> str:
    """Returns the run name of a preset trained with `seed`: NAME for seed 0, else NAME-seedN."""
    return preset if seed == 0 else f"{preset}-seed{seed}"


def preset_of(run_name: str) -> str:
    """Returns the preset name of a run name made by `seed_run_name`: NAME for NAME and NAME-seedN."""
    return re.sub(r"-seed\d+$", "", run_name)


def load_or_train(preset: str, run_name: str | None = None, *, need_model: bool = True,
                  root: Path | str | None = None) -> RunResult:
    """The notebooks' call for one preset's run (`run_name`, default the preset's name): read from runs/ when it
    finished with these settings, otherwise trained (or resumed) through `fit`, i.e. the course's `train`, with
    progress bars, and saved. need_model=False reads a finished run from its files alone (`RunResult.model` is
    None), so its checkpoint is not needed."""
    return run_experiment(get_preset(preset), run_name or preset, resume=True, root=root, weights=need_model)


def run_seeds(preset: str, seeds: Iterable[int] = SEEDS, root: Path | str | None = None) -> list[RunResult]:
    """Trains (or reuses from its files, without weights) a preset once per seed: runs NAME, NAME-seed1, ..."""
    return [run_experiment(replace(get_preset(preset), seed=seed), seed_run_name(preset, seed), resume=True,
                           root=root, weights=False) for seed in seeds]


def expected_time(run_dir: Path) -> str:
    """Returns how long the run in `run_dir` took the last time it trained, and on what, from its metrics.json."""
    metrics = read_json(run_dir / "metrics.json")
    if "train_seconds" not in metrics:
        return "time unknown (never trained here)"
    device = metrics.get("device", "an unknown device")
    return f"about {metrics['train_seconds'] / 60:.1f} min the last time (on {device})"
