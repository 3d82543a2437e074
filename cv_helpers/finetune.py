"""Q2: fine-tuning strategies compared on the same STL-10 data, and numbers for what a feature space separates.

Strategies: (a) a linear classifier on the frozen pretrained network's pooled convolutional features (linear
probe), (b) only the new fc1 and head trained, (c) full fine-tuning with the report's Table 3 settings, (d) the
improved recipe from the Q3 net. Each training strategy is a preset, run for three seeds; on the real 219-image
sample the presets are the `q2-sample-*` ones (batch 16: the sample has 46 training images).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from .data import data_name, load_stl10, stl10_source
from .config import model_device
from .experiment import SEEDS, RunResult, seed_run_name, state_of
from .fast_loader import FastLoader
from .models import eval_mode
from .presets import PRESETS, Q2_PRETRAINED_RUN
from .tables import mean_and_spread

FULL_STL10_COUNTS = (2_500, 4_000)    # training and test images of the five classes in the official archive
FULL_FINE_TUNING = "(c) full fine-tuning, Table 3"
TRAINING_STRATEGIES = {
    "real sample": {"(b) new fc1 + head only": "q2-sample-head", FULL_FINE_TUNING: "q2-sample-finetune",
                    "(d) improved recipe, Q3 net": "q2-sample-plus"},
    "official archive": {"(b) new fc1 + head only": "q2-head", FULL_FINE_TUNING: "q2-finetune",
                         "(d) improved recipe, Q3 net": "q2-finetune-plus"},
}
TRAINING_STRATEGIES["generated"] = TRAINING_STRATEGIES["real sample"]


def stl10_label(root: Path | str | None = None) -> str:
    """Returns what the STL-10 data is, for titles: e.g. 'real STL-10 sample (46 / 48 images)'."""
    train, test = load_stl10(True, root), load_stl10(False, root)
    return data_name(f"stl10 {stl10_source(root)}", len(train), len(test))


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


@torch.no_grad()
def pooled_features(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Returns the global average of `model.conv_features` per image, (N, channels) float32: what the pretrained
    network itself computes, without any new layer. images: (N, H, W, 3) uint8."""
    device = model_device(model)
    with eval_mode(model):
        features = [model.conv_features(x.to(device)).mean(dim=(2, 3)).float().cpu()
                    for x, _ in FastLoader(images, labels, 64)]
    return torch.cat(features).numpy()


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                 test_labels: np.ndarray) -> float:
    """Returns the test accuracy (%) of a logistic regression (standardised features) trained on frozen features."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    probe.fit(train_features, train_labels)
    return 100.0 * float((probe.predict(test_features) == test_labels).mean())


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Returns the leave-one-out k-NN accuracy (%) of standardised features (N, D): how often an image's k nearest
    neighbours mostly share its class, the number behind a t-SNE picture."""
    scaled = StandardScaler().fit_transform(features)
    knn = KNeighborsClassifier(n_neighbors=k + 1).fit(scaled, labels)
    neighbours = knn.kneighbors(scaled, return_distance=False)[:, 1:]            # drop the image itself
    votes = np.array([np.bincount(labels[row], minlength=labels.max() + 1).argmax() for row in neighbours])
    return 100.0 * float((votes == labels).mean())


def probe_pretrained(model: nn.Module, root: Path | str | None = None) -> dict:
    """Strategy (a): linear probe on the pretrained network's pooled features of the STL-10 images; returns
    {test_acc, seconds, features_dim}. Deterministic (no random draw), so one run stands for every seed."""
    started = time.perf_counter()
    train, test = load_stl10(True, root), load_stl10(False, root)
    train_x = pooled_features(model, train.images, train.labels["labels"])
    test_x = pooled_features(model, test.images, test.labels["labels"])
    accuracy = linear_probe(train_x, train.labels["labels"], test_x, test.labels["labels"])
    return {"test_acc": accuracy, "seconds": time.perf_counter() - started, "features_dim": train_x.shape[1]}


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
