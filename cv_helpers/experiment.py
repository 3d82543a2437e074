"""One training run from a `TrainConfig`: data, loaders, network, `fit`, and the run folder's files.

A run writes runs/<name>/config.json, metrics.json (per-epoch history, final and per-class accuracy, training
time, device, seed, git revision, data source) and checkpoint.pt.
"""
from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import model_from_checkpoint, write_json
from .config import REPO_ROOT, by_mode, default_device, run_name_for, runs_dir, seed_everything
from .data import ArraySplit, CIFAR100_loader, STL10_Dataset, load_cifar100, load_stl10
from .fast_loader import FastLoader
from .fixtures import stl10_root, stl10_source
from .models import adapt_for_finetuning, build_model, finetuned_kwargs
from .presets import PRESETS, Q1_CONVNET_RUN
from .train import History, TrainConfig, fit, per_class_accuracy, predict
from .transforms import get_recipe, make_test_transform, make_train_transform

EVAL_BATCH_SIZE = 1000


@dataclass
class RunResult:
    """What a run leaves behind in memory: the trained network and its measurements."""

    model: nn.Module
    history: History
    per_class: np.ndarray          # (num_classes,) accuracy in percent
    predicted: np.ndarray          # (N_test,) predicted labels
    true: np.ndarray               # (N_test,) true labels
    class_names: list[str]
    run_dir: Path | None
    config: TrainConfig

    @property
    def test_acc(self) -> float:
        return self.history.test_acc[-1]


def data_root_for(dataset: str, root: Path | str | None) -> Path | str | None:
    """Returns the data folder of `dataset`: `root` if given; for STL-10 the real or generated one (announced)."""
    if dataset != "stl10" or root is not None:
        return root
    root = stl10_root()
    if stl10_source(root) != "real STL-10":
        print(f"note: STL-10 from {root} is a generated fixture, not real images; for real STL-10 run "
              "`python -m cv_helpers prepare-data --datasets stl10` (2.6 GB download)")
    return root


def load_splits(dataset: str, root: Path | str | None = None) -> tuple[ArraySplit, ArraySplit, str, list[str]]:
    """Returns (train split, test split, label key, class names) of 'cifar100' (fine labels) or 'stl10'."""
    if dataset == "stl10":
        train, test = load_stl10(True, root), load_stl10(False, root)
        return train, test, "labels", train.meta["label_names"]
    train, test = load_cifar100(True, root), load_cifar100(False, root)
    return train, test, "fine_labels", train.meta["fine_label_names"]


def make_test_loader(test: ArraySplit, label_key: str, device: torch.device) -> FastLoader:
    """Returns the evaluation loader: the test split on `device`, in order, large batches, no augmentation."""
    classes = test.meta.get("fine_label_names", test.meta.get("label_names"))
    return FastLoader(test.images, test.labels[label_key], EVAL_BATCH_SIZE, device=device, classes=classes)


def make_loaders(config: TrainConfig, train: ArraySplit, test: ArraySplit, label_key: str,
                 device: torch.device, root: Path | str | None = None) -> tuple:
    """Returns (train loader, test loader): the fast tensor path or the seed's PIL DataLoader path."""
    if config.loader == "fast":
        classes = train.meta.get("fine_label_names", train.meta.get("label_names"))
        return (FastLoader(train.images, train.labels[label_key], config.batch_size, shuffle=True,
                           recipe=get_recipe(config.transform), device=device, seed=config.seed, classes=classes),
                make_test_loader(test, label_key, device))
    dataset_cls = STL10_Dataset if config.dataset == "stl10" else CIFAR100_loader
    size = train.images.shape[1]
    train_set = dataset_cls(root, train=True, transform=make_train_transform(config.transform, size))
    test_set = dataset_cls(root, train=False, transform=make_test_transform())
    generator = torch.Generator().manual_seed(config.seed)
    return (DataLoader(train_set, config.batch_size, shuffle=True, num_workers=2, generator=generator),
            DataLoader(test_set, EVAL_BATCH_SIZE, num_workers=0))


def checkpoint_hint(init_from: str) -> str:
    """Returns what a student runs to create the checkpoint that `init_from` names."""
    command = (f"`python -m cv_helpers train --preset {init_from}`" if init_from in PRESETS
               else f"train the run {init_from!r}")
    notebook = "run notebooks/Q1_4_tuning.ipynb or " if init_from == Q1_CONVNET_RUN else ""
    return f"train the CIFAR-100 network first: {notebook}{command}"


def build_network(config: TrainConfig, num_classes: int, image_size: int) -> tuple[nn.Module, dict]:
    """Returns (network, the keyword arguments that rebuild it); fine-tunes from `config.init_from` if set."""
    if config.init_from:
        model, state = model_from_checkpoint(resolve_checkpoint(config.init_from),
                                             hint=checkpoint_hint(config.init_from))
        adapt_for_finetuning(model, num_classes, image_size)
        return model, finetuned_kwargs(state["model_name"], state["model_kwargs"], num_classes, image_size)
    kwargs = {**config.model_kwargs, "num_classes": num_classes}
    kwargs.setdefault("input_size", 3 * image_size ** 2 if config.model.startswith("mlp") else image_size)
    return build_model(config.model, **kwargs), kwargs


