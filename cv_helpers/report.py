"""report/report.md: the course report rebuilt section by section from the exported figures and tables.

Figures carry their mode in their metadata (see `viz.save_figure`); the report refuses smoke-mode figures and
missing ones, so it can only be built from a full run of the notebooks.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from .files import write_text
from .config import report_dir
from .errors import WorkbookError

# (section title, text, [(figure name, caption)], [table names]) in the order of the course report.
SECTIONS = [
    ("Q1.1 CIFAR-100", "All 60,000 images in 100 classes (20 superclasses); the split is the data pack's own "
     "deterministic, class-balanced one, not the official membership.",
     [("q1_1_examples_classes_0-4", "Training examples of classes 0-4, un-normalised for display."),
      ("q1_1_unnormalise", "A normalised image shown raw (clipped) and un-normalised.")],
     ["q1_1_cifar100_classes"]),
    ("Q1.2-Q1.3 Baseline networks", "`TwoLayerNet` (hidden 64) and the LeNet-5 `ConvNet`, Adam 1e-3, batch 64, "
     "10 epochs, the Q1.3 augmentation. F6 (`fc2`) has 120 x 84 + 84 = 10,164 parameters.",
     [("q1_3_transforms_before_after", "The Q1.3 augmentation: originals, the torchvision pipeline, the batched "
       "fast path."),
      ("q1_3_loss_accuracy_curves", "Loss and accuracy per epoch of both networks (dashed: train, solid: test)."),
      ("q1_3_per_class_accuracy", "Test accuracy per class, sorted by the ConvNet's.")],
     ["q1_3_results", "q1_3_largest_convnet_gains"]),
    ("Q1.4 Hyperparameters and improved networks", "A one-setting-at-a-time sweep over the report's settings, an "
     "Optuna study, and the Figure 5 and Figure 6 networks with the report's best settings.",
     [("q1_4_improved_curves", "Loss and accuracy per epoch of the Figure 5 MLP and the Figure 6 ConvNet."),
      ("tune_q1.4-lenet-study_history", "Optuna study: accuracy per trial and best so far."),
      ("tune_q1.4-lenet-study_importances", "Optuna study: which settings mattered.")],
     ["q1_4_sweep", "q1_4_improved_results", "tune_q1.4-lenet-study"]),
    ("Q2 STL-10 fine-tuning and t-SNE", "Fine-tuning the Figure 6 ConvNet (new 5-way head, fc1 resized to 73,728 "
     "inputs). Real STL-10 could not be downloaded on the machine that built this report: the STL-10 figures "
     "come from a generated fixture in STL-10's format and show the pipeline, not results.",
     [("q2_stl10_examples", "STL-10 classes car, deer, horse, monkey, truck (generated fixture here)."),
      ("q2_finetune_curves", "Fine-tuning: accuracy and loss per epoch (generated fixture here)."),
      ("q2_confusion_matrix", "Confusion matrix of the fine-tuned network (generated fixture here)."),
      ("q2_tsne_before_after", "t-SNE of the penultimate features before and after fine-tuning."),
      ("q2_tsne_cifar100_real", "t-SNE of the CIFAR-100 ConvNet's features on real test images: classes 0-4 "
       "and the 20 superclasses.")],
     []),
    ("Q3 A stronger recipe", "Within the course's rules (hand-written layers, at most five convolutions, CIFAR-100 "
     "and STL-10 only): better optimisation for the Figure 5 MLP and the Figure 6 net, then the five-convolution "
     "`ResConvNet5` (two identity shortcuts, global max-pooling), all evaluated with flip test-time augmentation. "
     "The ladder table pairs saved runs that differ in one change.",
     [("q3_improved_curves", "Loss and accuracy per epoch of the three improved recipes (dashed: train, solid: "
       "test with flip TTA)."),
      ("q3_per_class_accuracy", "Test accuracy per class of the Figure 6 net and the Q3 net, sorted by the Q3 "
       "net's.")],
     ["q3_improved_results", "q3_flip_tta", "what_worked"]),
    ("Results", "Every number comes from a saved run (`runs/<name>/config.json`, `metrics.json`).", [],
     ["results"]),
]


def figure_mode(path: Path) -> str:
    """Returns 'full' or 'smoke' from a PNG written by `save_figure` ('unknown' otherwise)."""
    description = Image.open(path).text.get("Description", "")
    return description.rsplit("mode=", 1)[-1] if "mode=" in description else "unknown"


def build_report(folder: Path | None = None) -> Path:
    """Writes report/report.md; refuses missing figures and figures from smoke runs. Returns the path."""
    folder = folder or report_dir()
    lines, number = ["# CV1 final project, part 2: rebuilt from the workbook's runs", ""], 0
    for title, text, figures, tables in SECTIONS:
        lines += [f"## {title}", "", text, ""]
        for name, caption in figures:
            png = folder / "figures" / f"{name}.png"
            if not png.is_file():
                raise WorkbookError(f"figure {png} is missing; run `make report` first")
            mode = figure_mode(png)
            if mode != "full":
                raise WorkbookError(f"figure {png} comes from a {mode} run; run `make report` "
                                    "(full mode) before building the report")
            number += 1
            lines += [f"![Figure {number}](figures/{name}.png)", "", f"*Figure {number}: {caption}*", ""]
        for table in tables:
            path = folder / "tables" / f"{table}.md"
            if not path.is_file():
                raise WorkbookError(f"table {path} is missing; run `make report` first")
            lines += [path.read_text(), ""]
    out = folder / "report.md"
    write_text(out, "\n".join(lines))
    return out
