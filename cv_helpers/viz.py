"""Figures for the notebooks and the report: example grids, curves, per-class bars, confusion matrix, t-SNE.

Every function returns a matplotlib Figure; `save_figure` writes it as PDF and PNG under report/figures/ with
fixed metadata (no dates), so re-running a notebook on the same numbers gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.manifold import TSNE

from .config import mode_name, report_dir
from .files import write_atomically
from .train import History
from .transforms import unnormalize


def show_class_examples(dataset, class_ids: Sequence[int], per_class: int = 8,
                        class_names: Sequence[str] | None = None) -> Figure:
    """Returns a grid: one row per class id, `per_class` training images each, un-normalised for display.

    `dataset[i]` must return (normalised tensor (3, H, W), label) and `dataset.targets` the labels.
    """
    names = class_names or dataset.classes
    targets = np.asarray(dataset.targets)
    fig, axes = plt.subplots(len(class_ids), per_class, figsize=(1.2 * per_class, 1.3 * len(class_ids)),
                             squeeze=False)
    for row, class_id in zip(axes, class_ids):
        for ax, index in zip(row, np.flatnonzero(targets == class_id)[:per_class]):
            image, _ = dataset[int(index)]
            ax.imshow(unnormalize(image).permute(1, 2, 0).numpy())
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{class_id}: {names[class_id]}", rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def show_images(images: torch.Tensor, titles: Sequence[str] | None = None, columns: int = 8) -> Figure:
    """Returns a grid of normalised images (N, 3, H, W), un-normalised for display."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.4 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(unnormalize(images[index].cpu()).permute(1, 2, 0).numpy())
            if titles is not None:
                ax.set_title(titles[index], fontsize=7)
    fig.tight_layout()
    return fig


def plot_history(histories: dict[str, History], title: str = "") -> Figure:
    """Returns loss (left) and accuracy (right) per epoch, train dashed and test solid, one colour per run."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for (name, history), colour in zip(histories.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        epochs = np.arange(1, history.epochs + 1)
        loss_ax.plot(epochs, history.train_loss, "--", color=colour, label=f"{name} train")
        loss_ax.plot(epochs, history.test_loss, "-", color=colour, label=f"{name} test")
        acc_ax.plot(epochs, history.train_acc, "--", color=colour, label=f"{name} train")
        acc_ax.plot(epochs, history.test_acc, "-", color=colour, label=f"{name} test")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))       # epochs are whole numbers
    acc_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)   # off the curves
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_per_class_accuracy(accuracies: dict[str, np.ndarray], class_names: Sequence[str],
                            sort_by: str | None = None) -> Figure:
    """Returns grouped bars of per-class accuracy (%) for one or more models; optionally sorted by one model."""
    order = np.arange(len(class_names))
    if sort_by is not None:
        order = np.argsort(-np.nan_to_num(accuracies[sort_by]), kind="stable")
    width = 0.8 / len(accuracies)
    fig, ax = plt.subplots(figsize=(max(6, 0.15 * len(class_names) + 2), 4))
    for offset, (name, values) in enumerate(accuracies.items()):
        ax.bar(np.arange(len(order)) + offset * width, np.asarray(values)[order], width,
               label=f"{name} (mean {np.nanmean(values):.1f} %)")
    ax.set_xticks(np.arange(len(order)) + 0.4 - width / 2, [class_names[i] for i in order], rotation=90, fontsize=7)
    ax.set(ylabel="test accuracy (%)", xlim=(-0.5, len(order)))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Returns the confusion matrix as row percentages (row = true class), with counts in small classes."""
    rates = 100.0 * matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(class_names), 0.8 + 0.6 * len(class_names)))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="predicted class", ylabel="true class")
    if len(class_names) <= 20:
        for (i, j), value in np.ndenumerate(rates):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 50 else "black")
    fig.colorbar(image, ax=ax, label="% of true class")
    fig.tight_layout()
    return fig


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Returns (penultimate features (N, D) float32, labels (N,)) of `model.features` in eval mode."""
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    features, labels = [], []
    for images, targets in loader:
        features.append(model.features(images.to(device)).float().cpu())
        labels.append(torch.as_tensor(targets).cpu())
    model.train(was_training)
    return torch.cat(features).numpy(), torch.cat(labels).numpy()


def tsne_perplexity(num_samples: int, preferred: float = 30.0) -> float:
    """Returns a perplexity sklearn accepts for `num_samples` points (it must stay below the sample count)."""
    return float(max(1.0, min(preferred, (num_samples - 1) / 3)))


def tsne_embedding(features: np.ndarray, random_state: int = 0) -> np.ndarray:
    """Returns the 2-D t-SNE embedding (N, 2) of features (N, D), with a perplexity valid for N."""
    tsne = TSNE(n_components=2, perplexity=tsne_perplexity(len(features)), init="pca", random_state=random_state)
    return tsne.fit_transform(features)


def plot_embedding(embedding: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str,
                   ax: plt.Axes | None = None) -> Figure:
    """Returns a scatter of a 2-D t-SNE embedding coloured by class. t-SNE axes carry no units."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.5, 4.8))
    ax = ax or fig.add_subplot()
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for label, name in enumerate(class_names):
        points = embedding[labels == label]
        ax.scatter(points[:, 0], points[:, 1], s=6, color=cmap(label % cmap.N), label=name, alpha=0.7)
    ax.set(title=title, xlabel="t-SNE dimension 1 (no units)", ylabel="t-SNE dimension 2 (no units)")
    ax.legend(fontsize=7, markerscale=2, loc="best", ncol=1 if len(class_names) <= 10 else 2)
    return fig


def save_figure(fig: Figure, name: str, folder: Path | str | None = None) -> list[Path]:
    """Writes `fig` as name.pdf and name.png under report/figures/ (or `folder`); returns the two paths.

    Metadata holds no date or version, so identical figures give identical bytes; its 'mode' field records
    smoke or full mode, so the report can refuse smoke figures.
    """
    folder = Path(folder) if folder is not None else report_dir() / "figures"
    mode = mode_name()
    paths = [folder / f"{name}.pdf", folder / f"{name}.png"]
    metadata = {"pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None,
                        "Subject": f"cv-workbook mode={mode}"},
                "png": {"Software": None, "Description": f"cv-workbook mode={mode}"}}
    for path in paths:
        kind = path.suffix[1:]
        write_atomically(path, lambda handle: fig.savefig(handle, format=kind, metadata=metadata[kind], dpi=150,
                                                          bbox_inches="tight"))
    return paths