def data_source(dataset: str, root: Path | str | None) -> str:
    """Returns what the run's data is: 'cifar100', 'real STL-10' or 'generated fixture'."""
    return stl10_source(Path(root)) if dataset == "stl10" else "cifar100"


def resolve_checkpoint(init_from: str) -> Path:
    """Returns the checkpoint path of `init_from`: a file path, or a run name under runs/ (smoke-prefixed in
    smoke mode)."""
    if init_from.endswith(".pt"):
        return Path(init_from)
    return runs_dir() / run_name_for(init_from) / "checkpoint.pt"


def git_revision() -> str:
    """Returns the current git commit (with '+dirty' for uncommitted changes), or 'unknown'."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def evaluation_file(run_dir: Path, tta_flip: bool) -> Path:
    """Returns where `evaluate_run` writes a run's re-evaluation: evaluation-tta-flip.json or evaluation-plain.json."""
    return run_dir / ("evaluation-tta-flip.json" if tta_flip else "evaluation-plain.json")


def evaluate_run(run_name: str, tta_flip: bool, device: torch.device | str | None = None,
                 root: Path | str | None = None) -> dict:
    """Re-evaluates a finished run's checkpoint on its test split, with or without flip test-time augmentation;
    writes and returns {test_acc, test_loss, per_class_acc, tta_flip, checkpoint_epoch, ...} (see `evaluation_file`).

    The same weights measured both ways give the accuracy change that the augmentation alone brings.
    """
    checkpoint = resolve_checkpoint(run_name)
    model, state = model_from_checkpoint(checkpoint, hint=f"train it first: `python -m cv_helpers train "
                                                          f"--run-name {run_name} ...`")
    config = TrainConfig.from_dict(state["config"])
    device = torch.device(device) if device is not None else default_device()
    root = data_root_for(config.dataset, root)
    _, test, label_key, class_names = load_splits(config.dataset, root)
    predicted, true, test_loss = predict(model.to(device), make_test_loader(test, label_key, device), tta_flip)
    evaluation = {
        "test_acc": 100.0 * float((predicted == true).mean()), "test_loss": test_loss, "tta_flip": tta_flip,
        "per_class_acc": dict(zip(class_names, per_class_accuracy(predicted, true, len(class_names)).tolist())),
        "checkpoint_epoch": state["epoch"], "device": device_description(device), "git_revision": git_revision(),
        "test_size": len(test), "data_source": data_source(config.dataset, root),
    }
    write_json(evaluation_file(checkpoint.parent, tta_flip), evaluation)
    return evaluation


def training_provenance(run_dir: Path, history: History, device: torch.device) -> dict[str, str]:
    """Returns {device, git_revision} of the training: now, or, when `fit` only reused a finished run (its
    history unchanged), those its metrics.json recorded, so reusing a run never relabels where it came from."""
    metrics_path = run_dir / "metrics.json"
    previous = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if previous.get("history") == history.as_dict() and {"device", "git_revision"} <= set(previous):
        return {"device": previous["device"], "git_revision": previous["git_revision"]}
    return {"device": device_description(device), "git_revision": git_revision()}


def run_experiment(config: TrainConfig, run_name: str | None = None, resume: bool = False,
                   device: torch.device | str | None = None, root: Path | str | None = None,
                   on_epoch_end: Callable[[History], None] | None = None, progress: bool = True) -> RunResult:
    """Trains one configuration end to end; with `run_name`, writes runs/<run_name>/ and can resume it.

    In smoke mode the run has at most 2 epochs, is not compiled, and its folder is runs/smoke-<run_name>/.
    """
    config = replace(config, epochs=by_mode(config.epochs, min(config.epochs, 2)),
                     compile=by_mode(config.compile, False))
    device = torch.device(device) if device is not None else default_device()
    root = data_root_for(config.dataset, root)
    train, test, label_key, class_names = load_splits(config.dataset, root)
    config.validate(dataset_size=len(train))
    seed_everything(config.seed)
    model, model_kwargs = build_network(config, len(class_names), train.images.shape[1])
    config.model_kwargs = model_kwargs
    model.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.preserve_format)
    train_loader, test_loader = make_loaders(config, train, test, label_key, device, root)
    run_dir = runs_dir() / run_name_for(run_name) if run_name else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", asdict(config))
    history = fit(model, train_loader, test_loader, config, run_dir=run_dir, resume=resume,
                  class_names=class_names, on_epoch_end=on_epoch_end, progress=progress)
    predicted, true, _ = predict(model, test_loader, config.tta_flip)
    per_class = per_class_accuracy(predicted, true, len(class_names))
    if run_dir is not None:
        write_json(run_dir / "metrics.json", {
            "history": history.as_dict(), "final_test_acc": history.test_acc[-1],
            "per_class_acc": dict(zip(class_names, per_class.tolist())),
            "train_seconds": sum(history.seconds), "seed": config.seed, **training_provenance(run_dir, history, device),
            "train_size": len(train), "test_size": len(test), "data_source": data_source(config.dataset, root),
        })
    return RunResult(model, history, per_class, predicted, true, class_names, run_dir, config)


def device_description(device: torch.device) -> str:
    """Returns e.g. 'cpu (2 threads, x86_64)' or the CUDA device name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"

