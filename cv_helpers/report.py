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
      ("q1_3_per_class_accuracy", "Test accuracy per class, sorted by the ConvNet's."),
      ("q1_3_superclass_confusion", "The ConvNet's test predictions grouped by the 20 superclasses (row = true "
       "superclass, % of its images)."),
      ("q1_3_misclassified", "Sixteen misclassified test images (fixed seed) with their true and predicted "
       "classes.")],
     ["q1_3_results", "q1_3_seeds", "q1_3_train_without_augmentation", "q1_3_largest_convnet_gains",
      "q1_3_confused_pairs"]),
    ("Q1.4 Hyperparameters and improved networks", "A learning-rate range test, one-setting-at-a-time sweeps over "
     "the report's ConvNet and MLP settings with each of its claims judged against them, an Optuna study, and the "
     "Figure 5 and Figure 6 networks with the report's best settings.",
     [("q1_4_lr_range_test", "Learning-rate range test of the Figure 5 MLP (Adam) and the LeNet ConvNet (SGD): "
       "smoothed training loss while the rate grows every step."),
      ("q1_4_improved_curves", "Loss and accuracy per epoch of the Figure 5 MLP and the Figure 6 ConvNet."),
      ("tune_q1.4-lenet-study_history", "Optuna study: test accuracy per trial and the best so far; crosses mark "
       "trials stopped early (pruned or diverged) at their last epoch."),
      ("tune_q1.4-lenet-study_epochs", "Optuna study: test accuracy per epoch of every trial; pruned ones dashed."),
      ("tune_q1.4-lenet-study_importances", "Optuna study: which settings mattered (fANOVA over the complete "
       "trials; the title gives their number).")],
     ["q1_4_lr_range_test", "q1_4_sweep", "q1_4_sweep_claims", "q1_4_mlp_sweep", "q1_4_mlp_claims",
      "q1_4_improved_results", "tune_q1.4-lenet-study"]),
    ("Q2 STL-10 fine-tuning and t-SNE", "Four ways to reuse the CIFAR-100 networks on five STL-10 classes: a "
     "linear probe on the pretrained convolutions' pooled features, training only a new fc1 (73,728 inputs for "
     "96x96 images) and 5-way head, full fine-tuning with the report's Table 3 settings, and the Q3 net's improved "
     "recipe. Every figure title and table note names the STL-10 that was present: on the course machines it is "
     "the real 219-image sample (46 training and 48 test images of the five classes), where one test image is "
     "about 2 points and nothing is comparable with the report's 82.58 % on the full 2,500 / 4,000 images.",
     [("q2_stl10_examples", "The five STL-10 classes (real photographs; the title names the data)."),
      ("q2_finetune_curves", "Full fine-tuning (Table 3 settings, seed 0): accuracy and loss per epoch."),
      ("q2_confusion_matrix", "Confusion matrix of the fully fine-tuned network (seed 0) on the test images."),
      ("q2_tsne_before_after", "t-SNE of the same test images: the pretrained network's pooled convolutional "
       "features (before) and the fine-tuned penultimate features (after), each with its 5-NN accuracy."),
      ("q2_tsne_cifar100_real", "t-SNE of the pretrained ConvNet's features on CIFAR-100 test images: classes 0-4 "
       "and the 20 superclasses.")],
     ["q2_strategies", "q2_feature_space", "q2_epochs"]),
    ("Q3 A stronger recipe", "Within the course's rules (hand-written layers, at most five convolutions, CIFAR-100 "
     "and STL-10 only): better optimisation for the Figure 5 MLP and the Figure 6 net, then the five-convolution "
     "`ResConvNet5` (two identity shortcuts, global max-pooling), all evaluated with flip test-time augmentation; "
     "then the same net in less time (progressive resizing, a whitened first layer). The ladder table pairs saved "
     "runs that differ in one change.",
     [("q3_improved_curves", "Loss and accuracy per epoch of the three improved recipes (dashed: train, solid: "
       "test with flip TTA)."),
      ("q3_per_class_accuracy", "Test accuracy per class of the Figure 6 net and the Q3 net, sorted by the Q3 "
       "net's."),
      ("q3_accuracy_against_time", "Test accuracy after each epoch against wall time (training, compilation and "
       "evaluation) of q3-best and the faster presets; dotted: the 56 % and 70 % targets. The processor of each "
       "run is in the time-to-accuracy table.")],
     ["q3_improved_results", "q3_flip_tta", "q3_time_to_accuracy", "what_worked"]),
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
