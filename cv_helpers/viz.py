"""Figures for the notebooks and the report: example grids, curves, per-class bars, confusion matrix, t-SNE.

Every function returns a matplotlib Figure; `save_figure` writes it as PDF and PNG under report/figures/ with
fixed metadata (no dates), so re-running a notebook on the same numbers gives the same bytes.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.manifold import TSNE

from .config import mode_name, model_device, report_dir
from .files import write_atomically
from .history import History
from .models import eval_mode
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


# One colour per network in every notebook's figures (the default cycle for anything else).
NETWORK_COLOURS = {"mlp": "tab:orange", "mlp4": "tab:red", "convnet": "tab:blue", "convnet-bn": "tab:green",
                   "resconvnet5": "tab:purple"}


def run_colours(runs: dict) -> dict[str, str]:
    """Returns label -> the colour of the label's network, for runs (label -> a result with `.config.model`)."""
    return {label: NETWORK_COLOURS[run.config.model] for label, run in runs.items()
            if run.config.model in NETWORK_COLOURS}


def _colours(labels: Iterable[str], colours: dict[str, str] | None) -> list[str]:
    """Returns one colour per label: the given one, else the next of the default cycle."""
    cycle = itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    return [(colours or {}).get(label) or next(cycle) for label in labels]


def _label_axes(ax: plt.Axes, xlabel: str, ylabel: str, title: str, whole_x: bool = True,
                legend: bool = True) -> None:
    """The project's axes: labels, a light grid, whole-number ticks on x (epochs, trials) and the legend outside
    the axes, to the right, where it covers no data."""
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    if whole_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def plot_history(histories: dict[str, History], title: str = "", colours: dict[str, str] | None = None) -> Figure:
    """Returns loss (left) and accuracy (right) per epoch, train dashed and test solid, one colour per run
    (`colours`: label -> colour, e.g. `run_colours(runs)`)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for (name, history), colour in zip(histories.items(), _colours(histories, colours)):
        epochs = np.arange(1, history.epochs + 1)
        loss_ax.plot(epochs, history.train_loss, "--", color=colour, label=f"{name} train")
        loss_ax.plot(epochs, history.test_loss, "-", color=colour, label=f"{name} test")
        acc_ax.plot(epochs, history.train_acc, "--", color=colour, label=f"{name} train")
        acc_ax.plot(epochs, history.test_acc, "-", color=colour, label=f"{name} test")
    _label_axes(loss_ax, "epoch", "cross-entropy loss", "loss", legend=False)
    _label_axes(acc_ax, "epoch", "accuracy (%)", "accuracy")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# The time plot's runs are one network at several budgets: told apart by line style, not by a network's colour.
TIME_STYLES = (("black", "-", "o"), ("dimgray", "--", "s"), ("black", ":", "^"), ("gray", "-.", "D"))


def plot_accuracy_against_time(histories: dict[str, History], targets: Sequence[float] = ()) -> Figure:
    """Returns test accuracy (%) after each epoch against the wall time so far (minutes, training and
    evaluation), one line style per run, with the `targets` as labelled horizontal lines."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for (name, history), (colour, style, marker) in zip(histories.items(), itertools.cycle(TIME_STYLES)):
        ax.plot(np.cumsum(history.seconds) / 60, history.test_acc, linestyle=style, marker=marker, color=colour,
                markersize=3.5, label=name)
    for target in targets:
        ax.axhline(target, color="tab:red", linestyle=":", linewidth=1)
        ax.annotate(f"{target:g} % target", (1.0, target), xycoords=("axes fraction", "data"), xytext=(-3, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=8, color="tab:red")
    _label_axes(ax, "wall time (minutes, training and evaluation)", "test accuracy (%)",
                "Accuracy against wall time", whole_x=False)
    fig.tight_layout()
    return fig


def plot_per_class_comparison(first: tuple[str, np.ndarray], second: tuple[str, np.ndarray],
                              class_names: Sequence[str], labelled: int = 5,
                              colours: dict[str, str] | None = None) -> Figure:
    """Returns one point per class, `first`'s test accuracy (%) against `second`'s ((label, accuracies (C,))
    each), with the diagonal of equal accuracy; of the classes each net wins, the `labelled` it wins by most are
    named."""
    (first_name, x), (second_name, y) = (first[0], np.asarray(first[1])), (second[0], np.asarray(second[1]))
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 100], [0, 100], color="grey", linewidth=0.8, linestyle="--", label="equal accuracy")
    gain = y - x
    colour_of = dict(zip((first_name, second_name), _colours((first_name, second_name), colours)))
    ax.scatter(x, y, s=12, color=[colour_of[second_name] if g >= 0 else colour_of[first_name] for g in gain], alpha=0.8)
    order = np.argsort(gain, kind="stable")
    named = [i for i in order[:labelled] if gain[i] < 0] + [i for i in order[::-1][:labelled] if gain[i] > 0]
    placed: list[tuple[float, float]] = []
    for index in sorted(named, key=lambda i: y[i]):             # names kept apart: at least 3 points vertically
        text_y = y[index]
        while any(abs(text_y - other_y) < 3 and abs(x[index] - other_x) < 25 for other_x, other_y in placed):
            text_y += 3
        placed.append((x[index], text_y))
        ax.annotate(class_names[index], (x[index], y[index]), xytext=(x[index] + 2, text_y), fontsize=7,
                    va="center", arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5})
    ax.set(xlim=(0, 100), ylim=(0, 100), aspect="equal",
           xlabel=f"{first_name}: test accuracy per class (%)", ylabel=f"{second_name}: test accuracy per class (%)")
    ax.set_title(f"{int((gain > 0).sum())} of {len(gain)} classes above the diagonal", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], label: str = "class",
                          title: str = "") -> Figure:
    """Returns the confusion matrix as row percentages (row = true `label`), each cell's percentage written in
    it; sized so that a 20 x 20 matrix stays readable at a page's width."""
    rates = 100.0 * matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = len(class_names)
    small = size <= 10          # a few classes: a figure that grows with them; more: one page-wide square
    fig, ax = plt.subplots(figsize=(2.2 + 0.55 * size, 1.6 + 0.45 * size) if small else (8.0, 7.2))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=100)
    tick_size = 8 if small else 7
    ax.set_xticks(range(size), class_names, rotation=45 if small else 90, ha="right" if small else "center",
                  fontsize=tick_size)
    ax.set_yticks(range(size), class_names, fontsize=tick_size)
    ax.set(xlabel=f"predicted {label}", ylabel=f"true {label}")
    for (i, j), value in np.ndenumerate(rates):
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8 if small else 6,
                color="white" if value > 50 else "black")
    fig.colorbar(image, ax=ax, label=f"% of the true {label}'s test images", fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_range_tests(tests: dict, colours: dict[str, str] | None = None,
                     dashed: Sequence[str] = ()) -> Figure:
    """Returns the smoothed training loss against the learning rate (log axis) of learning-rate range tests
    (label -> `lr_finder.RangeTest`), with the steepest descent (circle) and the minimum (triangle) marked; the
    labels in `dashed` are drawn dashed (e.g. a second optimizer on the same network, in its colour)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for (label, test), colour in zip(tests.items(), _colours(tests, colours)):
        ax.plot(test.lrs, test.losses, "--" if label in dashed else "-", color=colour, label=label)
        for lr, marker in ((test.steepest, "o"), (test.minimum, "^")):
            ax.plot(lr, test.losses[list(test.lrs).index(lr)], marker, color=colour, markersize=7)
    ax.plot([], [], "o", color="grey", label="steepest descent")
    ax.plot([], [], "^", color="grey", label="minimum")
    lowest = min(float(test.losses.min()) for test in tests.values())
    ax.set(xscale="log", ylim=(lowest - 0.1, max(float(test.losses[0]) for test in tests.values()) + 0.3))
    _label_axes(ax, "learning rate (log scale)", "training loss (smoothed)",
                "Learning-rate range test: loss while the rate grows each step", whole_x=False)
    fig.tight_layout()
    return fig


def plot_trial_history(curves: dict[int, list[float]], stopped: set[int], title: str) -> Figure:
    """Returns each trial's validation accuracy (%) against its number: complete trials as dots with the best so far,
    stopped ones (pruned or diverged) as crosses at their last reported epoch. curves: trial -> accuracy per
    epoch."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    complete = [(number, accuracies[-1]) for number, accuracies in sorted(curves.items()) if number not in stopped]
    halted = [(number, accuracies[-1]) for number, accuracies in sorted(curves.items()) if number in stopped]
    if complete:
        numbers, values = zip(*complete)
        ax.plot(numbers, values, "o", color="tab:blue", label=f"complete ({len(complete)})")
        ax.step(numbers, np.maximum.accumulate(values), where="post", color="tab:blue", alpha=0.5,
                label="best so far")
    if halted:
        ax.plot(*zip(*halted), "x", color="tab:red", label=f"pruned or diverged ({len(halted)}): last epoch")
    _label_axes(ax, "trial", "validation accuracy (%)", title)
    fig.tight_layout()
    return fig


def plot_trial_curves(curves: dict[int, list[float]], stopped: set[int], title: str) -> Figure:
    """Returns validation accuracy (%) per epoch of every trial; stopped trials (pruned or diverged) dashed with a cross
    where they were stopped. curves: trial -> accuracy per epoch."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for number, accuracies in sorted(curves.items()):
        epochs = np.arange(1, len(accuracies) + 1)
        if number in stopped:
            ax.plot(epochs, accuracies, "--", color="tab:red", alpha=0.6, linewidth=1)
            ax.plot(epochs[-1], accuracies[-1], "x", color="tab:red")
        else:
            ax.plot(epochs, accuracies, "-", color="tab:blue", alpha=0.7, linewidth=1)
    ax.plot([], [], "-", color="tab:blue", label="complete")
    ax.plot([], [], "--x", color="tab:red", label="pruned or diverged")
    _label_axes(ax, "epoch", "validation accuracy (%)", title)
    fig.tight_layout()
    return fig


def plot_importances(importances: dict[str, float], complete: int) -> Figure:
    """Returns horizontal bars of parameter importances (summing to 1), largest on top, with the number of
    complete trials they rest on in the title."""
    names = sorted(importances, key=importances.get)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.4))
    ax.barh(names, [importances[name] for name in names], color="tab:blue")
    ax.set(xlabel="importance (fANOVA, share of the variance)", xlim=(0, 1),
           title=f"What mattered, from {complete} complete trials")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Returns (penultimate features (N, D) float32, labels (N,)) of `model.features` in eval mode."""
    device, features, labels = model_device(model), [], []
    with eval_mode(model):
        for images, targets in loader:
            features.append(model.features(images.to(device)).float().cpu())
            labels.append(torch.as_tensor(targets).cpu())
    return torch.cat(features).numpy(), torch.cat(labels).numpy()


def tsne_perplexity(num_samples: int, preferred: float = 30.0) -> float:
    """Returns a perplexity sklearn accepts for `num_samples` points (it must stay below the sample count)."""
    return float(max(1.0, min(preferred, (num_samples - 1) / 3)))


def tsne_embedding(features: np.ndarray, random_state: int = 0) -> np.ndarray:
    """Returns the 2-D t-SNE embedding (N, 2) of features (N, D), with a perplexity valid for N."""
    # TODO(Q2.2b): embed the features in 2-D with sklearn's TSNE (perplexity: tsne_perplexity)
    # BEGIN SOLUTION
    tsne = TSNE(n_components=2, perplexity=tsne_perplexity(len(features)), init="pca", random_state=random_state)
    return tsne.fit_transform(features)
    # END SOLUTION


def plot_embedding(embedding: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str,
                   ax: plt.Axes | None = None) -> Figure:
    """Returns a scatter of a 2-D t-SNE embedding coloured by class, with a legend beside it for up to 10 classes
    and each class's name at its points' median for more (20 colours in a legend cannot be told apart). t-SNE axes
    carry no units."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.5, 4.8))
    ax = ax or fig.add_subplot()
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    size = float(np.clip(6000 / len(embedding), 6, 30))            # a few dozen points drawn larger than thousands
    for label, name in enumerate(class_names):
        points = embedding[labels == label]
        ax.scatter(points[:, 0], points[:, 1], s=size, color=cmap(label % cmap.N), label=name, alpha=0.7)
        if len(class_names) > 10 and len(points):
            centre = np.median(points, axis=0)
            ax.annotate(name, centre, fontsize=6.5, ha="center", va="center", weight="bold",
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0})
    ax.set(title=title, xlabel="t-SNE dimension 1 (no units)", ylabel="t-SNE dimension 2 (no units)")
    if len(class_names) <= 10:
        ax.legend(fontsize=7, markerscale=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def save_figure(fig: Figure, name: str, folder: Path | str | None = None) -> None:
    """Writes `fig` as name.pdf and name.png under report/figures/ (or `folder`). It returns nothing, so that a
    notebook cell ending with it shows the figure and not the paths of this machine.

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
