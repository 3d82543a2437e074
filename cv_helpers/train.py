"""The course's training loop and its evaluation: `train`, `valid`, `valid_class`, `initialize_optimizer`.

`train` is the loop of every training in the workbook (CLI, notebooks, widget, sweeps, studies): `fit`, below the
course's functions, calls it once per epoch and adds what a long run needs: a learning-rate schedule, the test
evaluation after each epoch, atomic checkpoints and exact resume (each epoch's shuffling and augmentation are seeded
by (seed, epoch); a compiled run replays its compilations). A loss that becomes NaN or infinite stops training with
a one-line message. `fit` trusts its config: the entry points (`run_experiment`, the study runner) validate it.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, load_state_checked, save_checkpoint
from .config import autocast, epoch_seed, model_device, to_device
from .errors import CheckpointError, TrainingDiverged
from .history import FitResult, History
from .models import eval_mode, model_name_of
from .train_config import OPTIMIZERS, TrainConfig, differing_settings
from .tta import log_probabilities
from .validation import check_choice

if not torch.cuda.is_available():
    # Without a GPU, torch.compile's import of cpp_extension logs "No CUDA runtime is found" wherever a CUDA
    # toolkit is installed (nvcc on the PATH): expected on such a machine, so it stays out of the notebooks.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


class EpochStats(NamedTuple):
    """One epoch of `train`: the mean loss over its images and the training accuracy in percent."""

    loss: float
    accuracy: float


def train(net: nn.Module, train_loader: Iterable, epochs: int = 1, optimizer: torch.optim.Optimizer | None = None,
          criterion: nn.Module | None = None, lr: float = 1e-3, *, before_step: Callable[[int], None] | None = None,
          after_step: Callable[[int, float], None] | None = None, first_epoch: int = 1, progress: bool = False,
          verbose: bool = True) -> list[EpochStats]:
    """Trains `net` for `epochs` passes over `train_loader` (batches: images (N, 3, H, W), labels (N,)) with
    `criterion` (cross-entropy unless given) and `optimizer` (Adam at `lr` unless given); prints and returns each
    epoch's mean loss and training accuracy.

    `before_step(step)` runs before each optimizer step of an epoch (`fit` sets the learning rate there),
    `after_step(step, loss)` after it (the learning-rate range test reads the loss there); `first_epoch` is the
    number of the first epoch in messages."""
    optimizer = optimizer or initialize_optimizer(net, "adam", lr)
    criterion = criterion or nn.CrossEntropyLoss()
    device = model_device(net)
    net.train()
    stats = []
    for epoch in range(first_epoch, first_epoch + epochs):
        loss_sum, correct, seen = 0.0, 0, 0
        batches = tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
        for step, (images, labels) in enumerate(batches):
            images, labels = to_device(images, device), labels.to(device, non_blocking=True)
            if before_step is not None:
                before_step(step)
            # TODO(Q1.3c): the step: logits = net(images), loss, zero_grad, backward, step; loss_value = loss.item()
            # BEGIN SOLUTION
            with autocast(device):
                logits = net(images)
            loss = criterion(logits.float(), labels)
            loss_value = _finite(loss.item(), optimizer, epoch, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # END SOLUTION
            if after_step is not None:
                after_step(step, loss_value)
            loss_sum += loss_value * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
            if step % 20 == 0:
                batches.set_postfix(loss=f"{loss_value:.3f}")
        stats.append(EpochStats(loss_sum / max(1, seen), 100.0 * correct / max(1, seen)))
        if verbose:
            print(f"epoch {epoch}/{first_epoch + epochs - 1}: train loss {stats[-1].loss:.3f}, training accuracy "
                  f"{stats[-1].accuracy:.2f} %")
    return stats


def valid(net: nn.Module, testloader: Iterable) -> float:
    """Returns the accuracy in percent of `net` on the images of `testloader` (the course skeleton's `valid`)."""
    predicted, true, _ = predict(net, testloader)
    return 100.0 * float((predicted == true).mean())


def valid_class(net: nn.Module, testloader: Iterable, classes: list[str], verbose: bool = True) -> dict[str, float]:
    """Returns (and prints, as the course skeleton's `valid_class` does, unless `verbose` is off) the accuracy in
    percent of every class."""
    predicted, true, _ = predict(net, testloader)
    accuracy = dict(zip(classes, per_class_accuracy(predicted, true, len(classes)).tolist()))
    if verbose:
        for name, value in accuracy.items():
            print(f"Accuracy of {name:>15s}: {value:5.1f} %")
    return accuracy


def initialize_optimizer(net: nn.Module, optimizer: str = "adam", lr: float = 1e-3, momentum: float = 0.9,
                         weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Returns the named optimizer (sgd with momentum, adam, adamw, rmsprop, adagrad) over net's parameters."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    # TODO(Q1.3b): return the torch.optim optimizer named `optimizer` over net.parameters()
    # BEGIN SOLUTION
    params = net.parameters()
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    # END SOLUTION


def _finite(loss: float, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> float:
    """Returns `loss`; raises TrainingDiverged, naming the epoch, the step and the learning rate, if it is NaN or
    infinite."""
    if not math.isfinite(loss):
        lr = optimizer.param_groups[0]["lr"]
        raise TrainingDiverged(f"loss became {loss} at epoch {epoch}, step {step + 1} with learning rate {lr:g}; "
                               f"lower the learning rate (try {lr / 10:g})")
    return loss


@torch.no_grad()
def predict(net: nn.Module, loader: Iterable, tta_flip: bool = False, tta_translate: int = 0
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Returns (predicted labels (N,), true labels (N,), mean cross-entropy) in eval mode; `tta_flip` averages the
    class probabilities of each image and its mirror image (flip test-time augmentation), `tta_translate` also
    those of shifted copies (see `tta.log_probabilities`)."""
    device, predictions, targets, loss_sum = model_device(net), [], [], 0.0
    with eval_mode(net):
        for images, labels in loader:
            images, labels = to_device(images, device), labels.to(device, non_blocking=True)
            log_probs = log_probabilities(net, images, tta_flip, tta_translate)
            loss_sum += nn.functional.nll_loss(log_probs, labels, reduction="sum").item()
            predictions.append(log_probs.argmax(1).cpu())
            targets.append(labels.cpu())
    predicted, true = torch.cat(predictions).numpy(), torch.cat(targets).numpy()
    return predicted, true, loss_sum / max(1, len(true))


def per_class_accuracy(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """Returns accuracy in percent per class, shape (num_classes,); NaN for classes absent from `true`."""
    correct = np.bincount(true[predicted == true], minlength=num_classes).astype(float)
    total = np.bincount(true, minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * correct / total, np.nan)


def confusion_matrix(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """Returns counts (num_classes, num_classes): row = true class, column = predicted class."""
    return np.bincount(true * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int) -> float:
    """Returns the multiplier of the base learning rate at optimizer step `step` (0-based)."""
    if schedule == "onecycle":  # linear up for 25 %, then linear down to 0
        peak = max(1, int(0.25 * total_steps))
        return (step + 1) / peak if step < peak else max(0.0, (total_steps - step) / (total_steps - peak))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def fit(net: nn.Module, train_loader: Iterable, test_loader: Iterable, config: TrainConfig,
        run_dir: Path | str | None = None, resume: bool = False,
        on_epoch_end: Callable[[FitResult], None] | None = None, progress: bool = True) -> FitResult:
    """Trains `net` for `config.epochs`, evaluating on `test_loader` after each epoch; returns what it measured.

    With `run_dir`, writes run_dir/checkpoint.pt atomically after every epoch; with `resume`, continues from that
    checkpoint (a finished run trains nothing and is evaluated once). `on_epoch_end(result so far)` is called
    after each epoch's checkpoint (metrics files, live plots, pruning).
    """
    if config.compile:
        # Each run compiles afresh, as in a new process: compiled code is cached per function, so the runs one
        # notebook kernel trains would otherwise pile up in one cache until torch.compile gives up (its recompile
        # limit) and falls back to eager for the rest of the kernel.
        torch._dynamo.reset()
    runner = torch.compile(net) if config.compile else net   # shares parameters with `net`
    optimizer = initialize_optimizer(net, config.optimizer, config.lr, config.momentum, config.weight_decay)
    history, start_epoch = History(), 0
    checkpoint_path = Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    if resume and checkpoint_path is not None and checkpoint_path.is_file():
        start_epoch, history = _restore(checkpoint_path, net, optimizer, config)
    if start_epoch >= config.epochs:
        predicted, true, _ = predict(runner, test_loader, config.tta_flip, config.tta_translate)
        return FitResult(history, predicted, true, epochs_trained=0)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    if config.compile and start_epoch > 0:
        _replay_compilation(runner, net, train_loader, test_loader, config, start_epoch, loss_fn)
    steps_per_epoch = len(train_loader)
    total_steps, warmup_steps = config.epochs * steps_per_epoch, int(config.warmup_epochs * steps_per_epoch)

    epochs = tqdm(range(start_epoch + 1, config.epochs + 1), desc="training", disable=not progress,
                  initial=start_epoch, total=config.epochs)
    for epoch in epochs:
        first_step = (epoch - 1) * steps_per_epoch

        def set_lr(step: int) -> None:  # called before each optimizer step of this epoch
            factor = lr_factor(first_step + step, total_steps, config.schedule, warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * factor

        _seed_epoch(train_loader, config.seed, epoch)
        if config.low_res:
            train_loader.resize_to = config.low_res if epoch <= config.low_res_epochs else None
        started = time.perf_counter()
        (train_loss, train_acc), = train(runner, train_loader, 1, optimizer, loss_fn, before_step=set_lr,
                                         first_epoch=epoch, progress=progress, verbose=False)
        tta = config.tta_flip and (epoch == config.epochs or not config.tta_final_only)
        predicted, true, test_loss = predict(runner, test_loader, tta, config.tta_translate if tta else 0)
        history.append(train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                       test_acc=100.0 * float((predicted == true).mean()),
                       lr=optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - started)
        epochs.set_postfix(loss=f"{train_loss:.3f}", test_acc=f"{history.test_acc[-1]:.1f}%")
        if checkpoint_path is not None:
            _save(checkpoint_path, net, optimizer, config, epoch, history)
        if on_epoch_end is not None:
            on_epoch_end(FitResult(history, predicted, true, epoch - start_epoch))
    return FitResult(history, predicted, true, config.epochs - start_epoch)


def _replay_compilation(runner: nn.Module, net: nn.Module, train_loader: Iterable, test_loader: Iterable,
                        config: TrainConfig, start_epoch: int, loss_fn: nn.Module) -> None:
    """Before a compiled run resumes after `start_epoch`: compiles the graphs the uninterrupted run compiled in its
    earlier epochs, in the same order, and leaves the weights, buffers, gradients and random state as they were.

    torch.compile recompiles for a dynamic batch size at the first batch of another size (an epoch's partial last
    batch) and runs that graph from then on. Without the replay, the first resumed epoch would run the static graph,
    whose sums differ in the last bits on several threads, and the resumed run would drift from the uninterrupted
    one."""
    saved, random_state = copy.deepcopy(net.state_dict()), torch.get_rng_state()
    first_full_size = config.low_res_epochs + 1 if config.low_res else 1
    for epoch in sorted({1, first_full_size} & set(range(1, start_epoch + 1))):
        _seed_epoch(train_loader, config.seed, epoch)
        if config.low_res:
            train_loader.resize_to = config.low_res if epoch <= config.low_res_epochs else None
        train(runner, _first_of_each_shape(train_loader), 1, torch.optim.SGD(net.parameters(), lr=0.0), loss_fn,
              verbose=False)
        if epoch == 1:
            tta = config.tta_flip and (config.epochs == 1 or not config.tta_final_only)
            predict(runner, _first_of_each_shape(test_loader), tta, config.tta_translate if tta else 0)
    net.load_state_dict(saved)
    net.zero_grad(set_to_none=True)
    torch.set_rng_state(random_state)


def _first_of_each_shape(loader: Iterable) -> list:
    """Returns the first batch of each image shape of one pass over `loader`, in the order they come."""
    batches = {}
    for images, labels in loader:
        batches.setdefault(tuple(images.shape), (images, labels))
    return list(batches.values())


def _seed_epoch(loader: Iterable, seed: int, epoch: int) -> None:
    """Makes epoch `epoch` draw the same shuffling and augmentation whether or not the run was resumed."""
    torch.manual_seed(epoch_seed(seed, epoch))
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif getattr(loader, "generator", None) is not None:
        loader.generator.manual_seed(epoch_seed(seed, epoch))


def _save(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, epoch: int,
          history: History) -> None:
    save_checkpoint(path, {
        "model_name": model_name_of(net), "model_kwargs": config.model_kwargs, "epoch": epoch,
        "model_state": net.state_dict(), "optimizer_state": optimizer.state_dict(), "history": history.as_dict(),
        "config": asdict(config),
    })


def _restore(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig) -> tuple[int, History]:
    """Loads model and optimizer state from a checkpoint; returns (completed epochs, history so far)."""
    state = load_checkpoint(path)
    differing = differing_settings(TrainConfig.from_dict(state.get("config", {})), config)
    if differing:
        raise CheckpointError(f"cannot resume from {path}: its run used different settings ({', '.join(differing)}); "
                              "use the same settings or a new run name")
    load_state_checked(net, state["model_state"], str(path))
    optimizer.load_state_dict(state["optimizer_state"])
    return state["epoch"], History.from_dict(state["history"])
