"""`TrainConfig`: everything that defines a training run (saved as the run's config.json), and its checks."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .data import CIFAR100, STL10
from .errors import ConfigError
from .models import MODELS
from .transforms import AUGMENTATIONS
from .validation import check_choice

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "onecycle")
LOADERS = ("fast", "pil")
DATASETS = {"cifar100": CIFAR100.image_hw, "stl10": STL10.image_hw}   # name -> image side in pixels


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
    compile: bool = False         # torch.compile the network (pays off for ConvNet-BN, even on CPU)
    tta_flip: bool = False        # evaluate on each image and its mirror image, averaging the class probabilities
    tta_final_only: bool = False  # with tta_flip: epochs before the last are evaluated without the mirror images
    tta_translate: int = 0        # with tta_flip: also average over copies shifted this many pixels diagonally
    low_res: int = 0              # progressive resizing: train on images resized to low_res x low_res pixels ...
    low_res_epochs: int = 0       # ... for the first low_res_epochs epochs (0: off; networks with global pooling)
    whitened_init: bool = False   # conv1 starts as the patch whitening of the training images (whitening.py)
    validation: bool = False      # hold out data.VALIDATION_IMAGES of the training images and measure on them,
                                  # never on the test split: the runs that choose settings

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
        if self.validation and (self.dataset != "cifar100" or self.loader != "fast"):
            raise ConfigError("the validation split is CIFAR-100's, on the fast loader; drop validation for "
                              f"dataset {self.dataset!r} with loader {self.loader!r}")
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


def differing_settings(saved: TrainConfig, wanted: TrainConfig) -> list[str]:
    """Returns the names of the settings in which `wanted` differs from a run's `saved` config: every field but
    `compile` (it changes the speed, not the protocol). A fine-tuning's `model_kwargs` come from the checkpoint it
    starts from, so they are compared only for networks trained from scratch (whose `model_kwargs` must then be
    complete: see `experiment.network_kwargs`). The one definition of "the same settings": resuming and reusing
    a run both ask it."""
    ignored = {"compile", "model_kwargs"} if wanted.init_from else {"compile"}
    return [f.name for f in fields(TrainConfig) if f.name not in ignored
            and getattr(saved, f.name) != getattr(wanted, f.name)]
