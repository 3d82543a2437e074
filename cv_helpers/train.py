"""Training and evaluation: the course skeleton's `train`, `valid`, `valid_class`, plus `fit` -> FitResult.

`fit` checkpoints atomically after every epoch, resumes exactly (each epoch's shuffling and augmentation are
seeded by (seed, epoch)), and stops with a clear message when the loss diverges. It trusts its config: the entry
points (`run_experiment`, the study runner) validate it.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, load_state_checked, save_checkpoint
from .config import epoch_seed, memory_layout
from .data import CIFAR100, STL10_5CLASS
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .models import MODELS, model_name_of
from .transforms import AUGMENTATIONS
from .validation import check_choice

if not torch.cuda.is_available():
    # Without a GPU, torch.compile's import of cpp_extension logs "No CUDA runtime is found" wherever a CUDA
    # toolkit is installed (nvcc on the PATH): expected on such a machine, so it stays out of the notebooks.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "onecycle")
LOADERS = ("fast", "pil")
DATASETS = {"cifar100": CIFAR100.image_hw, "stl10": STL10_5CLASS.image_hw}   # name -> image side in pixels


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as the run's config.json."""

    model: str = "convnet"
    model_kwargs: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    augmentation: str = "q1.3"    # training augmentation, a name of transforms.AUGMENTATIONS
    loader: str = "fast"
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0
    dataset: str = "cifar100"     # cifar100 or stl10
    init_from: str = ""           # checkpoint to fine-tune from (head and fc1 replaced to fit the dataset)
    freeze_pretrained: bool = False  # with init_from: train only the new fc1 and head (BatchNorm statistics adapt)
    compile: bool = False         # torch.compile the network (pays off for the Figure 6 net, even on CPU)
    tta_flip: bool = False        # evaluate on each image and its mirror image, averaging the class probabilities
    tta_final_only: bool = False  # with tta_flip: epochs before the last are evaluated without the mirror images
    tta_translate: int = 0        # with tta_flip: also average over copies shifted this many pixels diagonally
    low_res: int = 0              # progressive resizing: train on images resized to low_res x low_res pixels ...
    low_res_epochs: int = 0       # ... for the first low_res_epochs epochs (0: off; networks with global pooling)
    whitened_init: bool = False   # conv1 starts as the patch whitening of the training images (whitening.py)

    def validate(self, dataset_size: int | None = None) -> "TrainConfig":
        """Returns self; raises ConfigError naming the bad setting and what is allowed (called at the entry points:
        `run_experiment` and the study runner)."""
        choices = {"model": MODELS, "optimizer": OPTIMIZERS, "augmentation": AUGMENTATIONS, "loader": LOADERS,
                   "schedule": SCHEDULES, "dataset": DATASETS}
        for name, allowed in choices.items():
            check_choice(name, getattr(self, name), allowed)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a finite number > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ConfigError(f"epochs must be a whole number >= 1, got {self.epochs}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ConfigError(f"batch size must be a whole number >= 1, got {self.batch_size}")
        if dataset_size is not None and self.batch_size > dataset_size:
            raise ConfigError(f"batch size {self.batch_size} is larger than the training set ({dataset_size} "
                              "images); choose a smaller one")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warm-up must be in [0, epochs), got {self.warmup_epochs}")
        if self.freeze_pretrained and not self.init_from:
            raise ConfigError("freeze_pretrained needs init_from: the run it fine-tunes")
        if self.whitened_init and self.init_from:
            raise ConfigError("whitened_init starts a network from scratch; a fine-tuning keeps its pretrained conv1")
        if (self.tta_final_only or self.tta_translate) and not self.tta_flip:
            raise ConfigError("tta_final_only and tta_translate change flip test-time augmentation; set tta_flip too")
        if not 0 <= self.tta_translate <= 4:
            raise ConfigError(f"tta_translate must be 0 (off) to 4 pixels, got {self.tta_translate}")
        if self.low_res or self.low_res_epochs:
            self._validate_low_res()
        return self

    def _validate_low_res(self) -> None:
        side = DATASETS[self.dataset]
        if not 8 <= self.low_res < side or not 0 < self.low_res_epochs < self.epochs:
            raise ConfigError(f"progressive resizing needs 8 <= low_res < {side} (the {self.dataset} image size) and "
                              f"0 < low_res_epochs < epochs, got low_res={self.low_res}, "
                              f"low_res_epochs={self.low_res_epochs}")
        if not MODELS[self.model].ANY_SIZE:
            raise ConfigError(f"progressive resizing needs a network with global pooling (resconvnet5); {self.model} "
                              "only takes images of one size")
        if self.loader != "fast":
            raise ConfigError("progressive resizing works on the fast loader only; drop --loader pil")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Returns a config from a dict, ignoring keys that are not config fields."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


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


def initialize_optimizer(net: nn.Module, optimizer: str = "adam", lr: float = 1e-3, momentum: float = 0.9,
                         weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Returns the named optimizer (sgd with momentum, adam, adamw, rmsprop, adagrad) over net's parameters."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
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


def _model_device(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def _to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Moves a batch (N, 3, H, W) to `device`, in that device's memory layout."""
    return images.to(device, non_blocking=True, memory_format=memory_layout(device))


def _autocast(device: torch.device):
    """bf16 autocast on CUDA only: on the course CPUs it was 5-15x slower."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def _log_probabilities(net: nn.Module, images: torch.Tensor, tta_flip: bool, tta_translate: int = 0
                       ) -> torch.Tensor:
    """Returns log class probabilities (N, classes) of images (N, 3, H, W): with `tta_flip`, of the mean over the
    images and their mirror images; with `tta_translate` = t as well, of the mean of that (weight 1/2) and of the
    same for the images shifted t pixels diagonally either way (reflect padding, 1/4 each)."""
    with _autocast(_model_device(net)):
        log_probs = _mirror_averaged(net, images, tta_flip)
        if tta_translate:
            height, width, t = images.shape[-2], images.shape[-1], tta_translate
            padded = F.pad(images, (t, t, t, t), mode="reflect")
            shifted = [padded[..., :height, :width], padded[..., 2 * t:, 2 * t:]]
            views = [log_probs + math.log(1 / 2)]
            views += [_mirror_averaged(net, view.contiguous(), tta_flip) + math.log(1 / 4) for view in shifted]
            log_probs = torch.logsumexp(torch.stack(views), 0)
    return log_probs


def _mirror_averaged(net: nn.Module, images: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    """Returns log class probabilities (N, classes); with `tta_flip`, of the mean over images (N, 3, H, W) and
    their horizontal mirror images."""
    log_probs = net(images).float().log_softmax(1)
    if tta_flip:
        mirrored = net(images.flip(-1)).float().log_softmax(1)
        log_probs = torch.logaddexp(log_probs, mirrored) - math.log(2)
    return log_probs


@torch.no_grad()
def predict(net: nn.Module, loader: Iterable, tta_flip: bool = False, tta_translate: int = 0
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Returns (predicted labels (N,), true labels (N,), mean cross-entropy) in eval mode; `tta_flip` averages the
    class probabilities of each image and its mirror image (flip test-time augmentation), `tta_translate` also
    those of shifted copies (see `_log_probabilities`)."""
    device, was_training = _model_device(net), net.training
    net.eval()
    predictions, targets, loss_sum = [], [], 0.0
    for images, labels in loader:
        images, labels = _to_device(images, device), labels.to(device, non_blocking=True)
        log_probs = _log_probabilities(net, images, tta_flip, tta_translate)
        loss_sum += nn.functional.nll_loss(log_probs, labels, reduction="sum").item()
        predictions.append(log_probs.argmax(1).cpu())
        targets.append(labels.cpu())
    net.train(was_training)
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


def valid(net: nn.Module, testloader: Iterable) -> float:
    """Returns the test accuracy in percent (the course skeleton's `valid`)."""
    predicted, true, _ = predict(net, testloader)
    return 100.0 * float((predicted == true).mean())


def valid_class(net: nn.Module, testloader: Iterable, classes: list[str]) -> dict[str, float]:
    """Prints and returns the accuracy in percent of every class (the course skeleton's `valid_class`)."""
    predicted, true, _ = predict(net, testloader)
    accuracy = dict(zip(classes, per_class_accuracy(predicted, true, len(classes)).tolist()))
    for name, value in accuracy.items():
        print(f"Accuracy of {name:>15s}: {value:5.1f} %")
    return accuracy


def train(net: nn.Module, train_loader: Iterable, epochs: int, optimizer: torch.optim.Optimizer | None = None,
          lr: float = 1e-3) -> list[float]:
    """Trains with cross-entropy (Adam at `lr` unless an optimizer is given); prints and returns epoch losses."""
    optimizer = optimizer or initialize_optimizer(net, "adam", lr)
    losses = []
    for epoch in range(1, epochs + 1):
        loss, _ = _train_one_epoch(net, train_loader, optimizer, nn.CrossEntropyLoss(), epoch, lambda step: None)
        print(f"epoch {epoch}/{epochs}: train loss {loss:.3f}")
        losses.append(loss)
    return losses


def _train_one_epoch(net: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                     epoch: int, before_step: Callable[[int], None], progress: bool = False) -> tuple[float, float]:
    """Returns (mean training loss, training accuracy in percent) of one pass over `loader`."""
    device = _model_device(net)
    net.train()
    loss_sum, correct, seen = 0.0, 0, 0
    batches = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
    for step, (images, labels) in enumerate(batches):
        images, labels = _to_device(images, device), labels.to(device, non_blocking=True)
        before_step(step)
        with _autocast(device):
            logits = net(images)
        loss = loss_fn(logits.float(), labels)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            lr = optimizer.param_groups[0]["lr"]
            raise TrainingDiverged(f"loss became {loss_value} at epoch {epoch}, step {step + 1} with learning rate "
                                   f"{lr:g}; lower the learning rate (try {lr / 10:g})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss_value * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
        if step % 20 == 0:
            batches.set_postfix(loss=f"{loss_value:.3f}")
    return loss_sum / max(1, seen), 100.0 * correct / max(1, seen)


def _seed_epoch(loader: Iterable, seed: int, epoch: int) -> None:
    """Makes epoch `epoch` draw the same shuffling and augmentation whether or not the run was resumed."""
    torch.manual_seed(epoch_seed(seed, epoch))
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif getattr(loader, "generator", None) is not None:
        loader.generator.manual_seed(epoch_seed(seed, epoch))


def fit(net: nn.Module, train_loader: Iterable, test_loader: Iterable, config: TrainConfig,
        run_dir: Path | str | None = None, resume: bool = False,
        on_epoch_end: Callable[[FitResult], None] | None = None, progress: bool = True) -> FitResult:
    """Trains `net` for `config.epochs`, evaluating on `test_loader` after each epoch; returns what it measured.

    With `run_dir`, writes run_dir/checkpoint.pt atomically after every epoch; with `resume`, continues from that
    checkpoint (a finished run trains nothing and is evaluated once). `on_epoch_end(result so far)` is called
    after each epoch's checkpoint (metrics files, live plots, pruning).
    """
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
        train_loss, train_acc = _train_one_epoch(runner, train_loader, optimizer, loss_fn, epoch, set_lr, progress)
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
    saved = TrainConfig.from_dict(state.get("config", {}))
    differing = [f.name for f in fields(TrainConfig)
                 if f.name not in ("epochs", "compile") and getattr(saved, f.name) != getattr(config, f.name)]
    if differing:
        raise CheckpointError(f"cannot resume from {path}: its run used different settings ({', '.join(differing)}); "
                              "use the same settings or a new run name")
    load_state_checked(net, state["model_state"], str(path))
    optimizer.load_state_dict(state["optimizer_state"])
    return state["epoch"], History.from_dict(state["history"])
