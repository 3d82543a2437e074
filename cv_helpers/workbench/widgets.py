"""The Q1.4 tuning panel: sliders and dropdowns around `run_experiment`, with a Train button and live curves."""
from __future__ import annotations

import threading

import ipywidgets as widgets
from IPython.display import display
from matplotlib import pyplot as plt

from ..config import by_mode
from ..errors import WorkbookError
from ..history import FitResult, History
from ..models import MODELS
from ..train_config import OPTIMIZERS, TrainConfig
from ..transforms import AUGMENTATIONS
from ..viz import plot_history
from .experiment import run_experiment


class LivePlot:
    """An `on_epoch_end` callback that redraws the loss and accuracy curves in place, once per epoch."""

    def __init__(self, title: str = "") -> None:
        self.title, self.handle = title, None

    def __call__(self, progress: FitResult) -> None:
        fig = plot_history({"run": progress.history}, self.title)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)


def train_and_plot(model: str, optimizer: str, lr: float, batch_size: int, epochs: int, weight_decay: float,
                   momentum: float, augmentation: str, validation: bool = True,
                   run_name: str = "") -> History | None:
    """Trains one configuration on CIFAR-100 with live curves; returns its History (None if refused).

    With `validation` it trains on the training split less the validation images and measures on those (the split
    to choose settings on), else on the whole training split, measured on the test split. With a `run_name` the
    run is saved under runs/ (and refused at once while another process trains that run).
    """
    config = TrainConfig(model=model, optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=epochs,
                         weight_decay=weight_decay, momentum=momentum, augmentation=augmentation,
                         validation=validation)
    live = LivePlot(f"{model}, {optimizer}, lr={lr:g}, batch {batch_size}, {augmentation}")
    try:
        result = run_experiment(config, run_name.strip() or None, on_epoch_end=live)
    except WorkbookError as err:  # bad settings, divergence, a run being trained elsewhere: one line
        print(f"error: {err}")
        return None
    print(f"{result.evaluated_on} accuracy after {result.history.epochs} epochs: {result.test_acc:.2f} %")
    return result.history


def make_training_ui() -> widgets.interactive:
    """Returns the panel; press Train (or call `.update()`) to train with the chosen settings.

    Only Train trains: ipywidgets' manual mode would also train when the run-name box loses focus (so typing a name
    and pressing Train trained twice), and a press that reaches the kernel while the panel trains is ignored (the
    kernel can deliver it on another thread; the button is disabled meanwhile anyway)."""
    style = {"description_width": "110px"}
    panel = widgets.interactive(
        train_and_plot, {"manual": True, "manual_name": "Train"},
        model=widgets.Dropdown(options=list(MODELS), value="convnet", description="model", style=style),
        optimizer=widgets.Dropdown(options=list(OPTIMIZERS), value="sgd", description="optimizer", style=style),
        lr=widgets.FloatLogSlider(value=0.01, base=10, min=-4, max=0, step=0.25, description="learning rate",
                                  style=style),
        batch_size=widgets.Dropdown(options=[32, 64, 128, 256], value=128, description="batch size", style=style),
        epochs=widgets.IntSlider(value=by_mode(5, 1), min=1, max=50, description="epochs", style=style),
        weight_decay=widgets.Dropdown(options=[0.0, 1e-5, 1e-4, 5e-4, 1e-3], value=1e-4,
                                      description="weight decay", style=style),
        momentum=widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="momentum", style=style),
        augmentation=widgets.Dropdown(options=list(AUGMENTATIONS), value="q1.4", description="augmentation",
                                      style=style),
        validation=widgets.Checkbox(value=True, description="measure on the validation split (not the test split)",
                                    style=style),
        run_name=widgets.Text(value="", placeholder="empty: not saved", description="save as run", style=style),
    )
    for widget in panel.kwargs_widgets:
        if isinstance(widget, widgets.Text):
            widget.unobserve(panel.update, names="value")
    training = threading.Lock()

    def press(button: widgets.Button) -> None:
        if training.acquire(blocking=False):
            try:
                panel.update()
            finally:
                training.release()

    panel.manual_button.on_click(panel.update, remove=True)
    panel.manual_button.on_click(press)
    return panel
