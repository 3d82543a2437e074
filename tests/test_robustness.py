"""Bad input from the Python API and the widgets: refused with one line before any work, nothing lost."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cv_helpers.config import run_name_for, runs_dir, seed_everything
from cv_helpers.data import CIFAR100_loader, STL10_Dataset
from cv_helpers.errors import WorkbookError
from cv_helpers.history import History
from cv_helpers.train import TrainConfig
from cv_helpers.transforms import AUGMENTATIONS, make_train_transform
from cv_helpers.viz import save_figure
from cv_helpers.workbench.widgets import make_training_ui, train_and_plot


def test_widget_refuses_a_zero_learning_rate_with_one_line(capsys):
    history = train_and_plot(model="convnet", optimizer="sgd", lr=0.0, batch_size=64, epochs=1, weight_decay=0.0,
                             momentum=0.9, augmentation="q1.4")
    assert history is None
    assert capsys.readouterr().out.strip() == "error: learning rate must be a finite number > 0, got 0.0"


def test_widget_refuses_momentum_of_one(capsys):
    assert train_and_plot("convnet", "sgd", 0.01, 64, 1, 0.0, 1.0, "q1.4") is None
    assert "momentum must be in [0, 1)" in capsys.readouterr().out


def test_widget_panel_offers_every_knob_and_a_train_button():
    ui = make_training_ui()
    names = [getattr(child, "description", "") for child in ui.children]
    assert names[:8] == ["model", "optimizer", "learning rate", "batch size", "epochs", "weight decay", "momentum",
                         "augmentation"]
    assert ui.manual_button.description == "Train"


def test_only_the_train_button_trains_and_one_press_trains_once(data_root, capsys):
    ui = make_training_ui()
    settings = {"model": "mlp", "epochs": 1, "batch_size": 128}
    for child in ui.kwargs_widgets:
        child.value = settings.get(child._kwarg, child.value)
    run_name = next(child for child in ui.kwargs_widgets if child._kwarg == "run_name")
    run_name.value = "typed-name"                           # the box losing focus in the page sends this
    assert ui.result is None                                # nothing trained
    ui.manual_button.click()
    assert isinstance(ui.result, History) and ui.result.epochs == 1
    assert (runs_dir() / run_name_for("typed-name") / "metrics.json").is_file()


def test_seed_everything_repeats_the_same_numbers():
    seed_everything(5)
    first = (torch.rand(3), np.random.rand(3))
    seed_everything(5)
    second = (torch.rand(3), np.random.rand(3))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_figure_into_an_unwritable_place_is_one_clear_error_and_keeps_old_files(tmp_path):
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2])
    save_figure(fig, "kept", tmp_path)
    before = (tmp_path / "kept.png").read_bytes()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkbookError, match="cannot write .*kept.pdf.*choose a writable folder"):
        save_figure(fig, "kept", blocker)
    assert (tmp_path / "kept.png").read_bytes() == before


@settings(max_examples=20, deadline=None)
@given(recipe=st.sampled_from(sorted(AUGMENTATIONS)), index=st.integers(0, 10_000), train=st.booleans())
def test_any_recipe_on_any_cifar_item_gives_a_normalised_3x32x32_tensor(data_root, recipe, index, train):
    dataset = CIFAR100_loader(data_root, train=train, transform=make_train_transform(recipe, 32))
    image, label = dataset[index % len(dataset)]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0 and 0 <= label < 100


@settings(max_examples=10, deadline=None)
@given(recipe=st.sampled_from(sorted(AUGMENTATIONS)), index=st.integers(0, 10_000))
def test_any_recipe_on_any_stl10_item_gives_a_normalised_3x96x96_tensor(data_root, recipe, index):
    dataset = STL10_Dataset(data_root, train=True, transform=make_train_transform(recipe, 96))
    image, label = dataset[index % len(dataset)]
    assert image.shape == (3, 96, 96) and -1.0 <= image.min() and image.max() <= 1.0 and 0 <= label < 5


def test_config_validation_accepts_the_presets():
    from cv_helpers.workbench.presets import PRESETS

    for config in PRESETS.values():
        assert config.validate() is config
    assert TrainConfig().validate().lr == 1e-3
