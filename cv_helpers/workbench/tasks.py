"""The course's graded tasks (UvA CV1 2023, part 2) and the grading map: for each task, its points, where the
student writes it in the package, where the notebooks show it and which figures and tables are its evidence.

The map is computed, never typed: the package places are the solution regions' stubs, the notebook place is the
cell whose heading starts with the task's question ("## Q1.3 ..."), and the figures and tables are checked against
the notebook's own declaration (`contents.py`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO_ROOT


@dataclass(frozen=True)
class Task:
    """One graded task: its id, points, what it asks and the figures and tables that show it."""

    id: str
    points: float
    title: str
    by_hand: bool = False            # graded by a person (written answers, tuning, the report), never auto-scored
    shows: tuple[str, ...] = ()      # names of the figures and tables (declared by its notebook) that show it

    @property
    def question(self) -> str:
        """The question the task belongs to: 'Q1.3' for 'Q1.3c'."""
        return self.id.rstrip("abcdefgh")


TASKS = (
    Task("Q1.1", 3, "load CIFAR-100, un-normalise and show classes 0-4",
         shows=("q1_1_examples_classes_0-4", "q1_1_unnormalise", "q1_1_cifar100_classes")),
    Task("Q1.2", 4, "TwoLayerNet and the LeNet-5 ConvNet"),
    Task("Q1.3a", 2, "CIFAR100_loader: __init__ and __getitem__"),
    Task("Q1.3b", 2, "the training and test transforms and the optimizer", shows=("q1_3_transforms_before_after",)),
    Task("Q1.3c", 4, "the training loop in train(), training and comparing both networks",
         shows=("q1_3_loss_accuracy_curves", "q1_3_results", "q1_3_per_class_accuracy")),
    Task("Q1.4", 10, "hyperparameters and the improved networks", by_hand=True,
         shows=("q1_4_lr_range_test", "q1_4_sweep", "q1_4_mlp_sweep", "q1_4_improved_curves",
                "q1_4_improved_results")),
    Task("Q2.1", 5, "STL10_Dataset: the five classes, relabelled 0-4", shows=("q2_stl10_classes", "q2_stl10_examples")),
    Task("Q2.2a", 5, "load the CIFAR-100 ConvNet and give it a new head for 96x96 images", shows=("q2_strategies",)),
    Task("Q2.2b", 5, "fine-tune, report the curves and the t-SNE of the features", by_hand=True,
         shows=("q2_finetune_curves", "q2_tsne_before_after", "q2_feature_space")),
    Task("Q3", 0, "a stronger recipe (bonus)", by_hand=True, shows=("q3_improved_results", "what_worked")),
)


@dataclass(frozen=True)
class Stub:
    """One solution region as the student edition has it: its task, where it is and what the student is to do."""

    task: str
    place: str     # e.g. "cv_helpers/train.py: train" or "notebooks/Q1_1....ipynb: cell 4"
    what: str


@dataclass(frozen=True)
class NotebookPlace:
    """Where a question starts in the notebooks, and what that notebook declares it exports."""

    notebook: str          # file name
    cell: int              # 1-based, counting every cell
    heading: str
    figures: tuple[str, ...]
    tables: tuple[str, ...]


def notebook_places(folder: Path = REPO_ROOT / "notebooks") -> dict[str, NotebookPlace]:
    """Returns, per question ('Q1.3'), the first markdown cell (notebooks in name order) with a heading that starts
    with it."""
    places: dict[str, NotebookPlace] = {}
    for path in sorted(folder.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        declared = notebook["metadata"].get("cv_workbook", {})
        for number, cell in enumerate(notebook["cells"], 1):
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            headings = re.findall(r"^#+ (Q\d(?:\.\d)?) (.+)$", text, flags=re.M) if cell["cell_type"] == "markdown" \
                else []
            for question, title in headings:
                places.setdefault(question, NotebookPlace(path.name, number, f"{question} {title}",
                                                          tuple(declared.get("figures", {})),
                                                          tuple(declared.get("tables", ()))))
    return places


def grading_map(stubs: list[Stub], folder: Path = REPO_ROOT / "notebooks") -> str:
    """Returns the grading map as a Markdown table: task, points, where the student writes it (the stubs), where the
    notebooks show it, and its figures and tables (report/figures/NAME.png, report/tables/NAME.md)."""
    places = notebook_places(folder)
    rows = ["| task | points | the package: where it is written | the notebook: where it is shown | "
            "figures and tables |", "|---|---|---|---|---|"]
    for task in TASKS:
        place = places.get(task.question)
        written = "<br>".join(f"`{stub.place}`" for stub in stubs if stub.task == task.id) or "-"
        shown = f"`{place.notebook}`, cell {place.cell}: {place.heading}" if place else "-"
        evidence = [f"figure `{name}`" if place and name in place.figures else f"table `{name}`"
                    for name in task.shows]
        points = f"{task.points:g}{' (by hand)' if task.by_hand else ''}"
        rows.append(f"| {task.id} {task.title} | {points} | {written} | {shown} | {', '.join(evidence) or '-'} |")
    return "\n".join(rows)
