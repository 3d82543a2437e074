"""Q1.4's two added layers at a fixed recipe: each assignment net trained with its improved net's recipe and each
improved net with the assignment net's, so that the layers' effect is measured apart from the recipes'. Every run
is on the validation split; the improved nets' own-recipe rows are their sweeps' three base seeds."""
from __future__ import annotations

from ..tables import mean_and_spread
from .experiment import load_or_train
from .sweep import BASE_SEEDS, FIGURE6_SWEEP, MLP_SWEEP, Sweep

# (network, recipe, the preset of its run or the sweep whose base seeds it is), in pairs: plain net, deeper net.
ADDED_LAYERS = (
    ("TwoLayerNet", "Q1.3 (its own)", "q1.3-mlp-val"),
    ("MLP-4 (+2 hidden layers)", "Q1.3", "q1.4-val-mlp4-q1.3-recipe"),
    ("TwoLayerNet", "MLP-4's (Table 2)", "q1.4-val-twolayer-figure5-recipe"),
    ("MLP-4 (+2 hidden layers)", "MLP-4's own", MLP_SWEEP),
    ("LeNet ConvNet", "Q1.3 (its own)", "q1.3-convnet-val"),
    ("ConvNet-BN", "Q1.3", "q1.4-val-convnet-bn-q1.3-recipe"),
    ("LeNet ConvNet", "ConvNet-BN's (Table 1), 3 epochs", "q1.4-val-lenet-figure6-recipe"),
    ("ConvNet-BN", "ConvNet-BN's own, 3 epochs", FIGURE6_SWEEP),
)
ADDED_LAYERS_HEADERS = ["network", "recipe", "validation accuracy (%)", "seeds"]


def added_layers(sweep_rows: dict[str, list[dict]]) -> tuple[list[tuple], list[str]]:
    """Returns (the table's rows, one line per pair: the deeper net's points over the plain one at one recipe).
    sweep_rows: sweep prefix -> the rows `run_sweep` returned for it (their base seeds are read, nothing trains);
    the other runs are trained or read from their files (`load_or_train`)."""
    measured = []
    for network, recipe, source in ADDED_LAYERS:
        if isinstance(source, Sweep):
            accuracies = [row["test_acc"] for row in sweep_rows[source.prefix] if row["change"].startswith("base")]
        else:
            accuracies = [load_or_train(source, need_model=False).test_acc]
        measured.append((network, recipe, accuracies))
    rows = [(network, recipe, mean_and_spread(accs) if len(accs) > 1 else f"{accs[0]:.2f}",
             ", ".join(map(str, (0, *BASE_SEEDS)[:len(accs)]))) for network, recipe, accs in measured]
    lines = []
    for (plain, _, before), (deeper, recipe, after) in zip(measured[::2], measured[1::2]):
        gain = sum(after) / len(after) - sum(before) / len(before)
        lines.append(f"At the {recipe.split(' (')[0]} recipe: {deeper} {gain:+.2f} points over {plain}")
    return rows, lines
