"""Figures: byte-stable files, valid t-SNE for any sample count, the plots draw what they are given."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib import pyplot as plt

from cv_helpers.data import CIFAR100_loader
from cv_helpers.history import History
from cv_helpers.transforms import make_test_transform
from cv_helpers.viz import (NETWORK_COLOURS, plot_accuracy_against_time, plot_confusion_matrix, plot_embedding,
                            plot_history, plot_per_class_comparison, plot_range_tests, plot_trial_curves,
                            plot_trial_history, run_colours, save_figure, show_class_examples, tsne_embedding,
                            tsne_perplexity)
from cv_helpers.workbench.lr_finder import RangeTest


def _figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [2, 1, 3])
    return fig


def test_save_figure_writes_identical_pdf_and_png_bytes_twice(tmp_path):
    for folder in ("a", "b"):
        assert save_figure(_figure(), "curve", tmp_path / folder) is None     # a notebook cell shows no paths
    first, second = ([(tmp_path / folder / f"curve.{kind}").read_bytes() for kind in ("pdf", "png")]
                     for folder in ("a", "b"))
    assert first == second
    assert first[0].startswith(b"%PDF") and first[1].startswith(b"\x89PNG")
    assert b"mode=smoke" in first[0] and b"mode=smoke" in first[1]


def test_perplexity_is_valid_for_tiny_and_large_samples():
    assert tsne_perplexity(4) == 1.0
    assert tsne_perplexity(31) == 10.0
    assert tsne_perplexity(10_000) == 30.0


@pytest.mark.parametrize("n", [5, 12, 60])
def test_tsne_runs_for_any_sample_count_and_is_seeded(n):
    features = np.random.default_rng(0).normal(size=(n, 8))
    first, second = tsne_embedding(features, random_state=0), tsne_embedding(features, random_state=0)
    assert first.shape == (n, 2) and np.allclose(first, second)


def test_tsne_separates_well_separated_clusters():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    features = rng.normal(size=(60, 10)) + labels[:, None] * 20
    embedding = tsne_embedding(features)
    centre_gap = np.linalg.norm(embedding[labels == 0].mean(0) - embedding[labels == 1].mean(0))
    assert centre_gap > 3 * embedding[labels == 0].std(0).max()
    fig = plot_embedding(embedding, labels, ["a", "b"], "t-SNE")
    assert "no units" in fig.axes[0].get_xlabel()


def test_history_plot_has_train_and_test_curves_per_run():
    history = History(train_loss=[3, 2], train_acc=[10, 20], test_loss=[3.5, 2.5], test_acc=[8, 15])
    fig = plot_history({"convnet": history, "mlp": history})
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 4 and list(acc_ax.lines[1].get_ydata()) == [8, 15]


def test_per_class_comparison_puts_each_class_at_its_two_accuracies_and_names_the_largest_gaps():
    first, second = np.array([10.0, 50.0, 30.0, 20.0]), np.array([40.0, 45.0, 30.0, 80.0])
    fig = plot_per_class_comparison(("MLP", first), ("LeNet", second), ["w", "x", "y", "z"], labelled=1)
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().tolist() == [[10, 40], [50, 45], [30, 30], [20, 80]]
    assert sorted(text.get_text() for text in ax.texts) == ["x", "z"]      # LeNet's largest gain, MLP's
    fig = plot_per_class_comparison(("MLP", first), ("LeNet", first + [1, 2, 3, 4]), ["w", "x", "y", "z"], labelled=2)
    assert sorted(text.get_text() for text in fig.axes[0].texts) == ["y", "z"]   # LeNet wins all: its two largest
    assert ax.get_title() == "2 of 4 classes above the diagonal" and "LeNet" in ax.get_ylabel()
    plt.close(fig)


def test_confusion_matrix_shows_row_percentages_and_names_what_its_axes_count():
    fig = plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["75", "25", "0", "100"]
    fig = plot_confusion_matrix(np.eye(20, dtype=int), [f"s{i}" for i in range(20)], label="superclass",
                                title="LeNet")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted superclass", "true superclass")
    assert len(ax.texts) == 400 and min(t.get_fontsize() for t in ax.texts) >= 6
    assert fig.get_suptitle() == "LeNet" and ax.get_title() == ""           # the title clear of the colour bar
    plt.close("all")


def test_a_twenty_class_embedding_names_each_class_at_its_points_instead_of_a_legend():
    points = np.random.default_rng(0).normal(size=(60, 2)) + np.repeat(np.arange(20), 3)[:, None] * 10
    fig = plot_embedding(points, np.repeat(np.arange(20), 3), [f"superclass {i}" for i in range(20)], "t-SNE")
    ax = fig.axes[0]
    assert ax.get_legend() is None and len(ax.texts) == 20
    assert ax.texts[4].get_text() == "superclass 4" and np.allclose(ax.texts[4].xy, np.median(points[12:15], 0))
    plt.close(fig)


def test_class_examples_grid_has_a_row_per_class(data_root):
    dataset = CIFAR100_loader(data_root, train=True, transform=make_test_transform())
    fig = show_class_examples(dataset, [0, 1, 2], per_class=4)
    assert len(fig.axes) == 12 and fig.axes[0].get_ylabel().startswith("0: ")
    assert fig.axes[0].images[0].get_array().min() >= 0          # un-normalised to [0, 1]


def test_history_plot_has_whole_epoch_ticks_and_its_legend_outside_the_axes():
    history = History(train_loss=[3, 2, 1.5, 1.2], train_acc=[10, 20, 25, 28], test_loss=[3.5, 2.5, 2.2, 2.1],
                      test_acc=[8, 15, 18, 19])
    fig = plot_history({"convnet": history})
    fig.canvas.draw()
    loss_ax, acc_ax = fig.axes
    ticks = [t for t in loss_ax.get_xticks() if 1 <= t <= 4]
    assert ticks and all(float(t).is_integer() for t in ticks)
    legend_box = acc_ax.get_legend().get_window_extent()
    assert legend_box.x0 >= acc_ax.get_window_extent().x1                     # right of the accuracy axes
    assert loss_ax.get_legend() is None


def _legend_is_right_of_its_axes(fig) -> bool:
    fig.canvas.draw()
    return all(ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
               for ax in fig.axes if ax.get_legend() is not None)


def test_every_curve_figure_keeps_its_legend_off_the_data():
    history = History(train_loss=[3, 2], train_acc=[10, 20], test_loss=[3.5, 2.5], test_acc=[8, 15])
    points = np.random.default_rng(0).normal(size=(60, 2))
    curve = RangeTest(np.logspace(-4, 0, 5), np.array([4.6, 4.4, 4.0, 4.2, 9.0]))
    figures = [plot_history({"convnet": history}),
               plot_embedding(points, np.arange(60) % 5, [f"class {i}" for i in range(5)], "t-SNE"),
               plot_range_tests({"mlp": curve}),
               plot_trial_history({0: [5.0, 9.0], 1: [2.0]}, {1}, "study"),
               plot_trial_curves({0: [5.0, 9.0], 1: [2.0]}, {1}, "study")]
    assert all(_legend_is_right_of_its_axes(fig) for fig in figures)
    plt.close("all")


def test_each_network_keeps_its_colour_whatever_the_order_of_the_runs():
    class Run:
        def __init__(self, model):
            self.config, self.history = type("Config", (), {"model": model}), History(
                train_loss=[3, 2], train_acc=[10, 20], test_loss=[3.5, 2.5], test_acc=[8, 15])

    for runs in ({"a": Run("mlp"), "b": Run("convnet")}, {"b": Run("convnet"), "a": Run("mlp")}):
        fig = plot_history({label: run.history for label, run in runs.items()}, colours=run_colours(runs))
        colours = {line.get_label().split()[0]: line.get_color() for line in fig.axes[0].lines}
        assert colours == {"a": NETWORK_COLOURS["mlp"], "b": NETWORK_COLOURS["convnet"]}
    plt.close("all")


def test_accuracy_against_time_puts_each_epoch_at_its_cumulative_minutes():
    history = History(train_loss=[3, 2], train_acc=[10, 20], test_loss=[3, 2], test_acc=[30.0, 45.0],
                      seconds=[60.0, 90.0])
    fig = plot_accuracy_against_time({"q3-fast": history, "q3-best": history}, targets=(56.0,))
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [1.0, 2.5] and list(line.get_ydata()) == [30.0, 45.0]
    assert line.get_linestyle() != fig.axes[0].lines[1].get_linestyle()         # one net: told apart by style
    assert [text.get_text() for text in fig.axes[0].texts] == ["56 % target"]
    assert _legend_is_right_of_its_axes(fig)
    plt.close("all")
