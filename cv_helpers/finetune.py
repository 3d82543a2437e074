"""Q2: fine-tuning a CIFAR-100 network on STL-10, and numbers for what a feature space separates.

The surgery (`adapt_for_finetuning`: a new 5-way head, fc1 resized for 96 x 96 images) is the course's Q2.2 task;
the pooled features, the linear probe and the k-NN accuracy measure what the pretrained and fine-tuned networks'
features separate (the t-SNE pictures' numbers). Which presets train which strategy: workbench/strategies.py.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from .config import model_device
from .data import data_name, load_stl10, stl10_source
from .errors import ConfigError
from .fast_loader import FastLoader
from .models import count_parameters, eval_mode, flattened_size, size_kwargs

FULL_STL10_COUNTS = (2_500, 4_000)    # training and test images of the five classes in the official archive


def adapt_for_finetuning(model: nn.Module, num_classes: int, image_size: int) -> nn.Module:
    """Replaces the head with a `num_classes`-way layer and resizes fc1 for `image_size` x `image_size` images.

    Returns the same model (changed in place); convolution weights are kept, the new layers start fresh.
    """
    # TODO(Q2.2a): a new num_classes-way head (model.HEAD), fc1 (model.FIRST_FC) resized for image_size
    # BEGIN SOLUTION
    head: nn.Linear = getattr(model, model.HEAD)
    setattr(model, model.HEAD, nn.Linear(head.in_features, num_classes))
    first_fc: nn.Linear = getattr(model, model.FIRST_FC)
    in_features = flattened_size(model, image_size)
    if in_features != first_fc.in_features:
        setattr(model, model.FIRST_FC, nn.Linear(in_features, first_fc.out_features))
    return model
    # END SOLUTION


def freeze_all_but_new_layers(model: nn.Module) -> int:
    """Stops gradients to every parameter but those of fc1 and the head (the layers `adapt_for_finetuning`
    replaces); returns the number of parameters left trainable."""
    trainable = {f"{model.FIRST_FC}.", f"{model.HEAD}."}
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(any(name.startswith(prefix) for prefix in trainable))
    return count_parameters(model)


def finetuned_kwargs(model_name: str, kwargs: dict, num_classes: int, image_size: int) -> dict:
    """Returns the constructor arguments of a network after `adapt_for_finetuning`."""
    return {**kwargs, "num_classes": num_classes, **size_kwargs(model_name, image_size)}


def stl10_label(root: Path | str | None = None) -> str:
    """Returns what the STL-10 data is, for titles: e.g. 'real STL-10 sample (46 / 48 images)'."""
    train, test = load_stl10(True, root), load_stl10(False, root)
    return data_name(f"stl10 {stl10_source(root)}", len(train), len(test))


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


def weight_change(before: nn.Module, after: nn.Module, layers: tuple[str, ...]) -> dict[str, float]:
    """Returns, per named layer, how far fine-tuning moved its weight tensor: 100 * ||W_after - W_before|| /
    ||W_before|| (%). 0 means the layer did not change."""
    change = {}
    for name in layers:
        old, new = before.get_submodule(name).weight.detach().cpu(), after.get_submodule(name).weight.detach().cpu()
        change[name] = 100.0 * float(torch.linalg.vector_norm(new - old) / torch.linalg.vector_norm(old))
    return change


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Returns the leave-one-out k-NN accuracy (%) of standardised features (N, D): how often an image's k nearest
    neighbours mostly share its class, the number behind a t-SNE picture. k must leave other images to vote:
    1 <= k < N - 1, else a one-line ConfigError."""
    if not 1 <= k < len(labels) - 1:
        raise ConfigError(f"k-NN with k={k} on {len(labels)} images: choose 1 <= k < {len(labels) - 1}")
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
